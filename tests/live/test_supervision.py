"""Every background task has an owner: one that dies is reported and started again, and the
strategies on a feed that is down show `degraded`, never `running` over a dead feed."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pandas as pd
import pytest
from local_market import STEP_MS, open_market, step
from shipped import CANDLE_DIR, ROOT

from workbench.broker.paper import PaperBroker
from workbench.live.engine import LiveEngine
from workbench.live.events import EngineEvent, StateChanged, StrategyState, TaskFailed
from workbench.localexchange import load_csv_history
from workbench.localexchange.faults import FaultKind
from workbench.store import Store


@pytest.fixture(scope="module")
def candles() -> pd.DataFrame:
    return load_csv_history(CANDLE_DIR, ["ETH/BTC"])["ETH/BTC"].iloc[:200]


async def test_a_task_that_dies_is_reported_and_started_again(
    candles: pd.DataFrame, tmp_path: Path
) -> None:
    events: list[EngineEvent] = []
    async for _server, _clock, clients in open_market(candles):
        with Store.open(tmp_path / "s.duckdb") as store:
            broker = PaperBroker()
            runs = 0

            async def dies_once(report: object) -> None:
                nonlocal runs
                runs += 1
                if runs == 1:
                    raise RuntimeError("the follow-up broke")
                await asyncio.Event().wait()

            broker.run = dies_once  # type: ignore[method-assign]
            engine = LiveEngine(store, clients, broker)
            engine.subscribe(events.append)
            await engine.start()
            for _ in range(100):
                if runs >= 2:
                    break
                await asyncio.sleep(0.05)
            await engine.stop()
    [failed] = [e for e in events if isinstance(e, TaskFailed)]
    assert failed.name == "order follow-up" and "the follow-up broke" in failed.error
    assert failed.retry_s is not None and runs == 2


async def test_strategies_on_a_dead_feed_show_degraded_until_it_is_back(
    candles: pd.DataFrame, tmp_path: Path
) -> None:
    shown: list[tuple[str, StrategyState]] = []
    async for server, clock, clients in open_market(candles):
        with Store.open(tmp_path / "d.duckdb") as store:
            engine = LiveEngine(store, clients, PaperBroker())
            engine.subscribe(
                lambda e: (
                    shown.append((e.strategy_id, e.state)) if isinstance(e, StateChanged) else None
                )
            )
            sid = await engine.add_strategy(
                ROOT / "data" / "strategies" / "sma_cross.json", allocation=1.0
            )
            await engine.start()
            for _ in range(6):
                await step(clock, engine)
            # The exchange drops every socket and refuses new ones for a while.
            await server.inject_fault(FaultKind.DROP_WEBSOCKETS, duration_s=1.5)
            for _ in range(40):
                await step(clock, engine)
                if (sid, StrategyState.DEGRADED) in shown:
                    break
            assert engine.strategies[sid].state is StrategyState.DEGRADED
            assert "feed" in (engine.strategies[sid].problem or "")
            row = store.trading.strategies().set_index("strategy_id").loc[sid]
            assert "feed" in row["health"] and row["state"] == "running"
            await asyncio.sleep(1.6)
            for _ in range(60):
                await step(clock, engine)
                if engine.strategies[sid].state is StrategyState.RUNNING:
                    break
            await engine.stop()
            assert engine.strategies[sid].state is StrategyState.RUNNING
            last = engine.strategies[sid].runner.last_close_ms
    states = [s for i, s in shown if i == sid]
    assert StrategyState.DEGRADED in states and states[-1] is StrategyState.RUNNING
    # Nothing was missed while it was down: the feed caught up on its bars.
    assert last is not None and last >= clock.now_ms() - clock.now_ms() % STEP_MS - 2 * STEP_MS
