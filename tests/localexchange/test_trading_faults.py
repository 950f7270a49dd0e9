"""Trading faults through ccxt: lost answers, failing lookups, a skewed clock, refused orders.

Each test names the exact ccxt class a fault raises, checks that the fault ends when it should,
and that the book and the balances stay consistent across it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import Any

import aiohttp
import ccxt
import pytest

from workbench.localexchange import FaultKind, LocalExchange, ManualClock
from workbench.venue.client import ExchangeClients

RATE = 0.001
FAR_BELOW = 0.01  # a limit buy price ETH/BTC never reaches in the shipped data
SKEW_MS = 60_000


async def raises_exactly(error: type[ccxt.BaseError], call: Awaitable[Any]) -> ccxt.BaseError:
    """Await ``call`` and check that it raises ``error`` itself, not a relative; give it."""
    with pytest.raises(ccxt.BaseError) as caught:
        await call
    assert caught.type is error, repr(caught.value)
    return caught.value


async def test_a_lost_answer_raises_exchange_not_available_and_the_order_exists_once(
    stepped_exchange: LocalExchange, stepped: ExchangeClients
) -> None:
    ex = stepped.rest
    before = await ex.fetch_balance()
    await stepped_exchange.inject_fault(FaultKind.ANSWER_LOST)  # the next order command
    params = {"clientOrderId": "wb-lost-1"}
    await raises_exactly(
        ccxt.ExchangeNotAvailable, ex.create_order("ETH/BTC", "market", "buy", 1.0, None, params)
    )
    # It was booked: once, findable by its client id, and its fill moved the balances once.
    found = await ex.fetch_order(None, "ETH/BTC", {"origClientOrderId": "wb-lost-1"})
    assert found["status"] == "closed" and found["filled"] == 1.0
    assert [o["clientOrderId"] for o in await ex.fetch_orders("ETH/BTC")] == ["wb-lost-1"]
    after = await ex.fetch_balance()
    assert after["ETH"]["total"] == pytest.approx(before["ETH"]["total"] + 1.0)
    assert after["BTC"]["total"] == pytest.approx(
        before["BTC"]["total"] - found["cost"] * (1 + RATE), rel=1e-12
    )
    # A retry under the same client id places nothing; the fault is spent.
    with pytest.raises(ccxt.InvalidOrder, match="Duplicate order sent"):
        await ex.create_order("ETH/BTC", "market", "buy", 1.0, None, params)
    again = await ex.create_order("ETH/BTC", "limit", "buy", 1.0, FAR_BELOW)
    assert again["status"] == "open"
    assert len(await ex.fetch_orders("ETH/BTC")) == 2


async def test_a_held_answer_raises_request_timeout_and_the_resting_order_locks_once(
    stepped_exchange: LocalExchange, stepped: ExchangeClients
) -> None:
    ex = stepped.rest
    ex.timeout = 300  # ms: the server holds the answer far longer
    await stepped_exchange.inject_fault(FaultKind.ANSWER_LOST, hang_s=30)
    await raises_exactly(
        ccxt.RequestTimeout,
        ex.create_order("ETH/BTC", "limit", "buy", 2.0, FAR_BELOW, {"clientOrderId": "wb-held"}),
    )
    [resting] = await ex.fetch_open_orders("ETH/BTC")
    assert resting["clientOrderId"] == "wb-held"
    balance = await ex.fetch_balance()
    assert balance["BTC"]["used"] == pytest.approx(2.0 * FAR_BELOW * (1 + RATE))


async def test_a_lost_cancel_answer_is_resent_by_aiohttp_and_comes_back_order_not_found(
    stepped_exchange: LocalExchange, stepped: ExchangeClients
) -> None:
    ex = stepped.rest
    order = await ex.create_order("ETH/BTC", "limit", "buy", 1.0, FAR_BELOW)
    await stepped_exchange.inject_fault(FaultKind.ANSWER_LOST, count=1)
    # aiohttp sends an idempotent method (DELETE) once more when the connection drops: the
    # second cancel finds the order already cancelled, so ccxt says -2011, OrderNotFound,
    # about a cancel that worked. A real venue's dropped answer does the same.
    await raises_exactly(ccxt.OrderNotFound, ex.cancel_order(order["id"], "ETH/BTC"))
    assert (await ex.fetch_order(order["id"], "ETH/BTC"))["status"] == "canceled"
    assert (await ex.fetch_balance())["BTC"]["used"] == 0
    # Both answers lost: the network error itself.
    second = await ex.create_order("ETH/BTC", "limit", "buy", 1.0, FAR_BELOW)
    await stepped_exchange.inject_fault(FaultKind.ANSWER_LOST, count=2)
    await raises_exactly(ccxt.ExchangeNotAvailable, ex.cancel_order(second["id"], "ETH/BTC"))
    assert (await ex.fetch_order(second["id"], "ETH/BTC"))["status"] == "canceled"
    assert (await ex.fetch_balance())["BTC"]["used"] == 0


async def test_failing_lookups_raise_exchange_not_available_while_trading_works(
    stepped_exchange: LocalExchange, stepped: ExchangeClients
) -> None:
    ex = stepped.rest
    order = await ex.create_order("ETH/BTC", "limit", "buy", 1.0, FAR_BELOW)
    await stepped_exchange.inject_fault(FaultKind.LOOKUP_FAILING, duration_s=0.4)
    for lookup in (
        ex.fetch_order(order["id"], "ETH/BTC"),
        ex.fetch_open_orders("ETH/BTC"),
        ex.fetch_my_trades("ETH/BTC"),
        ex.fetch_orders("ETH/BTC"),
    ):
        await raises_exactly(ccxt.ExchangeNotAvailable, lookup)
    # Everything else answers: balances, market data, new orders, cancels.
    assert (await ex.fetch_balance())["BTC"]["used"] > 0
    assert (await ex.fetch_ticker("ETH/BTC"))["last"] > 0
    second = await ex.create_order("ETH/BTC", "limit", "buy", 1.0, FAR_BELOW)
    assert (await ex.cancel_order(second["id"], "ETH/BTC"))["status"] == "canceled"
    await asyncio.sleep(0.45)
    assert [o["id"] for o in await ex.fetch_open_orders("ETH/BTC")] == [order["id"]]


async def test_hanging_lookups_raise_request_timeout_for_their_count(
    stepped_exchange: LocalExchange, stepped: ExchangeClients
) -> None:
    ex = stepped.rest
    ex.timeout = 300
    await stepped_exchange.inject_fault(FaultKind.LOOKUP_FAILING, count=1, hang_s=30)
    await raises_exactly(ccxt.RequestTimeout, ex.fetch_open_orders("ETH/BTC"))
    assert await ex.fetch_open_orders("ETH/BTC") == []


async def test_a_skewed_clock_raises_invalid_nonce_until_the_client_measures_the_offset(
    stepped_exchange: LocalExchange, stepped: ExchangeClients
) -> None:
    ex = stepped.rest
    await stepped_exchange.inject_fault(FaultKind.CLOCK_SKEW, skew_ms=SKEW_MS, duration_s=5)
    error = await raises_exactly(ccxt.InvalidNonce, ex.fetch_balance())
    assert "Timestamp for this request is outside of the recvWindow." in str(error)
    await raises_exactly(
        ccxt.InvalidNonce, ex.create_order("ETH/BTC", "limit", "buy", 1.0, FAR_BELOW)
    )
    # Public calls work, and the server's time shows the skew a client can correct for.
    offset = await ex.load_time_difference()
    assert offset == pytest.approx(-SKEW_MS, abs=1_000)
    assert await ex.fetch_orders("ETH/BTC") == []  # the refused order never reached the book
    assert (await ex.fetch_balance())["BTC"]["used"] == 0
    stepped_exchange.clear_faults()
    ex.options["timeDifference"] = 0
    assert await ex.fetch_open_orders("ETH/BTC") == []


@pytest.mark.parametrize("skew_ms", [SKEW_MS, -5_000], ids=["ahead", "behind"])
async def test_a_clock_skew_for_a_count_rejects_that_many_signed_requests(
    stepped_exchange: LocalExchange, stepped: ExchangeClients, skew_ms: int
) -> None:
    ex = stepped.rest
    await stepped_exchange.inject_fault(FaultKind.CLOCK_SKEW, count=2, skew_ms=skew_ms)
    for _ in range(2):
        await raises_exactly(ccxt.InvalidNonce, ex.fetch_balance())
    assert (await ex.fetch_balance())["BTC"]["free"] == pytest.approx(1.0)


async def test_a_skewed_clock_refuses_the_user_stream_subscription_with_minus_1021(
    stepped_exchange: LocalExchange, stepped: ExchangeClients
) -> None:
    await stepped_exchange.inject_fault(FaultKind.CLOCK_SKEW, duration_s=5)
    url = f"ws://127.0.0.1:{stepped_exchange.port}/ws-api/v3"
    params = stepped.pro.sign_params({})
    async with aiohttp.ClientSession() as session, session.ws_connect(url) as ws:
        request = {"id": "1", "method": "userDataStream.subscribe.signature", "params": params}
        await ws.send_json(request)
        answer = await asyncio.wait_for(ws.receive_json(), 5)
    assert answer["status"] == 400
    assert answer["error"] == {
        "code": -1021,
        "msg": "Timestamp for this request is outside of the recvWindow.",
    }


async def test_ccxt_pro_loses_its_user_stream_after_a_refused_subscription(
    stepped_exchange: LocalExchange, stepped: ExchangeClients
) -> None:
    # A defect of ccxt.pro 4.5.90 that a real venue triggers the same way (any error answer
    # to userDataStream.subscribe.signature): it raises KeyError('spot'), not the mapped
    # InvalidNonce, and leaves its subscription pending, so that client's later watches of
    # user data never return. Only a new client recovers.
    await stepped_exchange.inject_fault(FaultKind.CLOCK_SKEW, count=1)
    with pytest.raises(KeyError, match="spot"):
        await asyncio.wait_for(stepped.pro.watch_balance(), 5)
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(stepped.pro.watch_balance(), 0.5)


async def test_refused_orders_raise_insufficient_funds_for_their_count_and_book_nothing(
    stepped_exchange: LocalExchange, stepped: ExchangeClients
) -> None:
    ex = stepped.rest
    before = await ex.fetch_balance()
    await stepped_exchange.inject_fault(FaultKind.INSUFFICIENT_BALANCE, count=2)
    for _ in range(2):
        error = await raises_exactly(
            ccxt.InsufficientFunds, ex.create_order("ETH/BTC", "market", "buy", 0.1)
        )
        assert "Account has insufficient balance for requested action." in str(error)
    assert (await ex.fetch_balance())["total"] == before["total"]
    assert await ex.fetch_orders("ETH/BTC") == []
    placed = await ex.create_order("ETH/BTC", "market", "buy", 0.1)
    assert [o["id"] for o in await ex.fetch_orders("ETH/BTC")] == [placed["id"]]


async def test_cancelling_a_filled_order_raises_order_not_found_as_binance_answers(
    stepped: ExchangeClients, manual_clock: ManualClock
) -> None:
    ex = stepped.rest
    filled = await ex.create_order("ETH/BTC", "market", "buy", 1.0)
    assert filled["status"] == "closed"
    error = await raises_exactly(ccxt.OrderNotFound, ex.cancel_order(filled["id"], "ETH/BTC"))
    assert '"code": -2011' in str(error) and "Unknown order sent." in str(error)
    assert (await ex.fetch_order(filled["id"], "ETH/BTC"))["status"] == "closed"
    assert (await ex.fetch_balance())["ETH"]["total"] == pytest.approx(11.0)


async def test_new_faults_can_be_driven_over_http(fast_exchange: LocalExchange) -> None:
    async with aiohttp.ClientSession() as session:
        url = f"{fast_exchange.url}/_local/faults"
        spec = {"kind": "clock_skew", "skew_ms": -5000, "duration_s": 2}
        async with session.post(url, json=spec) as response:
            [fault] = (await response.json())["faults"]
            assert fault["kind"] == "clock_skew" and fault["skew_ms"] == -5000
        async with session.post(url, json={"kind": "lookup_failing", "hang_s": -1}) as response:
            assert response.status == 400
            assert "hang_s must not be negative" in (await response.json())["error"]
        async with session.post(url, json={"kind": "answer_lsot"}) as response:
            assert response.status == 400
            assert "kind must be one of" in (await response.json())["error"]
            assert "answer_lost" in (await response.json())["error"]
