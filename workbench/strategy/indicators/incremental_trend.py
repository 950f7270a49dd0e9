"""Incremental (one value at a time) moving averages, channels and momentum.

Each class mirrors its kernel in ``kernels_trend.py`` operation for operation (same
recurrences, same order of floating-point operations), so replaying a series gives the very
same floats as the vectorized evaluator. State is bounded: a few floats plus, for windowed
indicators, a ring buffer of at most ``period`` values. ``update`` returns a tuple with one
float per output (NaN while warming up). Leading NaN inputs are skipped, as in the kernels.
"""

from __future__ import annotations

import math
from collections import deque

NAN = math.nan


class SMA:
    """Simple moving average by running sum."""

    outputs = ("value",)

    def __init__(self, period: int) -> None:
        self.n = int(period)
        self.buf: deque[float] = deque(maxlen=self.n)
        self.count = 0
        self.acc = 0.0

    def step(self, x: float) -> float:
        """Consume one value and give the current average (NaN while warming up)."""
        if self.count == 0 and x != x:
            return NAN
        acc = self.acc + x
        if self.count >= self.n:
            acc = acc - self.buf[0]
        self.buf.append(x)
        self.count += 1
        self.acc = acc
        return acc / self.n if self.count >= self.n else NAN

    def update(self, x: float) -> tuple[float, ...]:
        return (self.step(x),)


class EMA:
    """Exponential moving average, alpha = 2/(n+1), seeded with the SMA of the first n values."""

    outputs = ("value",)

    def __init__(self, period: int) -> None:
        self.n = int(period)
        self.alpha = 2.0 / (self.n + 1.0)
        self.beta = 1.0 - self.alpha
        self.count = 0
        self.acc = 0.0
        self.value = NAN

    def step(self, x: float) -> float:
        """Consume one value and give the current EMA (NaN while warming up)."""
        if self.count == 0 and x != x:
            return NAN
        k = self.count
        self.count += 1
        if k < self.n:
            self.acc = self.acc + x
            if k == self.n - 1:
                self.value = self.acc / self.n
            return self.value
        self.value = self.alpha * x + self.beta * self.value
        return self.value

    def update(self, x: float) -> tuple[float, ...]:
        return (self.step(x),)


class WMA:
    """Linearly weighted moving average (weights 1..n) by running sums."""

    outputs = ("value",)

    def __init__(self, period: int) -> None:
        self.n = int(period)
        self.denom = self.n * (self.n + 1) / 2.0
        self.buf: deque[float] = deque(maxlen=self.n)
        self.count = 0
        self.ssum = 0.0
        self.wsum = 0.0

    def update(self, x: float) -> tuple[float, ...]:
        if self.count == 0 and x != x:
            return (NAN,)
        k, n = self.count, self.n
        self.count += 1
        if k < n:
            self.ssum = self.ssum + x
            self.wsum = self.wsum + (k + 1) * x
            self.buf.append(x)
            return (self.wsum / self.denom if k == n - 1 else NAN,)
        self.wsum = self.wsum - self.ssum + n * x
        self.ssum = self.ssum - self.buf[0] + x
        self.buf.append(x)
        return (self.wsum / self.denom,)


class MACD:
    """MACD line (EMA fast - EMA slow), its signal EMA and the histogram."""

    outputs = ("macd", "signal", "hist")

    def __init__(self, fast: int, slow: int, signal: int) -> None:
        self.fast = EMA(fast)
        self.slow = EMA(slow)
        self.signal = EMA(signal)

    def update(self, x: float) -> tuple[float, ...]:
        f = self.fast.step(x)
        s = self.slow.step(x)
        line = NAN if (f != f or s != s) else f - s
        sig = self.signal.step(line)
        hist = NAN if sig != sig else line - sig
        return (line, sig, hist)


class Highest:
    """Rolling maximum of the last n values (current one included)."""

    outputs = ("value",)
    want_max = True

    def __init__(self, period: int) -> None:
        self.n = int(period)
        self.buf: deque[float] = deque(maxlen=self.n)

    def update(self, x: float) -> tuple[float, ...]:
        if not self.buf and x != x:
            return (NAN,)
        self.buf.append(x)
        if len(self.buf) < self.n:
            return (NAN,)
        return (max(self.buf) if self.want_max else min(self.buf),)


class Lowest(Highest):
    """Rolling minimum of the last n values (current one included)."""

    want_max = False


class Donchian:
    """Donchian channel: highest high, lowest low of the last n bars and their midpoint."""

    outputs = ("upper", "lower", "middle")

    def __init__(self, period: int) -> None:
        self.hi = Highest(period)
        self.lo = Lowest(period)

    def update(self, high: float, low: float) -> tuple[float, ...]:
        up = self.hi.update(high)[0]
        lo = self.lo.update(low)[0]
        return (up, lo, (up + lo) / 2.0)


class ROC:
    """Rate of change in percent over n values (0 when the base value is 0)."""

    outputs = ("value",)

    def __init__(self, period: int) -> None:
        self.n = int(period)
        self.buf: deque[float] = deque(maxlen=self.n + 1)

    def update(self, x: float) -> tuple[float, ...]:
        if not self.buf and x != x:
            return (NAN,)
        self.buf.append(x)
        if len(self.buf) <= self.n:
            return (NAN,)
        p = self.buf[0]
        return (0.0 if p == 0.0 else 100.0 * (x - p) / p,)
