"""Incremental oscillators, volatility and volume indicators.

Mirrors ``kernels_osc.py`` operation for operation; see ``incremental_trend.py`` for the
conventions (bounded state, tuple of outputs, NaN while warming up).
"""

from __future__ import annotations

import math
from collections import deque

from workbench.strategy.indicators.incremental_trend import NAN


def _rsi_value(avg_gain: float, avg_loss: float) -> float:
    if avg_loss == 0.0:
        return 50.0 if avg_gain == 0.0 else 100.0
    return 100.0 - 100.0 / (1.0 + avg_gain / avg_loss)


def _mean_std(buf: deque[float], n: int) -> tuple[float, float]:
    acc = 0.0
    for v in buf:
        acc = acc + v
    mean = acc / n
    sq = 0.0
    for v in buf:
        d = v - mean
        sq = sq + d * d
    return mean, math.sqrt(sq / n)


def _true_range(h: float, lo: float, prev_close: float) -> float:
    tr = h - lo
    if prev_close == prev_close:
        a = abs(h - prev_close)
        b = abs(lo - prev_close)
        if a > tr:
            tr = a
        if b > tr:
            tr = b
    return tr


class RSI:
    """Wilder's RSI."""

    outputs = ("value",)

    def __init__(self, period: int) -> None:
        self.n = int(period)
        self.prev = NAN
        self.k = 0
        self.ag = 0.0
        self.al = 0.0

    def update(self, x: float) -> tuple[float, ...]:
        prev, self.prev = self.prev, x
        if prev != prev:
            return (NAN,)
        ch = x - prev
        gain = ch if ch > 0.0 else 0.0
        loss = -ch if ch < 0.0 else 0.0
        self.k += 1
        n = self.n
        if self.k <= n:
            self.ag = self.ag + gain
            self.al = self.al + loss
            if self.k < n:
                return (NAN,)
            self.ag = self.ag / n
            self.al = self.al / n
        else:
            self.ag = (self.ag * (n - 1) + gain) / n
            self.al = (self.al * (n - 1) + loss) / n
        return (_rsi_value(self.ag, self.al),)


class BBands:
    """Bollinger Bands with population standard deviation."""

    outputs = ("upper", "middle", "lower", "width", "percent_b")

    def __init__(self, period: int, mult: float) -> None:
        self.n = int(period)
        self.mult = float(mult)
        self.buf: deque[float] = deque(maxlen=self.n)

    def update(self, x: float) -> tuple[float, ...]:
        if not self.buf and x != x:
            return (NAN,) * 5
        self.buf.append(x)
        if len(self.buf) < self.n:
            return (NAN,) * 5
        m, sd = _mean_std(self.buf, self.n)
        up = m + self.mult * sd
        lo = m - self.mult * sd
        width = 0.0 if m == 0.0 else (up - lo) / m
        pct = 0.5 if up == lo else (x - lo) / (up - lo)
        return (up, m, lo, width, pct)


class ATR:
    """Wilder's average true range."""

    outputs = ("value",)

    def __init__(self, period: int) -> None:
        self.n = int(period)
        self.t = 0
        self.acc = 0.0
        self.prev_close = NAN

    def update(self, high: float, low: float, close: float) -> tuple[float, ...]:
        tr = _true_range(high, low, self.prev_close)
        self.prev_close = close
        t, n = self.t, self.n
        self.t += 1
        if t < n:
            self.acc = self.acc + tr
            if t < n - 1:
                return (NAN,)
            self.acc = self.acc / n
            return (self.acc,)
        self.acc = (self.acc * (n - 1) + tr) / n
        return (self.acc,)


class WindowMean:
    """Mean of the last n values, each window summed afresh (``window_mean_row``)."""

    def __init__(self, period: int) -> None:
        self.n = int(period)
        self.buf: deque[float] = deque(maxlen=self.n)

    def step(self, x: float) -> float:
        """Consume one value and give the mean of the last n (NaN while warming up)."""
        if not self.buf and x != x:
            return NAN
        self.buf.append(x)
        if len(self.buf) < self.n:
            return NAN
        acc = 0.0
        for v in self.buf:
            acc = acc + v
        return acc / self.n


class Stoch:
    """Stochastic oscillator %K (SMA-smoothed) and %D."""

    outputs = ("k", "d")

    def __init__(self, period: int, smooth_k: int, d_period: int) -> None:
        self.n = int(period)
        self.highs: deque[float] = deque(maxlen=self.n)
        self.lows: deque[float] = deque(maxlen=self.n)
        self.k_mean = WindowMean(smooth_k)
        self.d_mean = WindowMean(d_period)

    def update(self, high: float, low: float, close: float) -> tuple[float, ...]:
        self.highs.append(high)
        self.lows.append(low)
        raw = NAN
        if len(self.highs) == self.n:
            hh = max(self.highs)
            ll = min(self.lows)
            raw = 50.0 if hh == ll else 100.0 * ((close - ll) / (hh - ll))
        k = self.k_mean.step(raw)
        return (k, self.d_mean.step(k))


class ADX:
    """Average directional index with +DI and -DI (Wilder smoothing seeded by means)."""

    outputs = ("adx", "plus_di", "minus_di")

    def __init__(self, period: int) -> None:
        self.n = int(period)
        self.t = 0
        self.prev: tuple[float, float, float] | None = None
        self.sp = self.sm = self.st = self.sdx = 0.0

    def update(self, high: float, low: float, close: float) -> tuple[float, ...]:
        prev, self.prev = self.prev, (high, low, close)
        if prev is None:
            return (NAN, NAN, NAN)
        self.t += 1
        t, n = self.t, self.n
        up = high - prev[0]
        dn = prev[1] - low
        pdm = up if (up > dn and up > 0.0) else 0.0
        mdm = dn if (dn > up and dn > 0.0) else 0.0
        tr = _true_range(high, low, prev[2])
        if t <= n:
            self.sp = self.sp + pdm
            self.sm = self.sm + mdm
            self.st = self.st + tr
            if t < n:
                return (NAN, NAN, NAN)
            self.sp = self.sp / n
            self.sm = self.sm / n
            self.st = self.st / n
        else:
            self.sp = (self.sp * (n - 1) + pdm) / n
            self.sm = (self.sm * (n - 1) + mdm) / n
            self.st = (self.st * (n - 1) + tr) / n
        pdi = 100.0 * (self.sp / self.st) if self.st > 0.0 else 0.0
        mdi = 100.0 * (self.sm / self.st) if self.st > 0.0 else 0.0
        dsum = pdi + mdi
        dx = 100.0 * (abs(pdi - mdi) / dsum) if dsum > 0.0 else 0.0
        j = t - n + 1
        adx = NAN
        if j <= n:
            self.sdx = self.sdx + dx
            if j == n:
                self.sdx = self.sdx / n
                adx = self.sdx
        else:
            self.sdx = (self.sdx * (n - 1) + dx) / n
            adx = self.sdx
        return (adx, pdi, mdi)


class OBV:
    """On-balance volume, 0 on the first bar seen (its level depends on where it started)."""

    outputs = ("value",)

    def __init__(self) -> None:
        self.prev_close = NAN
        self.acc = 0.0

    def update(self, close: float, volume: float) -> tuple[float, ...]:
        prev, self.prev_close = self.prev_close, close
        if prev == prev:
            if close > prev:
                self.acc = self.acc + volume
            elif close < prev:
                self.acc = self.acc - volume
        return (self.acc,)


class VWAP:
    """Rolling volume-weighted average of the typical price (h+l+c)/3 over n bars."""

    outputs = ("value",)

    def __init__(self, period: int) -> None:
        self.n = int(period)
        self.tps: deque[float] = deque(maxlen=self.n)
        self.vols: deque[float] = deque(maxlen=self.n)

    def update(self, high: float, low: float, close: float, volume: float) -> tuple[float, ...]:
        tp = (high + low + close) / 3.0
        self.tps.append(tp)
        self.vols.append(volume)
        if len(self.tps) < self.n:
            return (NAN,)
        pv = 0.0
        vv = 0.0
        for p, v in zip(self.tps, self.vols, strict=True):
            pv = pv + p * v
            vv = vv + v
        return (tp if vv == 0.0 else pv / vv,)


class Volatility:
    """Population std of the last n log returns (per bar)."""

    outputs = ("value",)

    def __init__(self, period: int) -> None:
        self.n = int(period)
        self.prev = NAN
        self.rets: deque[float] = deque(maxlen=self.n)

    def update(self, x: float) -> tuple[float, ...]:
        prev, self.prev = self.prev, x
        if prev != prev:
            return (NAN,)
        ratio = x / prev
        self.rets.append(math.log(ratio) if ratio > 0.0 else NAN)
        if len(self.rets) < self.n:
            return (NAN,)
        return (_mean_std(self.rets, self.n)[1],)
