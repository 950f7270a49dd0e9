"""Leases: at most one engine runs a strategy at a time.

On PostgreSQL a lease is a session-level advisory lock held on a connection of its own (not
a pooled one) for as long as the engine runs the strategy: released on exit, and by the
server when the holder dies (its connection closes), so a restarted engine takes over after
a crash. The holder is named from `pg_stat_activity` (its application name says which
process on which host). On DuckDB the file lock already keeps every other process out; the
lease only keeps two engines of this process apart.

A lock lives as long as its connection: when the server ends it (a restart, an administrator's
`pg_terminate_backend`, a dropped network) the locks are gone and another engine may take the
strategies. `ServerLeases.held` tells which locks this process still holds: without a round
trip while the connection is quiet (a server that ends a connection first sends it a last
message, so a connection with something to read is asked), and with one when verifying (the
engine does so on every housekeeping tick, from a worker thread: a cut network makes it wait).
`take` takes a lost lock back on a new connection.
"""

from __future__ import annotations

import hashlib
import os
import socket
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from workbench.store.errors import StrategyLeased
from workbench.store.target import PostgresTarget

if TYPE_CHECKING:  # psycopg loads only when a PostgreSQL store opens
    import psycopg

_NAMESPACE = "workbench.strategy:"


def this_process() -> str:
    """Give how a lease names its holder: this process and host."""
    return f"workbench pid {os.getpid()} on {socket.gethostname()}"[:63]


def lock_key(strategy_id: str) -> int:
    """Give the advisory lock key of a strategy: a signed 64-bit hash of its id."""
    digest = hashlib.blake2b((_NAMESPACE + strategy_id).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


@dataclass
class Lease:
    """A strategy held by one store of this process, until `release` or the store closes."""

    strategy_id: str
    holder: str
    _release: Callable[[], None] = field(repr=False)
    released: bool = False

    def release(self) -> None:
        if not self.released:
            self.released = True
            self._release()


class LocalLeases:
    """Leases among the stores of this process (DuckDB: the file lock does the rest)."""

    def __init__(self) -> None:
        self._held: dict[str, int] = {}
        self._lock = threading.Lock()

    def take(self, strategy_id: str, owner: int) -> bool:
        """Take the lease for `owner`; give False when `owner` held it already."""
        with self._lock:
            holder = self._held.get(strategy_id)
            if holder == owner:
                return False
            if holder is not None:
                raise StrategyLeased(
                    f"strategy {strategy_id} is already run by another engine in this process "
                    f"({this_process()}): stop that engine first"
                )
            self._held[strategy_id] = owner
            return True

    def drop(self, strategy_id: str, owner: int) -> None:
        with self._lock:
            if self._held.get(strategy_id) == owner:
                del self._held[strategy_id]


class ServerLeases:
    """Advisory locks on one connection of their own to a PostgreSQL database."""

    def __init__(self, target: PostgresTarget, connect_timeout_s: float) -> None:
        self.target = target
        self.connect_timeout_s = connect_timeout_s
        self._conn: psycopg.Connection[Any] | None = None
        # The locks taken on the connection now: strategy id -> key.
        self._keys: dict[str, int] = {}
        self._lock = threading.Lock()

    def _connection(self) -> psycopg.Connection[Any]:
        import psycopg

        from workbench.store.postgres import connect_error, connection_options

        if self._conn is None or self._conn.closed:
            self._keys.clear()  # a new connection holds nothing yet
            try:
                self._conn = psycopg.connect(
                    self.target.url,
                    autocommit=True,
                    application_name=this_process(),
                    # A holder whose host vanished is noticed within about a minute.
                    **connection_options(self.connect_timeout_s),
                )
            except psycopg.Error as exc:
                raise connect_error(self.target, exc) from exc
        return self._conn

    def take(self, strategy_id: str) -> None:
        """Take a strategy's lock (again, on a new connection, after it was lost); a no-op
        while this process holds it. StrategyLeased names the holder of a lock taken."""
        import psycopg

        from workbench.store.postgres import connect_error

        key = lock_key(strategy_id)
        with self._lock:
            conn = self._connection()
            if strategy_id in self._keys:
                return
            try:
                row = conn.execute("SELECT pg_try_advisory_lock(%s)", [key]).fetchone()
            except psycopg.Error as exc:
                self._forget()
                raise connect_error(self.target, exc) from exc
            if row and row[0]:
                self._keys[strategy_id] = key
                return
            holder = conn.execute(
                "SELECT a.application_name, a.pid, a.client_addr::text, a.backend_start "
                "FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid "
                "WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 1 "
                "AND l.classid = %s::bigint::oid AND l.objid = %s::bigint::oid "
                "AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())",
                [(key >> 32) & 0xFFFFFFFF, key & 0xFFFFFFFF],
            ).fetchone()
        if holder is None:
            who = "another engine (it let go just now: try again)"
        else:
            name, pid, addr, since = holder
            who = (
                f"{name or 'an unnamed client'} (server pid {pid}, from {addr or 'a local socket'}"
                f", connected since {since:%Y-%m-%d %H:%M:%S %Z})"
            )
        raise StrategyLeased(
            f"strategy {strategy_id} is already run by {who} on {self.target.describe()}: stop "
            "that engine first (a crashed one lets go when its connection drops)"
        )

    def drop(self, strategy_id: str) -> None:
        import psycopg

        with self._lock:
            key = self._keys.pop(strategy_id, None)
            if key is not None and self._conn is not None and not self._conn.closed:
                try:
                    self._conn.execute("SELECT pg_advisory_unlock(%s)", [key])
                except psycopg.Error:  # the connection died: the server let go already
                    self._forget()

    def held(self, *, verify: bool = False) -> set[str]:
        """Give the strategies whose locks this process holds on the server now.

        Without `verify` there is no round trip unless the server sent the connection
        something (it does before it ends one); while a verification runs on another thread,
        its last answer. With `verify`, the server is asked which locks the connection holds.
        """
        import psycopg

        from workbench.store.postgres import readable

        if not self._lock.acquire(blocking=verify):
            return set(self._keys)
        try:
            conn = self._conn
            if conn is None or conn.closed:
                self._keys.clear()
                return set()
            if not verify and not readable(conn):
                return set(self._keys)
            try:
                rows = conn.execute(
                    "SELECT classid::bigint, objid::bigint FROM pg_locks "
                    "WHERE pid = pg_backend_pid() AND locktype = 'advisory' AND granted "
                    "AND objsubid = 1"
                ).fetchall()
            except psycopg.Error:  # the connection is gone, and its locks with it
                self._forget()
                return set()
            on_server = {(int(c), int(o)) for c, o in rows}
            self._keys = {
                sid: key
                for sid, key in self._keys.items()
                if ((key >> 32) & 0xFFFFFFFF, key & 0xFFFFFFFF) in on_server
            }
            return set(self._keys)
        finally:
            self._lock.release()

    def _forget(self) -> None:
        if self._conn is not None:
            self._conn.close()
        self._conn = None
        self._keys.clear()

    def close(self) -> None:
        with self._lock:
            self._forget()
