"""A restart keeps the drawdown guard's cool-down: a strategy halted by the guard, its engine
stopped and a new one started on the same database, still has its entries refused until the
cool-down ends, and trades again after it."""

from __future__ import annotations

import asyncio
import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import pandas as pd
from shipped import CANDLE_DIR, ROOT

from workbench.broker.paper import PaperBroker
from workbench.fills import FillModel
from workbench.live.engine import LiveEngine
from workbench.localexchange import LocalExchange, ManualClock, load_csv_history
from workbench.risk.limits import RiskLimits
from workbench.settings import Settings
from workbench.store import Store
from workbench.venue import connect

STEP_MS = 300_000
BARS = 120
FILL_MODEL = FillModel(fee_rate=0.001, slippage=0.0005)
COOLDOWN_MS = 40 * STEP_MS
LIMITS = RiskLimits(
    max_drawdown_fraction=0.01, drawdown_cooldown_ms=COOLDOWN_MS, flatten_on_drawdown=True
)


def quick_spec() -> dict[str, Any]:
    raw = json.loads((ROOT / "data" / "strategies" / "sma_cross.json").read_text())
    raw["params"]["fast"]["default"] = 5
    raw["params"]["slow"]["default"] = 20
    raw["risk"] = {"sizing": {"method": "fixed_fraction", "fraction": 0.5}}
    return raw


def ms(ts: pd.Timestamp) -> int:
    return int(ts.value // 1_000_000)


async def wait_closed(engine: LiveEngine, last_closed: int) -> None:
    for _ in range(500):
        if all((r.runner.last_close_ms or 0) >= last_closed for r in engine.strategies.values()):
            return
        await asyncio.sleep(0.02)
    raise TimeoutError("the engine did not keep up")


async def stop_between_bars(clock: ManualClock, engine: LiveEngine) -> None:
    """Let the engine finish the bar it is on, then stop it before the next one opens."""
    now = clock.now_ms()
    clock.set(max(now, now - now % STEP_MS + STEP_MS // 3))  # (it may be past a third)
    await wait_closed(engine, clock.now_ms() - clock.now_ms() % STEP_MS - STEP_MS)
    await engine.stop()


async def test_a_restarted_engine_keeps_refusing_entries_until_the_cool_down_ends(
    tmp_path: Path,
) -> None:
    candles = load_csv_history(CANDLE_DIR, ["ETH/BTC"])["ETH/BTC"].iloc[:BARS]
    db = tmp_path / "guard.duckdb"
    clock = ManualClock(ms(candles.index[0]) + 1)
    async with LocalExchange({"ETH/BTC": candles}, clock=clock, tick_s=0.002) as server:
        clients = connect("local", settings=Settings(), port=server.port)
        await clients.load_markets()
        # Given a strategy the guard has just halted, and its engine stopped.
        with Store.open(db) as store:
            engine = LiveEngine(
                store, clients, PaperBroker(FILL_MODEL), fill_model=FILL_MODEL, limits=LIMITS
            )
            sid = await engine.add_strategy(quick_spec(), allocation=10_000.0, strategy_id="dd")
            risk = engine.strategies[sid].risk
            await engine.start()
            while not risk.state.halts:
                clock.advance(STEP_MS // 3)
                await asyncio.sleep(0.004)
                assert clock.now_ms() < ms(candles.index[-1]), "the guard never tripped"
            await stop_between_bars(clock, engine)
            before = replace(risk.state, halts=list(risk.state.halts))
        restarted_ms = clock.now_ms() - clock.now_ms() % STEP_MS
        [halt_ms] = before.halts
        assert before.halted_until_ms == halt_ms + COOLDOWN_MS > restarted_ms

        # When a new engine resumes it on the same file and the market goes on.
        with Store.open(db) as store:
            engine = LiveEngine(
                store, clients, PaperBroker(FILL_MODEL), fill_model=FILL_MODEL, limits=LIMITS
            )
            assert await engine.resume() == [sid]
            assert engine.strategies[sid].risk.state == before
            await engine.start()
            while clock.now_ms() < ms(candles.index[-1]) + 1:
                clock.advance(STEP_MS // 3)
                await asyncio.sleep(0.004)
            await wait_closed(engine, ms(candles.index[-2]))
            await engine.stop()
            entries = [o.created_ms for o in store.trading.orders(sid) if o.purpose == "entry"]
            refused = store.trading.refusals(sid)
        await clients.close()

    # Then the entries signalled during the rest of the cool-down were refused by the guard,
    refused_ms = [ms(ts) for ts in pd.to_datetime(refused["ts"], utc=True)]
    after_restart = [ts for ts in refused_ms if ts >= restarted_ms]
    assert after_restart, "the window must hold an entry signal during the cool-down"
    assert all(restarted_ms <= ts < before.halted_until_ms for ts in after_restart)
    assert set(refused["rule"]) == {"drawdown_guard"}
    # none was placed before it ended, and entries resumed after it.
    assert not [e for e in entries if halt_ms <= e < before.halted_until_ms]
    assert [e for e in entries if e >= before.halted_until_ms]
