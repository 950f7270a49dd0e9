"""Shared fixtures: shipped candles, a running local exchange, ccxt clients pointed at it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pandas as pd
import pytest

from workbench.fills import FeeAsset
from workbench.localexchange import LocalExchange, ManualClock, load_csv_history
from workbench.settings import Settings
from workbench.venue import connect
from workbench.venue.client import ExchangeClients

CANDLES_DIR = Path(__file__).resolve().parents[2] / "data" / "candles"
SHARED_CANDLES_DIR = Path("/work/shared/data/candles")
SYMBOLS = ["ETH/BTC", "LTC/BTC"]
FIVE_MIN_MS = 300_000
#: Replay start: 3000 bars into the shipped data, so several thousand candles are history.
START_BARS = 3000
#: The fee asset the tests' hand-worked balances assume, whatever the default is
#: (test_commission covers every fee asset and the default).
FEES_IN = FeeAsset.QUOTE


def candles_dir() -> Path:
    """Give the directory of shipped candles (the repo's copy, else the shared one)."""
    if list(CANDLES_DIR.glob("*-5m.csv*")):
        return CANDLES_DIR
    return SHARED_CANDLES_DIR


@pytest.fixture(scope="session")
def history() -> dict[str, pd.DataFrame]:
    """Give the shipped 5m candles of a few symbols."""
    return load_csv_history(candles_dir(), SYMBOLS)


@pytest.fixture(scope="session")
def start_ms(history: dict[str, pd.DataFrame]) -> int:
    """Give a replay start well inside the history."""
    first = history["ETH/BTC"].index[START_BARS]
    return int(first.value // 1_000_000)


@pytest.fixture
def settings() -> Settings:
    """Give settings independent of the environment."""
    return Settings(exchange="local", api_key=None, api_secret=None)


@pytest.fixture
async def fast_exchange(
    history: dict[str, pd.DataFrame], start_ms: int
) -> AsyncIterator[LocalExchange]:
    """Give a local exchange replaying at 6000x (a 5m bar every 50 ms)."""
    async with LocalExchange(
        history, speed=6000, start=start_ms, tick_s=0.01, fee_asset=FEES_IN
    ) as server:
        yield server


@pytest.fixture
def manual_clock(start_ms: int) -> ManualClock:
    """Give a replay clock the test steps by hand (starting a third into a bar)."""
    return ManualClock(start_ms + FIVE_MIN_MS // 3)


@pytest.fixture
async def stepped_exchange(
    history: dict[str, pd.DataFrame], manual_clock: ManualClock
) -> AsyncIterator[LocalExchange]:
    """Give a local exchange whose clock only moves when the test says so."""
    async with LocalExchange(history, clock=manual_clock, tick_s=0.01, fee_asset=FEES_IN) as server:
        yield server


async def _clients(server: LocalExchange, settings: Settings) -> ExchangeClients:
    clients = connect("local", settings=settings, port=server.port)
    await clients.load_markets()
    return clients


@pytest.fixture
async def fast(fast_exchange: LocalExchange, settings: Settings) -> AsyncIterator[ExchangeClients]:
    """Give ccxt clients connected to the fast exchange."""
    clients = await _clients(fast_exchange, settings)
    yield clients
    await clients.close()


@pytest.fixture
async def stepped(
    stepped_exchange: LocalExchange, settings: Settings
) -> AsyncIterator[ExchangeClients]:
    """Give ccxt clients connected to the hand-stepped exchange."""
    clients = await _clients(stepped_exchange, settings)
    yield clients
    await clients.close()
