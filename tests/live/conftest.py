"""Live fixtures: the shipped candles, a fast local exchange, ccxt clients on it."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pandas as pd
import pytest
from shipped import CANDLE_DIR

from workbench.localexchange import LocalExchange, load_csv_history
from workbench.settings import Settings
from workbench.venue import connect
from workbench.venue.client import ExchangeClients

SYMBOLS = ["ETH/BTC", "ADA/BTC", "LTC/BTC"]
STEP_MS = 300_000
START_BAR = 2000


@pytest.fixture(scope="session")
def history() -> dict[str, pd.DataFrame]:
    return load_csv_history(CANDLE_DIR, SYMBOLS)


@pytest.fixture(scope="session")
def start_ms(history: dict[str, pd.DataFrame]) -> int:
    return int(history["ETH/BTC"].index[START_BAR].value // 1_000_000) + STEP_MS // 2


@pytest.fixture
async def exchange(history: dict[str, pd.DataFrame], start_ms: int) -> AsyncIterator[LocalExchange]:
    """A local exchange replaying at 3000x: a 5m bar every 100 ms."""
    async with LocalExchange(history, speed=3000, start=start_ms, tick_s=0.01) as server:
        yield server


@pytest.fixture
async def clients(exchange: LocalExchange) -> AsyncIterator[ExchangeClients]:
    opened = connect("local", settings=Settings(), port=exchange.port)
    await opened.load_markets()
    yield opened
    await opened.close()
