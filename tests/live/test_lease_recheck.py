"""Leases checked while the engine runs (PostgreSQL): a lease the server ended stops the
strategy's orders at once; it is taken back, replayed and reconciled before it trades again,
or left to the engine that took it meanwhile. On a real server, with a real local exchange."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import pandas as pd
import psycopg
import pytest
from local_market import Market, bar_ms, open_market, run_to, step
from shipped import CANDLE_DIR, ROOT

from workbench.backtest.engine import backtest
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
from workbench.localexchange import load_csv_history
from workbench.store import Store
from workbench.store.lease import lock_key, this_process
from workbench.store.local_postgres import LocalPostgres
from workbench.strategy import load_spec

FILL_MODEL = FillModel(fee_rate=0.001)
BARS = 300


@pytest.fixture(scope="module")
def candles() -> pd.DataFrame:
    return load_csv_history(CANDLE_DIR, ["ETH/BTC"])["ETH/BTC"].iloc[:BARS]


@pytest.fixture
async def market(candles: pd.DataFrame) -> AsyncIterator[Market]:
    async for opened in open_market(candles):
        yield opened


def spec() -> dict[str, Any]:
    raw = json.loads((ROOT / "data" / "strategies" / "sma_cross.json").read_text())
    raw["params"]["fast"]["default"] = 5
    raw["params"]["slow"]["default"] = 20
    raw["risk"] = {"sizing": {"method": "fixed_fraction", "fraction": 0.5}}
    return raw


def traded_between(candles: pd.DataFrame, first: int, last: int) -> int:
    """Give how many entries and exits the backtest (the oracle) makes in bars first..last."""
    trades = backtest(load_spec(spec()), candles).trades
    lo, hi = candles.index[first], candles.index[last]
    times = [*trades["entry_time"], *trades[trades["exit_reason"] != "open"]["exit_time"]]
    return sum(lo <= t <= hi for t in times)


async def until(check: Any, clock: Any, engine: LiveEngine, what: str, bars: int = 30) -> None:
    """Wait (at most 10 s) until `check()` holds, stepping the market at most `bars` bars."""
    steps = bars * 3
    for _ in range(500):
        if check():
            return
        if steps > 0:
            steps -= 1
            await step(clock, engine)
        await asyncio.sleep(0.02)
    raise AssertionError(f"never: {what}")


def lease_backends(admin: psycopg.Connection[Any], database: str) -> list[int]:
    rows = admin.execute(
        "SELECT pid FROM pg_stat_activity WHERE application_name = %s AND datname = %s",
        [this_process(), database],
    ).fetchall()
    return [int(r[0]) for r in rows]


def new_orders(events: list[EngineEvent], sid: str) -> list[str]:
    return [
        e.order.client_order_id
        for e in events
        if isinstance(e, OrderChanged) and e.order.strategy_id == sid
    ]


async def test_a_lease_the_server_ended_stops_orders_until_it_is_taken_back(
    market: Market, candles: pd.DataFrame, pg_server: LocalPostgres
) -> None:
    _server, clock, clients = market
    # A login that can be refused for a while: the lease cannot be taken back meanwhile.
    pg_server.create_user("leaser", "pw")
    url = pg_server.create_database("lease_back", owner="leaser").replace("@", ":pw@")
    admin = psycopg.connect(pg_server.url(), autocommit=True)
    events: list[EngineEvent] = []
    with Store.open(url) as store:
        engine = LiveEngine(store, clients, PaperBroker(FILL_MODEL), housekeeping_s=0.1)
        engine.subscribe(events.append)
        sid = await engine.add_strategy(spec(), allocation=10_000.0, strategy_id="lease-a")
        await engine.start()
        while clock.now_ms() < bar_ms(candles, 60):
            await step(clock, engine)

        admin.execute("ALTER ROLE leaser NOLOGIN")
        [backend] = lease_backends(admin, "lease_back")
        admin.execute("SELECT pg_terminate_backend(%s)", [backend])
        await until(lambda: engine.strategies[sid].lease_problem is not None, clock, engine,
                    "the lost lease noticed", bars=1)  # fmt: skip
        placed_before = len(new_orders(events, sid))
        lost_at = len(events)
        while clock.now_ms() < bar_ms(candles, 160):
            await step(clock, engine)
        # A hundred bars without the lease: the rules called for orders, none went out.
        assert traded_between(candles, 62, 158) >= 2, "the window must hold signals"
        assert len(new_orders(events, sid)) == placed_before
        assert engine.strategies[sid].lease_problem is not None
        assert engine.strategies[sid].state is StrategyState.DEGRADED
        shown = [e for e in events[lost_at - 5 :] if isinstance(e, StateChanged)]
        assert any("lease lost" in (e.reason or "") for e in shown)

        # The race a busy loop loses: while the strategy taken back fetches the bars it
        # missed, its feed delivers a newer one (here: the fetch waits for that delivery).
        feed = engine.feeds[engine.strategies[sid].feed_key]
        fetch = feed.fetch_closed
        raced: list[int] = []

        async def fetch_after_a_newer_bar(start_ms: int, end_ms: int) -> list[Any]:
            if not raced:
                raced.append(feed.last_closed_ms or 0)
                while (feed.last_closed_ms or 0) <= raced[0]:
                    await step(clock, engine)
            return await fetch(start_ms, end_ms)

        feed.fetch_closed = fetch_after_a_newer_bar  # type: ignore[method-assign]
        admin.execute("ALTER ROLE leaser LOGIN")

        def recovered() -> bool:
            return any(
                isinstance(e, Notice) and e.kind is NoticeKind.RECOVERED and "lease" in e.detail
                for e in events[lost_at:]
            )

        await until(recovered, clock, engine, "the lease taken back", bars=3)
        assert engine.strategies[sid].lease_problem is None
        # Held again on the server, on a new connection.
        assert lease_backends(admin, "lease_back") not in ([], [backend])
        back_at = len(new_orders(events, sid))
        while clock.now_ms() < bar_ms(candles, 299):
            await step(clock, engine)
        await engine.stop()
        assert traded_between(candles, 165, 297) >= 2
        assert len(new_orders(events, sid)) > back_at, "it trades again"
        assert engine.strategies[sid].state is StrategyState.RUNNING
        # Every bar taken once, in order, the missed ones too: none without its mark.
        assert raced, "the catch-up fetched"
        marks = pd.DatetimeIndex(store.trading.equity(sid)["ts"]).tz_localize("UTC")
        missing = candles.index[: BARS - 2].difference(marks)
        assert marks.is_unique and list(missing) == [], f"bars without a mark: {list(missing)}"
    admin.close()


async def test_a_strategy_another_engine_took_meanwhile_is_left_to_it(
    market: Market, candles: pd.DataFrame, pg_url: str
) -> None:
    _server, clock, clients = market
    database = pg_url.rsplit("/", 1)[1]
    events: list[EngineEvent] = []
    with Store.open(pg_url) as store:
        engine = LiveEngine(store, clients, PaperBroker(FILL_MODEL), housekeeping_s=0.1)
        engine.subscribe(events.append)
        taken = await engine.add_strategy(spec(), allocation=10_000.0, strategy_id="lease-b")
        kept = await engine.add_strategy(spec(), allocation=10_000.0, strategy_id="lease-c")
        await engine.start()
        while clock.now_ms() < bar_ms(candles, 60):
            await step(clock, engine)

        other = psycopg.connect(pg_url, autocommit=True, application_name="engine B elsewhere")
        with psycopg.connect(pg_url, autocommit=True) as admin:
            [backend] = lease_backends(admin, database)
            admin.execute("SELECT pg_terminate_backend(%s)", [backend])
        # The second engine takes the strategy as soon as the server lets go of it.
        while not other.execute("SELECT pg_try_advisory_lock(%s)", [lock_key(taken)]).fetchone()[0]:
            await asyncio.sleep(0.001)
        placed = len(new_orders(events, taken))
        await until(lambda: taken in engine.left, clock, engine, "left to engine B", bars=1)
        while clock.now_ms() < bar_ms(candles, 299):
            await step(clock, engine)
        await engine.stop()

        assert traded_between(candles, 62, 297) >= 4, "the rules called for orders"
        assert len(new_orders(events, taken)) == placed, "no order after engine B took it"
        assert "engine B elsewhere" in engine.left[taken] and taken not in engine.strategies
        assert any(
            isinstance(e, StateChanged) and e.strategy_id == taken and "left to" in (e.reason or "")
            for e in events
        )
        # The other strategy's lease was lost with the connection, taken back, and it traded.
        assert engine.strategies[kept].lease_problem is None
        assert any(o.created_ms > bar_ms(candles, 62) for o in store.trading.orders(kept))
    other.close()


async def test_the_engine_trades_on_after_the_server_restarts_and_loses_no_bar(
    market: Market, candles: pd.DataFrame, restartable_pg: LocalPostgres
) -> None:
    _server, clock, clients = market
    url = restartable_pg.create_database("engine_restart")
    events: list[EngineEvent] = []
    with Store.open(url) as store:
        engine = LiveEngine(store, clients, PaperBroker(FILL_MODEL), housekeeping_s=0.1)
        engine.subscribe(events.append)
        sid = await engine.add_strategy(spec(), allocation=10_000.0, strategy_id="restarted")
        await engine.start()
        while clock.now_ms() < bar_ms(candles, 60):
            await step(clock, engine)
        restart = asyncio.ensure_future(asyncio.to_thread(restartable_pg.restart))
        while not restart.done():  # bars go on closing while the server is away
            await step(clock, engine)
        await restart
        restarted_at = clock.now_ms()
        await run_to(clock, engine, bar_ms(candles, 299), settle_s=0.2)  # every bar seen
        await engine.stop()

        assert any(
            isinstance(e, Notice) and e.kind is NoticeKind.RECOVERED and "lease" in e.detail
            for e in events
        )
        assert engine.strategies[sid].state is StrategyState.RUNNING
        assert any(o.created_ms > restarted_at for o in store.trading.orders(sid)), "trades on"
        # Candles and equity marks of the outage were kept and written: no bar is missing.
        seen = candles.iloc[: BARS - 1]
        stored = store.candles.read("local", "ETH/BTC", "5m")
        assert list(stored.index) == list(seen.index)
        marks = pd.DatetimeIndex(store.trading.equity(sid)["ts"]).tz_localize("UTC")
        missing = seen.index.difference(marks)
        assert marks.is_unique and list(missing) == [], f"bars without a mark: {list(missing)}"
