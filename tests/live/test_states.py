"""Pause and stop keep a strategy in step with the market and its position protected."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from local_market import bar_ms, open_market, run_to, step
from shipped import CANDLE_DIR, ROOT

from workbench.broker.models import OrderPurpose
from workbench.broker.paper import PaperBroker
from workbench.fills import FillModel
from workbench.live.engine import LiveEngine
from workbench.live.events import StrategyState
from workbench.localexchange import load_csv_history
from workbench.store import Store

MODEL = FillModel()


@pytest.fixture(scope="module")
def candles() -> pd.DataFrame:
    return load_csv_history(CANDLE_DIR, ["ETH/BTC"])["ETH/BTC"].iloc[:260]


def spec(**risk: Any) -> dict[str, Any]:
    raw = json.loads((ROOT / "data" / "strategies" / "sma_cross.json").read_text())
    raw["params"]["fast"]["default"] = 5
    raw["params"]["slow"]["default"] = 20
    raw["risk"] = {"sizing": {"method": "fixed_fraction", "fraction": 0.5}, **risk}
    return raw


async def test_pause_stop_and_start_end_where_a_never_paused_strategy_is(
    candles: pd.DataFrame, tmp_path: Path
) -> None:
    async for _server, clock, clients in open_market(candles):
        with Store.open(tmp_path / "states.duckdb") as store:
            engine = LiveEngine(store, clients, PaperBroker(MODEL), fill_model=MODEL)
            steady = await engine.add_strategy(spec(), allocation=1.0, strategy_id="steady")
            moved = await engine.add_strategy(spec(), allocation=1.0, strategy_id="moved")
            await engine.start()
            for at, state in [
                (60, StrategyState.PAUSED),
                (90, StrategyState.STOPPED),
                (120, StrategyState.RUNNING),
            ]:
                await run_to(clock, engine, bar_ms(candles, at) + 1, settle_s=0.05)
                engine.set_state(moved, state)
            await run_to(clock, engine, bar_ms(candles, 259) + 1, settle_s=0.1)
            await engine.stop()
            a, b = engine.strategies[steady].runner, engine.strategies[moved].runner
            orders = store.trading.orders(moved)
    assert b.last_close_ms == a.last_close_ms == bar_ms(candles, 258)
    assert a.last_signal is not None and b.last_signal is not None
    assert b.last_signal.values == a.last_signal.values
    # Paused: no entry; stopped: no order at all (it held nothing to protect then).
    paused_or_stopped = [
        o for o in orders if bar_ms(candles, 60) < o.created_ms <= bar_ms(candles, 120)
    ]
    assert not [o for o in paused_or_stopped if o.purpose.opens]


async def test_a_stopped_strategy_still_exits_on_its_stop(
    candles: pd.DataFrame, tmp_path: Path
) -> None:
    async for _server, clock, clients in open_market(candles):
        with Store.open(tmp_path / "stop.duckdb") as store:
            engine = LiveEngine(store, clients, PaperBroker(MODEL), fill_model=MODEL)
            sid = await engine.add_strategy(
                spec(stop_loss=0.004), allocation=1.0, strategy_id="guarded"
            )
            await engine.start()
            runner = engine.strategies[sid].runner
            for _ in range(3 * 250):
                await step(clock, engine)
                if not runner.portfolio.is_flat(runner.symbol):
                    break
            assert not runner.portfolio.is_flat(runner.symbol), "it entered a position"
            engine.set_state(sid, StrategyState.STOPPED)
            entered = {o.client_order_id for o in store.trading.orders(sid)}
            for _ in range(3 * 250):
                await step(clock, engine)
                if runner.portfolio.is_flat(runner.symbol) or clock.now_ms() > bar_ms(candles, 258):
                    break
            await engine.stop()
            after = [o for o in store.trading.orders(sid) if o.client_order_id not in entered]
    assert runner.portfolio.is_flat(runner.symbol), "the stop fired while stopped"
    assert [o.purpose for o in after] == [OrderPurpose.STOP_LOSS]
    assert after[0].state == "filled"
