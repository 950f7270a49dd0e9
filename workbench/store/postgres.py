"""PostgreSQL behind the store: a psycopg connection pool, sessions, COPY in, frames out.

One pool per database URL and process, shared by every `Store.open` of that URL (like DuckDB
stores of one file share a connection) and closed with the last of them. Sessions take a
pooled connection in autocommit for a few statements, or hold one for a transaction. Every
connection works in UTC. Bulk rows go in through `COPY ... FROM STDIN (FORMAT BINARY)`,
built with numpy for fixed-width columns without NULLs (candles, equity) and row by row
otherwise. Errors that stop a connection are told once, with the URL (password masked) and
what to do (`connect_error`).

Reconnecting. A server that restarts (or ends a connection) leaves dead connections in the
pool; each is checked when taken (`_check`: no round trip while it is quiet, one when the
server sent it something, as it does before it ends a connection) and a dead one is replaced
by a new one, so the first statement after a restart runs on a live connection. When no
connection comes within `DOWN_WAIT_S`, a direct connection tells a server away (fails at once
with `StoreUnavailable`, the connect error) from a busy pool (waited for as configured). A
statement whose connection died under it raises `StoreUnavailable` saying its outcome is
unknown: a write is never lost silently (the caller keeps or retries it).
"""

from __future__ import annotations

import logging
import select
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import numpy as np
import pandas as pd
import psycopg
import psycopg_pool
from psycopg import errors as pg_errors
from psycopg.pq import TransactionStatus

from workbench.store.database import Args, Database, Session
from workbench.store.dialect import POSTGRES, upsert
from workbench.store.errors import StoreError, StorePermission, StoreUnavailable
from workbench.store.target import PostgresTarget

# Type OIDs of the columns the store uses.
BOOL, INT8, INT2, INT4, TEXT, FLOAT4, FLOAT8, VARCHAR = 16, 20, 21, 23, 25, 700, 701, 1043
TIMESTAMP, TIMESTAMPTZ, NUMERIC = 1114, 1184, 1700
_INTS, _FLOATS = {INT8, INT2, INT4}, {FLOAT4, FLOAT8, NUMERIC}
_PG_EPOCH_US = 946_684_800_000_000  # 2000-01-01, PostgreSQL's zero time, in µs since 1970
_COPY_HEADER = b"PGCOPY\n\xff\r\n\x00" + b"\x00" * 8
_BINARY_WIDTH = {FLOAT8: ">f8", INT8: ">i8", INT4: ">i4", TIMESTAMP: ">i8", BOOL: "u1"}
_TYPE_OF_DTYPE = {"f": "DOUBLE PRECISION", "i": "BIGINT", "b": "BOOLEAN", "M": "TIMESTAMP"}
DOWN_WAIT_S = 1.0  # waited for a pooled connection before asking whether the server is there
RECONNECT_S = 30.0  # the pool's retries of one connection back off within this, then start over
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PoolConfig:
    """Sizes and timeouts of a PostgreSQL pool (from the settings: `db_pool_*`)."""

    min_size: int = 1
    max_size: int = 10
    timeout_s: float = 30.0  # waiting for a free connection
    connect_timeout_s: float = 10.0  # reaching the server

    @classmethod
    def from_settings(cls) -> PoolConfig:
        from workbench.settings import load_settings

        s = load_settings()
        return cls(s.db_pool_min, s.db_pool_max, s.db_pool_timeout_s, s.db_connect_timeout_s)


@lru_cache(maxsize=512)
def _translate(sql: str) -> str:
    """Give psycopg's placeholders for the store's `?` ones."""
    return sql.replace("%", "%%").replace("?", "%s")


def _column(oid: int, values: tuple[Any, ...]) -> Any:
    if oid in _FLOATS:
        return np.array(values, dtype="float64")
    if oid in _INTS:
        if None in values:
            return pd.array(values, dtype="Int64")
        return np.array(values, dtype="int64")
    if oid == TIMESTAMP:
        return pd.DatetimeIndex(values).as_unit("us")  # numpy's own conversion is ten times slower
    if oid == TIMESTAMPTZ:
        return pd.to_datetime(list(values), utc=True).as_unit("us")
    if oid == BOOL and None not in values:
        return np.array(values, dtype=bool)
    if oid in (TEXT, VARCHAR) and any(v is not None for v in values):
        return pd.array(values, dtype="str")
    return pd.array(values, dtype=object)


def to_frame(description: Any, rows: list[tuple[Any, ...]]) -> pd.DataFrame:
    """Give a result as a frame with the dtypes DuckDB's `.df()` gives for the same types."""
    names = [d.name for d in description or []]
    columns = list(zip(*rows, strict=True)) if rows else [()] * len(names)
    data = {
        name: _column(d.type_code, values)
        for name, d, values in zip(names, description or [], columns, strict=True)
    }
    return pd.DataFrame(data, columns=names)


def _binary_copy(frame: pd.DataFrame, oids: list[int]) -> bytes | None:
    """Give the rows in COPY BINARY format, or None when a column needs the row-by-row path."""
    fields: list[tuple[str, str]] = [("count", ">i2")]
    arrays: list[tuple[int, Any]] = []
    for i, (name, oid) in enumerate(zip(frame.columns, oids, strict=True)):
        width = _BINARY_WIDTH.get(oid)
        series = frame[name]
        if width is None or series.isna().any():
            return None
        if oid == TIMESTAMP:
            if series.dtype.kind != "M":
                return None
            stamps = series.dt.tz_localize(None) if series.dt.tz is not None else series
            values = stamps.to_numpy(dtype="datetime64[us]").astype(np.int64) - _PG_EPOCH_US
        elif oid == BOOL:
            values = series.to_numpy(dtype=bool).astype(np.uint8)
        else:
            values = series.to_numpy(dtype=np.dtype(width).newbyteorder("="))
        fields += [(f"len{i}", ">i4"), (f"val{i}", width)]
        arrays.append((np.dtype(width).itemsize, values))
    out = np.empty(len(frame), dtype=fields)
    out["count"] = len(oids)
    for i, (size, values) in enumerate(arrays):
        out[f"len{i}"] = size
        out[f"val{i}"] = values
    return _COPY_HEADER + out.tobytes() + b"\xff\xff"


def _from_binary_copy(data: bytes, description: Any) -> pd.DataFrame | None:
    """Give COPY BINARY rows of fixed-width columns as a frame, or None when a row holds a
    NULL (its fields are not where a fixed layout puts them)."""
    ext = int.from_bytes(data[15:19], "big") if len(data) >= 19 else 0
    body = memoryview(data)[19 + ext : len(data) - 2]
    fields: list[tuple[str, str]] = [("count", ">i2")]
    for i, d in enumerate(description):
        fields += [(f"len{i}", ">i4"), (f"val{i}", _BINARY_WIDTH[d.type_code])]
    layout = np.dtype(fields)
    if len(body) % layout.itemsize:
        return None
    rows = np.frombuffer(body, dtype=layout)
    if (rows["count"] != len(description)).any():
        return None
    data_out: dict[str, Any] = {}
    for i, d in enumerate(description):
        width = np.dtype(_BINARY_WIDTH[d.type_code]).itemsize
        if (rows[f"len{i}"] != width).any():
            return None
        values = rows[f"val{i}"]
        if d.type_code == TIMESTAMP:
            data_out[d.name] = (values.astype(np.int64) + _PG_EPOCH_US).astype("datetime64[us]")
        elif d.type_code == BOOL:
            data_out[d.name] = values.astype(bool)
        elif d.type_code in _INTS:
            data_out[d.name] = values.astype(np.int64)
        else:
            data_out[d.name] = values.astype(np.float64)
    return pd.DataFrame(data_out, columns=[d.name for d in description])


def _python_rows(frame: pd.DataFrame) -> Iterator[tuple[Any, ...]]:
    columns = []
    for name in frame.columns:
        series = frame[name]
        if series.dtype.kind == "M":
            values = [None if pd.isna(v) else v.to_pydatetime() for v in series]
        else:
            values = [_plain(v) for v in series.astype(object).tolist()]
        columns.append(values)
    return zip(*columns, strict=True)


def _plain(value: Any) -> Any:
    if isinstance(value, np.ndarray):
        return value.tolist()
    return None if _missing(value) else value


def _missing(value: Any) -> bool:
    if isinstance(value, list | tuple | np.ndarray):
        return False
    return value is None or bool(pd.isna(value))


class PgSession(Session):
    """Statements on one PostgreSQL connection."""

    dialect = POSTGRES

    def __init__(self, conn: psycopg.Connection[Any]) -> None:
        self.conn = conn

    def _cursor(self, sql: str, args: Args) -> psycopg.Cursor[Any]:
        if args:
            # Binary results are the quick ones to load (floats, timestamps).
            cursor = self.conn.cursor(binary=True)
            cursor.execute(_translate(sql), list(args))
        else:
            # Without parameters: the simple protocol, which also runs scripts (migrations).
            cursor = self.conn.cursor()
            cursor.execute(sql)
        return cursor

    def execute(self, sql: str, args: Args = ()) -> None:
        self._cursor(sql, args).close()

    def fetchone(self, sql: str, args: Args = ()) -> tuple[Any, ...] | None:
        with self._cursor(sql, args) as cursor:
            return cursor.fetchone()

    def fetchall(self, sql: str, args: Args = ()) -> list[tuple[Any, ...]]:
        with self._cursor(sql, args) as cursor:
            return cursor.fetchall()

    def frame(self, sql: str, args: Args = ()) -> pd.DataFrame:
        with self._cursor(sql, args) as cursor:
            return to_frame(cursor.description, cursor.fetchall())

    def numbers_frame(self, sql: str, args: Args = ()) -> pd.DataFrame:
        # COPY BINARY parsed by numpy: no Python object per value (ten times quicker than
        # rows of tuples for candles). Any other column type, or a NULL, takes `frame`.
        query, params = (_translate(sql), list(args)) if args else (sql, None)
        with self.conn.cursor(binary=True) as cursor:
            cursor.execute(f"SELECT * FROM ({query}) AS q LIMIT 0", params)
            description = cursor.description or []
        if any(d.type_code not in _BINARY_WIDTH for d in description):
            return self.frame(sql, args)
        statement = f"COPY ({query}) TO STDOUT (FORMAT BINARY)"
        with self.conn.cursor() as cursor, cursor.copy(statement, params) as copy:
            data = b"".join(bytes(chunk) for chunk in copy)
        parsed = _from_binary_copy(data, description)
        return parsed if parsed is not None else self.frame(sql, args)

    def iter_frames(self, sql: str, args: Args = (), rows: int = 100_000) -> Iterator[pd.DataFrame]:
        with self.conn.cursor(name="workbench_rows", binary=True, withhold=True) as cursor:
            cursor.execute(_translate(sql) if args else sql, list(args) or None)
            while batch := cursor.fetchmany(rows):
                yield to_frame(cursor.description, batch)

    def column_oids(self, table: str, columns: list[str]) -> list[int]:
        with self.conn.cursor() as cursor:
            cursor.execute(f"SELECT {', '.join(columns)} FROM {table} LIMIT 0")
            return [d.type_code for d in cursor.description or []]

    def insert_frame(self, table: str, frame: pd.DataFrame) -> None:
        columns = [str(c) for c in frame.columns]
        oids = self.column_oids(table, columns)
        statement = f"COPY {table} ({', '.join(columns)}) FROM STDIN"
        data = _binary_copy(frame, oids)
        with self.conn.cursor() as cursor:
            if data is not None:
                with cursor.copy(statement + " (FORMAT BINARY)") as copy:
                    copy.write(data)
                return
            with cursor.copy(statement + " (FORMAT BINARY)") as copy:
                copy.set_types(oids)
                for row in _python_rows(frame):
                    copy.write_row(row)

    def upsert_frame(self, table: str, frame: pd.DataFrame, key: list[str]) -> None:
        # A few rows (the engine's equity marks): one pipelined statement per row beats a
        # temporary table's create, copy and drop.
        columns = [str(c) for c in frame.columns]
        with self.conn.cursor() as cursor:
            cursor.executemany(_translate(upsert(table, columns, key)), list(_python_rows(frame)))

    @contextmanager
    def staged(self, name: str, frame: pd.DataFrame) -> Iterator[None]:
        columns = ", ".join(
            f"{c} {_TYPE_OF_DTYPE.get(frame[c].dtype.kind, 'TEXT')}" for c in frame.columns
        )
        self.execute(f"CREATE TEMP TABLE {name} ({columns})")
        try:
            self.insert_frame(name, frame)
            yield
        finally:
            if self.conn.info.transaction_status != TransactionStatus.INERROR:
                self.execute(f"DROP TABLE IF EXISTS {name}")


def _configure(conn: psycopg.Connection[Any]) -> None:
    conn.execute("SET TIME ZONE 'UTC'")
    # JIT compiling costs more than it saves on the store's queries (80 ms of a resample).
    conn.execute("SET jit = off")


def readable(conn: psycopg.Connection[Any]) -> bool:
    """Give whether an idle connection has something to read (the server is ending it)."""
    try:
        ready, _, _ = select.select([conn.fileno()], [], [], 0)
    except (OSError, ValueError, psycopg.Error):
        return True
    return bool(ready)


def _check(conn: psycopg.Connection[Any]) -> None:
    """Refuse a pooled connection the server ended (the pool replaces it)."""
    if conn.closed or conn.broken:
        raise psycopg.OperationalError("the connection is closed")
    if readable(conn):
        psycopg_pool.ConnectionPool.check_connection(conn)


def pool_options(config: PoolConfig) -> dict[str, Any]:
    """Give what every pool of ours is made with (sync or async): sizes, timeouts, options."""
    return {
        "min_size": config.min_size,
        "max_size": max(config.max_size, config.min_size),
        "timeout": config.timeout_s,
        "kwargs": {"autocommit": True, **connection_options(config.connect_timeout_s)},
        "reconnect_timeout": RECONNECT_S,
        "open": False,
    }


def connection_options(connect_timeout_s: float) -> dict[str, Any]:
    """Give the connection options that notice a server gone without a word (a cut network)."""
    return {
        "connect_timeout": max(1, round(connect_timeout_s)),
        "keepalives": 1,
        "keepalives_idle": 30,
        "keepalives_interval": 10,
        "keepalives_count": 3,
        # A request the server does not acknowledge fails within this (ms).
        "tcp_user_timeout": max(1000, round(connect_timeout_s * 1000)),
    }


def connect_error(target: PostgresTarget, exc: Exception) -> StoreError:
    """Give the one clear error for a failed connection or a refused first statement."""
    where = target.describe()
    text = str(exc).strip()
    lower = text.lower()
    if isinstance(exc, pg_errors.InsufficientPrivilege):
        return StorePermission(
            f"{where}: user {target.user()} lacks a permission the workbench needs ({text}). "
            f"Grant it (as the database owner: GRANT CREATE, USAGE ON SCHEMA public TO "
            f"{target.user()}; GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA "
            "public TO ...), or point WORKBENCH_DB at a database this user owns."
        )
    if "password authentication failed" in lower or "no password supplied" in lower:
        return StoreUnavailable(
            f"{where}: the server refused the login of {target.user()} (wrong or missing "
            "password). Put the right password in the URL (postgresql://user:PASSWORD@host/db), "
            "in PGPASSWORD or in ~/.pgpass."
        )
    if "does not exist" in lower and "database" in lower:
        return StoreUnavailable(
            f"{where}: the database {target.database()} does not exist on that server. "
            f"Create it (createdb {target.database()}, as a user allowed to) or fix the name."
        )
    if "role" in lower and "does not exist" in lower:
        return StoreUnavailable(
            f"{where}: the server knows no user {target.user()}. Create it (createuser) or fix "
            "the user in the URL."
        )
    return StoreUnavailable(
        f"cannot reach the PostgreSQL server at {where}: {text.splitlines()[0] if text else exc}. "
        "Is it running and listening on that host and port (and reachable from here)? "
        "Check WORKBENCH_DB."
    )


def probe(target: PostgresTarget, config: PoolConfig) -> psycopg.Connection[Any]:
    """Give one connection made directly (not pooled), or the clear error why there is none."""
    try:
        conn = psycopg.connect(
            target.url, autocommit=True, connect_timeout=max(1, round(config.connect_timeout_s))
        )
    except psycopg.Error as exc:
        raise connect_error(target, exc) from exc
    _configure(conn)
    return conn


class PgDatabase(Database):
    """A PostgreSQL database through a pool shared by this process's stores of one URL."""

    dialect = POSTGRES

    def __init__(self, target: PostgresTarget, config: PoolConfig) -> None:
        self.target = target
        self.config = config
        self.pool = psycopg_pool.ConnectionPool(
            target.url,
            configure=_configure,
            check=_check,
            name=f"workbench {target.describe()}",
            **pool_options(config),
        )
        self.pool.open(wait=False)
        self.users = 0
        self.migrated = False
        # When the server was last found away (0: it answers), to wait less for it.
        self._down_since = 0.0

    def describe(self) -> str:
        return self.target.describe()

    @contextmanager
    def _connection(self) -> Iterator[psycopg.Connection[Any]]:
        conn = self._take()
        try:
            yield conn
        except psycopg.OperationalError as exc:
            if not (conn.closed or conn.broken):
                raise
            self._down_since = self._down_since or time.monotonic()
            raise StoreUnavailable(
                f"the connection to {self.describe()} was lost during a statement "
                f"({str(exc).strip().splitlines()[0] if str(exc).strip() else exc}): its outcome "
                "is unknown (a write may or may not be stored); the pool reconnects when the "
                "server is back"
            ) from exc
        finally:
            self.pool.putconn(conn)
        if self._down_since:
            log.warning("%s answers again%s", self.describe(), self._away())
            self._down_since = 0.0

    def _take(self) -> psycopg.Connection[Any]:
        """Give a pooled connection; StoreUnavailable says whether the server is away (told
        within DOWN_WAIT_S) or the pool busy (after the pool's wait)."""
        wait_s = self.config.timeout_s
        try:
            return self.pool.getconn(timeout=min(wait_s, DOWN_WAIT_S))
        except psycopg_pool.PoolTimeout:
            pass
        try:  # none free: is the server there at all?
            probe(self.target, self.config).close()
        except StoreUnavailable as exc:
            self._down_since = self._down_since or time.monotonic()
            raise StoreUnavailable(
                f"{exc}{self._away()}; the pool reconnects by itself when it is back"
            ) from exc
        try:
            return self.pool.getconn(timeout=max(0.0, wait_s - DOWN_WAIT_S))
        except psycopg_pool.PoolTimeout as exc:
            raise StoreUnavailable(
                f"no connection to {self.describe()} within {wait_s:g} s: the pool's "
                f"{self.config.max_size} connections are busy or the server stopped answering "
                "(raise db_pool_max or db_pool_timeout_s, or check the server)"
            ) from exc

    def _away(self) -> str:
        if not self._down_since:
            return ""
        return f" (away for {time.monotonic() - self._down_since:.1f} s)"

    @contextmanager
    def session(self) -> Iterator[Session]:
        with self._connection() as conn:
            yield PgSession(conn)

    @contextmanager
    def transaction(self) -> Iterator[Session]:
        with self._connection() as conn, conn.transaction():
            yield PgSession(conn)

    def close(self) -> None:
        self.pool.close()


# One pool per URL in this process, counted by the stores that use it.
_open: dict[str, PgDatabase] = {}
_open_lock = threading.Lock()


def acquire(target: PostgresTarget, config: PoolConfig | None = None) -> PgDatabase:
    """Give this process's database of a URL (opening its pool on first use)."""
    with _open_lock:
        db = _open.get(target.url)
        if db is None:
            probe(target, config or PoolConfig.from_settings()).close()
            db = _open[target.url] = PgDatabase(target, config or PoolConfig.from_settings())
        db.users += 1
        return db


def release(db: PgDatabase) -> None:
    """Give back a database from `acquire`; the last user closes the pool."""
    with _open_lock:
        db.users -= 1
        if db.users > 0:
            return
        if _open.get(db.target.url) is db:
            del _open[db.target.url]
    db.close()
