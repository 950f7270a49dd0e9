"""Candle feeds through ccxt.pro against the local exchange: every closed bar once, in order."""

from __future__ import annotations

import asyncio

import pandas as pd
from local_market import bar_ms, open_market

from workbench.candles import Candle
from workbench.live.feed import CandleFeed
from workbench.localexchange import LocalExchange
from workbench.localexchange.faults import FaultKind
from workbench.venue.client import ExchangeClients

STEP_MS = 300_000


async def collect(
    feed: CandleFeed, bars: int, timeout_s: float = 30, *, until_healthy: bool = False
) -> list[Candle]:
    """Give the first `bars` closed bars (with `until_healthy`, also wait until the feed
    has no problem: a bar caught up by REST arrives before the stream speaks again)."""
    got: list[Candle] = []
    task = asyncio.create_task(feed.run())

    async def take(candle: Candle, fresh: bool) -> None:
        got.append(candle)

    async def enough() -> None:
        while len(got) < bars or (until_healthy and feed.problem is not None):
            await asyncio.sleep(0.005)

    feed.on_closed(take)
    try:
        await asyncio.wait_for(enough(), timeout_s)
    finally:
        task.cancel()
    return got


def expected_bars(history: pd.DataFrame, first_ms: int, count: int) -> list[Candle]:
    frame = history[history.index.as_unit("ms").asi8 >= first_ms].iloc[:count]
    return [
        Candle(int(ts.value // 1_000_000), *map(float, row))
        for ts, row in zip(frame.index, frame.to_numpy(), strict=True)
    ]


def assert_same(got: list[Candle], want: list[Candle]) -> None:
    assert [c.ts_ms for c in got] == [c.ts_ms for c in want]
    for a, b in zip(got, want, strict=True):
        for field in ("open", "high", "low", "close"):
            assert abs(getattr(a, field) / getattr(b, field) - 1) < 1e-9, (a, b)


async def test_a_feed_delivers_each_closed_bar_once_in_order_from_where_it_left_off(
    clients: ExchangeClients, history: dict[str, pd.DataFrame], start_ms: int
) -> None:
    # The store ends 30 bars before "now": those come from REST before the stream's bars.
    bar_open = start_ms - start_ms % STEP_MS
    last_stored = bar_open - 31 * STEP_MS
    feed = CandleFeed(clients, "ETH/BTC", "5m", last_closed_ms=last_stored)
    got = await collect(feed, 60)
    assert_same(got, expected_bars(history["ETH/BTC"], last_stored + STEP_MS, len(got)))
    assert feed.stats.backfilled >= 30


async def test_bars_missed_while_the_socket_was_down_are_backfilled(
    clients: ExchangeClients,
    exchange: LocalExchange,
    history: dict[str, pd.DataFrame],
    start_ms: int,
) -> None:
    bar_open = start_ms - start_ms % STEP_MS
    feed = CandleFeed(clients, "ETH/BTC", "5m", last_closed_ms=bar_open - STEP_MS, backoff_s=0.05)

    async def drop_later() -> None:
        await asyncio.sleep(1.0)
        # Refuse connections for a while: bars close meanwhile and must not be lost.
        await exchange.inject_fault(FaultKind.DROP_WEBSOCKETS, duration_s=0.8)

    dropper = asyncio.create_task(drop_later())
    got = await collect(feed, 40)
    await dropper
    assert feed.stats.reconnects >= 1
    assert_same(got, expected_bars(history["ETH/BTC"], bar_open, len(got)))


async def test_a_stalled_stream_loses_nothing(
    clients: ExchangeClients,
    exchange: LocalExchange,
    history: dict[str, pd.DataFrame],
    start_ms: int,
) -> None:
    bar_open = start_ms - start_ms % STEP_MS
    feed = CandleFeed(clients, "ADA/BTC", "5m", last_closed_ms=bar_open - STEP_MS)
    await exchange.inject_fault(FaultKind.STALL_STREAMS, duration_s=0.7)
    got = await collect(feed, 25)
    ada = history["ADA/BTC"]
    assert_same(got, expected_bars(ada, bar_open, len(got)))


async def test_a_bar_whose_listener_raised_is_delivered_again_not_skipped(
    clients: ExchangeClients, history: dict[str, pd.DataFrame], start_ms: int
) -> None:
    bar_open = start_ms - start_ms % STEP_MS
    last_stored = bar_open - 5 * STEP_MS
    feed = CandleFeed(clients, "ETH/BTC", "5m", last_closed_ms=last_stored, backoff_s=0.01)
    failed: list[int] = []

    async def flaky(candle: Candle, fresh: bool) -> None:
        if candle.ts_ms == last_stored + 2 * STEP_MS and not failed:
            failed.append(candle.ts_ms)
            raise RuntimeError("a listener's bug")

    feed.on_closed(flaky)
    got = await collect(feed, 8)
    assert failed, "the listener raised once"
    # Delivered again after the failure: no bar skipped, none twice after it was handled.
    assert_same(got, expected_bars(history["ETH/BTC"], last_stored + STEP_MS, len(got)))
    assert feed.stats.errors and "a listener's bug" in feed.stats.errors[0]


async def test_freshness_only_the_newest_closed_bar_may_trade(
    history: dict[str, pd.DataFrame],
) -> None:
    candles = history["ETH/BTC"].iloc[:60]
    marks: list[tuple[int, bool]] = []

    async def take(candle: Candle, fresh: bool) -> None:
        marks.append((candle.ts_ms, fresh))

    async for _server, clock, market in open_market(candles):
        clock.advance(20 * STEP_MS)  # the engine was away: bars 10..19 closed meanwhile
        feed = CandleFeed(market, "ETH/BTC", "5m", last_closed_ms=bar_ms(candles, 9))
        feed.on_closed(take)
        task = asyncio.create_task(feed.run())
        for _ in range(100):  # the stream then closes each bar as it happens
            if len(marks) >= 20:
                break
            clock.advance(STEP_MS // 3)
            await asyncio.sleep(0.01)
        task.cancel()
    caught_up = {ts: fresh for ts, fresh in marks if ts <= bar_ms(candles, 19)}
    assert sorted(caught_up) == [bar_ms(candles, i) for i in range(10, 20)]
    # Caught up late: stale, but for the newest closed bar when it arrived.
    assert [caught_up[bar_ms(candles, i)] for i in range(10, 20)] == [False] * 9 + [True]
    streamed = [fresh for ts, fresh in marks if ts > bar_ms(candles, 19)]
    assert streamed and all(streamed), "bars the stream closes as they happen are fresh"


async def test_any_error_of_the_stream_is_survived_and_reported(
    clients: ExchangeClients, history: dict[str, pd.DataFrame], start_ms: int
) -> None:
    bar_open = start_ms - start_ms % STEP_MS
    feed = CandleFeed(clients, "ETH/BTC", "5m", last_closed_ms=bar_open - STEP_MS, backoff_s=0.01)
    real_watch = clients.pro.watch_ohlcv
    calls = 0
    problems: list[str | None] = []
    feed.on_status(problems.append)

    async def broken_once(*args: object, **kwargs: object) -> object:
        nonlocal calls
        calls += 1
        if calls == 2:
            raise ValueError("not a network error")
        return await real_watch(*args, **kwargs)

    clients.pro.watch_ohlcv = broken_once  # type: ignore[method-assign]
    try:
        got = await collect(feed, 5, until_healthy=True)
    finally:
        clients.pro.watch_ohlcv = real_watch  # type: ignore[method-assign]
    assert_same(got, expected_bars(history["ETH/BTC"], bar_open, len(got)))
    assert problems[0] is not None and "not a network error" in problems[0]
    assert problems[-1] is None, "the problem ends when the stream speaks again"


async def test_each_bar_opens_once_right_after_the_bar_before_it_closed(
    clients: ExchangeClients, history: dict[str, pd.DataFrame], start_ms: int
) -> None:
    bar_open = start_ms - start_ms % STEP_MS
    feed = CandleFeed(clients, "ETH/BTC", "5m", last_closed_ms=bar_open - STEP_MS)
    seen: list[tuple[str, int, float]] = []

    async def opened(candle: Candle) -> None:
        seen.append(("opened", candle.ts_ms, candle.open))

    async def closed(candle: Candle, fresh: bool) -> None:
        seen.append(("closed", candle.ts_ms, candle.open))

    def opens() -> list[tuple[int, float]]:
        return [(ts, price) for what, ts, price in seen if what == "opened"]

    async def ten_opened() -> None:
        # (a bar backfilled by REST, as a slow consumer's are, was never seen forming: the
        # engine opens it at its close)
        while len(opens()) < 10:
            await asyncio.sleep(0.005)

    feed.on_opened(opened)
    feed.on_closed(closed)
    task = asyncio.create_task(feed.run())
    try:
        await asyncio.wait_for(ten_opened(), 30)
    finally:
        task.cancel()
    assert len({ts for ts, _ in opens()}) == len(opens()), "each bar once"
    frame = history["ETH/BTC"]
    for ts, price in opens():
        assert price == float(frame.loc[pd.Timestamp(ts, unit="ms", tz="UTC"), "open"])
    for i, (what, ts, _) in enumerate(seen):
        if what == "opened" and ts > bar_open:
            assert seen[i - 1][:2] == ("closed", ts - STEP_MS), "acts in the close's own step"
