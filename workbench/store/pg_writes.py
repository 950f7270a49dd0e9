"""The live engine's trading writes on PostgreSQL: queued, committed by one task on its loop.

A commit through the sync pool blocks the event loop for its round trips (about 2.5 ms per
order and fill on these machines), and while it waits no other market or strategy moves. So
the engine's store writes through `AsyncPgWrites`:

1. `submit` puts a unit in an in-memory queue (with a sequence number) and returns at once.
2. One task on the engine's loop takes what is queued (up to 1000 units) and commits it as
   one transaction through a psycopg_pool `AsyncConnectionPool`: a single script of literal
   statements, sent in one message (`_script`). The server runs a message it has received to
   its end whatever the client does next, so a transaction is never half sent and waiting on
   the loop: the server commits it or never sees it.
3. The script first checks, under a row lock, that this writer's row of `journal_applied`
   holds the sequence number before the batch, and sets it to the batch's last in the same
   transaction. A batch whose outcome is unknown (the connection dropped during the commit)
   is sent again and applies exactly once; a batch applied meanwhile by another path is
   refused by the check (`_APPLIED`) and dropped.
4. `await durable()` waits until what was submitted before it is committed (committing the
   queue itself when the task is not at it: no loop turns handed over in between): the
   order manager awaits it before an order goes out (its row is committed first) and before
   a fill is booked in memory. Nothing else on the loop waits on a commit.

Reads through the store (`drain`, sync) see every write submitted before them: with writes
pending, the caller commits them itself through the sync pool, with the same script and the
same check (on the loop, an in-flight batch holds nothing the sync commit could wait on
forever: the server finishes it alone). Without a running loop (a CLI, the engine stopped)
`submit` commits at once, as `DirectWrites` does.

A failing server (stopped, a dropped connection) keeps the queue: the task retries with
backoff while the pool reconnects, `problem` says why (the engine shows its strategies
degraded with it) and clears once a commit goes through. A SIGKILL loses what was queued and
not committed: nothing that acted on it (the order manager awaited its commit first); the
exchange is looked up again at the restart (reconcile).

Nothing waits on a commit without end. `durable()` gives up after the pool's timeout
(`db_pool_timeout_s`) with a `StoreError` naming why (the order waiting for it is not sent:
a store failure, as a sync write's), the units staying queued for the task. A unit the
server refuses (a constraint, a bad value: not a connection's failure) is not retried for
ever ahead of everything after it: its batch is committed again a unit at a time, the
refused unit is dropped (logged as an error) and the next `durable()` raises it. The engine's
stop (`detach`) waits as long as `durable()` and logs what it leaves uncommitted; `close`
commits that through the sync pool, or logs it as lost.
"""

from __future__ import annotations

import asyncio
import logging
import math
import threading
import uuid
from collections import deque
from collections.abc import Sequence
from datetime import datetime
from functools import lru_cache
from typing import Any

import numpy as np
import psycopg
import psycopg_pool
from psycopg import sql
from psycopg.adapt import Transformer

from workbench.store.errors import StoreError
from workbench.store.journal import Write, Writes
from workbench.store.postgres import (
    DOWN_WAIT_S,
    PgDatabase,
    pool_options,
    readable,
)
from workbench.store.trading import write_statements

log = logging.getLogger(__name__)

_BATCH = 1000  # units in one transaction at most
_APPLIED = "WB001"  # SQLSTATE of the check: this batch's units are applied already
_GUARD = (
    "DO $$BEGIN IF (SELECT seq FROM journal_applied WHERE journal = {key} FOR UPDATE) "
    "IS DISTINCT FROM {prev} THEN RAISE EXCEPTION 'trading writes applied already' "
    "USING ERRCODE = '" + _APPLIED + "'; END IF; END$$"
)
# Tasks closing a pool on a loop whose `close` came from sync code (kept until done).
_closing: set[asyncio.Task[None]] = set()


_adapters = threading.local()  # a psycopg Transformer per thread (they cache dumpers)


def literal(value: Any) -> str:
    """Give a value as an SQL literal: the common kinds here, psycopg's adapters otherwise."""
    kind = type(value)
    if value is None:
        return "NULL"
    if kind is str and "\\" not in value and "\0" not in value:
        return "'" + value.replace("'", "''") + "'"  # a plain literal whatever the settings
    if kind is int:
        return str(value)
    if kind is float and math.isfinite(value):
        return repr(value)  # exact: read back as the same double
    if kind is datetime and value.tzinfo is None:
        return f"'{value.isoformat(sep=' ')}'::timestamp"  # naive UTC, as the tables keep it
    if isinstance(value, np.generic):
        return literal(value.item())
    adapt = getattr(_adapters, "transformer", None)
    if adapt is None:
        adapt = _adapters.transformer = Transformer()
    return bytes(adapt.as_literal(value)).decode()


@lru_cache(maxsize=256)
def _pieces(statement: str) -> list[str]:
    return statement.split("?")


def render(statement: str, args: Sequence[Any]) -> str:
    """Give a statement with `?` placeholders with its arguments as SQL literals."""
    pieces = _pieces(statement)
    if len(pieces) != len(args) + 1:
        raise StoreError(f"{len(args)} argument(s) for {len(pieces) - 1} placeholder(s)")
    out = [pieces[0]]
    for value, piece in zip(args, pieces[1:], strict=True):
        out += [literal(value), piece]
    return "".join(out)


async def _configure(conn: psycopg.AsyncConnection[Any]) -> None:
    await conn.execute("SET TIME ZONE 'UTC'")
    await conn.execute("SET jit = off")


async def _check(conn: psycopg.AsyncConnection[Any]) -> None:
    """Refuse a pooled connection the server ended (no round trip while it is quiet)."""
    if conn.closed or conn.broken:
        raise psycopg.OperationalError("the connection is closed")
    if readable(conn):  # type: ignore[arg-type]  # a socket either way
        await psycopg_pool.AsyncConnectionPool.check_connection(conn)


class AsyncPgWrites(Writes):
    """Units queued by `submit`, committed in order by one task on the engine's loop."""

    def __init__(self, db: PgDatabase, *, retry_s: float = 0.05, max_retry_s: float = 5.0):
        self.db = db
        self.retry_s, self.max_retry_s = retry_s, max_retry_s
        self.key = f"engine {uuid.uuid4().hex}"  # this writer's row of journal_applied
        db.execute("INSERT INTO journal_applied (journal, seq) VALUES (?, 0)", [self.key])
        self.last_seq = 0  # of the last unit submitted
        self.applied = 0  # of the last unit committed
        self._pending: deque[tuple[int, list[Write]]] = deque()
        self._lock = threading.Lock()  # the queue, the numbers and the waiters
        self._sync = threading.Lock()  # one sync commit at a time
        self._waiters: list[tuple[int, asyncio.Future[None]]] = []
        self._loop: asyncio.AbstractEventLoop | None = None
        self._task: asyncio.Task[None] | None = None
        self._pool: psycopg_pool.AsyncConnectionPool | None = None
        self._wake: asyncio.Event | None = None
        self._turn: asyncio.Lock | None = None  # one committer at a time on the loop
        self._pool_open = False
        self._problem: str | None = None
        self._closed = False
        self._single_until = 0  # committed a unit at a time up to here (one was refused)
        self._skip: dict[int, str] = {}  # refused units (by seq): committed as nothing
        self._refused: list[tuple[int, str]] = []  # not yet raised to a `durable()` caller

    @property
    def problem(self) -> str | None:
        return self._problem

    # -- submitting -------------------------------------------------------------------------
    def submit(self, unit: Sequence[Write]) -> None:
        if self._closed:
            raise StoreError(f"{self.db.describe()} is closed: nothing more can be written")
        with self._lock:
            self.last_seq += 1
            self._pending.append((self.last_seq, list(unit)))
        if not self._wake_writer():
            self._commit_now()  # no loop to write on: committed before it returns

    def _wake_writer(self) -> bool:
        """Wake the writer task (started on this thread's running loop if there is none);
        give False when no loop runs to write on."""
        try:
            running: asyncio.AbstractEventLoop | None = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        loop, task, wake = self._loop, self._task, self._wake
        if loop is not None and task is not None and wake is not None and not task.done():
            if loop is running:
                wake.set()
                return True
            if loop.is_running():
                loop.call_soon_threadsafe(wake.set)
                return True
        if running is None:
            return False
        self._start(running)
        return True

    def _start(self, loop: asyncio.AbstractEventLoop) -> None:
        config = self.db.config
        self._pool = psycopg_pool.AsyncConnectionPool(
            self.db.target.url,
            configure=_configure,
            check=_check,
            name=f"workbench engine writes {self.db.describe()}",
            **pool_options(config),
        )
        self._loop = loop
        self._wake = asyncio.Event()
        self._wake.set()
        self._turn = asyncio.Lock()
        self._pool_open = False
        self._task = loop.create_task(
            self._run(self._pool, self._wake, self._turn), name="store-writer"
        )
        self._task.add_done_callback(self._writer_ended)

    def _writer_ended(self, task: asyncio.Task[None]) -> None:
        """Fail the waiters of other threads' loops that the ended task will not resolve."""
        if not task.cancelled() and task.exception() is not None:
            log.error("the trading writes' task died: %r", task.exception())
        self._abandon("the trading writes' task ended")

    # -- waiting ------------------------------------------------------------------------------
    async def durable(self) -> None:
        """Wait until every unit submitted before is committed, at most the pool's timeout;
        raise a `StoreError` when they are not (they stay queued) or one was refused."""
        with self._lock:
            target = self.last_seq
        if self.applied < target:
            wait_s = self.db.config.timeout_s
            try:
                async with asyncio.timeout(wait_s):
                    await self._until(target)
            except TimeoutError:
                self._wake_writer()  # the task goes on trying
                raise StoreError(
                    f"{self.db.describe()}: {self.last_seq - self.applied} trading write(s) "
                    f"not committed within {wait_s:g} s "
                    f"({self._problem or 'the server did not answer'}); kept and retried"
                ) from None
        self._raise_refused(target)

    def _raise_refused(self, target: int) -> None:
        with self._lock:
            told = [(seq, why) for seq, why in self._refused if seq <= target]
            self._refused = [(seq, why) for seq, why in self._refused if seq > target]
        if told:
            raise StoreError(
                f"{self.db.describe()} refuses {len(told)} trading write(s), dropped: "
                + "; ".join(why for _seq, why in told)
            )

    async def _until(self, target: int) -> None:
        self._wake_writer()  # bound to this loop if to none
        loop = asyncio.get_running_loop()
        pool, turn = self._pool, self._turn
        if self._loop is loop and pool is not None and turn is not None:
            # Committed here rather than handed to the task: no loop turns in between.
            await self._commit_queued(pool, turn, target)
            return
        with self._lock:  # the writer runs on another thread's loop: wait for it
            if self.applied >= target:
                return
            future = loop.create_future()
            self._waiters.append((target, future))
        await future

    def _abandon(self, why: str) -> None:
        """Fail every waiter still waiting (the task that would resolve them ended)."""
        with self._lock:
            left, self._waiters = self._waiters, []
        error = StoreError(f"{self.db.describe()}: {why} before committing what was awaited")
        for _target, future in left:
            loop = future.get_loop()
            if _on(loop):
                _fail(future, error)
            elif not loop.is_closed():
                loop.call_soon_threadsafe(_fail, future, error)

    def drain(self) -> None:
        if self.applied < self.last_seq:
            self._commit_now()

    # -- the writer task --------------------------------------------------------------------
    async def _run(
        self, pool: psycopg_pool.AsyncConnectionPool, wake: asyncio.Event, turn: asyncio.Lock
    ) -> None:
        while True:
            await wake.wait()
            wake.clear()
            await self._commit_queued(pool, turn)

    async def _commit_queued(
        self, pool: psycopg_pool.AsyncConnectionPool, turn: asyncio.Lock, target: int = 0
    ) -> None:
        """Commit what is queued (up to `target`, else all), one committer at a time (the
        task or a `durable` caller), retried with backoff until it goes through."""
        delay = self.retry_s
        async with turn:
            if not self._pool_open:
                await pool.open(wait=False)
                self._pool_open = True
            while (not target or self.applied < target) and (batch := self._take()):
                try:
                    await self._commit_async(pool, batch)
                except Exception as exc:  # kept in the queue; said, and tried again
                    if self._refuse(batch, exc):
                        continue
                    self._failed(exc)
                    await asyncio.sleep(delay)
                    delay = min(delay * 2, self.max_retry_s)
                    continue
                delay = self.retry_s

    async def _commit_async(
        self, pool: psycopg_pool.AsyncConnectionPool, batch: list[tuple[int, list[Write]]]
    ) -> None:
        timeout = min(self.db.config.timeout_s, DOWN_WAIT_S)
        async with pool.connection(timeout=timeout) as conn:
            try:
                await conn.execute(self._script(batch))
            except psycopg.Error as exc:
                if exc.sqlstate != _APPLIED:
                    raise
                cursor = await conn.execute(
                    "SELECT seq FROM journal_applied WHERE journal = %s", [self.key]
                )
                row = await cursor.fetchone()
                self._applied_to(0 if row is None else int(row[0]))
                return
        self._applied_to(batch[-1][0])

    # -- committing from sync code ------------------------------------------------------------
    def _commit_now(self) -> None:
        """Commit what is queued through the sync pool (a read waits for it, a CLI's write)."""
        with self._sync:
            while batch := self._take():
                try:
                    with self.db.session() as session:
                        try:
                            session.execute(self._script(batch))
                        except psycopg.Error as exc:
                            if exc.sqlstate != _APPLIED:
                                raise
                            row = session.fetchone(
                                "SELECT seq FROM journal_applied WHERE journal = ?", [self.key]
                            )
                            self._applied_to(0 if row is None else int(row[0]))
                            continue
                except (StoreError, psycopg.Error) as exc:
                    if self._refuse(batch, exc):
                        continue
                    if isinstance(exc, StoreError):
                        raise
                    raise StoreError(
                        f"{self.db.describe()} refuses {len(batch)} queued trading write(s): "
                        f"{exc}; they are kept and tried again"
                    ) from exc
                self._applied_to(batch[-1][0])

    # -- shared -------------------------------------------------------------------------------
    def _take(self) -> list[tuple[int, list[Write]]]:
        with self._lock:
            while self._pending and self._pending[0][0] <= self.applied:
                self._pending.popleft()
            size = _BATCH
            if self._pending and self._pending[0][0] <= self._single_until:
                size = 1  # looking for the unit the server refuses
            return [self._pending[i] for i in range(min(len(self._pending), size))]

    def _refuse(self, batch: list[tuple[int, list[Write]]], exc: Exception) -> bool:
        """Take up a batch the server refused (not a connection's failure): give False for
        a failure to retry as it is; else commit it a unit at a time from now on, or, a
        single unit, drop it (committed as nothing, raised to the next `durable()`)."""
        if isinstance(exc, psycopg.OperationalError) or not isinstance(
            exc, (psycopg.Error, StoreError)
        ):
            return False  # the connection, the server away, the pool: tried again
        if isinstance(exc, StoreError) and isinstance(exc.__cause__, psycopg.OperationalError):
            return False
        if len(batch) > 1:
            with self._lock:
                self._single_until = max(self._single_until, batch[-1][0])
            return True
        seq, unit = batch[0]
        text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        why = f"{', '.join(w.name for w in unit)} (unit {seq}): {text}"
        log.error("%s refuses trading write %s; dropped", self.db.describe(), why)
        with self._lock:
            self._skip[seq] = why
            self._refused.append((seq, why))
        return True

    def _script(self, batch: list[tuple[int, list[Write]]]) -> str:
        """Give one batch as one script: the check, the statements, the new number."""
        key = sql.Literal(self.key).as_string(None)
        parts = [_GUARD.format(key=key, prev=batch[0][0] - 1)]
        for seq, unit in batch:
            if seq not in self._skip:
                parts += [render(text, args) for text, args in write_statements(unit)]
        parts.append(f"UPDATE journal_applied SET seq = {batch[-1][0]} WHERE journal = {key}")
        return ";\n".join(parts)

    def _applied_to(self, seq: int) -> None:
        with self._lock:
            if seq > self.applied:
                self.applied = seq
            for done_seq in [n for n in self._skip if n <= self.applied]:
                del self._skip[done_seq]
            while self._pending and self._pending[0][0] <= self.applied:
                self._pending.popleft()
            done = [f for target, f in self._waiters if target <= self.applied]
            self._waiters = [(t, f) for t, f in self._waiters if t > self.applied]
        for future in done:
            loop = future.get_loop()
            if _on(loop):
                _resolve(future)  # the writer task's own loop: at once
            elif not loop.is_closed():
                loop.call_soon_threadsafe(_resolve, future)
        if self._problem is not None:
            log.warning("writes to %s reach it again", self.db.describe())
            self._problem = None

    def _failed(self, exc: Exception) -> None:
        if isinstance(exc, psycopg_pool.PoolTimeout):
            text = "no connection to the server (the pool goes on reconnecting)"
        else:
            text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        problem = f"writes to {self.db.describe()} fail: {text}"
        if problem != self._problem:
            log.error(
                "%s (%d write(s) kept in memory and retried)",
                problem,
                self.last_seq - self.applied,
            )
        self._problem = problem

    # -- ending -------------------------------------------------------------------------------
    async def detach(self) -> None:
        try:
            await self.durable()  # bounded: the pool's timeout
        except StoreError as exc:
            log.error(
                "%s: %d trading write(s) not committed when the engine stopped (%s); "
                "committed at the next write or read, or at close",
                self.db.describe(),
                self.last_seq - self.applied,
                exc,
            )
        task, pool = self._task, self._pool
        self._task = self._pool = self._loop = self._wake = self._turn = None
        await _stop(task, pool)
        self._abandon("the engine stopped")

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        try:
            self._commit_now()
        except StoreError as exc:
            log.error(
                "%s: %d trading write(s) lost at close: %s",
                self.db.describe(),
                self.last_seq - self.applied,
                exc,
            )
        loop, task, pool = self._loop, self._task, self._pool
        self._task = self._pool = self._loop = self._wake = self._turn = None
        self._abandon("the store closed")
        if loop is not None and loop.is_running():
            if _on(loop):
                stop = loop.create_task(_stop(task, pool))
                _closing.add(stop)
                stop.add_done_callback(_closing.discard)
            else:
                asyncio.run_coroutine_threadsafe(_stop(task, pool), loop)
        if self.applied == self.last_seq:
            try:
                self.db.execute("DELETE FROM journal_applied WHERE journal = ?", [self.key])
            except StoreError as exc:
                log.warning("%s: writer row %s left: %s", self.db.describe(), self.key, exc)


def _on(loop: asyncio.AbstractEventLoop) -> bool:
    try:
        return asyncio.get_running_loop() is loop
    except RuntimeError:
        return False


def _resolve(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


def _fail(future: asyncio.Future[None], error: Exception) -> None:
    if not future.done():
        future.set_exception(error)


async def _stop(
    task: asyncio.Task[None] | None, pool: psycopg_pool.AsyncConnectionPool | None
) -> None:
    if task is not None:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    if pool is not None:
        await pool.close()
