"""The product's promise, offline: the live path trades exactly as the backtest does.

For every example strategy on every shipped candle file, the strategy runner + paper broker +
portfolio (the objects the live engine drives) fed one candle at a time make the same closed
trades (times, sides, sizes, prices) and end on the same equity as the vectorbt backtest.
The end-to-end version through the local exchange is in test_engine.py.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from shipped import CANDLE_FILES, ROOT, shipped

from workbench.backtest.engine import backtest
from workbench.fills import FillModel
from workbench.live.replay import replay
from workbench.strategy import load_spec

SPECS = sorted((ROOT / "data" / "strategies").glob("*.json"))
FEES, SLIPPAGE = 0.001, 0.0005


@pytest.mark.parametrize("spec_path", SPECS, ids=lambda p: p.stem)
def test_live_path_trades_like_the_backtest(spec_path: Path) -> None:
    spec = load_spec(spec_path)
    for path in CANDLE_FILES:
        _, candles = shipped(path)
        live = replay(spec, candles, cash=10_000.0, fill_model=FillModel(FEES, SLIPPAGE))
        tested = backtest(spec, candles, cash=10_000.0, fees=FEES, slippage=SLIPPAGE)
        closed = tested.trades[tested.trades["exit_reason"] != "open"].reset_index(drop=True)
        ours = live.trades()
        where = f"{spec_path.stem} on {path.name}"
        assert len(ours) == len(closed), where
        if len(closed):
            assert list(ours["entry_time"]) == list(closed["entry_time"]), where
            assert list(ours["exit_time"]) == list(closed["exit_time"]), where
            assert list(ours["direction"]) == list(closed["side"]), where
            for mine, theirs in (
                ("amount", "size"),
                ("entry_price", "entry_price"),
                ("exit_price", "exit_price"),
                ("pnl", "pnl"),
            ):
                np.testing.assert_allclose(ours[mine], closed[theirs], rtol=1e-9, err_msg=where)
        # Equity bar by bar, marked at each close.
        assert live.equity.index.equals(tested.equity.index), where
        np.testing.assert_allclose(live.equity, tested.equity, rtol=1e-9, err_msg=where)


# Rules that collide often: an entry and its exit on one close (they cancel), a long and a
# short entry on one close (they cancel), an opposite entry while in a position (ignored),
# and every protective exit at once, tight enough to fire at opens and inside bars.
COLLIDING = {
    "name": "colliding_rules",
    "market": {"symbol": "ETH/BTC", "timeframe": "5m"},
    "indicators": {"sma": {"kind": "sma", "period": 10}},
    "entry": {"gt": ["close", "open"]},
    "exit": {"gt": ["close", {"ago": ["close", 1]}]},
    "short_entry": {"lt": ["close", "sma"]},
    "short_exit": {"lt": ["close", {"ago": ["close", 1]}]},
    "risk": {
        "stop_loss": 0.003,
        "take_profit": 0.008,
        "trailing_stop": 0.005,
        "sizing": {"method": "fixed_fraction", "fraction": 0.5},
    },
}


def test_colliding_signals_and_every_stop_trade_alike_live_and_in_the_backtest() -> None:
    spec = load_spec(COLLIDING)
    _, candles = shipped(CANDLE_FILES[0])
    candles = candles.iloc[:3000]
    live = replay(spec, candles, cash=10_000.0, fill_model=FillModel(FEES, SLIPPAGE))
    tested = backtest(spec, candles, cash=10_000.0, fees=FEES, slippage=SLIPPAGE)
    closed = tested.trades[tested.trades["exit_reason"] != "open"].reset_index(drop=True)
    ours = live.trades()
    # The rules collided and every way out was taken: the comparison covers them all.
    assert set(closed["side"]) == {"long", "short"}
    assert {"signal", "stop_loss", "take_profit", "trailing_stop"} <= set(closed["exit_reason"])
    assert len(ours) == len(closed)
    assert list(ours["entry_time"]) == list(closed["entry_time"])
    assert list(ours["exit_time"]) == list(closed["exit_time"])
    assert list(ours["direction"]) == list(closed["side"])
    np.testing.assert_allclose(ours["exit_price"], closed["exit_price"], rtol=1e-9)
    np.testing.assert_allclose(ours["pnl"], closed["pnl"], rtol=1e-9)
    np.testing.assert_allclose(live.equity, tested.equity, rtol=1e-9)
