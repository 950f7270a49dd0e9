"""A restart keeps the trailing stop where it was: its peak is rebuilt from the stored bars
since the entry, and the run as a whole still trades like the backtest."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from shipped import CANDLE_DIR, ROOT

from workbench.backtest.engine import backtest
from workbench.broker.paper import PaperBroker
from workbench.fills import FillModel
from workbench.live.engine import LiveEngine
from workbench.localexchange import LocalExchange, ManualClock, load_csv_history
from workbench.settings import Settings
from workbench.store import Store
from workbench.strategy import load_spec
from workbench.venue import connect

STEP_MS = 300_000
BARS = 400
FILL_MODEL = FillModel(fee_rate=0.001, slippage=0.0005)


def trailing_spec() -> dict[str, Any]:
    raw = json.loads((ROOT / "data" / "strategies" / "sma_cross.json").read_text())
    raw["params"]["fast"]["default"] = 5
    raw["params"]["slow"]["default"] = 20
    raw["risk"] = {"sizing": {"method": "fixed_fraction", "fraction": 0.5}, "trailing_stop": 0.01}
    return raw


async def wait_closed(engine: LiveEngine, last_closed: int) -> None:
    for _ in range(500):
        if all((r.runner.last_close_ms or 0) >= last_closed for r in engine.strategies.values()):
            return
        await asyncio.sleep(0.02)
    raise TimeoutError("the engine did not keep up")


async def test_a_restart_rebuilds_the_trailing_peak_and_trades_like_the_backtest(
    tmp_path: Path,
) -> None:
    candles = load_csv_history(CANDLE_DIR, ["ETH/BTC"])["ETH/BTC"].iloc[:BARS]
    raw = trailing_spec()
    db = tmp_path / "trail.duckdb"
    clock = ManualClock(int(candles.index[0].value // 1_000_000) + 1)
    async with LocalExchange({"ETH/BTC": candles}, clock=clock, tick_s=0.002) as server:
        clients = connect("local", settings=Settings(), port=server.port)
        await clients.load_markets()
        with Store.open(db) as store:
            engine = LiveEngine(store, clients, PaperBroker(FILL_MODEL), fill_model=FILL_MODEL)
            sid = await engine.add_strategy(raw, allocation=10_000.0, strategy_id="trail")
            trader = engine.strategies[sid].runner.trader
            await engine.start()
            # Run until a position has climbed well above its entry, then stop there.
            while not (
                trader.side > 0
                and trader.protection.peak is not None
                and trader.entry_ms is not None
                and clock.now_ms() - trader.entry_ms > 4 * STEP_MS
                and trader.protection.peak > store.trading.fills(sid)[-1].price * 1.002
            ):
                clock.advance(STEP_MS // 3)
                await asyncio.sleep(0.004)
                assert clock.now_ms() < int(candles.index[-60].value // 1_000_000)
            # Let the engine finish the bar it is on, then stop between two bars.
            clock.set(clock.now_ms() - clock.now_ms() % STEP_MS + STEP_MS // 3)
            await wait_closed(engine, clock.now_ms() - clock.now_ms() % STEP_MS - STEP_MS)
            await engine.stop()
            peak_before = trader.protection.peak
            entry_price = store.trading.fills(sid)[-1].price
            entry_ms = trader.entry_ms
            last_closed = engine.strategies[sid].runner.last_close_ms
        assert peak_before is not None and entry_ms is not None and last_closed is not None
        # Oracle: the peak is the best high since the entry bar (the fill price at worst).
        since = candles[
            (candles.index >= pd.Timestamp(entry_ms - entry_ms % STEP_MS, unit="ms", tz="UTC"))
            & (candles.index <= pd.Timestamp(last_closed, unit="ms", tz="UTC"))
        ]
        assert peak_before == pytest.approx(max(entry_price, since["high"].max()), rel=1e-12)
        assert peak_before > entry_price

        with Store.open(db) as store:
            engine = LiveEngine(store, clients, PaperBroker(FILL_MODEL), fill_model=FILL_MODEL)
            await engine.resume()
            trader = engine.strategies[sid].runner.trader
            assert trader.protection.peak == pytest.approx(peak_before, rel=1e-12)
            await engine.start()
            while clock.now_ms() < int(candles.index[-1].value // 1_000_000) + 1:
                clock.advance(STEP_MS // 3)
                await asyncio.sleep(0.004)
            await wait_closed(engine, int(candles.index[-2].value // 1_000_000))
            await engine.stop()
            trips = store.trading.round_trips(sid)
        await clients.close()
    seen = candles.iloc[: BARS - 1]
    tested = backtest(
        load_spec(raw), seen, cash=10_000.0, fees=FILL_MODEL.fee_rate, slippage=FILL_MODEL.slippage
    )
    closed = tested.trades[tested.trades["exit_reason"] != "open"].reset_index(drop=True)
    assert "trailing_stop" in set(closed["exit_reason"])
    assert len(trips) == len(closed)
    assert list(pd.to_datetime(trips["exit_time"], utc=True)) == list(closed["exit_time"])
    np.testing.assert_allclose(trips["exit_price"], closed["exit_price"], rtol=1e-9)
