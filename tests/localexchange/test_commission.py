"""Commission as Binance takes it, through ccxt: in the asset received, in quote, or in BNB.

Every expected balance here is worked out by hand from the fill price and amount, not with the
fill model the exchange uses.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pandas as pd
import pytest

from workbench.fills import DEFAULT_FEE_ASSET, FeeAsset
from workbench.localexchange import LocalExchange, ManualClock
from workbench.localexchange.commission import BNB_REFERENCE_PRICES, DEFAULT_BNB_BALANCE
from workbench.settings import Settings
from workbench.venue import connect
from workbench.venue.client import ExchangeClients

RATE = 0.001
DISCOUNT = 0.25  # what paying in BNB saves (the fill model's default)
BNB_BTC = BNB_REFERENCE_PRICES["BTC"]  # the flat synthetic BNB/BTC price
FIVE_MIN_MS = 300_000


async def open_exchange(
    history: dict[str, pd.DataFrame],
    clock: ManualClock,
    fee_asset: str,
    balances: dict[str, float] | None = None,
) -> AsyncIterator[ExchangeClients]:
    async with LocalExchange(
        history, clock=clock, tick_s=0.01, fee_asset=fee_asset, balances=balances
    ) as server:
        clients = connect("local", settings=Settings(), port=server.port)
        await clients.load_markets()
        yield clients
        await clients.close()


@pytest.fixture(params=[a.value for a in FeeAsset])
async def venue(
    request: pytest.FixtureRequest, history: dict[str, pd.DataFrame], manual_clock: ManualClock
) -> AsyncIterator[tuple[str, ExchangeClients]]:
    async for clients in open_exchange(history, manual_clock, request.param):
        yield request.param, clients


def expected_moves(fee_asset: str, side: str, price: float, amount: float) -> dict[str, float]:
    """Give the change of ETH, BTC and BNB Binance books for an ETH/BTC fill, and its fee."""
    notional = price * amount
    sign = 1.0 if side == "buy" else -1.0
    if fee_asset == "quote":
        return {"ETH": sign * amount, "BTC": -sign * notional - notional * RATE, "BNB": 0.0}
    if fee_asset == "received" and side == "buy":
        return {"ETH": amount - amount * RATE, "BTC": -notional, "BNB": 0.0}
    if fee_asset == "received":
        return {"ETH": -amount, "BTC": notional - notional * RATE, "BNB": 0.0}
    fee_bnb = notional * RATE * (1 - DISCOUNT) / BNB_BTC
    return {"ETH": sign * amount, "BTC": -sign * notional, "BNB": -fee_bnb}


def expected_fee(fee_asset: str, side: str, price: float, amount: float) -> tuple[float, str]:
    """Give the commission and its asset Binance reports for an ETH/BTC fill."""
    notional = price * amount
    if fee_asset == "quote" or (fee_asset == "received" and side == "sell"):
        return notional * RATE, "BTC"
    if fee_asset == "received":
        return amount * RATE, "ETH"
    return notional * RATE * (1 - DISCOUNT) / BNB_BTC, "BNB"


def totals(balance: dict[str, Any]) -> dict[str, float]:
    return {a: float(balance.get(a, {}).get("total") or 0.0) for a in ("ETH", "BTC", "BNB")}


def assert_moved(before: dict[str, float], after: dict[str, float], moves: dict[str, float]):
    for asset, move in moves.items():
        assert after[asset] == pytest.approx(before[asset] + move, rel=1e-12, abs=1e-15), asset


@pytest.mark.parametrize("side", ["buy", "sell"])
async def test_a_market_fill_books_and_reports_the_fee_in_the_venues_asset(
    venue: tuple[str, ExchangeClients], side: str
) -> None:
    fee_asset, ex = venue
    before = totals(await ex.rest.fetch_balance())
    order = await ex.rest.create_order("ETH/BTC", "market", side, 1.5)
    after = totals(await ex.rest.fetch_balance())
    price = order["average"]
    assert_moved(before, after, expected_moves(fee_asset, side, price, 1.5))
    cost, currency = expected_fee(fee_asset, side, price, 1.5)
    # ccxt reads the fee from the FULL answer's fills, and from myTrades.
    assert order["fee"]["currency"] == currency
    assert order["fee"]["cost"] == pytest.approx(cost, rel=1e-12)
    [trade] = await ex.rest.fetch_my_trades("ETH/BTC")
    assert trade["fee"]["currency"] == currency
    assert trade["fee"]["cost"] == pytest.approx(cost, rel=1e-12)


async def test_execution_reports_carry_the_commission_and_its_asset(
    venue: tuple[str, ExchangeClients],
) -> None:
    fee_asset, ex = venue
    watcher = asyncio.create_task(ex.pro.watch_my_trades("ETH/BTC"))
    await asyncio.sleep(0.2)  # let the subscription reach the server
    order = await ex.rest.create_order("ETH/BTC", "market", "buy", 1.0)
    [trade] = await asyncio.wait_for(watcher, 5)
    cost, currency = expected_fee(fee_asset, "buy", order["average"], 1.0)
    assert trade["fee"]["currency"] == currency
    assert trade["fee"]["cost"] == pytest.approx(cost, rel=1e-12)


async def test_a_resting_buy_locks_the_notional_plus_a_fee_only_when_it_is_paid_in_quote(
    venue: tuple[str, ExchangeClients], manual_clock: ManualClock, history: dict[str, Any]
) -> None:
    fee_asset, ex = venue
    now = manual_clock.now_ms()
    frame = history["ETH/BTC"]
    ahead = frame[frame.index > pd.Timestamp(now, unit="ms", tz="UTC")].iloc[:12]
    limit = float(ahead["low"].min())
    before = totals(await ex.rest.fetch_balance())
    order = await ex.rest.create_order("ETH/BTC", "limit", "buy", 2.0, limit)
    locked = await ex.rest.fetch_balance()
    notional = limit * 2.0
    assert locked["BTC"]["used"] == pytest.approx(
        notional * (1 + RATE) if fee_asset == "quote" else notional, rel=1e-12
    )
    manual_clock.advance(12 * FIVE_MIN_MS)
    filled = await ex.rest.fetch_order(order["id"], "ETH/BTC")
    assert filled["status"] == "closed" and filled["average"] == limit
    after = await ex.rest.fetch_balance()
    assert after["BTC"]["used"] == 0
    assert_moved(before, totals(after), expected_moves(fee_asset, "buy", limit, 2.0))


async def test_a_buy_for_a_quote_amount_spends_at_most_that_amount(
    venue: tuple[str, ExchangeClients],
) -> None:
    fee_asset, ex = venue
    before = totals(await ex.rest.fetch_balance())
    spend = 0.25
    order = await ex.rest.create_market_buy_order_with_cost("ETH/BTC", spend)
    after = totals(await ex.rest.fetch_balance())
    price, amount = order["average"], order["filled"]
    step = ex.rest.market("ETH/BTC")["precision"]["amount"]
    spent = before["BTC"] - after["BTC"]
    assert spent == pytest.approx(-expected_moves(fee_asset, "buy", price, amount)["BTC"])
    # The largest whole number of lot steps the amount pays for, fee included if in quote.
    per_unit = price * (1 + RATE) if fee_asset == "quote" else price
    assert spent <= spend + 1e-15
    assert spend - spent < step * per_unit
    assert float(order["info"]["origQuoteOrderQty"]) == spend


async def test_without_enough_bnb_the_fee_is_taken_in_the_asset_received_at_the_full_rate(
    history: dict[str, pd.DataFrame], manual_clock: ManualClock
) -> None:
    tiny = 1e-6  # BNB: far less than the fee of the first order
    balances = {"BTC": 1.0, "ETH": 10.0, "BNB": tiny}
    async for ex in open_exchange(history, manual_clock, "bnb", balances):
        buy = await ex.rest.create_order("ETH/BTC", "market", "buy", 1.0)
        assert buy["fee"]["currency"] == "ETH"
        assert buy["fee"]["cost"] == pytest.approx(1.0 * RATE, rel=1e-12)
        sell = await ex.rest.create_order("ETH/BTC", "market", "sell", 1.0)
        assert sell["fee"]["currency"] == "BTC"
        assert sell["fee"]["cost"] == pytest.approx(sell["average"] * RATE, rel=1e-12)
        balance = await ex.rest.fetch_balance()
        assert balance["BNB"]["total"] == tiny
        assert balance["ETH"]["total"] == pytest.approx(10.0 - 1.0 * RATE, rel=1e-12)


async def test_bnb_fees_come_with_a_bnb_balance_and_a_bnb_market_to_value_it(
    history: dict[str, pd.DataFrame], manual_clock: ManualClock
) -> None:
    async for ex in open_exchange(history, manual_clock, "bnb"):
        balance = await ex.rest.fetch_balance()
        assert balance["BNB"]["free"] == DEFAULT_BNB_BALANCE
        assert "BNB/BTC" in ex.rest.markets
        ticker = await ex.rest.fetch_ticker("BNB/BTC")
        assert ticker["last"] == BNB_BTC


def test_a_local_exchange_nobody_configured_takes_fees_in_the_one_default_asset(
    history: dict[str, pd.DataFrame],
) -> None:
    server = LocalExchange(history)
    assert server.engine.fill_model.fee_asset is DEFAULT_FEE_ASSET
    assert "BNB" not in server.engine.matcher.accounts[server.api_key].free


def test_bnb_fees_need_a_bnb_price_in_every_quote_served(
    history: dict[str, pd.DataFrame],
) -> None:
    euro = {"ETH/EUR": history["ETH/BTC"]}
    with pytest.raises(ValueError, match="fee_asset bnb needs BNB's price in EUR"):
        LocalExchange(euro, fee_asset="bnb")
    own_price = {**euro, "BNB/EUR": history["LTC/BTC"]}  # the history's own BNB market serves
    assert "BNB/EUR" in LocalExchange(own_price, fee_asset="bnb").symbols


def test_an_unknown_fee_asset_is_refused_naming_the_choices(
    history: dict[str, pd.DataFrame],
) -> None:
    with pytest.raises(ValueError, match="fee_asset must be one of quote, received, bnb"):
        LocalExchange(history, fee_asset="usd")
