"""Candle files: CSV, CSV.gz and Parquet with time, open, high, low, close, volume.

A file is read and checked whole before anything is written: every bad row is reported with
the file, its line (CSV, counting the header as line 1) or row (Parquet), and the reason.
Times are ISO 8601 (naive means UTC) or epoch milliseconds; they must fall on the timeframe's
grid. A repeated time with identical values is dropped; with different values it is an error.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from workbench.candles import COLUMNS, normalize
from workbench.errors import WorkbenchError
from workbench.timeframes import timeframe_ms

TIME_COLUMNS = ("time", "timestamp", "date", "datetime", "ts")
_NAME = re.compile(
    r"^(?P<base>[A-Za-z0-9]+)_(?P<quote>[A-Za-z0-9]+)(?:_(?P<settle>[A-Za-z0-9]+))?"
    r"-(?P<timeframe>\d+[smhdw])(?:-[a-z]+)?\.(?:csv|csv\.gz|parquet)$"
)
MAX_REPORTED = 20


@dataclass(frozen=True)
class BadRow:
    """One rejected row: where it is and why."""

    file: str
    line: int
    reason: str
    where: str = "line"

    def __str__(self) -> str:
        return f"{self.file}, {self.where} {self.line}: {self.reason}"


class CandleFileError(WorkbenchError, ValueError):
    """A candle file that cannot be imported, with every problem found in it."""

    def __init__(self, file: Path | str, problems: list[BadRow] | str) -> None:
        self.file = str(file)
        self.problems = (
            problems if isinstance(problems, list) else [BadRow(self.file, 0, problems, "file")]
        )
        shown = [str(p) for p in self.problems[:MAX_REPORTED]]
        more = len(self.problems) - len(shown)
        if more:
            shown.append(f"... and {more} more bad rows")
        super().__init__(f"{self.file}: nothing imported\n" + "\n".join(shown))


@dataclass(frozen=True)
class SeriesName:
    """Symbol and timeframe read from a file name such as `ETH_BTC-5m.csv.gz`."""

    symbol: str
    timeframe: str


def parse_file_name(path: Path | str) -> SeriesName | None:
    """Give the symbol and timeframe a file's name tells, or None when it tells nothing."""
    match = _NAME.match(Path(path).name)
    if not match:
        return None
    symbol = f"{match['base'].upper()}/{match['quote'].upper()}"
    if match["settle"]:
        symbol += f":{match['settle'].upper()}"
    return SeriesName(symbol, match["timeframe"])


def _read_raw(path: Path, typed: bool) -> tuple[pd.DataFrame, int, str]:
    """Give the file's rows, the line of its first row, and the word for a line.

    A typed read (pyarrow's CSV parser) is fast; a text read keeps every line as written, so
    that each bad one can be named exactly.
    """
    name = path.name.lower()
    if name.endswith(".parquet"):
        return pd.read_parquet(path), 1, "row"
    if name.endswith((".csv", ".csv.gz")):
        if typed:
            return pd.read_csv(path, engine="pyarrow"), 2, "line"
        try:
            frame = pd.read_csv(path, dtype=str, keep_default_na=False, skip_blank_lines=False)
        except pd.errors.ParserError as exc:
            raise CandleFileError(path, f"not a well-formed CSV file: {exc}") from exc
        except (OSError, UnicodeDecodeError, EOFError) as exc:
            raise CandleFileError(path, f"cannot be read: {exc}") from exc
        return frame, 2, "line"
    raise CandleFileError(path, "unknown file type: expected .csv, .csv.gz or .parquet")


def _parse_times(values: pd.Series) -> pd.Series:
    if pd.api.types.is_datetime64_any_dtype(values):
        times = pd.to_datetime(values)
        return times.dt.tz_localize("UTC") if times.dt.tz is None else times.dt.tz_convert("UTC")
    text = values.astype(str).str.strip()
    numeric = pd.to_numeric(text, errors="coerce")
    if numeric.notna().all() and len(numeric):
        return pd.to_datetime(numeric.astype("int64"), unit="ms", utc=True)
    return pd.to_datetime(text, errors="coerce", utc=True, format="ISO8601")


def read_candle_file(path: Path | str, timeframe: str) -> pd.DataFrame:
    """Give a file's candles, checked whole; raise CandleFileError listing every bad row."""
    path = Path(path)
    try:
        return _checked(path, timeframe, typed=True)
    except (CandleFileError, ValueError, TypeError, OSError):
        # Read again as text: slower, but each problem gets its exact line.
        return _checked(path, timeframe, typed=False)


def _checked(path: Path, timeframe: str, typed: bool) -> pd.DataFrame:
    raw, first_line, word = _read_raw(path, typed)
    raw.columns = [str(c).strip().lower() for c in raw.columns]
    time_column = next((c for c in TIME_COLUMNS if c in raw.columns), None)
    missing = [c for c in COLUMNS if c not in raw.columns]
    if time_column is None or missing:
        wanted = ["time" if time_column is None else time_column, *missing]
        raise CandleFileError(path, f"missing columns {wanted}: the file has {list(raw.columns)}")
    lines = np.arange(len(raw)) + first_line
    problems: dict[int, str] = {}

    times = _parse_times(raw[time_column])
    for i in np.flatnonzero(times.isna().to_numpy()):
        problems.setdefault(i, f"time {raw[time_column].iloc[i]!r} is not a date and time")
    values = {}
    for column in COLUMNS:
        numbers = pd.to_numeric(raw[column], errors="coerce").astype("float64")
        for i in np.flatnonzero(~np.isfinite(numbers.to_numpy())):
            problems.setdefault(i, f"{column} {raw[column].iloc[i]!r} is not a number")
        values[column] = numbers.to_numpy()
    o, h, lo, c, v = (values[col] for col in COLUMNS)
    with np.errstate(invalid="ignore"):
        checks = (
            (np.minimum.reduce([o, h, lo, c]) <= 0, "prices must be above zero"),
            (v < 0, "volume must not be negative"),
            (h < np.maximum.reduce([o, lo, c]), "high is below open, low or close"),
            (lo > np.minimum.reduce([o, h, c]), "low is above open, high or close"),
        )
    for bad, reason in checks:
        for i in np.flatnonzero(bad):
            problems.setdefault(i, reason)
    step_ms = timeframe_ms(timeframe)
    valid_times = times.notna().to_numpy()
    epoch_ms = times.dt.as_unit("ms").astype("int64").to_numpy()
    for i in np.flatnonzero(valid_times & (epoch_ms % step_ms != 0)):
        problems.setdefault(i, f"time {times.iloc[i]} is not on the {timeframe} grid")

    frame = pd.DataFrame(values, index=pd.DatetimeIndex(times, name="ts"))
    frame["line"] = lines
    clean = frame.iloc[[i for i in range(len(frame)) if i not in problems]]
    repeated = clean.index.duplicated(keep=False)
    if repeated.any():
        for _, group in clean[repeated].groupby(level=0):
            if len(group[list(COLUMNS)].drop_duplicates()) > 1:
                first = int(group["line"].iloc[0])
                for line in group["line"].iloc[1:]:
                    problems.setdefault(
                        int(line) - first_line,
                        f"time {group.index[0]} repeats {word} {first} with other values",
                    )
    if problems:
        raise CandleFileError(
            path,
            [BadRow(str(path), int(lines[i]), why, word) for i, why in sorted(problems.items())],
        )
    frame = frame[~frame.index.duplicated(keep="first")].drop(columns="line")
    return normalize(frame)
