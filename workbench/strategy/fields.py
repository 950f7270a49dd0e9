"""Price fields a rule or indicator may read, and how candles are checked before use."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

OHLCV = ("open", "high", "low", "close", "volume")


def derived_fields(o: Any, h: Any, lo: Any, c: Any) -> dict[str, Any]:
    """Give hl2, hlc3 and ohlc4 (works on floats and arrays with the same operation order)."""
    return {"hl2": (h + lo) / 2.0, "hlc3": (h + lo + c) / 3.0, "ohlc4": (o + h + lo + c) / 4.0}


def check_candles(candles: pd.DataFrame) -> None:
    """Raise ValueError unless candles have OHLCV float columns, no NaN, and a rising UTC index."""
    missing = [c for c in OHLCV if c not in candles.columns]
    if missing:
        raise ValueError(f"candles lack column(s) {missing}; need {list(OHLCV)}")
    if not isinstance(candles.index, pd.DatetimeIndex):
        raise ValueError("candles need a DatetimeIndex of bar open times (named 'ts')")
    if not candles.index.is_monotonic_increasing or not candles.index.is_unique:
        raise ValueError("candle times must be strictly increasing (sorted, no duplicates)")
    values = candles[list(OHLCV)].to_numpy(dtype=np.float64)
    if np.isnan(values).any():
        raise ValueError("candles contain NaN; drop missing bars instead of filling them")
