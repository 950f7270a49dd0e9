"""Trading writes that are durable before they return and reach DuckDB off the event loop.

A DuckDB commit costs milliseconds (an upsert of one order row about 3-6 ms on these
machines, fsync or not), and the live path makes several per order: the order row before it
is sent, its acknowledgement, each fill before it is booked, the trade. Made on the event
loop, every commit of one strategy held up every other strategy's decisions on the same bar
(close -> order submitted p50 45 ms with 50 strategies).

So the process that owns a DuckDB file writes the trading tables through a journal
(`JournaledWrites`):

1. A write is one JSON line with a sequence number, appended to `<file>.journal` with one
   `os.write` on an O_APPEND descriptor: once the call returns, a killed process (SIGKILL, an
   out-of-memory kill, a crash) keeps it. With `fsync` on, the line is also on the disk
   before the call returns, which a power cut needs; it costs a disk flush per write.
   Inside a group (`grouped`, the engine's bar on a market) a write waits for the group's
   next `durable()`, read or end, and goes with the others in one line.
2. One writer thread applies lines to the database in order, many per transaction, and
   records the last sequence number it applied (`journal_applied`) in the same transaction.
   Woken by a write, it first gathers for `gather_s` (a reader waiting cuts that short):
   a bar's burst of orders is then applied after the burst, in one transaction, instead of
   the writer's work under the interpreter lock slowing the orders still being decided.
3. Whoever opens the file next (`recover`) applies what the journal holds beyond that number,
   exactly once, then empties the journal.

Reads of the trading tables first wait until every write made before them is applied, so a
process reads its own writes. A write the database refuses is retried with backoff and stays
in the journal; `problem` says why, and reads waiting on it give up with a `StoreError`
after `drain_timeout_s`: nothing is dropped silently.

PostgreSQL and in-memory databases write directly (`DirectWrites`): an engine that takes a
strategy over from a dead one must see every row at once, which a journal on the dead
engine's disk could not give it. The live engine's own PostgreSQL writes are queued and
committed by a task on its event loop (`workbench.store.pg_writes.AsyncPgWrites`); the engine
awaits `durable()` where the order of operations needs a commit (an order's row before it is
sent, a fill before it is booked), a no-op here, where `submit` is durable already.

Writes are named statements (`Write.name`, resolved by the store's `apply`), never SQL text,
so a journal file cannot carry SQL of its own.
"""

from __future__ import annotations

import abc
import contextlib
import json
import logging
import os
import queue
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import orjson

from workbench.store.database import Database, Session
from workbench.store.errors import StoreError

log = logging.getLogger(__name__)

JOURNAL = "trading"  # the row of `journal_applied` this journal records itself in
_TRIM_BYTES = 1 << 20  # empty the journal once it holds this much, all of it applied


@dataclass(frozen=True)
class Write:
    """One named statement and its arguments (`apply` of the store gives it meaning)."""

    name: str
    args: Sequence[Any]


Apply = Callable[[Session, Sequence[Write]], None]
# Datetimes through `_encode` (tagged, to read them back as such); one line per unit.
_LINE = orjson.OPT_PASSTHROUGH_DATETIME | orjson.OPT_APPEND_NEWLINE


def journal_path(db_path: Path) -> Path:
    """Give the journal of a DuckDB file (beside it, as DuckDB's own `.wal`)."""
    return db_path.with_name(db_path.name + ".journal")


def _encode(value: Any) -> Any:
    if isinstance(value, datetime):
        return {"$ts": value.isoformat()}  # to the microsecond, as the tables keep it
    if isinstance(value, float):  # numpy's float64, which orjson leaves to us
        return float(value)
    raise TypeError(f"a journal write cannot hold {type(value).__name__}: {value!r}")


def _decode(obj: dict[str, Any]) -> Any:
    if obj.keys() == {"$ts"}:
        return datetime.fromisoformat(obj["$ts"])
    return obj


def encode_line(seq: int, writes: Sequence[Write]) -> bytes:
    """Give the journal line of one unit of writes (applied together, in one transaction).

    orjson, not json: the line is made on the event loop before an order goes out, several
    times per order, and json.dumps took 10-30 us of it. The line is the same JSON; a
    number that is not finite (never a trading value) is written null, as JSON has none."""
    body = {"seq": seq, "w": [[w.name, w.args] for w in writes]}
    return orjson.dumps(body, default=_encode, option=_LINE)


def read_journal(path: Path) -> Iterator[tuple[int, list[Write]]]:
    """Give a journal's units in order. A last line cut short (the process died in the
    middle of writing it, before the write returned) is left out, with a warning."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return
    lines = data.split(b"\n")
    for number, line in enumerate(lines):
        if not line:
            continue
        try:
            body = json.loads(line, object_hook=_decode)
            unit = [Write(str(name), list(args)) for name, args in body["w"]]
            seq = int(body["seq"])
        except (ValueError, KeyError, TypeError) as exc:
            if number == len(lines) - 1:  # no newline after it: never completed
                log.warning("%s: its last line was cut short and is left out (%s)", path, exc)
                return
            raise StoreError(f"{path} line {number + 1} is not a journal line: {exc}") from exc
        yield seq, unit


def applied_seq(session: Session) -> int:
    row = session.fetchone("SELECT seq FROM journal_applied WHERE journal = ?", [JOURNAL])
    return 0 if row is None else int(row[0])


def _mark_applied(session: Session, seq: int) -> None:
    session.execute(
        "INSERT INTO journal_applied (journal, seq) VALUES (?, ?) "
        "ON CONFLICT (journal) DO UPDATE SET seq = excluded.seq",
        [JOURNAL, seq],
    )


def recover(db: Database, path: Path, apply: Apply) -> int:
    """Apply the journal's units not applied yet (one transaction), then empty it; give how
    many were applied."""
    units = list(read_journal(path))
    if not units:
        path.unlink(missing_ok=True)
        return 0
    with db.transaction() as tx:
        done = applied_seq(tx)
        pending = [(seq, unit) for seq, unit in units if seq > done]
        apply(tx, [write for _seq, unit in pending for write in unit])
        if pending:
            _mark_applied(tx, pending[-1][0])
    if pending:
        log.warning(
            "%s: applied %d journaled write(s) the last process had not applied yet",
            db.describe(),
            len(pending),
        )
    path.unlink(missing_ok=True)
    return len(pending)


def has_pending(path: Path) -> bool:
    """Tell whether a journal holds anything (applied or not: opening applies and empties it)."""
    try:
        return path.stat().st_size > 0
    except FileNotFoundError:
        return False


class Writes(abc.ABC):
    """How a store's trading writes reach its database."""

    @abc.abstractmethod
    def submit(self, unit: Sequence[Write]) -> None:
        """Make a unit of writes durable (applied together, after every unit before it)."""

    def drain(self) -> None:
        """Wait until every unit submitted before is in the database."""
        return None

    async def durable(self) -> None:
        """Wait until every unit submitted before survives a killed process (a no-op where
        `submit` returns once it does: journaled or committed)."""
        return None

    @contextlib.contextmanager
    def grouped(self) -> Iterator[None]:
        """Let this thread's units wait, until `durable()` or the group's end, to be made
        durable together (where a unit costs a write of its own; nothing changes elsewhere)."""
        yield

    async def detach(self) -> None:
        """Stop writing on this event loop, what is pending committed first (the engine's
        `stop`); a later write starts again where it is made."""
        return None

    @property
    def problem(self) -> str | None:
        """Why writes are not reaching the database now, if they are not."""
        return None

    def close(self) -> None:
        """Apply what is pending, then stop."""
        return None


class DirectWrites(Writes):
    """Each unit in its own transaction, before `submit` returns."""

    def __init__(self, db: Database, apply: Apply) -> None:
        self.db = db
        self.apply = apply

    def submit(self, unit: Sequence[Write]) -> None:
        if len(unit) == 1:
            with self.db.session() as s:
                self.apply(s, unit)
            return
        with self.db.transaction() as tx:
            self.apply(tx, unit)


class JournaledWrites(Writes):
    """Units journaled before `submit` returns, applied by one writer thread in order."""

    def __init__(
        self,
        db: Database,
        path: Path,
        apply: Apply,
        *,
        fsync: bool = False,
        drain_timeout_s: float = 30.0,
        retry_s: float = 0.05,
        max_retry_s: float = 5.0,
        gather_s: float = 0.02,
    ) -> None:
        self.db = db
        self.path = path
        self.apply = apply
        self.fsync = fsync
        self.gather_s = gather_s
        self._hurry = threading.Event()  # a reader (or close) waits: apply at once
        self.drain_timeout_s = drain_timeout_s
        self.retry_s, self.max_retry_s = retry_s, max_retry_s
        with db.session() as s:
            self.last_seq = applied_seq(s)
        self.applied = self.last_seq
        self._fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        self._size = os.fstat(self._fd).st_size
        self._lock = threading.Lock()  # appends and trims (any thread may write)
        self._done = threading.Condition()
        self._queue: queue.SimpleQueue[tuple[int, Sequence[Write]] | None] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._problem: str | None = None
        self._closed = False
        # A group (`grouped`): the thread whose units wait, how deep, and what waits.
        self._group_thread: int | None = None
        self._group_depth = 0
        self._held: list[Write] = []

    @property
    def problem(self) -> str | None:
        return self._problem

    def submit(self, unit: Sequence[Write]) -> None:
        if self._closed:
            raise StoreError(f"{self.db.describe()} is closed: nothing more can be written")
        if self._group_thread == threading.get_ident():
            with self._lock:
                self._held.extend(unit)
            return
        self._journal(unit)

    @contextlib.contextmanager
    def grouped(self) -> Iterator[None]:
        """Journal this thread's units as one line at `durable()`, a read, or the group's
        end. A line costs a system call (20-40 us on the event loop), and the engine makes
        a few per order (its row, its acknowledgement, a fill, the order's update, a trade):
        grouped over a market's close, the rows of one strategy's order go out with the
        next one's row, not before it. Nothing that waits for durability waits longer:
        the order manager awaits `durable()` before an order goes out and before a fill is
        booked. Groups nest; every group's end journals what waits (another market's group
        may be suspended on the network meanwhile). Other threads journal as usual."""
        me = threading.get_ident()
        if self._group_thread not in (None, me):
            yield
            return
        self._group_thread = me
        self._group_depth += 1
        try:
            yield
        finally:
            self._group_depth -= 1
            if self._group_depth == 0:
                self._group_thread = None
            self._release()

    def _release(self) -> None:
        with self._lock:  # taken and journaled at once: a release on another thread waits
            held, self._held = self._held, []
            if held:
                self._append(held)

    async def durable(self) -> None:
        self._release()

    def _journal(self, unit: Sequence[Write]) -> None:
        with self._lock:
            self._append(unit)

    def _append(self, unit: Sequence[Write]) -> None:
        """Journal a unit and queue it for the writer (under `_lock`)."""
        seq = self.last_seq + 1
        line = encode_line(seq, unit)
        if self.applied == self.last_seq and self._size > _TRIM_BYTES:
            os.ftruncate(self._fd, 0)  # every line in it is applied
            self._size = 0
        os.write(self._fd, line)
        if self.fsync:
            os.fdatasync(self._fd)
        self._size += len(line)
        self.last_seq = seq
        if self._thread is None:
            self._thread = threading.Thread(
                target=self._write_loop, name="store-writer", daemon=True
            )
            self._thread.start()
        self._queue.put((seq, unit))

    def drain(self) -> None:
        self._release()
        target = self.last_seq
        if self.applied >= target:
            return
        self._hurry.set()
        deadline = time.monotonic() + self.drain_timeout_s
        with self._done:
            while self.applied < target:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise StoreError(
                        f"{self.db.describe()}: {target - self.applied} journaled write(s) "
                        f"not applied after {self.drain_timeout_s:g} s "
                        f"({self._problem or 'the writer is slow'}); they stay in {self.path}"
                    )
                self._done.wait(min(left, 0.5))

    def close(self) -> None:
        if self._closed:
            return
        self._release()
        self._closed = True
        if self._thread is not None:
            self._queue.put(None)
            self._hurry.set()
            self._thread.join(self.drain_timeout_s)
        with self._lock:
            if self.applied == self.last_seq:
                os.ftruncate(self._fd, 0)
            else:
                log.error(
                    "%s: %d journaled write(s) not applied at close (%s); the next open "
                    "applies them from %s",
                    self.db.describe(),
                    self.last_seq - self.applied,
                    self._problem,
                    self.path,
                )
            os.close(self._fd)
        if self.applied == self.last_seq:
            self.path.unlink(missing_ok=True)

    def _write_loop(self) -> None:
        stopping = False
        while not stopping:
            first = self._queue.get()
            if first is not None and self.gather_s > 0:
                self._hurry.wait(self.gather_s)  # a reader waiting cuts it short
            self._hurry.clear()
            batch: list[tuple[int, Sequence[Write]]] = []
            if first is None:
                stopping = True
            else:
                batch.append(first)
            while len(batch) < 1000:
                try:
                    more = self._queue.get_nowait()
                except queue.Empty:
                    break
                if more is None:
                    stopping = True
                    break
                batch.append(more)
            if batch:
                self._apply_batch(batch)

    def _apply_batch(self, batch: list[tuple[int, Sequence[Write]]]) -> None:
        delay = self.retry_s
        while True:
            try:
                with self.db.transaction() as tx:
                    self.apply(tx, [write for _seq, unit in batch for write in unit])
                    _mark_applied(tx, batch[-1][0])
            except Exception as exc:  # kept in the journal; said, and tried again
                problem = f"writes to {self.db.describe()} fail: {exc}"
                if problem != self._problem:
                    log.error("%s (retrying; they are kept in %s)", problem, self.path)
                self._problem = problem
                if self._closed and delay >= self.max_retry_s:
                    return  # closing: the next open applies them from the journal
                time.sleep(delay)
                delay = min(delay * 2, self.max_retry_s)
                continue
            if self._problem is not None:
                log.warning("writes to %s reach it again", self.db.describe())
                self._problem = None
            with self._done:
                self.applied = batch[-1][0]
                self._done.notify_all()
            return
