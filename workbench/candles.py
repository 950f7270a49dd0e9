"""Candles: the frame every part of the workbench passes around, and one bar as a value.

A candle frame is a pandas DataFrame indexed by a UTC `DatetimeIndex` named `ts` (the bar's
open time), with float64 columns `open, high, low, close, volume`, sorted and unique.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import pandas as pd

COLUMNS = ("open", "high", "low", "close", "volume")

TimeLike = str | datetime | pd.Timestamp | int | float


@dataclass(frozen=True, slots=True)
class Candle:
    """One bar: open time in ms since the epoch (UTC), prices and base volume."""

    ts_ms: int
    open: float
    high: float
    low: float
    close: float
    volume: float


def to_utc(value: TimeLike) -> pd.Timestamp:
    """Give a UTC timestamp for a time given as text, datetime, Timestamp or epoch ms."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return pd.Timestamp(int(value), unit="ms", tz="UTC")
    stamp = pd.Timestamp(value)
    return stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")


def empty_frame() -> pd.DataFrame:
    """Give a candle frame with no rows."""
    index = pd.DatetimeIndex([], tz="UTC", name="ts", dtype="datetime64[ns, UTC]")
    return pd.DataFrame({c: pd.Series([], dtype="float64") for c in COLUMNS}, index=index)


def normalize(frame: pd.DataFrame) -> pd.DataFrame:
    """Give a frame in the candle convention: UTC ns index named ts, float64 OHLCV columns."""
    missing = [c for c in COLUMNS if c not in frame.columns]
    if missing:
        raise ValueError(f"candles lack columns {missing}")
    index = pd.DatetimeIndex(frame.index)
    index = index.tz_localize("UTC") if index.tz is None else index.tz_convert("UTC")
    out = pd.DataFrame(
        {c: frame[c].to_numpy(dtype="float64") for c in COLUMNS},
        index=index.as_unit("ns").rename("ts"),
    )
    return out.sort_index()


def from_ccxt(rows: list[list[float]]) -> pd.DataFrame:
    """Give a candle frame from ccxt OHLCV rows `[ts_ms, open, high, low, close, volume]`."""
    if not rows:
        return empty_frame()
    frame = pd.DataFrame(rows, columns=["ts", *COLUMNS])
    frame.index = pd.to_datetime(frame.pop("ts").astype("int64"), unit="ms", utc=True)
    return normalize(frame)
