"""The opt-in liquidity limit: a resting order fills in parts, never faster than the market."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pandas as pd
import pytest

from workbench.localexchange import LocalExchange, ManualClock
from workbench.settings import Settings
from workbench.venue import connect
from workbench.venue.client import ExchangeClients

from .conftest import FEES_IN

FIVE_MIN_MS = 300_000
FRACTION = 0.01
FEE_RATE = 0.001


@pytest.fixture
async def thin(
    history: dict[str, pd.DataFrame], manual_clock: ManualClock, settings: Settings
) -> AsyncIterator[ExchangeClients]:
    """Clients on a hand-stepped exchange where resting orders get 1% of the volume."""
    async with LocalExchange(
        history,
        clock=manual_clock,
        tick_s=0.01,
        max_volume_fraction=FRACTION,
        fee_asset=FEES_IN,
    ) as server:
        clients = connect("local", settings=settings, port=server.port)
        await clients.load_markets()
        yield clients
        await clients.close()


def volume_between(frame: pd.DataFrame, t0_ms: int, t1_ms: int) -> float:
    """Give the volume the replay trades in (t0, t1]: bar volumes pro rata of time."""
    opens = frame.index.as_unit("ms").asi8
    covered = (
        pd.Series(opens + FIVE_MIN_MS).clip(upper=t1_ms) - pd.Series(opens).clip(lower=t0_ms)
    ).clip(lower=0)
    return float((frame["volume"].to_numpy() * covered.to_numpy() / FIVE_MIN_MS).sum())


async def test_a_large_resting_limit_fills_in_parts_within_the_volume_limit(
    thin: ExchangeClients, history: dict[str, pd.DataFrame], manual_clock: ManualClock
) -> None:
    frame = history["ETH/BTC"]
    placed_ms = manual_clock.now_ms()
    ticker = await thin.rest.fetch_ticker("ETH/BTC")
    # Just below the market: the replay dips under it now and then, a little volume each time.
    limit = float(thin.rest.price_to_precision("ETH/BTC", ticker["last"] * 0.998))
    assert limit < ticker["last"]
    amount = 3.0
    order = await thin.rest.create_order("ETH/BTC", "limit", "buy", amount, limit)
    assert order["status"] == "open" and order["filled"] == 0
    seen_partial = False
    for _ in range(600):
        manual_clock.advance(FIVE_MIN_MS // 3)
        state = await thin.rest.fetch_order(order["id"], "ETH/BTC")
        seen_partial |= state["status"] == "open" and 0 < state["filled"] < amount
        if state["status"] == "closed":
            break
    assert state["status"] == "closed" and state["filled"] == pytest.approx(amount)
    assert seen_partial, "a partially filled state was visible through fetch_order"
    trades = await thin.rest.fetch_my_trades("ETH/BTC", params={"orderId": order["id"]})
    assert len(trades) >= 3
    assert sum(t["amount"] for t in trades) == pytest.approx(amount)
    # Never more than the fraction of what the market traded since the order was placed.
    filled = 0.0
    step = thin.rest.market("ETH/BTC")["precision"]["amount"]
    for trade in trades:
        filled += trade["amount"]
        allowed = FRACTION * volume_between(frame, placed_ms, trade["timestamp"])
        assert filled <= allowed + step, (filled, allowed)
        assert trade["price"] <= limit
    balance = await thin.rest.fetch_balance()
    spent = sum(t["amount"] * t["price"] * (1 + FEE_RATE) for t in trades)
    assert balance["BTC"]["total"] == pytest.approx(1.0 - spent, rel=1e-9)
    assert balance["BTC"]["used"] == pytest.approx(0.0, abs=1e-12)
    assert balance["ETH"]["total"] == pytest.approx(10.0 + amount)


async def test_market_orders_still_fill_whole(thin: ExchangeClients) -> None:
    order = await thin.rest.create_order("ETH/BTC", "market", "buy", 8.0)
    assert order["status"] == "closed" and order["filled"] == 8.0


async def test_a_partially_filled_order_cancels_with_its_fills_kept_and_the_rest_unlocked(
    thin: ExchangeClients, history: dict[str, pd.DataFrame], manual_clock: ManualClock
) -> None:
    frame = history["ETH/BTC"]
    now = manual_clock.now_ms()
    ahead = frame[frame.index > pd.Timestamp(now, unit="ms", tz="UTC")].iloc[:6]
    limit = float(ahead["high"].max())
    order = await thin.rest.create_order("ETH/BTC", "limit", "sell", 9.0, limit)
    assert order["status"] == "open"
    for _ in range(300):
        manual_clock.advance(FIVE_MIN_MS // 3)
        state = await thin.rest.fetch_order(order["id"], "ETH/BTC")
        if state["filled"] > 0:
            break
    assert 0 < state["filled"] < 9.0
    canceled = await thin.rest.cancel_order(order["id"], "ETH/BTC")
    assert canceled["status"] == "canceled" and canceled["filled"] == state["filled"]
    balance = await thin.rest.fetch_balance()
    assert balance["ETH"]["used"] == pytest.approx(0.0, abs=1e-12)
    assert balance["ETH"]["total"] == pytest.approx(10.0 - state["filled"])
