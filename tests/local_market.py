"""A local exchange on a cut of shipped candles, its clock stepped by the test, with the
unmodified ccxt / ccxt.pro clients connected to it."""

from __future__ import annotations

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
