"""Candle replay: what one symbol's market looks like at a simulated instant, and never later.

A bar whose open time is <= t < open + timeframe is *forming* at t: its price walks the fixed
intrabar path of `workbench.fills.bar_path` (open→low→high→close for an up bar, open→high→low→
close for a down bar), each leg taking a third of the bar. A forming candle shows the open, the
extremes visited so far, the current price as close, and the volume pro rata. Nothing here
reads past t: this is where look-ahead is kept out of the local exchange.

Missing bars in the history are not invented: during a hole the price stays at the last close,
and REST/stream klines simply have no candle there (as after a real exchange outage).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np
import pandas as pd

from workbench.fills import bar_path, path_price

#: Binance kline intervals, in milliseconds (the calendar ones, 3d/1w/1M, are not served).
INTERVAL_MS: dict[str, int] = {
    "1m": 60_000,
    "3m": 180_000,
    "5m": 300_000,
    "15m": 900_000,
    "30m": 1_800_000,
    "1h": 3_600_000,
    "2h": 7_200_000,
    "4h": 14_400_000,
    "6h": 21_600_000,
    "8h": 28_800_000,
    "12h": 43_200_000,
    "1d": 86_400_000,
}

DAY_MS = 86_400_000


@dataclass(frozen=True)
class Candle:
    """One kline as the exchange shows it at some instant (``closed`` False while forming)."""

    open_ms: int
    open: float
    high: float
    low: float
    close: float
    volume: float
    interval_ms: int
    closed: bool

    @property
    def close_ms(self) -> int:
        """Give Binance's close time: the last millisecond of the interval."""
        return self.open_ms + self.interval_ms - 1


@dataclass(frozen=True)
class PathPoint:
    """A price the replay passes through; ``jump`` when it is reached by a gap, not a walk."""

    price: float
    jump: bool


class SymbolReplay:
    """The replay of one symbol's base-timeframe candles."""

    def __init__(self, symbol: str, candles: pd.DataFrame, timeframe_ms: int) -> None:
        if candles.empty:
            raise ValueError(f"no candles for {symbol}")
        frame = candles.sort_index()
        index = pd.DatetimeIndex(frame.index)
        if index.tz is None:
            index = index.tz_localize("UTC")
        self.symbol = symbol
        self.timeframe_ms = int(timeframe_ms)
        self.open_ms = (index.as_unit("ms").asi8).astype(np.int64)
        self.o = frame["open"].to_numpy(np.float64)
        self.h = frame["high"].to_numpy(np.float64)
        self.l = frame["low"].to_numpy(np.float64)
        self.c = frame["close"].to_numpy(np.float64)
        self.v = frame["volume"].to_numpy(np.float64)
        self._windows: dict[int, tuple[np.ndarray, ...]] = {}
        #: decimals of the price tick: prices between vertices are rounded to it (None: exact)
        self.price_decimals: int | None = None

    @property
    def first_ms(self) -> int:
        """Give the open time of the first bar."""
        return int(self.open_ms[0])

    @property
    def end_ms(self) -> int:
        """Give the time the last bar closes."""
        return int(self.open_ms[-1]) + self.timeframe_ms

    @cached_property
    def median_price(self) -> float:
        """Give the median close, to size filters and order books."""
        return float(np.median(self.c))

    def index_at(self, t_ms: int) -> int:
        """Give the index of the last bar opened at or before ``t_ms`` (-1 before the first)."""
        return int(np.searchsorted(self.open_ms, t_ms, side="right")) - 1

    def _fraction(self, i: int, t_ms: int) -> float:
        return min(1.0, (t_ms - int(self.open_ms[i])) / self.timeframe_ms)

    def _path(self, i: int) -> tuple[float, ...]:
        return bar_path(self.o[i], self.h[i], self.l[i], self.c[i])

    def _price(self, path: tuple[float, ...], fraction: float) -> float:
        price = path_price(path, fraction)
        if self.price_decimals is None or not 0.0 < fraction < 1.0:
            return price
        # On the tick grid, but never outside the leg (the data's own floats stay exact).
        leg = min(int(fraction * (len(path) - 1)), len(path) - 2)
        low, high = sorted((path[leg], path[leg + 1]))
        return min(high, max(low, round(price, self.price_decimals)))

    def price_at(self, t_ms: int) -> float | None:
        """Give the traded price at ``t_ms``, or None before the history starts."""
        i = self.index_at(t_ms)
        if i < 0:
            return None
        return self._price(self._path(i), self._fraction(i, t_ms))

    def _partial(self, i: int, t_ms: int) -> tuple[float, float, float, float, float]:
        """Give bar ``i`` as seen at ``t_ms``: open, high so far, low so far, price, volume."""
        fraction = self._fraction(i, t_ms)
        if fraction >= 1.0:
            return self.o[i], self.h[i], self.l[i], self.c[i], self.v[i]
        path = self._path(i)
        legs = len(path) - 1
        reached = int(fraction * legs)
        seen = [*path[: reached + 1], self._price(path, fraction)]
        return path[0], max(seen), min(seen), seen[-1], self.v[i] * fraction

    def candle(self, window_start_ms: int, interval_ms: int, t_ms: int) -> Candle | None:
        """Give the candle of one interval as it stands at ``t_ms`` (None if it has no bar)."""
        window_end = window_start_ms + interval_ms
        lo = int(np.searchsorted(self.open_ms, window_start_ms, side="left"))
        hi = int(np.searchsorted(self.open_ms, min(window_end - 1, t_ms), side="right"))
        if hi <= lo:
            return None
        o, h, low, c, v = self._partial(hi - 1, t_ms)
        if hi - 1 > lo:
            o = float(self.o[lo])
            h = max(h, float(self.h[lo : hi - 1].max()))
            low = min(low, float(self.l[lo : hi - 1].min()))
            v = v + float(self.v[lo : hi - 1].sum())
        closed = window_end <= t_ms
        return Candle(window_start_ms, o, h, low, c, v, interval_ms, closed)

    def _window_arrays(self, interval_ms: int) -> tuple[np.ndarray, ...]:
        """Give (open_ms, o, h, l, c, v) aggregated to ``interval_ms`` windows (all history)."""
        if interval_ms == self.timeframe_ms:
            return self.open_ms, self.o, self.h, self.l, self.c, self.v
        cached = self._windows.get(interval_ms)
        if cached is None:
            keys = self.open_ms // interval_ms * interval_ms
            starts, first = np.unique(keys, return_index=True)
            last = np.r_[first[1:], len(keys)] - 1
            cached = (
                starts,
                self.o[first],
                np.maximum.reduceat(self.h, first),
                np.minimum.reduceat(self.l, first),
                self.c[last],
                np.add.reduceat(self.v, first),
            )
            self._windows[interval_ms] = cached
        return cached

    def klines(
        self,
        interval_ms: int,
        t_ms: int,
        *,
        start_ms: int | None = None,
        end_ms: int | None = None,
        limit: int = 500,
    ) -> list[Candle]:
        """Give klines as Binance's REST endpoint would at ``t_ms`` (the last may be forming)."""
        starts, o, h, low, c, v = self._window_arrays(interval_ms)
        upper = t_ms if end_ms is None else min(t_ms, end_ms)
        hi = int(np.searchsorted(starts, upper, side="right"))
        lo = 0 if start_ms is None else int(np.searchsorted(starts, start_ms, side="left"))
        if hi <= lo:
            return []
        if start_ms is None:
            lo = max(lo, hi - limit)
        else:
            hi = min(hi, lo + limit)
        out = [
            Candle(int(starts[k]), o[k], h[k], low[k], c[k], v[k], interval_ms, True)
            for k in range(lo, hi)
        ]
        if out[-1].open_ms + interval_ms > t_ms:
            forming = self.candle(out[-1].open_ms, interval_ms, t_ms)
            if forming is not None:
                out[-1] = forming
        return out

    def path_between(self, t0_ms: int, t1_ms: int) -> list[PathPoint]:
        """Give the prices passed through in (t0, t1], starting with the price at t0."""
        start = self.price_at(t0_ms)
        points: list[PathPoint] = [] if start is None else [PathPoint(start, True)]
        first = max(self.index_at(t0_ms), 0)
        last = self.index_at(t1_ms)
        third = self.timeframe_ms / 3.0
        for i in range(first, last + 1):
            bar_open = int(self.open_ms[i])
            for k, price in enumerate(self._path(i)):
                at = bar_open + k * third
                if t0_ms < at <= t1_ms:
                    points.append(PathPoint(float(price), k == 0))
        end = self.price_at(t1_ms)
        if end is not None and (not points or points[-1].price != end):
            points.append(PathPoint(end, False))
        return points

    def volume_between(self, t0_ms: int, t1_ms: int) -> float:
        """Give the volume traded in (t0, t1]: each bar's volume pro rata of the time covered."""
        if t1_ms <= t0_ms:
            return 0.0
        first = max(self.index_at(t0_ms), 0)
        last = self.index_at(t1_ms)
        volume = 0.0
        for i in range(first, last + 1):
            bar_open = int(self.open_ms[i])
            covered = min(t1_ms, bar_open + self.timeframe_ms) - max(t0_ms, bar_open)
            if covered > 0:
                volume += float(self.v[i]) * covered / self.timeframe_ms
        return volume

    def day_stats(self, t_ms: int) -> Candle | None:
        """Give the rolling 24-hour candle ending at ``t_ms`` (for the ticker)."""
        lo = int(np.searchsorted(self.open_ms, t_ms - DAY_MS, side="right"))
        hi = int(np.searchsorted(self.open_ms, t_ms, side="right"))
        if hi <= lo:
            return None
        o, h, low, c, v = self._partial(hi - 1, t_ms)
        if hi - 1 > lo:
            o = float(self.o[lo])
            h = max(h, float(self.h[lo : hi - 1].max()))
            low = min(low, float(self.l[lo : hi - 1].min()))
            v += float(self.v[lo : hi - 1].sum())
        return Candle(int(self.open_ms[lo]), o, h, low, c, v, DAY_MS, False)
