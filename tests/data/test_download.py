"""Downloading history end to end: the local exchange, the real ccxt client, the store.

The exchange replays the shipped candles on a clock the test moves by hand, so what
"now" is, and so which bars are closed, is known exactly.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pandas as pd
import pytest
from shipped import CANDLE_DIR

from workbench.candles import normalize
from workbench.data.download import DownloadError, download_candles
from workbench.localexchange import LocalExchange, ManualClock, load_csv_history
from workbench.localexchange.faults import FaultKind
from workbench.settings import Settings
from workbench.store import Store
from workbench.venue import connect
from workbench.venue.client import ExchangeClients

SYMBOLS = ["ETH/BTC", "ADA/BTC"]
STEP_MS = 300_000
START = "2018-01-10"


@pytest.fixture(scope="module")
def history() -> dict[str, pd.DataFrame]:
    return load_csv_history(CANDLE_DIR, SYMBOLS)


@pytest.fixture
def clock(history: dict[str, pd.DataFrame]) -> ManualClock:
    # Replay "now" sits 40% into the bar 3000 bars after the first one.
    bar = history["ETH/BTC"].index[3000]
    return ManualClock(int(bar.value // 1_000_000) + 2 * STEP_MS // 5)


@pytest.fixture
async def exchange(
    history: dict[str, pd.DataFrame], clock: ManualClock
) -> AsyncIterator[LocalExchange]:
    async with LocalExchange(history, clock=clock, tick_s=0.01) as server:
        yield server


@pytest.fixture
async def client(exchange: LocalExchange) -> AsyncIterator[ExchangeClients]:
    clients = connect("local", settings=Settings(), port=exchange.port)
    await clients.load_markets()
    yield clients
    await clients.close()


def closed_before(frame: pd.DataFrame, now_ms: int) -> pd.DataFrame:
    """The bars whose close time the clock has passed: the independent expectation."""
    ends = frame.index.as_unit("ms").asi8 + STEP_MS
    return normalize(frame[ends <= now_ms])


async def test_download_pages_through_history_and_stores_only_closed_bars(
    client: ExchangeClients, store: Store, history: dict[str, pd.DataFrame], clock: ManualClock
) -> None:
    report = await download_candles(
        client.rest,
        store,
        exchange="local",
        symbol="ETH/BTC",
        timeframe="5m",
        since=START,
        limit=500,
        backoff_s=0.01,
    )
    expected = closed_before(history["ETH/BTC"], clock.now_ms())
    assert len(expected) == 3000
    assert report.pages >= 6
    assert report.fetched == report.new == len(expected)
    stored = store.candles.read("local", "ETH/BTC", "5m")
    pd.testing.assert_frame_equal(stored, expected, check_freq=False, rtol=1e-12)
    assert report.gaps.empty


async def test_a_second_download_resumes_after_the_newest_stored_bar(
    client: ExchangeClients, store: Store, history: dict[str, pd.DataFrame], clock: ManualClock
) -> None:
    kwargs = dict(exchange="local", symbol="ETH/BTC", timeframe="5m", since=START, limit=500)
    await download_candles(client.rest, store, **kwargs)
    clock.advance(7 * STEP_MS)
    report = await download_candles(client.rest, store, **kwargs)
    assert (report.pages, report.fetched, report.new) == (2, 7, 7)
    expected = closed_before(history["ETH/BTC"], clock.now_ms())
    stored = store.candles.read("local", "ETH/BTC", "5m")
    pd.testing.assert_frame_equal(stored, expected, check_freq=False, rtol=1e-12)


async def test_the_gaps_the_exchange_has_are_reported(
    client: ExchangeClients, store: Store, history: dict[str, pd.DataFrame], clock: ManualClock
) -> None:
    report = await download_candles(
        client.rest, store, exchange="local", symbol="ADA/BTC", timeframe="5m", since=START
    )
    bars = closed_before(history["ADA/BTC"], clock.now_ms()).index
    steps = bars[1:] - bars[:-1]
    holes = [
        (b + pd.Timedelta(minutes=5))
        for b, s in zip(bars[:-1], steps, strict=True)
        if s > pd.Timedelta(minutes=5)
    ]
    assert len(holes) > 0
    assert list(report.gaps["first_missing"]) == holes


async def test_network_errors_are_retried_and_nothing_is_lost(
    client: ExchangeClients,
    exchange: LocalExchange,
    store: Store,
    history: dict[str, pd.DataFrame],
    clock: ManualClock,
) -> None:
    await exchange.inject_fault(FaultKind.SERVER_ERROR, count=3, status=503)
    report = await download_candles(
        client.rest,
        store,
        exchange="local",
        symbol="ETH/BTC",
        timeframe="5m",
        since=START,
        limit=1000,
        backoff_s=0.01,
    )
    assert report.retries == 3
    assert report.new == len(closed_before(history["ETH/BTC"], clock.now_ms()))


async def test_a_fault_that_outlasts_the_retries_stops_with_what_was_stored(
    client: ExchangeClients, exchange: LocalExchange, store: Store
) -> None:
    await exchange.inject_fault(FaultKind.SERVER_ERROR, count=50, status=502)
    with pytest.raises(DownloadError, match="run the same command again to resume"):
        await download_candles(
            client.rest,
            store,
            exchange="local",
            symbol="ETH/BTC",
            timeframe="5m",
            since=START,
            max_retries=2,
            backoff_s=0.01,
        )


async def test_unknown_symbol_or_timeframe_lists_valid_choices(
    client: ExchangeClients, store: Store
) -> None:
    with pytest.raises(DownloadError, match=r"unknown symbol.*ETHBTC.*Did you mean ETH/BTC"):
        await download_candles(
            client.rest, store, exchange="local", symbol="ETHBTC", timeframe="5m", since=START
        )
    with pytest.raises(DownloadError, match=r"unknown timeframe.*'7m'.*Valid: .*1h"):
        await download_candles(
            client.rest, store, exchange="local", symbol="ETH/BTC", timeframe="7m", since=START
        )


async def run_cli(*args: str, env: dict[str, str]) -> tuple[int, str, str]:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "workbench",
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env={**os.environ, **env},
    )
    out, err = await asyncio.wait_for(process.communicate(), timeout=120)
    return process.returncode or 0, out.decode(), err.decode()


async def test_the_command_downloads_from_the_local_exchange(
    exchange: LocalExchange, tmp_path: Path
) -> None:
    env = {"WORKBENCH_DB": str(tmp_path / "w.duckdb"), "WORKBENCH_LOCAL_PORT": str(exchange.port)}
    code, out, err = await run_cli(
        "data",
        "download",
        "--exchange",
        "local",
        "--symbol",
        "ADA/BTC",
        "--timeframe",
        "5m",
        "--since",
        START,
        "--json",
        env=env,
    )
    assert code == 0, err
    report = json.loads(out)
    assert report["fetched"] == report["new"] > 2900
    assert len(report["gaps"]) > 0
    code, _, err = await run_cli(
        "data",
        "download",
        "--exchange",
        "nosuchex",
        "--symbol",
        "A/B",
        "--timeframe",
        "5m",
        "--since",
        START,
        env=env,
    )
    assert code == 1 and "unknown exchange 'nosuchex'" in err and "binance" in err


async def test_a_download_stores_the_markets_lot_rules(
    client: ExchangeClients, store: Store, exchange: LocalExchange
) -> None:
    await download_candles(
        client.rest, store, exchange="local", symbol="ADA/BTC", timeframe="5m", since=START
    )
    served = exchange.engine.markets["ADABTC"]
    rules = store.markets.get("local", "ADA/BTC")
    assert rules is not None
    assert (rules.amount_step, rules.min_amount, rules.min_notional) == pytest.approx(
        (served.step_size, served.min_qty, served.min_notional)
    )
