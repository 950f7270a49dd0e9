"""The workbench database: a DuckDB file or a PostgreSQL database, schema brought up to date.

`Store.open(target)` takes a path (DuckDB, the embedded default) or a `postgresql://` URL
(production: many processes on one database). Both backends have the same tables, the same
migrations and the same Python API; store code writes SQL once (`workbench.store.dialect`).

DuckDB lets one process hold a file read-write, and that process locks out every other one,
readers included (see NOTES). So a DuckDB `Store` is meant to be held briefly by command-line
tools and notebooks (open, work, close), and long only by the engine process that owns the
file. Opening waits for a lock held elsewhere for up to `wait_s` seconds before it gives up
with `StoreLocked`, which names the holder. PostgreSQL has no such limit: every process opens
its own pooled connections (sizes and timeouts in the settings, `db_pool_*`).
"""

from __future__ import annotations

import logging
import threading
import time
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Self, cast

import duckdb
import pandas as pd

from workbench.store.audit import AuditLog
from workbench.store.candles import CandleStore
from workbench.store.database import Args, Database, DuckDatabase
from workbench.store.dialect import Backend
from workbench.store.errors import StoreError, StoreLocked, StrategyLeased
from workbench.store.journal import (
    DirectWrites,
    JournaledWrites,
    Writes,
    has_pending,
    journal_path,
    recover,
)
from workbench.store.lease import Lease, LocalLeases, ServerLeases, this_process
from workbench.store.markets import MarketRulesStore
from workbench.store.migrations import check_version, migrate
from workbench.store.ops import OpsStore
from workbench.store.risk import RiskStore
from workbench.store.runs import RunStore
from workbench.store.studies import StudyStore
from workbench.store.target import PostgresTarget, parse_target
from workbench.store.trading import TradingStore, apply_writes
from workbench.store.users import UserStore

if TYPE_CHECKING:  # psycopg loads only when a PostgreSQL store opens
    from workbench.store.postgres import PgDatabase, PoolConfig

log = logging.getLogger(__name__)

_LOCK_MESSAGE = "Could not set lock"
# Files this process holds read-write: another open of one borrows a cursor of it, since
# DuckDB refuses a second connection to a file from the same process with other settings.
_held: dict[Path, Store] = {}
_held_lock = threading.Lock()
# Leases among this process's engines, per database (a resolved path or a URL).
_local_leases: dict[str, LocalLeases] = {}
_leases_lock = threading.Lock()


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


def _leases_of(key: str) -> LocalLeases:
    with _leases_lock:
        return _local_leases.setdefault(key, LocalLeases())


class Store:
    """An open workbench database: `store.candles`, `store.trading` (live records),
    `store.markets` (market rules), `store.runs` (backtests, sweeps, walk-forward and their
    rows), `store.studies` (Optuna), `store.risk`, `store.users` (users, sessions, failed
    logins), `store.audit` (the audit log), `store.ops` (alerts, process runs)."""

    def __init__(
        self,
        db: Database,
        path: Path | None = None,
        owner: bool = False,
        lease_key: str | None = None,
        writes: Writes | None = None,
    ) -> None:
        self.db = db
        self.path = path
        self.owner = owner
        self.candles = CandleStore(db)
        self.trading = TradingStore(db, writes)
        self.runs = RunStore(db)
        self.markets = MarketRulesStore(db)
        self.risk = RiskStore(db, self.trading)
        self.users = UserStore(db)
        self.audit = AuditLog(db)
        self.studies = StudyStore(db)
        self.ops = OpsStore(db)
        self._leases: dict[str, Lease] = {}
        self._local = _leases_of(lease_key or f"memory:{id(db)}")
        self._server: ServerLeases | None = None
        if db.dialect.is_postgres:
            pg = cast("PgDatabase", db)
            self._server = ServerLeases(pg.target, pg.config.connect_timeout_s)

    @property
    def backend(self) -> Backend:
        return self.db.dialect.backend

    @property
    def con(self) -> duckdb.DuckDBPyConnection:
        """The DuckDB connection (DuckDB stores only; `sql` works on both)."""
        if not isinstance(self.db, DuckDatabase):
            raise StoreError(f"{self.describe()} is PostgreSQL: use store.sql() or store.db")
        return self.db.con

    def describe(self) -> str:
        """Give where the store is: its file, or its URL with the password masked."""
        return self.db.describe()

    def sql(self, sql: str, params: Args = ()) -> pd.DataFrame:
        """Give the result of one statement (with `?` placeholders) as a frame."""
        self.trading.writes.drain()
        return self.db.frame(sql, params)

    @classmethod
    def open(
        cls,
        target: str | Path,
        *,
        read_only: bool = False,
        wait_s: float = 10.0,
        migrate_schema: bool = True,
        pool: PoolConfig | None = None,
        journal_fsync: bool | None = None,
    ) -> Self:
        """Open (creating if needed) a database and bring its schema up to date.

        `target` is a DuckDB file path or a `postgresql://` URL. A read-only store does not
        migrate; it refuses a schema newer than this package, and a database that does not
        exist or has no workbench schema yet. A DuckDB file opened read-write journals its
        trading writes (`workbench.store.journal`; `journal_fsync`, by default the setting,
        flushes each to disk) and first applies what the last process that held it journaled
        and did not apply.
        """
        parsed = parse_target(target)
        if isinstance(parsed, PostgresTarget):
            return cls._open_postgres(parsed, read_only, migrate_schema, pool)
        return cls._open_duckdb(parsed, read_only, wait_s, migrate_schema, journal_fsync)

    @classmethod
    def _open_duckdb(
        cls,
        path: Path,
        read_only: bool,
        wait_s: float,
        migrate_schema: bool,
        journal_fsync: bool | None = None,
    ) -> Self:
        key = str(path.resolve())
        with _held_lock:
            held = _held.get(path.resolve())
            if held is not None:
                # Already open read-write in this process: share it (closing closes the
                # cursor) and its writes (so reads here see what it wrote).
                return cls(
                    DuckDatabase(held.con.cursor(), held.path),
                    held.path,
                    lease_key=key,
                    writes=held.trading.writes,
                )
        if read_only and not path.exists():
            raise StoreError(f"no database at {path}: run `workbench data import` first")
        if read_only and has_pending(journal_path(path)):
            cls._apply_journal(path, wait_s)
        if not read_only:
            path.parent.mkdir(parents=True, exist_ok=True)
        db = DuckDatabase(_connect(path, read_only, wait_s), path)
        writes: Writes | None = None
        try:
            if read_only or not migrate_schema:
                check_version(db)
            else:
                migrate(db)
            if not read_only and "journal_applied" in db.tables():  # not before migration 11
                recover(db, journal_path(path), apply_writes)
                writes = JournaledWrites(db, journal_path(path), apply_writes, fsync=journal_fsync)
        except BaseException:
            db.close()
            raise
        store = cls(db, path, owner=not read_only, lease_key=key, writes=writes)
        if store.owner:
            with _held_lock:
                _held[path.resolve()] = store
        return store

    @classmethod
    def _apply_journal(cls, path: Path, wait_s: float) -> None:
        """Apply what a dead process journaled before reading the file (a read-only open
        cannot): open it read-write once. A live owner holds the file and applies its own
        journal: then read without (through it)."""
        try:
            cls._open_duckdb(path, False, 0.0, False).close()
        except StoreLocked:
            pass
        except StoreError as exc:
            log.warning("%s: journaled writes not applied before reading (%s)", path, exc)

    @classmethod
    def _open_postgres(
        cls,
        target: PostgresTarget,
        read_only: bool,
        migrate_schema: bool,
        pool: PoolConfig | None,
    ) -> Self:
        import psycopg

        from workbench.store.postgres import acquire, connect_error, release

        db = acquire(target, pool)
        try:
            cls._prepare_postgres(db, target, read_only, migrate_schema)
        except psycopg.Error as exc:
            release(db)
            raise connect_error(target, exc) from exc
        except BaseException:
            release(db)
            raise
        return cls(db, None, owner=not read_only, lease_key=target.url)

    @staticmethod
    def _prepare_postgres(
        db: PgDatabase, target: PostgresTarget, read_only: bool, migrate_schema: bool
    ) -> None:
        if db.migrated:
            return
        if read_only or not migrate_schema:
            if check_version(db) == 0 and read_only:
                raise StoreError(
                    f"{target.describe()} has no workbench tables yet: run "
                    "`workbench db migrate` (or `workbench data import`) first"
                )
            return
        migrate(db)
        db.migrated = True

    @classmethod
    def memory(cls) -> Self:
        """Give a migrated in-memory store (for examples and quick experiments)."""
        db = DuckDatabase(duckdb.connect(":memory:"), None)
        migrate(db)
        return cls(db, None)

    def lease_strategy(self, strategy_id: str) -> Lease:
        """Hold a strategy for this store's engine; StrategyLeased names another holder.

        Taking a lease this store holds already gives it again. Leases end with `release`,
        with `close`, or with the process (PostgreSQL lets go of a dead holder's locks).
        """
        held = self._leases.get(strategy_id)
        if held is not None and not held.released:
            if self._server is not None:
                try:
                    self._server.take(strategy_id)  # a no-op while held; else taken back
                except StrategyLeased:
                    held.release()  # another engine has it now
                    raise
            return held
        owner = id(self)
        self._local.take(strategy_id, owner)
        if self._server is not None:
            try:
                self._server.take(strategy_id)
            except BaseException:
                self._local.drop(strategy_id, owner)
                raise

        def let_go() -> None:
            self._leases.pop(strategy_id, None)
            if self._server is not None:
                self._server.drop(strategy_id)
            self._local.drop(strategy_id, owner)

        lease = Lease(strategy_id, this_process(), let_go)
        self._leases[strategy_id] = lease
        return lease

    def use_engine_writes(self) -> None:
        """Give the trading writes of this store to the live engine's event loop: on
        PostgreSQL queued and committed by one task on it (`workbench.store.pg_writes`);
        elsewhere as they are (a DuckDB file's are journaled already)."""
        if self.db.dialect.is_postgres and isinstance(self.trading.writes, DirectWrites):
            from workbench.store.pg_writes import AsyncPgWrites

            self.trading.writes = AsyncPgWrites(cast("PgDatabase", self.db))

    @property
    def leases_can_be_lost(self) -> bool:
        """Whether a server holds this store's leases (PostgreSQL), so they can end under it."""
        return self._server is not None

    def lost_leases(self, *, verify: bool = False) -> list[str]:
        """Give the strategies leased by this store that the server no longer holds for it
        (its connection ended: a restart, a terminated backend, a cut network).

        Without `verify`, no round trip unless the server sent something (see
        `ServerLeases.held`): cheap enough before every order. `lease_strategy` takes a lost
        lease back, or names the engine that took it meanwhile.
        """
        if self._server is None:
            return []
        held = self._server.held(verify=verify)
        return [sid for sid, lease in list(self._leases.items()) if sid not in held]

    def close(self) -> None:
        """Release leases, then the file (and its lock), the borrowed cursor, or the pool."""
        for lease in list(self._leases.values()):
            lease.release()
        if self._server is not None:
            self._server.close()
        if self.db.dialect.is_postgres:
            from workbench.store.postgres import release

            self.trading.writes.close()
            release(cast("PgDatabase", self.db))
            return
        if self.owner and self.path is not None:
            with _held_lock:
                if _held.get(self.path.resolve()) is self:
                    del _held[self.path.resolve()]
            self.trading.writes.close()
        self.db.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
