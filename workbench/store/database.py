"""One way to talk SQL to either backend: sessions, transactions, frames in and out.

A `Database` hands out `Session`s: one connection (a DuckDB cursor, a pooled PostgreSQL
connection) for a few statements in autocommit, or inside a transaction. Store code writes
`?` placeholders; each session translates them for its driver. Frames go in through
`insert_frame` (a registered view on DuckDB, COPY on PostgreSQL) and come back as pandas
frames with the same dtypes on both (float64, int64 or Int64 when NULLs occur,
datetime64[us] for TIMESTAMP).
"""

from __future__ import annotations

import abc
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd

from workbench.store.dialect import DUCKDB, Dialect, upsert

Args = Sequence[Any]


class Session(abc.ABC):
    """Statements on one connection."""

    dialect: Dialect

    @abc.abstractmethod
    def execute(self, sql: str, args: Args = ()) -> None: ...

    @abc.abstractmethod
    def fetchone(self, sql: str, args: Args = ()) -> tuple[Any, ...] | None: ...

    @abc.abstractmethod
    def fetchall(self, sql: str, args: Args = ()) -> list[tuple[Any, ...]]: ...

    @abc.abstractmethod
    def frame(self, sql: str, args: Args = ()) -> pd.DataFrame: ...

    def numbers_frame(self, sql: str, args: Args = ()) -> pd.DataFrame:
        """Give a result of numbers and timestamps (candles) as a frame, by the quickest path
        the backend has; equal to `frame`'s."""
        return self.frame(sql, args)

    @abc.abstractmethod
    def iter_frames(self, sql: str, args: Args = (), rows: int = 100_000) -> Iterator[pd.DataFrame]:
        """Give a query's result in frames of at most `rows` rows, streamed."""

    @abc.abstractmethod
    def insert_frame(self, table: str, frame: pd.DataFrame) -> None:
        """Append a frame's rows to a table, columns by name."""

    @abc.abstractmethod
    @contextmanager
    def staged(self, name: str, frame: pd.DataFrame) -> Iterator[None]:
        """Make a frame readable as the table `name` for the time of the block."""

    def upsert_frame(self, table: str, frame: pd.DataFrame, key: list[str]) -> None:
        """Insert a frame's rows, replacing those whose `key` is stored (no key twice)."""
        columns = [str(c) for c in frame.columns]
        with self.staged("_upserted_rows", frame):
            select = f"SELECT {', '.join(columns)} FROM _upserted_rows"
            self.execute(upsert(table, columns, key, select))


class Database(abc.ABC):
    """An open database of one backend."""

    dialect: Dialect

    @abc.abstractmethod
    def describe(self) -> str:
        """Give where the database is, fit to print (no password)."""

    @abc.abstractmethod
    @contextmanager
    def session(self) -> Iterator[Session]:
        """Give a session whose statements each commit on their own."""

    @abc.abstractmethod
    @contextmanager
    def transaction(self) -> Iterator[Session]:
        """Give a session in one transaction: committed at the end, rolled back on error."""

    @abc.abstractmethod
    def close(self) -> None: ...

    def execute(self, sql: str, args: Args = ()) -> None:
        with self.session() as s:
            s.execute(sql, args)

    def fetchone(self, sql: str, args: Args = ()) -> tuple[Any, ...] | None:
        with self.session() as s:
            return s.fetchone(sql, args)

    def fetchall(self, sql: str, args: Args = ()) -> list[tuple[Any, ...]]:
        with self.session() as s:
            return s.fetchall(sql, args)

    def frame(self, sql: str, args: Args = ()) -> pd.DataFrame:
        with self.session() as s:
            return s.frame(sql, args)

    def numbers_frame(self, sql: str, args: Args = ()) -> pd.DataFrame:
        with self.session() as s:
            return s.numbers_frame(sql, args)

    def tables(self) -> list[str]:
        """Give the names of the tables in the database's (current) schema."""
        rows = self.fetchall(
            "SELECT table_name FROM information_schema.tables "
            "WHERE table_schema = current_schema() AND table_type = 'BASE TABLE' ORDER BY 1"
        )
        return [str(r[0]) for r in rows]


class DuckSession(Session):
    """Statements on one DuckDB cursor."""

    dialect = DUCKDB

    def __init__(self, cursor: duckdb.DuckDBPyConnection) -> None:
        self.cursor = cursor

    def execute(self, sql: str, args: Args = ()) -> None:
        self.cursor.execute(sql, list(args))

    def fetchone(self, sql: str, args: Args = ()) -> tuple[Any, ...] | None:
        # Fetched to the end: DuckDB refuses other work on a cursor with a result still open.
        rows = self.cursor.execute(sql, list(args)).fetchmany(1)
        self.cursor.fetchall()
        return rows[0] if rows else None

    def fetchall(self, sql: str, args: Args = ()) -> list[tuple[Any, ...]]:
        return self.cursor.execute(sql, list(args)).fetchall()

    def frame(self, sql: str, args: Args = ()) -> pd.DataFrame:
        return self.cursor.execute(sql, list(args)).df()

    def iter_frames(self, sql: str, args: Args = (), rows: int = 100_000) -> Iterator[pd.DataFrame]:
        reader = self.cursor.sql(sql, params=list(args) or None).to_arrow_reader(rows)
        for batch in reader:
            yield batch.to_pandas()

    def insert_frame(self, table: str, frame: pd.DataFrame) -> None:
        columns = ", ".join(frame.columns)
        with self.staged("_incoming_rows", frame):
            self.cursor.execute(
                f"INSERT INTO {table} ({columns}) SELECT {columns} FROM _incoming_rows"
            )

    @contextmanager
    def staged(self, name: str, frame: pd.DataFrame) -> Iterator[None]:
        self.cursor.register(name, frame)
        try:
            yield
        finally:
            self.cursor.unregister(name)


class DuckDatabase(Database):
    """A DuckDB file (or memory) through one connection; a cursor per session."""

    dialect = DUCKDB

    def __init__(self, con: duckdb.DuckDBPyConnection, path: Path | None) -> None:
        self.con = con
        self.path = path

    def describe(self) -> str:
        return str(self.path) if self.path is not None else ":memory:"

    @contextmanager
    def session(self) -> Iterator[Session]:
        cursor = self.con.cursor()
        try:
            yield DuckSession(cursor)
        finally:
            cursor.close()

    @contextmanager
    def transaction(self) -> Iterator[Session]:
        cursor = self.con.cursor()
        try:
            cursor.execute("BEGIN TRANSACTION")
            try:
                yield DuckSession(cursor)
            except BaseException:
                cursor.execute("ROLLBACK")
                raise
            cursor.execute("COMMIT")
        finally:
            cursor.close()

    def close(self) -> None:
        self.con.close()
