"""One running strategy: its indicators, its position logic and its sub-portfolio. No IO.

Every state takes every closed bar, so indicators never skip one (a strategy started again
is exactly where a never-stopped one would be); the state only filters the orders it gives
(`workbench.live.events.StrategyState` says which pass in which state).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import pandas as pd

from workbench.broker.models import Fill, OrderIntent, OrderPurpose
from workbench.candles import Candle
from workbench.fills import FillModel
from workbench.live.events import StrategyState
from workbench.live.trader import ProtectionChanged, SignalTrader
from workbench.portfolio.accounting import Portfolio
from workbench.risk.sizing import EntrySizer
from workbench.strategy import IncrementalStrategy, SignalEvent, Spec
from workbench.timeframes import timeframe_ms, timeframe_seconds

__all__ = ["StrategyRunner", "StrategyState"]

#: What a stopped strategy (or one whose code failed) still does: protect its position.
_PROTECTION = frozenset(
    {
        OrderPurpose.STOP_LOSS,
        OrderPurpose.TAKE_PROFIT,
        OrderPurpose.TRAILING_STOP,
        OrderPurpose.FLATTEN,
    }
)


class StrategyRunner:
    """Candles in, order intents out; fills booked into its own portfolio."""

    def __init__(
        self,
        strategy_id: str,
        spec: Spec,
        params: dict[str, Any] | None,
        cash: float,
        fill_model: FillModel,
        *,
        symbol: str | None = None,
        allow_short: bool | None = None,
        dust: float = 0.0,
    ) -> None:
        self.strategy_id = strategy_id
        self.spec = spec
        self.symbol = symbol or spec.market.symbol
        self.timeframe = spec.market.timeframe
        self.step_ms = timeframe_ms(self.timeframe)
        self.strategy = IncrementalStrategy(spec, params)
        self.params = dict(self.strategy.params)
        sizer = EntrySizer(spec.risk.sizing, fill_model, timeframe_seconds(self.timeframe))
        if allow_short is None:
            allow_short = spec.short_entry is not None
        self.trader = SignalTrader(
            strategy_id, self.symbol, spec.risk, fill_model, sizer, allow_short, dust=dust
        )
        self.portfolio = Portfolio(cash=cash, dust=dust)
        self.initial_cash = cash
        self.state = StrategyState.RUNNING
        self.last_signal: SignalEvent | None = None
        self.last_price: float | None = None
        self.last_close_ms: int | None = None

    @property
    def warmup_bars(self) -> int:
        return int(self.strategy.warmup_bars)

    def seed(self, history: pd.DataFrame) -> None:
        """Warm indicators and sizing up on stored history (no orders, no position)."""
        for candle in candles_of(history):
            self.last_signal = self.strategy.update(candle)
            self.trader.sizer.update(candle)
            self.last_close_ms = candle.ts_ms
            self.last_price = candle.close
        self.trader.remember(self.last_signal)

    def replay(self, history: pd.DataFrame, fills: Iterable[Fill]) -> None:
        """Walk stored bars the strategy already acted on, with its fills where they fell.

        The same calls as trading them (so indicators, the trailing peak and the pending
        signals end where a never-stopped run has them), the orders thrown away: what was
        placed then is in the fills. A fill is taken in the bar it happened in, after that
        bar's open and before its close.
        """
        queue = sorted(fills, key=lambda f: f.ts_ms)  # stable: booking order within a bar
        i = 0
        for candle in candles_of(history):
            self.on_open(candle.ts_ms, candle.open)
            while i < len(queue) and queue[i].ts_ms < candle.ts_ms + self.step_ms:
                self.on_fill(queue[i])
                i += 1
            self.on_close(candle)
        for fill in queue[i:]:
            self.on_fill(fill)

    def on_open(self, ts_ms: int, price: float) -> list[OrderIntent]:
        """Give the orders for the first price of a new bar that this state allows."""
        self.last_price = price
        return self._allowed(self.trader.on_open(ts_ms, price, self.portfolio.cash))

    def on_close(self, candle: Candle) -> list[OrderIntent]:
        """Take a closed candle: update indicators, give the exits it reached (allowed)."""
        if self.state is not StrategyState.ERROR:
            self.last_signal = self.strategy.update(candle)
            signal = self.last_signal
        else:
            signal = None  # its own code failed: only the stops are still checked
        self.last_price = candle.close
        self.last_close_ms = candle.ts_ms
        return self._allowed(self.trader.on_close(candle, signal))

    def flatten(self, ts_ms: int) -> list[OrderIntent]:
        """Give the order that closes the open position now (the drawdown guard's option)."""
        return self.trader.flatten(ts_ms)

    def on_fill(self, fill: Fill) -> None:
        self.portfolio.apply(fill)
        self.trader.on_fill(fill, self.portfolio.position(self.symbol).amount)

    def on_protection(self, event: ProtectionChanged) -> None:
        self.trader.on_protection(event)

    def equity(self) -> float:
        marks = {self.symbol: self.last_price} if self.last_price is not None else {}
        return self.portfolio.equity(marks)

    def _allowed(self, intents: list[OrderIntent]) -> list[OrderIntent]:
        state = self.state
        if state is StrategyState.RUNNING or state is StrategyState.DEGRADED:
            return intents
        if state is StrategyState.PAUSED:
            return [i for i in intents if not i.purpose.opens]
        return [i for i in intents if i.purpose in _PROTECTION]


def candles_of(frame: pd.DataFrame) -> Iterable[Candle]:
    """Give the rows of an OHLCV frame (UTC index) as candles."""
    for row in frame.itertuples():
        yield Candle(
            int(row.Index.value // 1_000_000),
            float(row.open),
            float(row.high),
            float(row.low),
            float(row.close),
            float(row.volume),
        )
