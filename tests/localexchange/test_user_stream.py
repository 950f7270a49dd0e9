"""User data through ccxt.pro: watch_orders, watch_my_trades and watch_balance."""

from __future__ import annotations

import asyncio

import ccxt
import pytest

from workbench.localexchange import LocalExchange, ManualClock
from workbench.settings import Settings
from workbench.venue import connect
from workbench.venue.client import ExchangeClients

FIVE_MIN_MS = 300_000


async def test_watch_orders_sees_a_limit_order_open_then_canceled(
    stepped: ExchangeClients,
) -> None:
    watcher = asyncio.create_task(stepped.pro.watch_orders("ETH/BTC"))
    await asyncio.sleep(0.2)  # let the subscription reach the server
    order = await stepped.rest.create_order("ETH/BTC", "limit", "buy", 1.0, 0.01)
    seen = await asyncio.wait_for(watcher, 5)
    assert seen[-1]["id"] == order["id"] and seen[-1]["status"] == "open"
    await stepped.rest.cancel_order(order["id"], "ETH/BTC")
    seen = await asyncio.wait_for(stepped.pro.watch_orders("ETH/BTC"), 5)
    assert seen[-1]["id"] == order["id"] and seen[-1]["status"] == "canceled"


async def test_watch_my_trades_and_balance_follow_a_market_fill(
    stepped: ExchangeClients,
) -> None:
    trades = asyncio.create_task(stepped.pro.watch_my_trades("ETH/BTC"))
    balance = asyncio.create_task(stepped.pro.watch_balance())
    await asyncio.sleep(0.2)
    order = await stepped.rest.create_order("ETH/BTC", "market", "buy", 1.0)
    got = await asyncio.wait_for(trades, 5)
    assert got[-1]["order"] == order["id"]
    assert got[-1]["price"] == pytest.approx(order["average"])
    assert got[-1]["amount"] == 1.0 and got[-1]["side"] == "buy"
    assert got[-1]["fee"]["cost"] == pytest.approx(order["fee"]["cost"])
    pushed = await asyncio.wait_for(balance, 5)
    while pushed.get("ETH", {}).get("total") != 11.0:
        pushed = await asyncio.wait_for(stepped.pro.watch_balance(), 5)
    fetched = await stepped.rest.fetch_balance()
    assert pushed["BTC"]["free"] == pytest.approx(fetched["BTC"]["free"], rel=1e-12)


async def test_a_resting_order_fills_on_the_stream_when_the_replay_crosses_it(
    stepped: ExchangeClients, manual_clock: ManualClock
) -> None:
    ticker = await stepped.rest.fetch_ticker("ETH/BTC")
    limit = float(stepped.rest.price_to_precision("ETH/BTC", ticker["last"] * 0.995))
    watcher = asyncio.create_task(stepped.pro.watch_orders("ETH/BTC"))
    await asyncio.sleep(0.2)
    order = await stepped.rest.create_order("ETH/BTC", "limit", "buy", 1.0, limit)
    assert (await asyncio.wait_for(watcher, 5))[-1]["status"] == "open"

    async def until_closed() -> dict[str, object]:
        # ccxt.pro resolves a watch only with updates that arrive while it waits: keep one
        # waiting while the clock moves.
        while True:
            seen = await stepped.pro.watch_orders("ETH/BTC")
            if seen[-1]["status"] == "closed":
                return seen[-1]

    follower = asyncio.create_task(until_closed())
    await asyncio.sleep(0.05)
    status = "open"
    for _ in range(2000):  # step until the replay dips to the limit
        if status == "closed":
            break
        manual_clock.advance(FIVE_MIN_MS)
        status = (await stepped.rest.fetch_order(order["id"], "ETH/BTC"))["status"]
    closed = await asyncio.wait_for(follower, 5)
    assert closed["id"] == order["id"] and closed["filled"] == 1.0


async def test_a_wrong_secret_cannot_subscribe_to_user_data(
    stepped_exchange: LocalExchange, settings: Settings
) -> None:
    async with connect(
        "local", port=stepped_exchange.port, settings=settings, secret="wrong"
    ) as ex:
        await ex.rest.load_markets()
        ex.pro.set_markets(ex.rest.markets)
        # The server answers -1022 as Binance does; ccxt 4.5.90 then raises either
        # AuthenticationError or, from a double delete in its own error path, KeyError('spot').
        with pytest.raises((ccxt.AuthenticationError, KeyError)):
            await asyncio.wait_for(ex.pro.watch_orders("ETH/BTC"), 5)
