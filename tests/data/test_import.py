"""Importing candle files: names, formats, bad rows reported, all or nothing per file."""

from __future__ import annotations

import gzip
from pathlib import Path

import pandas as pd
import pytest
from shipped import CANDLE_FILES, shipped

from workbench.data import CandleFileError, import_file, parse_file_name, read_candle_file
from workbench.store import Store


@pytest.mark.parametrize(
    ("name", "symbol", "timeframe"),
    [
        ("ETH_BTC-5m.csv.gz", "ETH/BTC", "5m"),
        ("btc_usdt-1h.csv", "BTC/USDT", "1h"),
        ("XRP_USDT_USDT-5m-futures.parquet", "XRP/USDT:USDT", "5m"),
    ],
)
def test_file_names_give_symbol_and_timeframe(name: str, symbol: str, timeframe: str) -> None:
    named = parse_file_name(name)
    assert named is not None
    assert (named.symbol, named.timeframe) == (symbol, timeframe)


def test_a_name_that_tells_nothing_needs_options(store: Store, tmp_path: Path) -> None:
    path = tmp_path / "prices.csv"
    path.write_text("time,open,high,low,close,volume\n2024-01-01T00:00:00Z,1,2,0.5,1.5,10\n")
    assert parse_file_name(path) is None
    with pytest.raises(CandleFileError, match="--symbol and --timeframe"):
        import_file(store, path, exchange="local")
    done = import_file(store, path, exchange="local", symbol="ABC/USDT", timeframe="1m")
    assert done.rows == 1
    assert store.candles.read("local", "ABC/USDT", "1m")["close"].iloc[0] == 1.5


def test_csv_gz_csv_and_parquet_give_the_same_candles(tmp_path: Path) -> None:
    _, candles = shipped(CANDLE_FILES[0])
    plain = tmp_path / "ETH_BTC-5m.csv"
    plain.write_bytes(gzip.decompress(CANDLE_FILES[0].read_bytes()))
    parquet = tmp_path / "ETH_BTC-5m.parquet"
    candles.rename_axis("time").reset_index().to_parquet(parquet)
    for path in (plain, parquet):
        pd.testing.assert_frame_equal(read_candle_file(path, "5m"), candles, check_exact=True)


def test_epoch_milliseconds_are_understood(tmp_path: Path) -> None:
    path = tmp_path / "A_B-1m.csv"
    path.write_text("timestamp,open,high,low,close,volume\n1704067200000,1,2,0.5,1.5,10\n")
    frame = read_candle_file(path, "1m")
    assert frame.index[0] == pd.Timestamp("2024-01-01", tz="UTC")


GOOD = "2024-01-01 00:00:00,1,2,0.5,1.5,10"
BAD_ROWS = [
    ("2024-01-01 00:01:00,1,2,0.5,abc,10", "close 'abc' is not a number"),
    ("yesterday,1,2,0.5,1.5,10", "time 'yesterday' is not a date and time"),
    ("2024-01-01 00:02:00,1,0.9,0.5,1.5,10", "high is below open, low or close"),
    ("2024-01-01 00:03:00,1,2,1.2,1.5,10", "low is above open, high or close"),
    ("2024-01-01 00:04:00,1,2,0.5,1.5,-3", "volume must not be negative"),
    ("2024-01-01 00:05:00,0,2,0,1.5,3", "prices must be above zero"),
    ("2024-01-01 00:06:30,1,2,0.5,1.5,3", "not on the 1m grid"),
    ("2024-01-01 00:07:00,1,2,0.5,,3", "close '' is not a number"),
    ("2024-01-01 00:00:00,1,2,0.5,1.4,10", "repeats line 2 with other values"),
]


@pytest.mark.parametrize(("row", "reason"), BAD_ROWS)
def test_a_bad_row_is_reported_with_file_line_and_reason(
    tmp_path: Path, row: str, reason: str
) -> None:
    path = tmp_path / "A_B-1m.csv"
    path.write_text(f"time,open,high,low,close,volume\n{GOOD}\n{row}\n")
    with pytest.raises(CandleFileError) as caught:
        read_candle_file(path, "1m")
    [problem] = caught.value.problems
    assert (problem.file, problem.line) == (str(path), 3)
    assert reason in problem.reason
    assert f"{path}, line 3: " in str(caught.value)


def test_every_bad_row_is_reported_not_just_the_first(tmp_path: Path) -> None:
    path = tmp_path / "A_B-1m.csv"
    rows = "\n".join(row for row, _ in BAD_ROWS[:-1])
    path.write_text(f"time,open,high,low,close,volume\n{GOOD}\n{rows}\n")
    with pytest.raises(CandleFileError) as caught:
        read_candle_file(path, "1m")
    assert [p.line for p in caught.value.problems] == list(range(3, 3 + len(BAD_ROWS) - 1))


def test_an_identical_repeated_row_is_dropped(tmp_path: Path) -> None:
    path = tmp_path / "A_B-1m.csv"
    path.write_text(f"time,open,high,low,close,volume\n{GOOD}\n{GOOD}\n")
    assert len(read_candle_file(path, "1m")) == 1


def test_missing_columns_are_named(tmp_path: Path) -> None:
    path = tmp_path / "A_B-1m.csv"
    path.write_text("time,open,high,low,close\n2024-01-01,1,2,0.5,1.5\n")
    with pytest.raises(CandleFileError, match=r"missing columns \['time', 'volume'\]|'volume'"):
        read_candle_file(path, "1m")


def test_a_failing_import_leaves_nothing_behind(store: Store, tmp_path: Path) -> None:
    symbol, _candles = shipped(CANDLE_FILES[0])
    import_file(store, CANDLE_FILES[0], exchange="local")
    before = store.candles.read("local", symbol, "5m")
    # The same series, its values revised, with one bad row near the end: nothing may change.
    lines = gzip.decompress(CANDLE_FILES[0].read_bytes()).decode().splitlines()
    revised = [lines[0]] + [line.replace(line.split(",")[5], "1.0") for line in lines[1:]]
    revised[-2] = revised[-2].replace(revised[-2].split(",")[4], "-1")
    bad = tmp_path / CANDLE_FILES[0].name.replace(".csv.gz", ".csv")
    bad.write_text("\n".join(revised) + "\n")
    with pytest.raises(CandleFileError, match=f"line {len(revised) - 1}"):
        import_file(store, bad, exchange="local")
    pd.testing.assert_frame_equal(store.candles.read("local", symbol, "5m"), before)
    with pytest.raises(CandleFileError):
        import_file(store, bad, exchange="other")
    assert store.candles.read("other", symbol, "5m").empty


def test_reimport_changes_nothing(store: Store) -> None:
    first = import_file(store, CANDLE_FILES[1], exchange="local")
    again = import_file(store, CANDLE_FILES[1], exchange="local")
    assert first.result.new == first.rows
    assert (again.result.new, again.result.changed, again.result.unchanged) == (0, 0, first.rows)
