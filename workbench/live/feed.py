"""Candle feeds: one per (exchange, symbol, timeframe), shared by every strategy on it.

Built on ccxt.pro `watch_ohlcv`, which gives the bars updated since the last call. A bar is
closed when a later bar has been seen; listeners get each closed bar exactly once, in order,
each bar's first update as soon as it is seen (`on_opened`: the bar's open is known then, so
orders decided on the close before act at once, in the same step as that close, not after
every other market's close that arrived with it), and every forming update (for charts).
Before a closed bar is delivered the feed makes sure nothing is missing since the last one:
a hole (a dropped socket, a slow consumer) is filled from REST `fetch_ohlcv` first, so no
bar is skipped or seen twice. After a reconnect the bar that was forming is fetched again
too, since its last updates may have been lost. A hole the
exchange itself has (no trading) stays a hole.

A bar is delivered only after every listener handled it: one that raises leaves the bar
undelivered, and it is delivered again after the backoff. Each closed bar comes with
`fresh`: True only for the newest closed bar when it arrives (the bar just before the one
forming now); bars caught up after a restart or a hole are stale, and their decisions must
not trade. Any error (not only the network's) is logged with its traceback and retried with
backoff; `problem` says what is wrong while the feed is down, and `on_status` listeners hear
each change.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import ccxt

from workbench.candles import Candle
from workbench.timeframes import timeframe_ms
from workbench.venue.client import market_now_ms

log = logging.getLogger(__name__)

ClosedListener = Callable[[Candle, bool], Awaitable[None]]  # (bar, fresh)
OpenedListener = Callable[[Candle], Awaitable[None]]  # a bar's first update
FormingListener = Callable[[Candle], None]
StatusListener = Callable[[str | None], None]  # the problem, or None when it is over


def _candle(row: list[float]) -> Candle:
    return Candle(
        int(row[0]), float(row[1]), float(row[2]), float(row[3]), float(row[4]), float(row[5])
    )


@dataclass
class FeedStats:
    """What a feed has done: bars delivered, bars backfilled, reconnects."""

    closed: int = 0
    backfilled: int = 0
    reconnects: int = 0
    updates: int = 0
    errors: list[str] = field(default_factory=list)


class CandleFeed:
    """Closed and forming candles of one market from a ccxt.pro client."""

    def __init__(
        self,
        clients: Any,
        symbol: str,
        timeframe: str,
        *,
        last_closed_ms: int | None = None,
        backoff_s: float = 0.5,
        max_backoff_s: float = 30.0,
        page_limit: int = 1000,
    ) -> None:
        self.clients = clients
        self.symbol = symbol
        self.timeframe = timeframe
        self.step_ms = timeframe_ms(timeframe)
        self.last_closed_ms = last_closed_ms
        self.forming: Candle | None = None
        self.backoff_s = backoff_s
        self.max_backoff_s = max_backoff_s
        self.page_limit = page_limit
        self.stats = FeedStats()
        self._closed_listeners: list[ClosedListener] = []
        self._opened_listeners: list[OpenedListener] = []
        self._forming_listeners: list[FormingListener] = []
        self._status_listeners: list[StatusListener] = []
        self._resync = True
        self.connected = asyncio.Event()
        self.problem: str | None = None
        #: the newest bar delivered fresh (its decisions may trade at the next open)
        self.fresh_close_ms: int | None = None

    @property
    def key(self) -> tuple[str, str, str]:
        return (self.clients.name, self.symbol, self.timeframe)

    def on_closed(self, listener: ClosedListener) -> None:
        self._closed_listeners.append(listener)

    def on_opened(self, listener: OpenedListener) -> None:
        self._opened_listeners.append(listener)

    def on_forming(self, listener: FormingListener) -> None:
        self._forming_listeners.append(listener)

    def on_status(self, listener: StatusListener) -> None:
        self._status_listeners.append(listener)

    def _set_problem(self, problem: str | None) -> None:
        if problem != self.problem:
            self.problem = problem
            for listener in self._status_listeners:
                listener(problem)

    async def run(self) -> None:
        """Watch the market until cancelled; start again after any error, with backoff."""
        attempt = 0
        while True:
            try:
                if self._resync and self.last_closed_ms is not None:
                    # Catch up at once on the bars that closed while away: the stream
                    # only speaks when the market moves.
                    await self._catch_up()
                rows = await self.clients.pro.watch_ohlcv(self.symbol, self.timeframe)
                self.connected.set()
                attempt = 0
                await self._take(sorted(rows, key=lambda r: r[0]))
                self._set_problem(None)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                self.connected.clear()
                self._resync = True
                self.stats.reconnects += 1
                delay = min(self.backoff_s * 2**attempt, self.max_backoff_s)
                attempt += 1
                what = f"{type(exc).__name__}: {exc}"
                self.stats.errors.append(what[:300])
                if isinstance(exc, ccxt.NetworkError):
                    log.warning("%s %s feed lost (%s); retry in %.1fs", *self.key[1:], exc, delay)
                else:
                    log.exception("%s %s feed failed; retry in %.1fs", *self.key[1:], delay)
                self._set_problem(f"feed {self.symbol} {self.timeframe} down: {what[:200]}")
                await asyncio.sleep(delay)

    async def _take(self, rows: list[list[float]]) -> None:
        # Updates that piled up (a stalled stream) come in one batch: only a bar closed by the
        # newest one is fresh.
        newest = int(rows[-1][0]) if rows else None
        for row in rows:
            candle = _candle(row)
            self.stats.updates += 1
            if self.last_closed_ms is not None and candle.ts_ms <= self.last_closed_ms:
                continue  # an update of a bar already delivered closed
            fresh = candle.ts_ms == newest
            opened = self.forming is None or candle.ts_ms > self.forming.ts_ms
            if self.forming is not None and candle.ts_ms > self.forming.ts_ms:
                # A later bar: the one that was forming has closed.
                await self._close_through(candle.ts_ms, fresh)
            elif (
                self.forming is None
                and self.last_closed_ms is not None
                and (candle.ts_ms > self.last_closed_ms + self.step_ms)
            ):
                await self._close_through(candle.ts_ms, fresh)
            self.forming = candle
            if opened:
                for opener in self._opened_listeners:
                    await opener(candle)
            for listener in self._forming_listeners:
                listener(candle)

    async def _catch_up(self) -> None:
        now_ms = await market_now_ms(self.clients.rest)
        current_open = now_ms - now_ms % self.step_ms
        if self.last_closed_ms is not None and self.last_closed_ms + self.step_ms < current_open:
            await self._close_through(current_open, True)
            self._resync = True  # the forming bar may still have moved on meanwhile

    async def fetch_closed(self, start_ms: int, end_ms: int) -> list[Candle]:
        """Give the closed bars in [start, end) from the exchange (REST, retried)."""
        return await self._fetch_range(start_ms, end_ms)

    async def _close_through(self, next_open_ms: int, current: bool) -> None:
        """Deliver every closed bar before `next_open_ms` not yet delivered, in order.

        `current`: `next_open_ms` is the bar forming now, so the last bar delivered is fresh.
        """
        start = self.last_closed_ms + self.step_ms if self.last_closed_ms is not None else None
        known = self.forming
        expected_only_forming = (
            known is not None
            and not self._resync
            and (start is None or known.ts_ms == start)
            and known.ts_ms + self.step_ms == next_open_ms
        )
        if expected_only_forming and known is not None:
            bars = [known]
        else:
            first = start if start is not None else (known.ts_ms if known else next_open_ms)
            bars = await self._fetch_range(first, next_open_ms)
            self.stats.backfilled += max(len(bars) - (1 if known else 0), 0)
        self._resync = False
        for n, bar in enumerate(bars):
            if self.last_closed_ms is not None and bar.ts_ms <= self.last_closed_ms:
                continue
            fresh = current and n == len(bars) - 1 and bar.ts_ms + self.step_ms == next_open_ms
            for listener in self._closed_listeners:
                await listener(bar, fresh)
            # Delivered only now: a listener that raised gets this bar again.
            self.last_closed_ms = bar.ts_ms
            if fresh:
                self.fresh_close_ms = bar.ts_ms
            self.stats.closed += 1

    async def _fetch_range(self, start_ms: int, end_ms: int) -> list[Candle]:
        """Fetch the closed bars in [start, end) through REST, retrying network errors."""
        bars: list[Candle] = []
        cursor = start_ms
        attempt = 0
        while cursor < end_ms:
            try:
                rows = await self.clients.rest.fetch_ohlcv(
                    self.symbol, self.timeframe, since=cursor, limit=self.page_limit
                )
            except ccxt.NetworkError as exc:
                delay = min(self.backoff_s * 2**attempt, self.max_backoff_s)
                attempt += 1
                log.warning("backfill of %s failed (%s); retry in %.1fs", self.symbol, exc, delay)
                self._set_problem(f"backfill of {self.symbol} failing: {exc}"[:200])
                await asyncio.sleep(delay)
                continue
            page = [_candle(r) for r in rows if cursor <= r[0] < end_ms]
            if not page:
                break
            bars.extend(page)
            cursor = page[-1].ts_ms + self.step_ms
        return bars
