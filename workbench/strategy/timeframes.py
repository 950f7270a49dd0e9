"""Timeframe strings ("5m", "1h", "1d") and the closed-bar alignment of higher timeframes.

Convention: a bar is labelled by its OPEN time and covers ``[open, open + timeframe)``.
A higher-timeframe (HTF) bar is built from the strategy's own bars whose open time falls in
its bucket (``floor(ts, htf)``), whatever bars are present (gaps are simply absent rows; a
first, partial bucket is kept as it is). An HTF bar becomes usable at the first strategy bar
whose CLOSE time (open + timeframe) is ``>=`` the HTF bar's close time: the 5m bar opening at
10:55 closes at 11:00, so it is the first to see the 10:00–11:00 hour. Signals are decided at a
bar's close, so this is exactly "only HTF bars that have closed", without look-ahead.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from workbench.kernel_cache import njit
from workbench.timeframes import timeframe_seconds

__all__ = ["bucket_start_ns", "resample_ohlcv", "timeframe_seconds", "usable_htf_positions"]


def bucket_start_ns(ts_ns: np.ndarray | int, htf_seconds: int) -> np.ndarray | int:
    """Give the open time (ns since epoch, UTC) of the HTF bucket holding each bar open time."""
    step = htf_seconds * 1_000_000_000
    return (ts_ns // step) * step


def resample_ohlcv(candles: pd.DataFrame, htf_seconds: int) -> pd.DataFrame:
    """Aggregate strategy bars into HTF bars: first open, max high, min low, last close, volume sum.

    Only buckets holding at least one bar exist; the index is the bucket open time. Volume is
    summed in time order, exactly as the incremental aggregator does.
    """
    ts_ns = _index_ns(candles.index)
    buckets = np.asarray(bucket_start_ns(ts_ns, htf_seconds), dtype=np.int64)
    cols = [np.ascontiguousarray(candles[c].to_numpy(dtype=np.float64)) for c in OHLCV]
    starts, agg = _aggregate(buckets, *cols)
    index = pd.DatetimeIndex(pd.to_datetime(starts, utc=True), name="ts")
    return pd.DataFrame(dict(zip(OHLCV, agg, strict=True)), index=index)


OHLCV = ("open", "high", "low", "close", "volume")


@njit(cache=True)
def _aggregate(
    buckets: np.ndarray, o: np.ndarray, h: np.ndarray, lo: np.ndarray, c: np.ndarray, v: np.ndarray
) -> tuple[np.ndarray, tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]]:
    n = buckets.shape[0]
    count = 0
    for i in range(n):
        if i == 0 or buckets[i] != buckets[i - 1]:
            count += 1
    starts = np.empty(count, dtype=np.int64)
    out_o, out_h, out_l = np.empty(count), np.empty(count), np.empty(count)
    out_c, out_v = np.empty(count), np.empty(count)
    k = -1
    for i in range(n):
        if i == 0 or buckets[i] != buckets[i - 1]:
            k += 1
            starts[k] = buckets[i]
            out_o[k], out_h[k], out_l[k], out_c[k], out_v[k] = o[i], h[i], lo[i], c[i], v[i]
        else:
            if h[i] > out_h[k]:
                out_h[k] = h[i]
            if lo[i] < out_l[k]:
                out_l[k] = lo[i]
            out_c[k] = c[i]
            out_v[k] = out_v[k] + v[i]
    return starts, (out_o, out_h, out_l, out_c, out_v)


def usable_htf_positions(
    base_index: pd.DatetimeIndex, base_seconds: int, htf_index: pd.DatetimeIndex, htf_seconds: int
) -> np.ndarray:
    """For each strategy bar, give the position of the latest closed HTF bar (-1 if none yet)."""
    base_close = _index_ns(base_index) + base_seconds * 1_000_000_000
    htf_close = _index_ns(htf_index) + htf_seconds * 1_000_000_000
    return np.searchsorted(htf_close, base_close, side="right").astype(np.int64) - 1


def _index_ns(index: pd.Index) -> np.ndarray:
    idx = pd.DatetimeIndex(index)
    if idx.tz is None:
        idx = idx.tz_localize("UTC")
    return idx.tz_convert("UTC").as_unit("ns").asi8
