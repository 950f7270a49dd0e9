"""The quick path for frames of numbers (COPY BINARY parsed by numpy on PostgreSQL) gives what
`frame` gives, NULLs and other column types included (they take `frame`'s path)."""

from __future__ import annotations

import datetime as dt

import pandas as pd

from workbench.store import Store

ROWS = (
    "SELECT * FROM (VALUES (TIMESTAMP '2024-01-01 00:00:00.000123', 1.5::float8, 7::bigint, "
    "2::int, true), (TIMESTAMP '1999-12-31 23:59:59', -0.25::float8, -3::bigint, 0::int, false)) "
    "AS t(ts, x, n, m, b) WHERE x > ? ORDER BY ts"
)


def test_a_frame_of_numbers_equals_the_plain_frame(store: Store) -> None:
    quick = store.db.numbers_frame(ROWS, [-1.0])
    pd.testing.assert_frame_equal(quick, store.db.frame(ROWS, [-1.0]))
    assert quick["ts"].dt.tz is None and quick["ts"].iloc[1] == pd.Timestamp(
        dt.datetime(2024, 1, 1, 0, 0, 0, 123)
    )
    assert list(quick["n"]) == [-3, 7] and quick["b"].dtype == bool


def test_nulls_text_and_no_rows_take_the_plain_path(store: Store) -> None:
    with_null = "SELECT * FROM (VALUES (1.0::float8), (NULL::float8)) AS t(x)"
    pd.testing.assert_frame_equal(store.db.numbers_frame(with_null), store.db.frame(with_null))
    text = "SELECT 'a' AS s, 1.0::float8 AS x"
    pd.testing.assert_frame_equal(store.db.numbers_frame(text), store.db.frame(text))
    empty = ROWS.replace("x > ?", "x > ? AND false")
    assert store.db.numbers_frame(empty, [0.0]).empty
