"""The workbench database: one DuckDB file, opened with its schema brought up to date.

DuckDB lets one process hold a file read-write, and that process locks out every other one,
readers included (see NOTES). So a `Store` is meant to be held briefly by command-line tools
and notebooks (open, work, close), and long only by the engine process that owns the file.
Opening waits for a lock held elsewhere for up to `wait_s` seconds before it gives up with
`StoreLocked`, which names the holder.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path
from types import TracebackType
from typing import Self

import duckdb

from workbench.store.audit import AuditLog
from workbench.store.candles import CandleStore
from workbench.store.errors import StoreError, StoreLocked
from workbench.store.markets import MarketRulesStore
from workbench.store.migrations import check_version, migrate
from workbench.store.trading import TradingStore
from workbench.store.users import UserStore

_LOCK_MESSAGE = "Could not set lock"
# Files this process holds read-write: another open of one borrows a cursor of it, since
# DuckDB refuses a second connection to a file from the same process with other settings.
_held: dict[Path, Store] = {}
_held_lock = threading.Lock()


def _connect(path: Path, read_only: bool, wait_s: float) -> duckdb.DuckDBPyConnection:
    deadline = time.monotonic() + wait_s
    delay_s = 0.02
    while True:
        try:
            return duckdb.connect(str(path), read_only=read_only)
        except duckdb.IOException as exc:
            if _LOCK_MESSAGE not in str(exc):
                raise StoreError(f"cannot open {path}: {exc}") from exc
            if time.monotonic() >= deadline:
                raise StoreLocked(
                    f"{path} is held by another process and stayed locked for {wait_s:g} s "
                    f"(stop that process or read through it): {exc}"
                ) from exc
            time.sleep(delay_s)
            delay_s = min(delay_s * 2, 0.5)


class Store:
    """An open workbench database: `store.candles`, `store.trading` (live records),
    `store.markets` (market rules), `store.users` (users, sessions, failed logins),
    `store.audit` (the audit log)."""

    def __init__(
        self, con: duckdb.DuckDBPyConnection, path: Path | None, owner: bool = False
    ) -> None:
        self.con = con
        self.path = path
        self.owner = owner
        self.candles = CandleStore(con)
        self.trading = TradingStore(con)
        self.markets = MarketRulesStore(con)
        self.users = UserStore(con)
        self.audit = AuditLog(con)

    @classmethod
    def open(
        cls,
        path: str | Path,
        *,
        read_only: bool = False,
        wait_s: float = 10.0,
        migrate_schema: bool = True,
    ) -> Self:
        """Open (creating if needed) a database file and bring its schema up to date.

        A read-only store does not migrate; it refuses a schema newer than this package and
        a file that does not exist.
        """
        path = Path(path)
        with _held_lock:
            held = _held.get(path.resolve())
            if held is not None:
                # Already open read-write in this process: share it (closing closes the cursor).
                return cls(held.con.cursor(), held.path)
        if read_only and not path.exists():
            raise StoreError(f"no database at {path}: run `workbench data import` first")
        if not read_only:
            path.parent.mkdir(parents=True, exist_ok=True)
        con = _connect(path, read_only, wait_s)
        try:
            if read_only or not migrate_schema:
                check_version(con)
            else:
                migrate(con)
        except BaseException:
            con.close()
            raise
        store = cls(con, path, owner=not read_only)
        if store.owner:
            with _held_lock:
                _held[path.resolve()] = store
        return store

    @classmethod
    def memory(cls) -> Self:
        """Give a migrated in-memory store (for examples and quick experiments)."""
        con = duckdb.connect(":memory:")
        migrate(con)
        return cls(con, None)

    def close(self) -> None:
        """Release the file (and its lock), or the borrowed cursor."""
        if self.owner and self.path is not None:
            with _held_lock:
                if _held.get(self.path.resolve()) is self:
                    del _held[self.path.resolve()]
        self.con.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
