"""Crash safety: `workbench live run` killed with SIGKILL mid-run and started again comes back
with the same positions and equity, places no order twice, misses no bar, and still trades
exactly like the backtest over the candles it saw."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from shipped import CANDLE_DIR, ROOT

from workbench.backtest.engine import backtest
from workbench.fills import FillModel
from workbench.localexchange import LocalExchange, ManualClock, load_csv_history
from workbench.portfolio.accounting import Portfolio
from workbench.store import Store
from workbench.strategy import load_spec

STEP_MS = 300_000
BARS = 450
SPEC = ROOT / "data" / "strategies" / "sma_cross.json"
SID = "sma_cross-ETHBTC"


class Engine:
    """`workbench live run` in a child process, its output read line by line."""

    def __init__(self, process: asyncio.subprocess.Process) -> None:
        self.process = process
        self.lines: list[str] = []
        self.reader = asyncio.create_task(self._read())

    async def _read(self) -> None:
        assert self.process.stdout is not None
        async for raw in self.process.stdout:
            self.lines.append(raw.decode().rstrip())

    async def wait_for(self, prefix: str, count: int = 1, timeout_s: float = 60) -> list[str]:
        for _ in range(int(timeout_s / 0.02)):
            found = [line for line in self.lines if line.startswith(prefix)]
            if len(found) >= count:
                return found
            if self.process.returncode is not None:
                break
            await asyncio.sleep(0.02)
        raise AssertionError(f"no {count} x {prefix!r} in {self.lines[-20:]}")

    async def quiet(self, seconds: float) -> None:
        seen = -1
        while seen != len(self.lines):
            seen = len(self.lines)
            await asyncio.sleep(seconds)


async def start_engine(port: int, db: Path | str) -> Engine:
    env = {**os.environ, "WORKBENCH_DB": str(db), "WORKBENCH_LOCAL_PORT": str(port)}
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "workbench",
        "live",
        "run",
        str(SPEC),
        "--connect",
        "--allocation",
        "10000",
        # Paper research semantics: bars missed while down trade as if it never stopped, so
        # the whole run can be held against the backtest.
        "--replay-missed",
        stdout=asyncio.subprocess.PIPE,
        env=env,
    )
    engine = Engine(process)
    await engine.wait_for("running")
    return engine


@pytest.fixture(scope="module")
def candles() -> pd.DataFrame:
    return load_csv_history(CANDLE_DIR, ["ETH/BTC"])["ETH/BTC"].iloc[:BARS]


@pytest.fixture
async def exchange(candles: pd.DataFrame) -> AsyncIterator[tuple[LocalExchange, ManualClock]]:
    clock = ManualClock(int(candles.index[0].value // 1_000_000) + 1)
    async with LocalExchange({"ETH/BTC": candles}, clock=clock, tick_s=0.002) as server:
        yield server, clock


async def step_to(clock: ManualClock, end_ms: int, go: asyncio.Event) -> None:
    """Move replay time a third of a bar at a time while `go` is set."""
    while clock.now_ms() < end_ms:
        await go.wait()
        clock.advance(STEP_MS // 3)
        await asyncio.sleep(0.004)


@pytest.mark.parametrize("backend", ["duckdb", "postgres"])
async def test_a_killed_engine_comes_back_whole_and_trades_like_the_backtest(
    exchange: tuple[LocalExchange, ManualClock],
    candles: pd.DataFrame,
    tmp_path: Path,
    backend: str,
    request: pytest.FixtureRequest,
) -> None:
    server, clock = exchange
    db = request.getfixturevalue("pg_url") if backend == "postgres" else tmp_path / "live.duckdb"
    bar_ms = [int(ts.value // 1_000_000) for ts in candles.index]

    first = await start_engine(server.port, db)
    go = asyncio.Event()
    go.set()
    stepping = asyncio.create_task(step_to(clock, bar_ms[BARS - 1] + 1, go))
    await first.wait_for("fill", count=5)
    first.process.send_signal(signal.SIGKILL)
    await first.process.wait()
    killed_at = clock.now_ms()
    # Bars go on closing while it is down.
    await asyncio.sleep(0.3)
    go.clear()

    # What the dead process left: positions come from the stored fills.
    with Store.open(db, read_only=True) as store:
        fills = store.trading.fills(SID)
        stored_orders = store.trading.orders(SID)
    book = Portfolio(cash=10_000.0)
    for fill in fills:
        book.apply(fill)
    assert len(fills) >= 5

    second = await start_engine(server.port, db)
    [ready] = await second.wait_for("ready")
    words = ready.split()
    assert float(words[words.index("position") + 1]) == pytest.approx(
        book.position("ETH/BTC").amount, rel=1e-7
    )
    assert float(words[words.index("cash") + 1]) == pytest.approx(book.cash, rel=1e-7)
    assert clock.now_ms() > killed_at + STEP_MS, "bars closed while the engine was down"
    go.set()
    await stepping
    await second.quiet(1.5)
    second.process.send_signal(signal.SIGINT)
    assert await asyncio.wait_for(second.process.wait(), 30) == 0

    seen = candles.iloc[: BARS - 1]
    with Store.open(db, read_only=True) as store:
        stored = store.candles.read("local", "ETH/BTC", "5m")
        orders = store.trading.orders(SID)
        all_fills = store.trading.fills(SID)
        trips = store.trading.round_trips(SID)
    pd.testing.assert_frame_equal(
        stored, seen, check_freq=False, check_index_type=False, rtol=1e-12
    )
    # Nothing placed twice: one fill per order, every order final, the old ones untouched.
    assert len({f.client_order_id for f in all_fills}) == len(all_fills)
    assert all(o.state.is_final for o in orders)
    before = {o.client_order_id: o for o in stored_orders if o.state.is_final}
    after = {o.client_order_id: o for o in orders}
    assert all(after[cid] == order for cid, order in before.items())
    # And the run as a whole is the backtest's.
    fm = FillModel()
    tested = backtest(load_spec(SPEC), seen, cash=10_000.0, fees=fm.fee_rate, slippage=fm.slippage)
    closed = tested.trades[tested.trades["exit_reason"] != "open"].reset_index(drop=True)
    assert len(trips) == len(closed)
    assert list(pd.to_datetime(trips["entry_time"], utc=True)) == list(closed["entry_time"])
    np.testing.assert_allclose(trips["amount"], closed["size"], rtol=1e-9)
    np.testing.assert_allclose(trips["exit_price"], closed["exit_price"], rtol=1e-9)
