"""Where the local exchange's candles come from: the store (read briefly) or shipped CSV files.

The server never holds the DuckDB file (DuckDB locks it against every other process): history
is read once, into memory, before the server starts.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pandas as pd

from workbench.errors import WorkbenchError

COLUMNS = ["open", "high", "low", "close", "volume"]


class HistoryError(WorkbenchError):
    """No usable candles for the local exchange, and why."""


def load_history(
    store: Any,
    exchange: str = "local",
    symbols: Iterable[str] | None = None,
    timeframe: str = "5m",
) -> dict[str, pd.DataFrame]:
    """Give symbol → base-timeframe candles read from an open `workbench.store.Store`."""
    coverage = store.candles.coverage(exchange=exchange, timeframe=timeframe)
    available = [str(s) for s in coverage["symbol"]] if len(coverage) else []
    wanted = list(symbols) if symbols is not None else available
    missing = [s for s in wanted if s not in available]
    if missing or not wanted:
        raise HistoryError(
            f"no {timeframe} candles of exchange {exchange!r} in the store for "
            f"{', '.join(missing) or 'any symbol'} (stored: {', '.join(available) or 'none'}); "
            "import them with `workbench data import`"
        )
    return {s: normalize(store.candles.read(exchange, s, timeframe)) for s in wanted}


def load_history_file(
    db: str | Path,
    exchange: str = "local",
    symbols: Iterable[str] | None = None,
    timeframe: str = "5m",
) -> dict[str, pd.DataFrame]:
    """Give the history from a DuckDB file, opened read-only only for the time of the read."""
    from workbench.store import Store

    with Store.open(db, read_only=True) as store:
        return load_history(store, exchange, symbols, timeframe)


def load_csv_history(
    directory: str | Path, symbols: Iterable[str] | None = None, timeframe: str = "5m"
) -> dict[str, pd.DataFrame]:
    """Give the history from shipped files named like ``ETH_BTC-5m.csv.gz``."""
    directory = Path(directory)
    found = {
        p.name.split("-")[0].replace("_", "/"): p
        for p in sorted(directory.glob(f"*-{timeframe}.csv*"))
    }
    wanted = list(symbols) if symbols is not None else list(found)
    missing = [s for s in wanted if s not in found]
    if missing or not wanted:
        raise HistoryError(
            f"no {timeframe} candle files in {directory} for {', '.join(missing) or 'any symbol'}"
        )
    return {s: read_candle_csv(found[s]) for s in wanted}


def read_candle_csv(path: str | Path) -> pd.DataFrame:
    """Give one shipped CSV (time,open,high,low,close,volume) as a candle frame."""
    frame = pd.read_csv(path, parse_dates=["time"], index_col="time")
    return normalize(frame)


def normalize(frame: pd.DataFrame) -> pd.DataFrame:
    """Give candles in the workbench's shape: UTC DatetimeIndex ``ts``, float64 OHLCV."""
    out = frame[COLUMNS].astype("float64")
    index = pd.DatetimeIndex(out.index)
    out.index = index.tz_localize("UTC") if index.tz is None else index.tz_convert("UTC")
    out.index.name = "ts"
    return out.sort_index()
