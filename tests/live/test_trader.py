"""The trader's rules, bar by bar: an exit the broker refused never disarms the stops."""

from __future__ import annotations

from workbench.broker.models import Fill, OrderPurpose
from workbench.candles import Candle
from workbench.fills import FillModel, Side, StopKind
from workbench.live.trader import ProtectionChanged, SignalTrader
from workbench.risk.sizing import EntrySizer
from workbench.strategy.risk import FixedFraction, Risk

MODEL = FillModel(fee_rate=0.0)


def trader() -> SignalTrader:
    risk = Risk(stop_loss=0.02, take_profit=None, trailing_stop=None, sizing=FixedFraction(0.5))
    sizer = EntrySizer(risk.sizing, MODEL, 300)
    held = SignalTrader("s", "ETH/BTC", risk, MODEL, sizer)
    fill = Fill("e-1", "e", "s", "ETH/BTC", Side.BUY, 2.0, 100.0, 0.0, 0)
    held.on_fill(fill, 2.0)
    return held


def test_after_a_refused_exit_the_stop_still_fires_and_flatten_still_answers() -> None:
    held = trader()
    assert held.protection.stop_loss == 98.0
    [first] = held.on_close(Candle(300, 100.0, 100.5, 97.0, 99.0, 1.0), None)
    assert first.purpose is OrderPurpose.STOP_LOSS
    # The exchange refused that exit: no fill came. The next bar's rules still call for it.
    [again] = held.on_close(Candle(600, 99.0, 99.5, 97.5, 98.0, 1.0), None)
    assert again.purpose is OrderPurpose.STOP_LOSS and again.amount == 2.0
    [flatten] = held.flatten(900)
    assert flatten.purpose is OrderPurpose.FLATTEN


def test_levels_resting_on_the_exchange_are_not_watched_and_come_back_when_cancelled() -> None:
    held = trader()
    held.on_protection(ProtectionChanged(frozenset({StopKind.STOP_LOSS})))
    assert held.on_close(Candle(300, 100.0, 100.5, 97.0, 99.0, 1.0), None) == []
    held.on_protection(ProtectionChanged(frozenset()))
    [exit_] = held.on_close(Candle(600, 99.0, 99.5, 97.5, 98.0, 1.0), None)
    assert exit_.purpose is OrderPurpose.STOP_LOSS
