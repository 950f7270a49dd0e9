"""Downloading candle history through ccxt `fetch_ohlcv`, page by page, into the store.

Resumes after the newest stored bar, keeps only closed bars (the exchange's clock decides),
writes each page as it arrives (an interrupted download keeps what it fetched), retries
network errors with exponential backoff, and reports the gaps left in the range.
"""

from __future__ import annotations

import asyncio
import difflib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import ccxt
import pandas as pd

from workbench.candles import TimeLike, from_ccxt, to_utc
from workbench.errors import WorkbenchError
from workbench.lots import TICK_SIZE, LotRules
from workbench.store import Store
from workbench.timeframes import timeframe_ms
from workbench.venue.client import market_now_ms


class DownloadError(WorkbenchError):
    """A download that cannot start or cannot go on: what and why."""


@dataclass
class DownloadReport:
    """What a download fetched and stored, and what the range still lacks."""

    exchange: str
    symbol: str
    timeframe: str
    start: pd.Timestamp
    end: pd.Timestamp
    fetched: int = 0
    new: int = 0
    changed: int = 0
    pages: int = 0
    retries: int = 0
    gaps: pd.DataFrame = field(default_factory=pd.DataFrame)


def _choices(wanted: str, known: list[str], what: str) -> str:
    close = difflib.get_close_matches(wanted, known, n=5, cutoff=0.5)
    hint = f" Did you mean {', '.join(close)}?" if close else ""
    listed = ", ".join(known[:40]) + (f", ... ({len(known)} in all)" if len(known) > 40 else "")
    return f"unknown {what} {wanted!r}.{hint} Valid: {listed}"


def check_exchange_id(name: str) -> None:
    """Raise DownloadError naming the valid choices when ccxt has no such exchange."""
    if name != "local" and name not in ccxt.exchanges:
        raise DownloadError(_choices(name, ["local", *ccxt.exchanges], "exchange"))


def check_market(client: Any, symbol: str, timeframe: str) -> None:
    """Raise DownloadError naming the valid choices for an unknown symbol or timeframe."""
    if symbol not in client.markets:
        raise DownloadError(_choices(symbol, sorted(client.markets), f"symbol on {client.id}"))
    timeframes = list(getattr(client, "timeframes", None) or {})
    if timeframes and timeframe not in timeframes:
        raise DownloadError(_choices(timeframe, timeframes, f"timeframe on {client.id}"))


async def _with_retries(
    call: Callable[[], Any], report: DownloadReport, max_retries: int, backoff_s: float
) -> Any:
    attempt = 0
    while True:
        try:
            return await call()
        except ccxt.NetworkError as exc:
            if attempt >= max_retries:
                raise DownloadError(
                    f"gave up after {attempt + 1} tries: {type(exc).__name__}: {exc}. "
                    "What was fetched is stored; run the same command again to resume."
                ) from exc
            await asyncio.sleep(backoff_s * 2**attempt)
            attempt += 1
            report.retries += 1


async def download_candles(
    client: Any,
    store: Store,
    *,
    exchange: str,
    symbol: str,
    timeframe: str,
    since: TimeLike,
    until: TimeLike | None = None,
    limit: int | None = None,
    max_retries: int = 5,
    backoff_s: float = 1.0,
    on_progress: Callable[[int, int, int], None] | None = None,
) -> DownloadReport:
    """Fetch [since, until) of one series into the store and give a report.

    `client` is a loaded ccxt async exchange (rate limiting on, as ccxt does by default);
    `on_progress(done_ms, total_ms, rows)` is called after each stored page.
    """
    check_market(client, symbol, timeframe)
    # The market's lot step and minimums, for backtests that size orders as the venue takes them.
    mode = getattr(client, "precisionMode", TICK_SIZE)
    store.markets.put(exchange, symbol, LotRules.from_ccxt(client.markets[symbol], mode))
    step = timeframe_ms(timeframe)
    start_ms = -(-int(to_utc(since).value // 1_000_000) // step) * step
    report = DownloadReport(exchange, symbol, timeframe, to_utc(start_ms), to_utc(start_ms))
    now_ms = int(await _with_retries(lambda: market_now_ms(client), report, max_retries, backoff_s))
    end_ms = now_ms if until is None else min(int(to_utc(until).value // 1_000_000), now_ms)
    report.end = to_utc(end_ms)
    cursor = start_ms
    last = store.candles.last_ts(exchange, symbol, timeframe)
    if last is not None:
        cursor = max(cursor, int(last.value // 1_000_000) + step)
    while cursor < end_ms:
        rows = await _with_retries(
            lambda c=cursor: client.fetch_ohlcv(symbol, timeframe, since=c, limit=limit),
            report,
            max_retries,
            backoff_s,
        )
        # Keep closed bars inside the range; the forming bar comes back next time.
        kept = [r for r in rows if cursor <= r[0] < end_ms and r[0] + step <= now_ms]
        report.pages += 1
        if not kept:
            break
        written = store.candles.write(exchange, symbol, timeframe, from_ccxt(kept))
        report.fetched += len(kept)
        report.new += written.new
        report.changed += written.changed
        cursor = int(kept[-1][0]) + step
        if on_progress:
            on_progress(min(cursor, end_ms) - start_ms, end_ms - start_ms, report.fetched)
    gaps = store.candles.gaps(exchange, symbol, timeframe)
    inside = (gaps["last_missing"] >= report.start) & (gaps["first_missing"] < report.end)
    report.gaps = gaps[inside].reset_index(drop=True)
    return report
