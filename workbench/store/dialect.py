"""The SQL that differs between DuckDB and PostgreSQL, as small fragments.

Store code writes one statement for both backends with `?` placeholders, portable types and
`INSERT ... ON CONFLICT`; where the two dialects have no common spelling (epoch milliseconds,
time buckets, first/last by time, integer division) it asks the store's dialect for the
fragment. Times go in as Python datetimes (naive UTC), never as dialect-specific
constructors.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

# DuckDB's `time_bucket` default origin, a Monday at midnight: `date_bin` on PostgreSQL
# is given the same one so that weeks start on Monday on both.
BUCKET_ORIGIN = "2000-01-03 00:00:00"
_EPOCH = datetime(1970, 1, 1)


class Backend(enum.StrEnum):
    DUCKDB = "duckdb"
    POSTGRES = "postgres"


class Dialect:
    """SQL fragments of one backend."""

    def __init__(self, backend: Backend) -> None:
        self.backend = backend

    @property
    def is_postgres(self) -> bool:
        return self.backend is Backend.POSTGRES

    def epoch_ms(self, expr: str) -> str:
        """Give a BIGINT expression: the milliseconds since 1970 of a TIMESTAMP."""
        if self.is_postgres:
            return f"CAST(floor(extract(epoch FROM {expr}) * 1000) AS BIGINT)"
        return f"epoch_ms({expr})"

    def time_bucket(self, seconds: int, expr: str) -> str:
        """Give the start of the `seconds`-long bucket holding a TIMESTAMP."""
        if self.is_postgres:
            return (
                f"date_bin(INTERVAL '{int(seconds)} seconds', {expr}, TIMESTAMP '{BUCKET_ORIGIN}')"
            )
        return f"time_bucket(INTERVAL '{int(seconds)} seconds', {expr})"

    def first_by(self, value: str, order: str) -> str:
        """Give an aggregate: `value` of the row with the smallest `order`."""
        if self.is_postgres:
            return f"(array_agg({value} ORDER BY {order}))[1]"
        return f"arg_min({value}, {order})"

    def last_by(self, value: str, order: str) -> str:
        """Give an aggregate: `value` of the row with the largest `order`."""
        if self.is_postgres:
            return f"(array_agg({value} ORDER BY {order} DESC))[1]"
        return f"arg_max({value}, {order})"

    def intdiv(self, a: str, b: str) -> str:
        """Give the integer quotient of two BIGINT expressions."""
        return f"({a} / {b})" if self.is_postgres else f"({a} // {b})"


DUCKDB = Dialect(Backend.DUCKDB)
POSTGRES = Dialect(Backend.POSTGRES)


def upsert(table: str, columns: Sequence[str], key: Sequence[str], values: str = "") -> str:
    """Give `INSERT ... ON CONFLICT (key) DO UPDATE` of every other column (both backends).

    `values` is what follows the column list (default: one row of `?` placeholders).
    """
    rest = [c for c in columns if c not in key]
    values = values or "VALUES (" + ", ".join("?" for _ in columns) + ")"
    update = ", ".join(f"{c} = excluded.{c}" for c in rest)
    action = f"DO UPDATE SET {update}" if rest else "DO NOTHING"
    return (
        f"INSERT INTO {table} ({', '.join(columns)}) {values} "
        f"ON CONFLICT ({', '.join(key)}) {action}"
    )


def ts_param(ms: int | None) -> datetime | None:
    """Give a TIMESTAMP parameter (naive UTC) for epoch milliseconds, exactly."""
    return None if ms is None else _EPOCH + timedelta(milliseconds=int(ms))


def ms_of(value: datetime | None) -> int | None:
    """Give the epoch milliseconds of a TIMESTAMP read back (naive UTC or aware)."""
    if value is None:
        return None
    if value.tzinfo is not None:
        value = value.astimezone(UTC).replace(tzinfo=None)
    return (value - _EPOCH) // timedelta(milliseconds=1)
