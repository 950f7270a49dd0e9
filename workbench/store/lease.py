"""Leases: at most one engine runs a strategy at a time.

On PostgreSQL a lease is a session-level advisory lock held on a connection of its own (not
a pooled one) for as long as the engine runs the strategy: released on exit, and by the
server when the holder dies (its connection closes), so a restarted engine takes over after
a crash. The holder is named from `pg_stat_activity` (its application name says which
process on which host). On DuckDB the file lock already keeps every other process out; the
lease only keeps two engines of this process apart.
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
        self._lock = threading.Lock()

    def _connection(self) -> psycopg.Connection[Any]:
        import psycopg

        from workbench.store.postgres import connect_error

        if self._conn is None or self._conn.closed:
            try:
                self._conn = psycopg.connect(
                    self.target.url,
                    autocommit=True,
                    application_name=this_process(),
                    connect_timeout=max(1, round(self.connect_timeout_s)),
                    # A holder whose host vanished is noticed within about a minute.
                    keepalives=1,
                    keepalives_idle=30,
                    keepalives_interval=10,
                    keepalives_count=3,
                )
            except psycopg.Error as exc:
                raise connect_error(self.target, exc) from exc
        return self._conn

    def take(self, strategy_id: str) -> None:
        key = lock_key(strategy_id)
        with self._lock:
            conn = self._connection()
            row = conn.execute("SELECT pg_try_advisory_lock(%s)", [key]).fetchone()
            if row and row[0]:
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
        with self._lock:
            if self._conn is not None and not self._conn.closed:
                self._conn.execute("SELECT pg_advisory_unlock(%s)", [lock_key(strategy_id)])

    def close(self) -> None:
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None
