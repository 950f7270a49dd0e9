"""A local exchange on a cut of shipped candles, its clock stepped by the test, with the
unmodified ccxt / ccxt.pro clients connected to it."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pandas as pd

from workbench.localexchange import LocalExchange, ManualClock
from workbench.settings import Settings
from workbench.venue import connect
from workbench.venue.client import ExchangeClients

Market = tuple[LocalExchange, ManualClock, ExchangeClients]


async def open_market(
    candles: pd.DataFrame, symbol: str = "ETH/BTC", **options: Any
) -> AsyncIterator[Market]:
    """Serve ``candles`` as ``symbol`` from their first bar; give server, clock and clients."""
    clock = ManualClock(int(candles.index[0].value // 1_000_000) + 1)
    async with LocalExchange({symbol: candles}, clock=clock, tick_s=0.002, **options) as server:
        clients = connect("local", settings=Settings(), port=server.port)
        await clients.load_markets()
        yield server, clock, clients
        await clients.close()


STEP_MS = 300_000


async def step(clock: ManualClock, engine: Any, patience_s: float = 5.0) -> None:
    """Move replay time a third of a bar; the market waits while a strategy decides or
    places orders, and, when a bar closed, until every feed has delivered it and the next
    bar's open (as it would at a sane replay speed). Without the second wait a loaded
    machine let the clock run on before the feed saw the new bar: the entry then filled a
    third of a bar or a whole bar late (test_real_parity under CI load)."""
    before = clock.now_ms()
    clock.advance(STEP_MS // 3)
    now = clock.now_ms()
    loop = asyncio.get_running_loop()
    deadline = loop.time() + patience_s
    await asyncio.sleep(0.004)
    while _busy(engine, before, now) and loop.time() < deadline:
        await asyncio.sleep(0.002)


def _busy(engine: Any, before_ms: int, now_ms: int) -> bool:
    """Whether a strategy is deciding, or a feed has not yet opened a bar begun in
    (before_ms, now_ms]."""
    strategies = list(engine.strategies.values())
    if any(live.lock.locked() for live in strategies):
        return True
    for key in {live.feed_key for live in strategies}:
        feed = engine.feeds.get(key)
        if feed is None:
            continue
        opened = now_ms - now_ms % feed.step_ms
        if opened > before_ms and (feed.forming is None or feed.forming.ts_ms < opened):
            return True
    return False


async def run_to(clock: ManualClock, engine: Any, end_ms: int, settle_s: float = 1.0) -> None:
    """Step replay time to `end_ms`; wait until every strategy has seen the last closed bar."""
    while clock.now_ms() < end_ms:
        await step(clock, engine)
    last_closed = end_ms - end_ms % STEP_MS - STEP_MS
    for _ in range(500):
        if all((r.runner.last_close_ms or 0) >= last_closed for r in engine.strategies.values()):
            break
        await asyncio.sleep(0.02)
    await asyncio.sleep(settle_s)  # the follow-up's last updates


def bar_ms(candles: pd.DataFrame, i: int) -> int:
    return int(candles.index[i].value // 1_000_000)
