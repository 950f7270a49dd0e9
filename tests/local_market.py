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


async def step(clock: ManualClock, engine: Any) -> None:
    """Move replay time a third of a bar; the market waits while a strategy decides or
    places orders (as it would at a sane replay speed)."""
    clock.advance(STEP_MS // 3)
    await asyncio.sleep(0.004)
    for _ in range(200):
        if not any(live.lock.locked() for live in engine.strategies.values()):
            return
        await asyncio.sleep(0.002)


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
