"""The engine's PostgreSQL writes off its event loop's critical path (`workbench.store.pg_writes`):
a slow commit holds up nothing but the order waiting for it, which still goes out only once
its row is committed; a server stopped and started again loses no write, and the engine
shows why it is degraded meanwhile. Real server, real local exchange, unmodified ccxt."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import AsyncIterator
from typing import Any

import pandas as pd
import psycopg
import pytest
from local_market import Market, bar_ms, open_market, run_to, step
from shipped import CANDLE_DIR, ROOT

from workbench.broker.base import Execution
from workbench.broker.models import Order
from workbench.broker.paper import PaperBroker
from workbench.fills import FillModel
from workbench.live.engine import LiveEngine
from workbench.live.events import (
    EngineEvent,
    Notice,
    NoticeKind,
    OrderChanged,
    StateChanged,
    StrategyState,
)
from workbench.localexchange import LocalExchange, ManualClock, load_csv_history
from workbench.settings import Settings
from workbench.store import Store
from workbench.store.local_postgres import LocalPostgres
from workbench.venue import connect

FILL_MODEL = FillModel(fee_rate=0.001)
BARS = 300
STEP_MS = 300_000
HOLD_S = 4.0  # the longest the test's lock is held (today's engine would stall that long)


def spec() -> dict[str, Any]:
    raw = json.loads((ROOT / "data" / "strategies" / "sma_cross.json").read_text())
    raw["params"]["fast"]["default"] = 5
    raw["params"]["slow"]["default"] = 20
    raw["risk"] = {"sizing": {"method": "fixed_fraction", "fraction": 0.5}}
    return raw


class WatchedPaper(PaperBroker):
    """The paper broker, noting at each submit what another connection sees of the order."""

    def __init__(self, url: str) -> None:
        super().__init__(FILL_MODEL)
        self.url = url
        self.seen: dict[str, str | None] = {}

    async def submit(self, order: Order) -> Execution:
        with psycopg.connect(self.url, autocommit=True) as other:
            row = other.execute(
                "SELECT state FROM orders WHERE client_order_id = %s", [order.client_order_id]
            ).fetchone()
        self.seen[order.client_order_id] = None if row is None else str(row[0])
        return await super().submit(order)


class TableLock:
    """`orders` locked against writes from another connection, on a thread of its own (a
    blocked event loop cannot end it), until `release` or `HOLD_S`."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.taken = threading.Event()
        self.released = threading.Event()
        self.thread = threading.Thread(target=self._hold)

    def _hold(self) -> None:
        with psycopg.connect(self.url) as conn:
            conn.execute("LOCK TABLE orders IN EXCLUSIVE MODE")  # reads pass, writes wait
            self.taken.set()
            self.released.wait(HOLD_S)
            conn.commit()

    def __enter__(self) -> TableLock:
        self.thread.start()
        assert self.taken.wait(10)
        return self

    def release(self) -> None:
        self.released.set()

    def __exit__(self, *exc: object) -> None:
        self.release()
        self.thread.join()


class Ticker:
    """A coroutine ticking every 10 ms on the engine's loop; gives its longest gap."""

    def __init__(self) -> None:
        self.gaps: list[float] = []
        self.task = asyncio.create_task(self._run())

    async def _run(self) -> None:
        last = time.perf_counter()
        while True:
            await asyncio.sleep(0.01)
            now = time.perf_counter()
            self.gaps.append(now - last)
            last = now

    def longest(self) -> float:
        return max(self.gaps)

    async def stop(self) -> None:
        self.task.cancel()
        await asyncio.gather(self.task, return_exceptions=True)


@pytest.fixture(scope="module")
def two_markets() -> dict[str, pd.DataFrame]:
    history = load_csv_history(CANDLE_DIR, ["ETH/BTC", "LTC/BTC"])
    common = history["ETH/BTC"].index.intersection(history["LTC/BTC"].index)[:BARS]
    return {symbol: frame.loc[common] for symbol, frame in history.items()}


@pytest.fixture
async def markets(
    two_markets: dict[str, pd.DataFrame],
) -> AsyncIterator[tuple[ManualClock, Any]]:
    first = two_markets["ETH/BTC"].index[0]
    clock = ManualClock(int(first.value // 1_000_000) + 1)
    async with LocalExchange(two_markets, clock=clock, tick_s=0.002) as server:
        clients = connect("local", settings=Settings(), port=server.port)
        await clients.load_markets()
        yield clock, clients
        await clients.close()


async def bars(clock: ManualClock, n: int) -> None:
    """Move replay time `n` bars on, a third at a time, not waiting for any strategy."""
    for _ in range(3 * n):
        clock.advance(STEP_MS // 3)
        await asyncio.sleep(0.01)


async def test_a_slow_commit_holds_up_only_the_order_waiting_for_its_row(
    markets: tuple[ManualClock, Any], two_markets: dict[str, pd.DataFrame], pg_url: str
) -> None:
    clock, clients = markets
    broker = WatchedPaper(pg_url)
    events: list[EngineEvent] = []
    with Store.open(pg_url) as store:
        engine = LiveEngine(store, clients, broker, housekeeping_s=0.1)
        engine.subscribe(events.append)
        trader = await engine.add_strategy(spec(), allocation=10_000.0, strategy_id="trader")
        watcher = await engine.add_strategy(
            spec(), allocation=10_000.0, strategy_id="watcher", symbol="LTC/BTC",
            state=StrategyState.PAUSED,
        )  # fmt: skip
        await engine.start()
        await bars(clock, 25)  # warmed up
        ticker = Ticker()

        with TableLock(pg_url) as lock:
            # Bars go on until the trader stores an order: its row waits on the lock.
            locked_at = len(events)
            waiting: Order | None = None
            for _ in range(200):
                await bars(clock, 1)
                new = [
                    e.order
                    for e in events[locked_at:]
                    if isinstance(e, OrderChanged) and e.order.strategy_id == trader
                ]
                if new:
                    waiting = new[0]
                    break
            assert waiting is not None, "the rules called for no order"
            watched_from = engine.strategies[watcher].runner.last_close_ms or 0
            await bars(clock, 8)
            # The loop ran on: the ticker ticked, the other market's bars were handled, and
            # the order was not sent while its row could not be committed.
            assert ticker.longest() < 1.0, f"the loop stalled {ticker.longest():.2f} s"
            watched_to = engine.strategies[watcher].runner.last_close_ms or 0
            assert watched_to - watched_from >= 5 * STEP_MS
            assert waiting.client_order_id not in broker.seen
            lock.release()

        for _ in range(500):
            if waiting.client_order_id in broker.seen:
                break
            await asyncio.sleep(0.01)
        await ticker.stop()
        await bars(clock, 60)
        await engine.stop()
        # Sent once its row was committed, as every other order was.
        assert broker.seen[waiting.client_order_id] == "pending"
        assert len(broker.seen) >= 2 and None not in broker.seen.values(), broker.seen
        stored = {o.client_order_id for o in store.trading.orders(trader)}
        assert set(broker.seen) <= stored


@pytest.fixture
async def market(two_markets: dict[str, pd.DataFrame]) -> AsyncIterator[Market]:
    async for opened in open_market(two_markets["ETH/BTC"]):
        yield opened


async def test_a_server_stopped_and_started_again_loses_no_write(
    market: Market, two_markets: dict[str, pd.DataFrame], restartable_pg: LocalPostgres
) -> None:
    candles = two_markets["ETH/BTC"]
    url = restartable_pg.create_database("writes_outage")
    events: list[EngineEvent] = []
    _server, clock, clients = market
    with Store.open(url) as store:
        engine = LiveEngine(store, clients, PaperBroker(FILL_MODEL), housekeeping_s=0.1)
        engine.subscribe(events.append)
        sid = await engine.add_strategy(spec(), allocation=10_000.0, strategy_id="outage")
        await engine.start()
        while clock.now_ms() < bar_ms(candles, 60):
            await step(clock, engine)

        await asyncio.to_thread(restartable_pg.shut_down)
        store.trading.add_event(sid, "note", "written while the server is away")
        deadline = time.monotonic() + 20  # the engine says why once a commit fails
        while not any(
            isinstance(e, Notice)
            and e.kind is NoticeKind.DEGRADED
            and e.detail.startswith("writes to")
            for e in events
        ):
            assert time.monotonic() < deadline, "no degraded notice"
            await step(clock, engine)
        assert engine.strategies[sid].state is StrategyState.DEGRADED
        assert "writes to" in (engine.strategies[sid].problem or "")
        for _ in range(10):  # bars go on closing while it is away
            await step(clock, engine)

        await asyncio.to_thread(restartable_pg.start_again)
        deadline = time.monotonic() + 30
        while True:
            back = engine.strategies.get(sid)  # out while it is taken up again
            calm = store.trading.writes.problem is None
            if calm and back is not None and back.state is StrategyState.RUNNING:
                break
            assert time.monotonic() < deadline, "never running again"
            await step(clock, engine)
        assert engine.strategies[sid].state is StrategyState.RUNNING
        await run_to(clock, engine, bar_ms(candles, BARS - 1), settle_s=0.2)
        await engine.stop()

        live = engine.strategies[sid]
        stored_orders = {o.client_order_id: o for o in store.trading.orders(sid)}
        assert stored_orders == live.orders.known
        assert {f.fill_id for f in store.trading.fills(sid)} == live.orders.booked
        details = list(store.trading.events(sid)["detail"])
        assert details.count("written while the server is away") == 1
        assert any(d.startswith("writes to") for d in details), "the degraded notice"
        shown = [
            (e.state, e.reason or "")
            for e in events
            if isinstance(e, StateChanged) and e.strategy_id == sid
        ]
        away = next(i for i, (st, why) in enumerate(shown) if "writes to" in why)
        assert shown[away][0] is StrategyState.DEGRADED
        assert shown[-1] == (StrategyState.RUNNING, "")
        seen = candles.iloc[: BARS - 1]
        marks = pd.DatetimeIndex(store.trading.equity(sid)["ts"]).tz_localize("UTC")
        assert marks.is_unique and list(seen.index.difference(marks)) == []
