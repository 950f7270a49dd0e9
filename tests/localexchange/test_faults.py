"""Injected faults, as ccxt sees them: the same errors a real exchange's would raise."""

from __future__ import annotations

import asyncio
import time

import aiohttp
import ccxt
import pytest

from workbench.localexchange import FaultKind, LocalExchange, ManualClock
from workbench.venue.client import ExchangeClients


async def test_a_429_raises_ddos_protection_with_retry_after(
    stepped_exchange: LocalExchange, stepped: ExchangeClients
) -> None:
    await stepped_exchange.inject_fault(FaultKind.RATE_LIMIT, count=1, retry_after_s=7)
    with pytest.raises(ccxt.DDoSProtection, match="429"):
        await stepped.rest.fetch_ticker("ETH/BTC")
    assert stepped.rest.last_response_headers["Retry-After"] == "7"
    assert (await stepped.rest.fetch_ticker("ETH/BTC"))["symbol"] == "ETH/BTC"


async def test_a_418_ban_raises_ddos_protection_for_its_duration(
    stepped_exchange: LocalExchange, stepped: ExchangeClients
) -> None:
    await stepped_exchange.inject_fault(FaultKind.BAN, duration_s=0.3)
    for _ in range(2):
        with pytest.raises(ccxt.DDoSProtection, match="418"):
            await stepped.rest.fetch_balance()
    await asyncio.sleep(0.35)
    assert "BTC" in await stepped.rest.fetch_balance()


async def test_a_5xx_raises_exchange_not_available(
    stepped_exchange: LocalExchange, stepped: ExchangeClients
) -> None:
    await stepped_exchange.inject_fault(FaultKind.SERVER_ERROR, count=2, status=502)
    for _ in range(2):
        with pytest.raises(ccxt.ExchangeNotAvailable):
            await stepped.rest.fetch_ohlcv("ETH/BTC", "5m", limit=5)
    assert len(await stepped.rest.fetch_ohlcv("ETH/BTC", "5m", limit=5)) == 5


async def test_latency_delays_every_answer(
    stepped_exchange: LocalExchange, stepped: ExchangeClients
) -> None:
    await stepped_exchange.inject_fault(FaultKind.LATENCY, latency_ms=300, duration_s=5)
    started = time.monotonic()
    await stepped.rest.fetch_time()
    assert time.monotonic() - started >= 0.3
    stepped_exchange.clear_faults()
    started = time.monotonic()
    await stepped.rest.fetch_time()
    assert time.monotonic() - started < 0.3


async def test_dropped_websockets_fail_pending_watches_with_network_error_then_reconnect(
    stepped_exchange: LocalExchange, stepped: ExchangeClients, manual_clock: ManualClock
) -> None:
    pending = asyncio.create_task(stepped.pro.watch_ohlcv("ETH/BTC", "5m"))
    await asyncio.sleep(0.2)  # subscribed; the clock stands still, so nothing comes yet
    await stepped_exchange.inject_fault(FaultKind.DROP_WEBSOCKETS)
    with pytest.raises(ccxt.NetworkError):
        await asyncio.wait_for(pending, 2)
    again = asyncio.create_task(stepped.pro.watch_ohlcv("ETH/BTC", "5m"))
    await asyncio.sleep(0.2)
    manual_clock.advance(60_000)
    candles = await asyncio.wait_for(again, 2)
    assert candles[-1][0] <= manual_clock.now_ms()


async def test_websockets_are_refused_while_the_drop_lasts(fast_exchange: LocalExchange) -> None:
    await fast_exchange.inject_fault(FaultKind.DROP_WEBSOCKETS, duration_s=0.3)
    async with aiohttp.ClientSession() as session:
        with pytest.raises(aiohttp.WSServerHandshakeError):
            await session.ws_connect(f"ws://127.0.0.1:{fast_exchange.port}/ws")
        await asyncio.sleep(0.35)
        ws = await session.ws_connect(f"ws://127.0.0.1:{fast_exchange.port}/ws")
        await ws.close()


async def test_a_stalled_stream_goes_silent_then_delivers_the_backlog_in_order(
    fast_exchange: LocalExchange, fast: ExchangeClients
) -> None:
    before = (await fast.pro.watch_ohlcv("ETH/BTC", "5m"))[-1][0]
    await fast_exchange.inject_fault(FaultKind.STALL_STREAMS, duration_s=0.5)
    await asyncio.sleep(0.05)  # let what was already queued go out
    fast.pro.ohlcvs.clear()
    started = time.monotonic()
    candles = await asyncio.wait_for(fast.pro.watch_ohlcv("ETH/BTC", "5m"), 3)
    assert time.monotonic() - started >= 0.35
    assert candles[0][0] >= before


async def test_faults_can_be_driven_over_http(fast_exchange: LocalExchange) -> None:
    async with aiohttp.ClientSession() as session:
        url = f"{fast_exchange.url}/_local/faults"
        async with session.post(url, json={"kind": "rate_limit", "count": 1}) as response:
            assert (await response.json())["faults"][0]["kind"] == "rate_limit"
        async with session.get(f"{fast_exchange.url}/api/v3/ping") as response:
            assert response.status == 429
        async with session.get(f"{fast_exchange.url}/api/v3/ping") as response:
            assert response.status == 200
        async with session.get(f"{fast_exchange.url}/_local/state") as response:
            state = await response.json()
            assert state["symbols"] == ["ETH/BTC", "LTC/BTC"] and state["speed"] == 6000
