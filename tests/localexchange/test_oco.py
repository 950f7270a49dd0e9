"""OCO order lists through ccxt's signed endpoint: one lock, one leg fills, the other expires."""

from __future__ import annotations

from typing import Any

import ccxt
import pandas as pd
import pytest

from workbench.localexchange import ManualClock
from workbench.venue.client import ExchangeClients

FIVE_MIN_MS = 300_000


async def place_oco(
    clients: ExchangeClients, quantity: float, above: float, below: float, tag: str = "oco"
) -> dict[str, Any]:
    """Place a SELL OCO: take-profit above the market, stop-loss below."""
    rest = clients.rest
    return await rest.private_post_orderlist_oco(
        {
            "symbol": "ETHBTC",
            "side": "SELL",
            "quantity": rest.amount_to_precision("ETH/BTC", quantity),
            "listClientOrderId": f"{tag}-list",
            "aboveType": "TAKE_PROFIT",
            "aboveStopPrice": rest.price_to_precision("ETH/BTC", above),
            "aboveClientOrderId": f"{tag}-tp",
            "belowType": "STOP_LOSS",
            "belowStopPrice": rest.price_to_precision("ETH/BTC", below),
            "belowClientOrderId": f"{tag}-sl",
        }
    )


async def test_an_oco_locks_its_quantity_once_and_cancelling_a_leg_cancels_both(
    stepped: ExchangeClients,
) -> None:
    price = (await stepped.rest.fetch_ticker("ETH/BTC"))["last"]
    answer = await place_oco(stepped, 6.0, price * 1.05, price * 0.95)
    assert answer["contingencyType"] == "OCO" and len(answer["orderReports"]) == 2
    balance = await stepped.rest.fetch_balance()
    # Two sell legs of 6 ETH hold 6 ETH, not 12 (the account has 10).
    assert balance["ETH"]["used"] == pytest.approx(6.0)
    legs = await stepped.rest.fetch_open_orders("ETH/BTC")
    assert sorted(o["clientOrderId"] for o in legs) == ["oco-sl", "oco-tp"]
    assert {o["info"]["orderListId"] for o in legs} == {answer["orderListId"]}
    await stepped.rest.cancel_order(None, "ETH/BTC", {"origClientOrderId": "oco-tp"})
    assert await stepped.rest.fetch_open_orders("ETH/BTC") == []
    for cid in ("oco-sl", "oco-tp"):
        found = await stepped.rest.fetch_order(None, "ETH/BTC", {"origClientOrderId": cid})
        assert found["status"] == "canceled"
    balance = await stepped.rest.fetch_balance()
    assert balance["ETH"]["used"] == 0 and balance["ETH"]["free"] == pytest.approx(10.0)


async def test_the_leg_the_price_reaches_first_fills_and_the_other_expires(
    stepped: ExchangeClients, history: dict[str, pd.DataFrame], manual_clock: ManualClock
) -> None:
    frame = history["ETH/BTC"]
    placed = manual_clock.now_ms()
    price = (await stepped.rest.fetch_ticker("ETH/BTC"))["last"]
    above = float(stepped.rest.price_to_precision("ETH/BTC", price * 1.01))
    below = float(stepped.rest.price_to_precision("ETH/BTC", price * 0.99))
    await place_oco(stepped, 2.0, above, below)
    for _ in range(3000):
        manual_clock.advance(FIVE_MIN_MS // 3)
        if not await stepped.rest.fetch_open_orders("ETH/BTC"):
            break
    legs = {
        cid: await stepped.rest.fetch_order(None, "ETH/BTC", {"origClientOrderId": cid})
        for cid in ("oco-tp", "oco-sl")
    }
    statuses = sorted(o["status"] for o in legs.values())
    assert statuses == ["closed", "expired"]
    [(fired, order)] = [(cid, o) for cid, o in legs.items() if o["status"] == "closed"]
    # Oracle from the stored bars: the other level was not reached before the fill.
    fill_ms = order["lastTradeTimestamp"] or order["lastUpdateTimestamp"]
    bar = pd.Timestamp(fill_ms - fill_ms % FIVE_MIN_MS, unit="ms", tz="UTC")
    start = pd.Timestamp(placed - placed % FIVE_MIN_MS, unit="ms", tz="UTC")
    before = frame[(frame.index > start) & (frame.index < bar)]
    assert len(before) >= 3, "the levels must be far enough apart to test an ordering"
    if fired == "oco-tp":
        assert order["average"] >= above
        assert before["low"].min() > below
    else:
        assert order["average"] <= below
        assert before["high"].max() < above
    balance = await stepped.rest.fetch_balance()
    assert balance["ETH"]["used"] == 0
    assert balance["ETH"]["total"] == pytest.approx(8.0)


async def test_an_oco_needs_the_balance_once_and_its_ids_once(stepped: ExchangeClients) -> None:
    price = (await stepped.rest.fetch_ticker("ETH/BTC"))["last"]
    with pytest.raises(ccxt.InsufficientFunds):
        await place_oco(stepped, 11.0, price * 1.05, price * 0.95, tag="big")
    await place_oco(stepped, 1.0, price * 1.05, price * 0.95, tag="once")
    with pytest.raises(ccxt.InvalidOrder, match="Duplicate"):
        await place_oco(stepped, 1.0, price * 1.05, price * 0.95, tag="once")
    with pytest.raises(ccxt.OrderImmediatelyFillable):
        await place_oco(stepped, 1.0, price * 1.05, price * 1.01, tag="now")
    assert len(await stepped.rest.fetch_open_orders("ETH/BTC")) == 2
