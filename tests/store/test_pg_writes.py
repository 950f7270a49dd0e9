"""The live engine's PostgreSQL writes (`workbench.store.pg_writes`): queued on the event loop,
committed in order by one task, read back by whoever reads through the store, each applied
exactly once. On the session's real server."""

from __future__ import annotations

import asyncio
import logging
import threading
from datetime import UTC, datetime
from typing import Any

import psycopg
import pytest

from workbench.risk.limits import RiskState
from workbench.store import Store, StoreError
from workbench.store.journal import DirectWrites, Write
from workbench.store.local_postgres import LocalPostgres
from workbench.store.pg_writes import AsyncPgWrites
from workbench.store.postgres import PoolConfig


def events(url: str) -> list[str]:
    """Give the stored events' details, as another connection sees them."""
    with psycopg.connect(url) as conn:
        rows = conn.execute("SELECT detail FROM strategy_events ORDER BY ts, detail").fetchall()
    return [str(r[0]) for r in rows]


def allocation(url: str, sid: str) -> float:
    with psycopg.connect(url) as conn:
        row: Any = conn.execute(
            "SELECT allocation FROM strategies WHERE strategy_id = %s", [sid]
        ).fetchone()
    return float(row[0])


def add_strategy(store: Store, sid: str) -> None:
    store.trading.save_strategy(
        sid, spec_name="s", spec_json="{}", params={}, exchange="local", symbol="ETH/BTC",
        timeframe="5m", broker="paper", allocation=100.0, state="running",
    )  # fmt: skip


async def test_writes_on_a_loop_are_queued_committed_in_order_and_read_back(
    pg_url: str,
) -> None:
    with Store.open(pg_url) as store:
        store.use_engine_writes()
        writes = store.trading.writes
        assert isinstance(writes, AsyncPgWrites)
        for n in range(50):
            store.trading.add_event("s", "state", f"e{n:02d}")
        assert writes.applied < writes.last_seq, "submit returned before any commit"
        await writes.durable()
        assert events(pg_url) == [f"e{n:02d}" for n in range(50)]
        with psycopg.connect(pg_url) as conn:
            [(seq,)] = conn.execute(
                "SELECT seq FROM journal_applied WHERE journal = %s", [writes.key]
            ).fetchall()
        assert seq == 50

        # A read through the store right after a write sees it (it commits what is queued).
        store.trading.add_event("s", "state", "just now")
        assert store.trading.events("s")["detail"].iloc[-1] == "just now"
        await writes.detach()
    # Closed: every write committed, the writer's row gone.
    with psycopg.connect(pg_url) as conn:
        assert conn.execute("SELECT count(*) FROM journal_applied").fetchone() == (0,)
    assert len(events(pg_url)) == 51


def test_without_a_running_loop_a_write_commits_before_it_returns(pg_url: str) -> None:
    with Store.open(pg_url) as store:
        assert isinstance(store.trading.writes, DirectWrites), "not the engine's: as it was"
        store.use_engine_writes()
        store.trading.add_event("s", "state", "from a script")
        assert events(pg_url) == ["from a script"]


async def test_a_batch_committed_whose_answer_was_lost_is_not_applied_again(
    pg_url: str,
) -> None:
    with Store.open(pg_url) as store:
        add_strategy(store, "s")
        store.use_engine_writes()
        writes = store.trading.writes
        assert isinstance(writes, AsyncPgWrites)
        # Moving capital adds to the allocation: applied twice it would show.
        state = RiskState(peak_equity=100.0, day_start_ms=0, day_start_equity=100.0)
        store.trading.move_capital({"s": 25.0}, "test", {"s": state})
        # The commit reaches the server and its answer is lost: here the same batch is
        # committed from another connection first, as a dropped connection leaves it.
        batch = writes._take()
        assert [seq for seq, _unit in batch] == [1]
        with psycopg.connect(pg_url, autocommit=True) as conn:
            conn.execute(writes._script(batch).encode())
        await writes.durable()  # the task sends it again: refused by the check, dropped
        assert allocation(pg_url, "s") == 125.0
        store.trading.add_event("s", "state", "after")
        await writes.durable()
        assert events(pg_url).count("+25 (test)") == 1 and "after" in events(pg_url)
        await writes.detach()


async def test_a_read_on_the_loop_while_a_batch_waits_at_the_server_sees_it(
    pg_url: str,
) -> None:
    with Store.open(pg_url) as store:
        store.use_engine_writes()
        writes = store.trading.writes
        with psycopg.connect(pg_url) as locker, psycopg.connect(pg_url, autocommit=True) as spy:
            locker.execute("LOCK TABLE strategy_events IN EXCLUSIVE MODE")
            store.trading.add_event("s", "state", "in flight")
            for _ in range(500):  # sent by the task; the server holds it on the lock
                await asyncio.sleep(0.01)
                waiting = spy.execute(
                    "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'"
                ).fetchone()
                if waiting == (1,):
                    break
            assert waiting == (1,)
            release = threading.Timer(0.3, locker.commit)  # the loop is busy reading
            release.start()
            # A sync read on the loop: it waits for the server to finish the batch (the loop
            # is not needed for that), then reads it.
            frame = store.trading.events("s")
            release.join()
        assert list(frame["detail"]) == ["in flight"]
        await writes.durable()
        assert events(pg_url) == ["in flight"], "applied once"
        await writes.detach()


async def test_a_read_from_another_thread_sees_what_the_loop_queued(pg_url: str) -> None:
    with Store.open(pg_url) as store:
        store.use_engine_writes()
        writes = store.trading.writes
        for n in range(20):
            writes.submit([Write("add_event", ["s", "state", f"t{n}", _now()])])
        frame = await asyncio.to_thread(store.trading.events, "s")
        assert len(frame) == 20
        await writes.detach()


async def test_a_write_the_server_refuses_raises_to_the_awaiter_and_the_rest_commits(
    pg_url: str,
) -> None:
    with Store.open(pg_url) as store:
        store.use_engine_writes()
        writes = store.trading.writes
        assert isinstance(writes, AsyncPgWrites)
        store.trading.add_event("s", "state", "before")
        writes.submit([Write("add_event", [None, "state", "no strategy", _now()])])  # NOT NULL
        store.trading.add_event("s", "state", "after")
        # Retried as it was, the refused unit would hold back every write after it forever.
        with pytest.raises(StoreError, match="refuses"):
            await asyncio.wait_for(writes.durable(), 20)
        await asyncio.wait_for(writes.durable(), 20)  # told once; the rest is committed
        assert sorted(events(pg_url)) == ["after", "before"]
        store.trading.add_event("s", "state", "later")
        await asyncio.wait_for(writes.durable(), 20)
        assert "later" in events(pg_url)
        await writes.detach()


async def test_a_server_away_fails_the_awaiter_within_the_pool_timeout_and_loses_nothing(
    restartable_pg: LocalPostgres, caplog: pytest.LogCaptureFixture
) -> None:
    url = restartable_pg.create_database("writes_away")
    with Store.open(url, pool=PoolConfig(timeout_s=2.0, connect_timeout_s=1.0)) as store:
        store.use_engine_writes()
        writes = store.trading.writes
        assert isinstance(writes, AsyncPgWrites)
        store.trading.add_event("s", "state", "first")
        await writes.durable()
        await asyncio.to_thread(restartable_pg.shut_down)
        try:
            store.trading.add_event("s", "state", "while away")
            # An order waiting for its row must not wait for the server forever.
            with pytest.raises(StoreError, match="not committed within 2 s"):
                await asyncio.wait_for(writes.durable(), 30)
            # The engine's stop waits as long, then says what it leaves behind.
            with caplog.at_level(logging.ERROR, logger="workbench.store.pg_writes"):
                await asyncio.wait_for(writes.detach(), 30)
            assert "1 trading write(s) not committed" in caplog.text
        finally:
            await asyncio.to_thread(restartable_pg.start_again)
    assert events(url) == ["first", "while away"], "kept and committed at close"


def _now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)
