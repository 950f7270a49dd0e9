"""Vectorized (numba) kernels for moving averages, channels and momentum.

Layout: every kernel takes inputs shaped ``(K_in, T)`` where ``K_in`` is 1 (the same series
for all columns, e.g. a price field) or K (one series per parameter combination), and one
parameter value per column (arrays of length K). It returns ``(K, T)`` float64 arrays. Leading
NaNs in an input (an indicator used as a source that is still warming up) are skipped: the
kernel starts at the first non-NaN value. After that, inputs are never NaN by construction.

Each recurrence here is mirrored operation for operation by the incremental classes in
``incremental_trend.py`` so that both evaluators give bit-identical floats.
"""

from __future__ import annotations

import numpy as np

from workbench.kernel_cache import njit


@njit(cache=True)
def first_valid(x: np.ndarray) -> int:
    """Give the index of the first non-NaN value of a 1-D array (len(x) if none)."""
    for t in range(x.shape[0]):
        if not np.isnan(x[t]):
            return t
    return x.shape[0]


@njit(cache=True)
def sma_row(x: np.ndarray, n: int, out: np.ndarray) -> None:
    """Fill ``out`` with the simple moving average of ``x`` (running sum, divide by n)."""
    s = first_valid(x)
    acc = 0.0
    for t in range(s, x.shape[0]):
        acc = acc + x[t]
        if t - s >= n:
            acc = acc - x[t - n]
        if t - s >= n - 1:
            out[t] = acc / n


@njit(cache=True)
def ema_row(x: np.ndarray, n: int, out: np.ndarray) -> None:
    """Fill ``out`` with the EMA of ``x``: alpha = 2/(n+1), seeded with the SMA of the first n."""
    s = first_valid(x)
    alpha = 2.0 / (n + 1.0)
    beta = 1.0 - alpha
    acc = 0.0
    e = np.nan
    for t in range(s, x.shape[0]):
        k = t - s
        if k < n:
            acc = acc + x[t]
            if k == n - 1:
                e = acc / n
                out[t] = e
        else:
            e = alpha * x[t] + beta * e
            out[t] = e


@njit(cache=True)
def sma_nb(x: np.ndarray, period: np.ndarray) -> np.ndarray:
    """Give the SMA for each column: x (K_in, T), period (K,) → (K, T)."""
    k_cols, t_len = period.shape[0], x.shape[1]
    out = np.full((k_cols, t_len), np.nan)
    for c in range(k_cols):
        sma_row(x[c if x.shape[0] > 1 else 0], period[c], out[c])
    return out


@njit(cache=True)
def ema_nb(x: np.ndarray, period: np.ndarray) -> np.ndarray:
    """Give the SMA-seeded EMA for each column."""
    k_cols, t_len = period.shape[0], x.shape[1]
    out = np.full((k_cols, t_len), np.nan)
    for c in range(k_cols):
        ema_row(x[c if x.shape[0] > 1 else 0], period[c], out[c])
    return out


@njit(cache=True)
def wma_nb(x: np.ndarray, period: np.ndarray) -> np.ndarray:
    """Give the linearly weighted moving average (weights 1..n, newest heaviest)."""
    k_cols, t_len = period.shape[0], x.shape[1]
    out = np.full((k_cols, t_len), np.nan)
    for c in range(k_cols):
        xc = x[c if x.shape[0] > 1 else 0]
        n = period[c]
        denom = n * (n + 1) / 2.0
        s = first_valid(xc)
        ssum = 0.0
        wsum = 0.0
        for t in range(s, t_len):
            k = t - s
            if k < n:
                ssum = ssum + xc[t]
                wsum = wsum + (k + 1) * xc[t]
                if k == n - 1:
                    out[c, t] = wsum / denom
            else:
                wsum = wsum - ssum + n * xc[t]
                ssum = ssum - xc[t - n] + xc[t]
                out[c, t] = wsum / denom
    return out


@njit(cache=True)
def macd_nb(
    x: np.ndarray, fast: np.ndarray, slow: np.ndarray, signal: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Give (macd, signal, hist): EMA(fast) - EMA(slow), its EMA(signal), and their difference."""
    k_cols, t_len = fast.shape[0], x.shape[1]
    line = np.full((k_cols, t_len), np.nan)
    sig = np.full((k_cols, t_len), np.nan)
    hist = np.full((k_cols, t_len), np.nan)
    ef = np.empty(t_len)
    es = np.empty(t_len)
    for c in range(k_cols):
        xc = x[c if x.shape[0] > 1 else 0]
        ef[:] = np.nan
        es[:] = np.nan
        ema_row(xc, fast[c], ef)
        ema_row(xc, slow[c], es)
        for t in range(t_len):
            if not (np.isnan(ef[t]) or np.isnan(es[t])):
                line[c, t] = ef[t] - es[t]
        ema_row(line[c], signal[c], sig[c])
        for t in range(t_len):
            if not np.isnan(sig[c, t]):
                hist[c, t] = line[c, t] - sig[c, t]
    return line, sig, hist


@njit(cache=True)
def rolling_extreme_nb(x: np.ndarray, period: np.ndarray, want_max: bool) -> np.ndarray:
    """Give the rolling maximum (or minimum) over the last n values, current bar included."""
    k_cols, t_len = period.shape[0], x.shape[1]
    out = np.full((k_cols, t_len), np.nan)
    for c in range(k_cols):
        xc = x[c if x.shape[0] > 1 else 0]
        n = period[c]
        s = first_valid(xc)
        for t in range(s + n - 1, t_len):
            m = xc[t - n + 1]
            for j in range(t - n + 2, t + 1):
                if (xc[j] > m) if want_max else (xc[j] < m):
                    m = xc[j]
            out[c, t] = m
    return out


@njit(cache=True)
def donchian_nb(
    high: np.ndarray, low: np.ndarray, period: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Give (upper, lower, middle): highest high, lowest low of the last n bars, their mean."""
    upper = rolling_extreme_nb(high, period, True)
    lower = rolling_extreme_nb(low, period, False)
    middle = (upper + lower) / 2.0
    return upper, lower, middle


@njit(cache=True)
def roc_nb(x: np.ndarray, period: np.ndarray) -> np.ndarray:
    """Give the rate of change in percent: 100 * (x - x[n ago]) / x[n ago] (0 if x[n ago] == 0)."""
    k_cols, t_len = period.shape[0], x.shape[1]
    out = np.full((k_cols, t_len), np.nan)
    for c in range(k_cols):
        xc = x[c if x.shape[0] > 1 else 0]
        n = period[c]
        s = first_valid(xc)
        for t in range(s + n, t_len):
            p = xc[t - n]
            out[c, t] = 0.0 if p == 0.0 else 100.0 * (xc[t] - p) / p
    return out
