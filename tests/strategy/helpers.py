"""Helpers for strategy tests: shipped candle files and example specs."""

from __future__ import annotations

from functools import cache
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parents[2]
STRATEGIES = ROOT / "data" / "strategies"


def candle_dir() -> Path:
    """Give the shipped candle folder (the repository copy if present, else the shared one)."""
    local = ROOT / "data" / "candles"
    if local.is_dir() and any(local.glob("*.csv.gz")):
        return local
    return Path("/work/shared/data/candles")


def candle_files() -> list[Path]:
    return sorted(candle_dir().glob("*-5m.csv.gz"))


def example_specs() -> list[Path]:
    return sorted(STRATEGIES.glob("*.json"))


@cache
def read_candles(name: str) -> pd.DataFrame:
    """Give a shipped candle file as the workbench's candle frame (UTC index 'ts')."""
    df = pd.read_csv(candle_dir() / name, parse_dates=["time"], index_col="time")
    df.index = pd.DatetimeIndex(df.index, name="ts")
    if df.index.tz is None:
        df.index = df.index.tz_localize("UTC")
    return df[["open", "high", "low", "close", "volume"]].astype("float64")


def replay(strategy, candles: pd.DataFrame) -> list:
    """Feed candles one by one through ``IncrementalStrategy.update``; give every event."""
    rows = candles.to_dict("records")
    return [strategy.update({"ts": ts, **row}) for ts, row in zip(candles.index, rows, strict=True)]


def assert_values_match(vectorized, events, names, start: int = 0, rtol: float = 1e-9) -> None:
    """Assert incremental indicator values equal the vectorized ones (NaN where NaN) from start."""
    import numpy as np

    for name in names:
        vec = vectorized[name][start:]
        inc = np.array([e.values[name] for e in events])[start:]
        assert np.array_equal(np.isnan(vec), np.isnan(inc)), f"{name}: warm-up NaNs differ"
        finite = np.abs(vec[np.isfinite(vec)])
        scale = finite.max() if finite.size else 1.0
        np.testing.assert_allclose(inc, vec, rtol=rtol, atol=rtol * 1e-3 * scale, err_msg=name)
