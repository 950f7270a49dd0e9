"""Moving a whole database between backends (DuckDB ⇄ PostgreSQL), verified table by table.

The target is brought to the source's schema version, every table is streamed over in
frames (COPY into PostgreSQL, a registered frame into DuckDB), and each is checked by its row
count and a checksum computed on both sides from the values read back: the sum of one 64-bit
hash per row (so row order does not matter), over values put in one canonical form first
(timestamps as µs, NULLs as NULLs, arrays as JSON). Then the target migrates on to the newest
schema. An empty target is required: nothing there is overwritten.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

import numpy as np
import pandas as pd

from workbench.store.database import Database
from workbench.store.db import Store
from workbench.store.errors import StoreError
from workbench.store.migrations import current_version, migrate

_NULL = "\x00NULL"


@dataclass(frozen=True)
class TableCopy:
    """One table moved: its rows and the checksum both sides agreed on."""

    table: str
    rows: int
    checksum: str


def _kind(data_type: str) -> str:
    t = data_type.lower()
    if t.endswith("[]") or t == "array":
        return "array"
    if t.startswith("timestamp"):
        return "ts"
    if t in ("double", "double precision", "real", "float", "decimal", "numeric"):
        return "float"
    if t in ("bigint", "integer", "smallint", "hugeint", "int"):
        return "int"
    if t == "boolean":
        return "bool"
    return "text"


def columns_of(db: Database, table: str) -> list[tuple[str, str]]:
    """Give a table's (column, kind) in their declared order."""
    rows = db.fetchall(
        "SELECT column_name, data_type FROM information_schema.columns "
        "WHERE table_schema = current_schema() AND table_name = ? ORDER BY ordinal_position",
        [table],
    )
    return [(str(name), _kind(str(data_type))) for name, data_type in rows]


def _canonical(series: pd.Series, kind: str) -> pd.Series:
    if kind == "ts":
        stamps = pd.to_datetime(series)
        if getattr(stamps.dt, "tz", None) is not None:
            stamps = stamps.dt.tz_convert("UTC").dt.tz_localize(None)
        return pd.Series(stamps.to_numpy(dtype="datetime64[us]").view("int64"))
    if kind == "float":
        return pd.Series(pd.to_numeric(series, errors="raise").to_numpy(dtype="float64"))
    if kind == "int":
        return pd.Series(pd.array(series.astype(object).where(series.notna(), None), "Int64"))
    if kind == "bool":
        return pd.Series(pd.array(series.astype(object).where(series.notna(), None), "boolean"))
    if kind == "array":
        return pd.Series(
            [_NULL if v is None else json.dumps([int(x) for x in v]) for v in series], dtype=object
        )
    values = series.astype(object)
    return pd.Series(np.where(pd.isna(values), _NULL, values.astype(str)), dtype=object)


def frame_hash(frame: pd.DataFrame, kinds: list[str]) -> int:
    """Give the order-independent checksum of a frame's rows (mod 2**64)."""
    if frame.empty:
        return 0
    canonical = pd.DataFrame(
        {
            i: _canonical(frame[c].reset_index(drop=True), k)
            for i, (c, k) in enumerate(zip(frame.columns, kinds, strict=True))
        }
    )
    return int(pd.util.hash_pandas_object(canonical, index=False).to_numpy().sum(dtype=np.uint64))


def _checksum(frames: Iterable[pd.DataFrame], kinds: list[str]) -> tuple[int, int]:
    rows, total = 0, 0
    for frame in frames:
        rows += len(frame)
        total = (total + frame_hash(frame, kinds)) % 2**64
    return rows, total


def _frames(db: Database, sql: str, rows: int) -> Iterator[pd.DataFrame]:
    with db.session() as session:
        yield from session.iter_frames(sql, (), rows)


def copy_store(source: Store, target: Store, chunk_rows: int = 100_000) -> list[TableCopy]:
    """Copy every table of `source` into the empty `target`; give what each table moved."""
    version = current_version(source.db)
    if version == 0:
        raise StoreError(f"{source.describe()} has no workbench schema: nothing to copy")
    have = current_version(target.db)
    if have > version:
        raise StoreError(
            f"{target.describe()} is at schema version {have}, newer than the source's "
            f"{version}: migrate the source first (workbench db migrate --db ...)"
        )
    migrate(target.db, target=version)
    tables = [t for t in source.db.tables() if t != "schema_migrations"]
    for table in tables:
        row = target.db.fetchone(f"SELECT count(*) FROM {table}")
        if row and row[0]:
            raise StoreError(
                f"{target.describe()} already has rows in {table}: copy into an empty database"
            )
    done = []
    for table in tables:
        columns = columns_of(source.db, table)
        names = ", ".join(c for c, _ in columns)
        kinds = [k for _, k in columns]
        sql = f"SELECT {names} FROM {table}"
        rows, sent = 0, 0
        with target.db.transaction() as tx:
            for frame in _frames(source.db, sql, chunk_rows):
                tx.insert_frame(table, frame)
                rows += len(frame)
                sent = (sent + frame_hash(frame, kinds)) % 2**64
        back_kinds = [k for _, k in columns_of(target.db, table)]
        back_rows, back = _checksum(_frames(target.db, sql, chunk_rows), back_kinds)
        counted = target.db.fetchone(f"SELECT count(*) FROM {table}")
        if (back_rows, back) != (rows, sent) or counted != (rows,):
            raise StoreError(
                f"{table}: {rows} rows sent (checksum {sent:016x}) but {back_rows} read back "
                f"(checksum {back:016x}) from {target.describe()}: the copy is not faithful"
            )
        done.append(TableCopy(table, rows, f"{sent:016x}"))
    migrate(target.db)
    return done
