"""Independent plain-Python recomputations of the indicators, written from the textbook
definitions (slices, statistics module, different update forms) rather than from the kernels."""

from __future__ import annotations

import itertools
import math
import statistics

NAN = math.nan


def sma(x: list[float], n: int) -> list[float]:
    return [NAN if t < n - 1 else sum(x[t - n + 1 : t + 1]) / n for t in range(len(x))]


def ema(x: list[float], n: int) -> list[float]:
    out = [NAN] * len(x)
    start = next((i for i, v in enumerate(x) if not math.isnan(v)), len(x))
    if start + n > len(x):
        return out
    e = statistics.fmean(x[start : start + n])
    out[start + n - 1] = e
    alpha = 2 / (n + 1)
    for t in range(start + n, len(x)):
        e = e + alpha * (x[t] - e)
        out[t] = e
    return out


def wma(x: list[float], n: int) -> list[float]:
    weights = list(range(1, n + 1))
    total = sum(weights)
    return [
        NAN
        if t < n - 1
        else sum(w * v for w, v in zip(weights, x[t - n + 1 : t + 1], strict=False)) / total
        for t in range(len(x))
    ]


def wilder(values: list[float], n: int, first: int) -> list[float]:
    """Wilder's smoothing of values[first:], seeded with the mean of the first n."""
    out = [NAN] * len(values)
    if first + n > len(values):
        return out
    avg = statistics.fmean(values[first : first + n])
    out[first + n - 1] = avg
    for t in range(first + n, len(values)):
        avg = avg + (values[t] - avg) / n
        out[t] = avg
    return out


def rsi(x: list[float], n: int) -> list[float]:
    gains = [NAN] + [max(b - a, 0.0) for a, b in itertools.pairwise(x)]
    losses = [NAN] + [max(a - b, 0.0) for a, b in itertools.pairwise(x)]
    ag, al = wilder(gains, n, 1), wilder(losses, n, 1)
    out = []
    for g, lo in zip(ag, al, strict=False):
        if math.isnan(g):
            out.append(NAN)
        elif lo == 0:
            out.append(50.0 if g == 0 else 100.0)
        else:
            out.append(100 * g / (g + lo))
    return out


def macd(x: list[float], fast: int, slow: int, signal: int) -> tuple[list[float], ...]:
    line = [a - b for a, b in zip(ema(x, fast), ema(x, slow), strict=False)]
    sig = ema(line, signal)
    return line, sig, [a - b for a, b in zip(line, sig, strict=False)]


def bbands(x: list[float], n: int, k: float) -> tuple[list[float], ...]:
    up, mid, lo = [], [], []
    for t in range(len(x)):
        if t < n - 1:
            up.append(NAN), mid.append(NAN), lo.append(NAN)
            continue
        w = x[t - n + 1 : t + 1]
        m, sd = statistics.fmean(w), statistics.pstdev(w)
        up.append(m + k * sd), mid.append(m), lo.append(m - k * sd)
    return up, mid, lo


def true_ranges(h: list[float], lo: list[float], c: list[float]) -> list[float]:
    return [h[0] - lo[0]] + [
        max(h[t] - lo[t], abs(h[t] - c[t - 1]), abs(lo[t] - c[t - 1])) for t in range(1, len(h))
    ]


def atr(h: list[float], lo: list[float], c: list[float], n: int) -> list[float]:
    return wilder(true_ranges(h, lo, c), n, 0)


def stoch(h, lo, c, n: int, smooth: int, d: int) -> tuple[list[float], list[float]]:
    raw = []
    for t in range(len(c)):
        if t < n - 1:
            raw.append(NAN)
            continue
        hh, ll = max(h[t - n + 1 : t + 1]), min(lo[t - n + 1 : t + 1])
        raw.append(50.0 if hh == ll else 100 * (c[t] - ll) / (hh - ll))
    k = _sma_nan(raw, smooth)
    return k, _sma_nan(k, d)


def _sma_nan(x: list[float], n: int) -> list[float]:
    out = []
    for t in range(len(x)):
        w = x[max(0, t - n + 1) : t + 1]
        out.append(NAN if len(w) < n or any(math.isnan(v) for v in w) else sum(w) / n)
    return out


def adx(h, lo, c, n: int) -> tuple[list[float], ...]:
    size = len(c)
    pdm, mdm = [NAN] * size, [NAN] * size
    for t in range(1, size):
        up, dn = h[t] - h[t - 1], lo[t - 1] - lo[t]
        pdm[t] = up if up > dn and up > 0 else 0.0
        mdm[t] = dn if dn > up and dn > 0 else 0.0
    tr = [NAN, *true_ranges(h, lo, c)[1:]]
    sp, sm, st = wilder(pdm, n, 1), wilder(mdm, n, 1), wilder(tr, n, 1)
    pdi = [
        NAN if math.isnan(s) else (100 * a / s if s > 0 else 0.0)
        for a, s in zip(sp, st, strict=False)
    ]
    mdi = [
        NAN if math.isnan(s) else (100 * a / s if s > 0 else 0.0)
        for a, s in zip(sm, st, strict=False)
    ]
    dx = [
        NAN if math.isnan(p) else (100 * abs(p - m) / (p + m) if p + m > 0 else 0.0)
        for p, m in zip(pdi, mdi, strict=False)
    ]
    return wilder(dx, n, n), pdi, mdi


def obv(c: list[float], v: list[float]) -> list[float]:
    out, acc = [0.0], 0.0
    for t in range(1, len(c)):
        acc += v[t] if c[t] > c[t - 1] else (-v[t] if c[t] < c[t - 1] else 0.0)
        out.append(acc)
    return out


def vwap(h, lo, c, v, n: int) -> list[float]:
    tp = [(a + b + d) / 3 for a, b, d in zip(h, lo, c, strict=False)]
    out = []
    for t in range(len(c)):
        if t < n - 1:
            out.append(NAN)
            continue
        vol = sum(v[t - n + 1 : t + 1])
        pv = sum(p * q for p, q in zip(tp[t - n + 1 : t + 1], v[t - n + 1 : t + 1], strict=False))
        out.append(tp[t] if vol == 0 else pv / vol)
    return out


def rolling(x: list[float], n: int, fn) -> list[float]:
    return [NAN if t < n - 1 else fn(x[t - n + 1 : t + 1]) for t in range(len(x))]


def roc(x: list[float], n: int) -> list[float]:
    return [NAN if t < n else 100 * (x[t] / x[t - n] - 1) for t in range(len(x))]


def volatility(x: list[float], n: int) -> list[float]:
    rets = [NAN] + [math.log(b / a) for a, b in itertools.pairwise(x)]
    return [NAN if t < n else statistics.pstdev(rets[t - n + 1 : t + 1]) for t in range(len(x))]
