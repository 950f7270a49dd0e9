"""Candles in the store: exact round trip, idempotent upsert, SQL resample, coverage and gaps."""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
import pytest
from shipped import CANDLE_FILES, shipped

from workbench.candles import COLUMNS
from workbench.store import Store

AGG = {"open": "first", "high": "max", "low": "min", "close": "last", "volume": "sum"}


def test_round_trip_is_exact_for_every_shipped_file(store: Store) -> None:
    for path in CANDLE_FILES:
        symbol, candles = shipped(path)
        store.candles.write("local", symbol, "5m", candles)
        back = store.candles.read("local", symbol, "5m")
        pd.testing.assert_frame_equal(back, candles, check_exact=True, check_freq=False)
        assert str(back.index.tz) == "UTC"


def test_writing_the_same_candles_twice_changes_nothing(store: Store) -> None:
    symbol, candles = shipped(CANDLE_FILES[0])
    first = store.candles.write("local", symbol, "5m", candles)
    before = store.candles.read("local", symbol, "5m")
    again = store.candles.write("local", symbol, "5m", candles)
    assert (first.new, first.changed) == (len(candles), 0)
    assert (again.new, again.changed, again.unchanged) == (0, 0, len(candles))
    pd.testing.assert_frame_equal(store.candles.read("local", symbol, "5m"), before)
    count = store.db.fetchone("SELECT count(*) FROM candles")
    assert count == (len(candles),)


def test_a_rewrite_with_new_values_updates_only_those_rows(store: Store) -> None:
    symbol, candles = shipped(CANDLE_FILES[0])
    store.candles.write("local", symbol, "5m", candles)
    revised = candles.iloc[100:110].copy()
    revised.loc[revised.index[3], "close"] *= 1.01
    revised.loc[revised.index[3], "high"] = max(revised["high"].iloc[3], revised["close"].iloc[3])
    result = store.candles.write("local", symbol, "5m", revised)
    assert (result.new, result.changed, result.unchanged) == (0, 1, 9)
    back = store.candles.read("local", symbol, "5m")
    assert back.loc[revised.index[3], "close"] == revised["close"].iloc[3]
    assert len(back) == len(candles)


def test_series_are_kept_apart(store: Store) -> None:
    symbol, candles = shipped(CANDLE_FILES[0])
    store.candles.write("local", symbol, "5m", candles)
    store.candles.write("binance", symbol, "5m", candles.iloc[:10])
    assert len(store.candles.read("binance", symbol, "5m")) == 10
    assert len(store.candles.read("local", symbol, "5m")) == len(candles)
    assert store.candles.series() == [("binance", symbol, "5m"), ("local", symbol, "5m")]


def test_range_reads_are_half_open(store: Store) -> None:
    symbol, candles = shipped(CANDLE_FILES[0])
    store.candles.write("local", symbol, "5m", candles)
    start, end = candles.index[10], candles.index[20]
    part = store.candles.read("local", symbol, "5m", start=start, end=end)
    pd.testing.assert_frame_equal(part, candles.loc[start:end].iloc[:-1], check_freq=False)
    by_text = store.candles.read("local", symbol, "5m", start=str(start.tz_localize(None)))
    assert by_text.index[0] == start


@pytest.mark.parametrize("target", ["15m", "1h", "4h", "1d", "1w"])
def test_sql_resample_matches_pandas_resample(store: Store, target: str) -> None:
    rule = {"15m": "15min", "1h": "1h", "4h": "4h", "1d": "1D", "1w": "W-MON"}[target]
    for path in CANDLE_FILES:
        symbol, candles = shipped(path)
        store.candles.write("local", symbol, "5m", candles)
        ours = store.candles.resample("local", symbol, "5m", target)
        theirs = candles.resample(rule, closed="left", label="left").agg(AGG).dropna()
        pd.testing.assert_frame_equal(ours, theirs, check_freq=False, rtol=1e-12)


def test_resample_refuses_what_cannot_be_bucketed(store: Store) -> None:
    with pytest.raises(Exception, match="not a whole multiple"):
        store.candles.resample("local", "ETH/BTC", "5m", "7m")
    with pytest.raises(Exception, match="divide a day"):
        store.candles.resample("local", "ETH/BTC", "5m", "7h")


def independent_gaps(index: pd.DatetimeIndex, step: pd.Timedelta) -> list[tuple[object, int]]:
    """Walk the bars one by one and note each hole: where it starts, how many bars it lacks."""
    holes = []
    for before, after in itertools.pairwise(index):
        if after - before > step:
            holes.append((before + step, int((after - before) / step) - 1))
    return holes


def test_coverage_and_gaps_agree_with_a_walk_over_the_bars(store: Store) -> None:
    step = pd.Timedelta(minutes=5)
    for path in CANDLE_FILES:
        symbol, candles = shipped(path)
        store.candles.write("local", symbol, "5m", candles)
        holes = independent_gaps(candles.index, step)
        gaps = store.candles.gaps("local", symbol, "5m")
        assert list(zip(gaps["first_missing"], gaps["missing"], strict=True)) == holes
        assert (gaps["last_missing"] - gaps["first_missing"] == (gaps["missing"] - 1) * step).all()
        row = store.candles.coverage("local", symbol, "5m").iloc[0]
        assert (row["first"], row["last"], row["count"]) == (
            candles.index[0],
            candles.index[-1],
            len(candles),
        )
        assert (row["gaps"], row["missing"]) == (len(holes), sum(n for _, n in holes))
    assert len(store.candles.coverage()) == len(CANDLE_FILES)
    assert any(store.candles.coverage()["gaps"] > 0), "the shipped files have real gaps"


def test_nan_or_duplicate_candles_are_refused(store: Store) -> None:
    symbol, candles = shipped(CANDLE_FILES[0])
    doubled = pd.concat([candles.iloc[:3], candles.iloc[:1]])
    with pytest.raises(Exception, match="repeat"):
        store.candles.write("local", symbol, "5m", doubled)
    holed = candles.iloc[:3].copy()
    holed.iloc[1, 0] = np.nan
    with pytest.raises(Exception):  # noqa: B017 - the NOT NULL constraint names the column
        store.candles.write("local", symbol, "5m", holed)
    assert store.candles.read("local", symbol, "5m").empty
    assert list(store.candles.read("local", symbol, "5m").columns) == list(COLUMNS)
