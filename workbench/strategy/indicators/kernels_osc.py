"""Vectorized (numba) kernels for oscillators, volatility and volume indicators.

Same layout and conventions as ``kernels_trend.py``; mirrored operation for operation by
``incremental_osc.py``. Divisions by zero give the neutral value documented per indicator.
"""

from __future__ import annotations

import math

import numpy as np

from workbench.kernel_cache import drop_stale, njit
from workbench.strategy.indicators import kernels_trend
from workbench.strategy.indicators.kernels_trend import first_valid


@njit(cache=True)
def rsi_value(avg_gain: float, avg_loss: float) -> float:
    """Give the RSI from Wilder averages (50 when flat, 100 when there are no losses)."""
    if avg_loss == 0.0:
        return 50.0 if avg_gain == 0.0 else 100.0
    return 100.0 - 100.0 / (1.0 + avg_gain / avg_loss)


@njit(cache=True)
def rsi_nb(x: np.ndarray, period: np.ndarray) -> np.ndarray:
    """Give Wilder's RSI: averages seeded by the mean of the first n changes, then (a*(n-1)+v)/n."""
    k_cols, t_len = period.shape[0], x.shape[1]
    out = np.full((k_cols, t_len), np.nan)
    for c in range(k_cols):
        xc = x[c if x.shape[0] > 1 else 0]
        n = period[c]
        s = first_valid(xc)
        ag = 0.0
        al = 0.0
        for t in range(s + 1, t_len):
            ch = xc[t] - xc[t - 1]
            gain = ch if ch > 0.0 else 0.0
            loss = -ch if ch < 0.0 else 0.0
            k = t - s
            if k <= n:
                ag = ag + gain
                al = al + loss
                if k == n:
                    ag = ag / n
                    al = al / n
                    out[c, t] = rsi_value(ag, al)
            else:
                ag = (ag * (n - 1) + gain) / n
                al = (al * (n - 1) + loss) / n
                out[c, t] = rsi_value(ag, al)
    return out


@njit(cache=True)
def window_mean_std(x: np.ndarray, t: int, n: int) -> tuple[float, float]:
    """Give the mean and POPULATION standard deviation of x[t-n+1 .. t] (two passes, in order)."""
    acc = 0.0
    for j in range(t - n + 1, t + 1):
        acc = acc + x[j]
    mean = acc / n
    sq = 0.0
    for j in range(t - n + 1, t + 1):
        d = x[j] - mean
        sq = sq + d * d
    return mean, math.sqrt(sq / n)


@njit(cache=True)
def bbands_nb(
    x: np.ndarray, period: np.ndarray, mult: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Give (upper, middle, lower, width, percent_b) of Bollinger Bands (population std)."""
    k_cols, t_len = period.shape[0], x.shape[1]
    outs = [np.full((k_cols, t_len), np.nan) for _ in range(5)]
    upper, middle, lower, width, pct = outs[0], outs[1], outs[2], outs[3], outs[4]
    for c in range(k_cols):
        xc = x[c if x.shape[0] > 1 else 0]
        n = period[c]
        s = first_valid(xc)
        for t in range(s + n - 1, t_len):
            m, sd = window_mean_std(xc, t, n)
            up = m + mult[c] * sd
            lo = m - mult[c] * sd
            upper[c, t] = up
            middle[c, t] = m
            lower[c, t] = lo
            width[c, t] = 0.0 if m == 0.0 else (up - lo) / m
            pct[c, t] = 0.5 if up == lo else (xc[t] - lo) / (up - lo)
    return upper, middle, lower, width, pct


@njit(cache=True)
def true_range(h: float, lo: float, prev_close: float) -> float:
    """Give the true range of a bar (high - low when there is no previous close)."""
    tr = h - lo
    if not np.isnan(prev_close):
        a = abs(h - prev_close)
        b = abs(lo - prev_close)
        if a > tr:
            tr = a
        if b > tr:
            tr = b
    return tr


@njit(cache=True)
def atr_nb(high: np.ndarray, low: np.ndarray, close: np.ndarray, period: np.ndarray) -> np.ndarray:
    """Give Wilder's ATR: TR of bar 0 is high-low; seeded with the mean of the first n TRs."""
    k_cols, t_len = period.shape[0], high.shape[1]
    out = np.full((k_cols, t_len), np.nan)
    h, lo, cl = high[0], low[0], close[0]
    for c in range(k_cols):
        n = period[c]
        acc = 0.0
        for t in range(t_len):
            tr = true_range(h[t], lo[t], cl[t - 1] if t > 0 else np.nan)
            if t < n:
                acc = acc + tr
                if t == n - 1:
                    acc = acc / n
                    out[c, t] = acc
            else:
                acc = (acc * (n - 1) + tr) / n
                out[c, t] = acc
    return out


@njit(cache=True)
def window_mean_row(x: np.ndarray, n: int, out: np.ndarray) -> None:
    """Fill ``out`` with the mean of each window of n values of ``x``, each summed afresh.

    Unlike a running sum, the mean of values within bounds stays within them exactly (every
    rounding is monotonic), and the mean of n equal values is that value: bounded
    oscillators are smoothed with it.
    """
    s = first_valid(x)
    for t in range(s + n - 1, x.shape[0]):
        acc = 0.0
        for j in range(t - n + 1, t + 1):
            acc = acc + x[j]
        out[t] = acc / n


@njit(cache=True)
def stoch_nb(
    high: np.ndarray,
    low: np.ndarray,
    close: np.ndarray,
    period: np.ndarray,
    smooth_k: np.ndarray,
    d_period: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """Give (k, d): %K = 100*(close-LL)/(HH-LL) (50 if HH == LL), smoothed; %D its mean.

    The ratio is taken before scaling and the means are windowed (`window_mean_row`), so %K
    and %D stay within [0, 100] exactly and are exactly 0 (100) at the lowest low (highest high).
    """
    k_cols, t_len = period.shape[0], high.shape[1]
    k_out = np.full((k_cols, t_len), np.nan)
    d_out = np.full((k_cols, t_len), np.nan)
    raw = np.empty(t_len)
    h, lo, cl = high[0], low[0], close[0]
    for c in range(k_cols):
        n = period[c]
        raw[:] = np.nan
        for t in range(n - 1, t_len):
            hh = h[t - n + 1]
            ll = lo[t - n + 1]
            for j in range(t - n + 2, t + 1):
                if h[j] > hh:
                    hh = h[j]
                if lo[j] < ll:
                    ll = lo[j]
            raw[t] = 50.0 if hh == ll else 100.0 * ((cl[t] - ll) / (hh - ll))
        window_mean_row(raw, smooth_k[c], k_out[c])
        window_mean_row(k_out[c], d_period[c], d_out[c])
    return k_out, d_out


@njit(cache=True)
def adx_nb(
    high: np.ndarray, low: np.ndarray, close: np.ndarray, period: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Give (adx, plus_di, minus_di) with Wilder smoothing seeded by means (see README)."""
    k_cols, t_len = period.shape[0], high.shape[1]
    adx = np.full((k_cols, t_len), np.nan)
    pdi_out = np.full((k_cols, t_len), np.nan)
    mdi_out = np.full((k_cols, t_len), np.nan)
    h, lo, cl = high[0], low[0], close[0]
    for c in range(k_cols):
        n = period[c]
        sp = 0.0
        sm = 0.0
        st = 0.0
        sdx = 0.0
        for t in range(1, t_len):
            up = h[t] - h[t - 1]
            dn = lo[t - 1] - lo[t]
            pdm = up if (up > dn and up > 0.0) else 0.0
            mdm = dn if (dn > up and dn > 0.0) else 0.0
            tr = true_range(h[t], lo[t], cl[t - 1])
            if t <= n:
                sp = sp + pdm
                sm = sm + mdm
                st = st + tr
                if t < n:
                    continue
                sp = sp / n
                sm = sm / n
                st = st / n
            else:
                sp = (sp * (n - 1) + pdm) / n
                sm = (sm * (n - 1) + mdm) / n
                st = (st * (n - 1) + tr) / n
            # Ratios before scaling: a ratio <= 1 scaled by 100 stays <= 100 exactly.
            pdi = 100.0 * (sp / st) if st > 0.0 else 0.0
            mdi = 100.0 * (sm / st) if st > 0.0 else 0.0
            pdi_out[c, t] = pdi
            mdi_out[c, t] = mdi
            dsum = pdi + mdi
            dx = 100.0 * (abs(pdi - mdi) / dsum) if dsum > 0.0 else 0.0
            j = t - n + 1
            if j <= n:
                sdx = sdx + dx
                if j == n:
                    sdx = sdx / n
                    adx[c, t] = sdx
            else:
                sdx = (sdx * (n - 1) + dx) / n
                adx[c, t] = sdx
    return adx, pdi_out, mdi_out


@njit(cache=True)
def obv_nb(close: np.ndarray, volume: np.ndarray, k_cols: int) -> np.ndarray:
    """Give on-balance volume starting at 0 on the first bar."""
    t_len = close.shape[1]
    out = np.full((k_cols, t_len), np.nan)
    cl, v = close[0], volume[0]
    for c in range(k_cols):
        acc = 0.0
        for t in range(t_len):
            if t > 0:
                if cl[t] > cl[t - 1]:
                    acc = acc + v[t]
                elif cl[t] < cl[t - 1]:
                    acc = acc - v[t]
            out[c, t] = acc
    return out


@njit(cache=True)
def vwap_nb(
    high: np.ndarray, low: np.ndarray, close: np.ndarray, volume: np.ndarray, period: np.ndarray
) -> np.ndarray:
    """Give the rolling VWAP of the typical price over n bars (typical price if no volume)."""
    k_cols, t_len = period.shape[0], high.shape[1]
    out = np.full((k_cols, t_len), np.nan)
    h, lo, cl, v = high[0], low[0], close[0], volume[0]
    tp = np.empty(t_len)
    for t in range(t_len):
        tp[t] = (h[t] + lo[t] + cl[t]) / 3.0
    for c in range(k_cols):
        n = period[c]
        for t in range(n - 1, t_len):
            pv = 0.0
            vv = 0.0
            for j in range(t - n + 1, t + 1):
                pv = pv + tp[j] * v[j]
                vv = vv + v[j]
            out[c, t] = tp[t] if vv == 0.0 else pv / vv
    return out


@njit(cache=True)
def volatility_nb(x: np.ndarray, period: np.ndarray) -> np.ndarray:
    """Give the population std of the last n log returns (per bar, not annualized)."""
    k_cols, t_len = period.shape[0], x.shape[1]
    out = np.full((k_cols, t_len), np.nan)
    r = np.empty(t_len)
    for c in range(k_cols):
        xc = x[c if x.shape[0] > 1 else 0]
        n = period[c]
        s = first_valid(xc)
        r[:] = np.nan
        for t in range(s + 1, t_len):
            ratio = xc[t] / xc[t - 1]
            r[t] = math.log(ratio) if ratio > 0.0 else np.nan
        for t in range(s + n, t_len):
            out[c, t] = window_mean_std(r, t, n)[1]
    return out


# Cached kernels older than the helpers they call are compiled anew (see kernel_cache).
drop_stale((rsi_nb, bbands_nb, stoch_nb, volatility_nb, window_mean_row), (kernels_trend,))
