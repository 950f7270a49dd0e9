"""Orders through ccxt: fills at the replay price, balances and fees, rejections as ccxt errors."""

from __future__ import annotations

import ccxt
import pandas as pd
import pytest

from workbench.fills import bar_path, path_price
from workbench.localexchange import LocalExchange, ManualClock
from workbench.settings import Settings
from workbench.venue import connect
from workbench.venue.client import ExchangeClients

FEE_RATE = 0.001
FIVE_MIN_MS = 300_000


def replay_price(history: dict[str, pd.DataFrame], symbol: str, now_ms: int) -> float:
    """Give the price the replay should show at now_ms, computed from the stored bar."""
    frame = history[symbol]
    ts = pd.Timestamp(now_ms // FIVE_MIN_MS * FIVE_MIN_MS, unit="ms", tz="UTC")
    bar = frame.loc[ts]
    fraction = (now_ms - ts.value // 1_000_000) / FIVE_MIN_MS
    return float(path_price(bar_path(bar.open, bar.high, bar.low, bar.close), fraction))


def next_bars(history: dict[str, pd.DataFrame], symbol: str, now_ms: int, n: int) -> pd.DataFrame:
    """Give the n stored bars opening after now_ms."""
    frame = history[symbol]
    return frame[frame.index > pd.Timestamp(now_ms, unit="ms", tz="UTC")].iloc[:n]


async def test_market_buy_fills_at_the_replay_price_and_moves_balances(
    stepped: ExchangeClients, history: dict[str, pd.DataFrame], manual_clock: ManualClock
) -> None:
    before = await stepped.rest.fetch_balance()
    order = await stepped.rest.create_order("ETH/BTC", "market", "buy", 2.0)
    after = await stepped.rest.fetch_balance()
    price = replay_price(history, "ETH/BTC", manual_clock.now_ms())
    assert order["status"] == "closed" and order["filled"] == 2.0
    assert order["average"] == pytest.approx(price, rel=1e-12)
    assert order["fee"]["cost"] == pytest.approx(2.0 * price * FEE_RATE)
    assert after["ETH"]["total"] == pytest.approx(before["ETH"]["total"] + 2.0)
    assert after["BTC"]["total"] == pytest.approx(
        before["BTC"]["total"] - 2.0 * price * (1 + FEE_RATE), rel=1e-12
    )


async def test_market_sell_receives_price_times_amount_less_fees(
    stepped: ExchangeClients, history: dict[str, pd.DataFrame], manual_clock: ManualClock
) -> None:
    before = await stepped.rest.fetch_balance()
    order = await stepped.rest.create_order("ETH/BTC", "market", "sell", 1.5)
    after = await stepped.rest.fetch_balance()
    price = replay_price(history, "ETH/BTC", manual_clock.now_ms())
    assert order["average"] == pytest.approx(price, rel=1e-12)
    assert after["ETH"]["total"] == pytest.approx(before["ETH"]["total"] - 1.5)
    assert after["BTC"]["total"] == pytest.approx(
        before["BTC"]["total"] + 1.5 * price * (1 - FEE_RATE), rel=1e-12
    )
    trades = await stepped.rest.fetch_my_trades("ETH/BTC")
    assert [t["order"] for t in trades] == [order["id"]]
    assert trades[0]["side"] == "sell" and trades[0]["fee"]["currency"] == "BTC"


async def test_a_limit_buy_rests_locked_then_fills_at_its_price_when_crossed(
    stepped: ExchangeClients, history: dict[str, pd.DataFrame], manual_clock: ManualClock
) -> None:
    now = manual_clock.now_ms()
    limit = float(next_bars(history, "ETH/BTC", now, 12)["low"].min())
    assert limit < replay_price(history, "ETH/BTC", now), "the test needs a dip ahead"
    order = await stepped.rest.create_order("ETH/BTC", "limit", "buy", 1.0, limit)
    assert order["status"] == "open"
    locked = await stepped.rest.fetch_balance()
    assert locked["BTC"]["used"] == pytest.approx(limit * (1 + FEE_RATE))
    manual_clock.advance(12 * FIVE_MIN_MS)
    filled = await stepped.rest.fetch_order(order["id"], "ETH/BTC")
    assert filled["status"] == "closed"
    assert filled["average"] == limit
    after = await stepped.rest.fetch_balance()
    assert after["BTC"]["used"] == 0
    assert after["BTC"]["total"] == pytest.approx(1.0 - limit * (1 + FEE_RATE), rel=1e-12)


async def test_a_marketable_limit_fills_at_once_at_the_current_price(
    stepped: ExchangeClients, history: dict[str, pd.DataFrame], manual_clock: ManualClock
) -> None:
    price = replay_price(history, "ETH/BTC", manual_clock.now_ms())
    order = await stepped.rest.create_order("ETH/BTC", "limit", "sell", 1.0, price * 0.9)
    assert order["status"] == "closed" and order["average"] == pytest.approx(price)


async def test_an_unmatched_ioc_limit_expires(stepped: ExchangeClients) -> None:
    order = await stepped.rest.create_order(
        "ETH/BTC", "limit", "buy", 1.0, 0.01, {"timeInForce": "IOC"}
    )
    assert order["status"] == "expired"


async def test_cancel_releases_the_locked_funds(stepped: ExchangeClients) -> None:
    order = await stepped.rest.create_order("ETH/BTC", "limit", "buy", 1.0, 0.01)
    assert (await stepped.rest.fetch_open_orders("ETH/BTC"))[0]["id"] == order["id"]
    canceled = await stepped.rest.cancel_order(order["id"], "ETH/BTC")
    assert canceled["status"] == "canceled"
    balance = await stepped.rest.fetch_balance()
    assert balance["BTC"]["used"] == 0 and balance["BTC"]["free"] == pytest.approx(1.0)
    assert await stepped.rest.fetch_open_orders("ETH/BTC") == []
    with pytest.raises(ccxt.OrderNotFound):
        await stepped.rest.cancel_order(order["id"], "ETH/BTC")


async def test_cancel_all_cancels_every_open_order_and_answers_unknown_order_when_none(
    stepped: ExchangeClients,
) -> None:
    for _ in range(2):
        await stepped.rest.create_order("ETH/BTC", "limit", "buy", 1.0, 0.01)
    canceled = await stepped.rest.cancel_all_orders("ETH/BTC")
    assert [o["status"] for o in canceled] == ["canceled", "canceled"]
    # Binance answers -2011 "Unknown order sent." when there is nothing to cancel.
    with pytest.raises(ccxt.OrderNotFound, match="Unknown order sent"):
        await stepped.rest.cancel_all_orders("ETH/BTC")


async def test_a_stop_loss_limit_sell_fires_when_the_price_falls_to_it(
    stepped: ExchangeClients, history: dict[str, pd.DataFrame], manual_clock: ManualClock
) -> None:
    now = manual_clock.now_ms()
    price = replay_price(history, "ETH/BTC", now)
    low = float(next_bars(history, "ETH/BTC", now, 12)["low"].min())
    stop = float(stepped.rest.price_to_precision("ETH/BTC", (price + low) / 2))
    assert low < stop < price, "the test needs a dip ahead"
    order = await stepped.rest.create_order(
        "ETH/BTC", "limit", "sell", 1.0, low, {"stopLossPrice": stop}
    )
    assert order["status"] == "open" and order["type"] == "limit"
    assert order["info"]["type"] == "STOP_LOSS_LIMIT"
    manual_clock.advance(12 * FIVE_MIN_MS)
    filled = await stepped.rest.fetch_order(order["id"], "ETH/BTC")
    assert filled["status"] == "closed"
    assert low <= filled["average"] <= stop


async def test_a_stop_that_would_trigger_now_is_refused(
    stepped: ExchangeClients, history: dict[str, pd.DataFrame], manual_clock: ManualClock
) -> None:
    price = replay_price(history, "ETH/BTC", manual_clock.now_ms())
    with pytest.raises(ccxt.OrderImmediatelyFillable):
        await stepped.rest.create_order(
            "ETH/BTC", "limit", "sell", 1.0, price, {"stopLossPrice": price * 1.05}
        )


async def test_buying_more_than_the_balance_raises_insufficient_funds(
    stepped: ExchangeClients,
) -> None:
    with pytest.raises(ccxt.InsufficientFunds):
        await stepped.rest.create_order("ETH/BTC", "market", "buy", 1000.0)


async def test_an_amount_below_the_minimum_raises_invalid_order(
    stepped: ExchangeClients,
) -> None:
    step = stepped.rest.market("ETH/BTC")["precision"]["amount"]
    with pytest.raises(ccxt.InvalidOrder, match="LOT_SIZE"):
        await stepped.rest.create_order("ETH/BTC", "market", "buy", step)


async def test_an_order_below_the_minimum_notional_is_refused(stepped: ExchangeClients) -> None:
    minimum = stepped.rest.market("ETH/BTC")["limits"]["amount"]["min"]
    with pytest.raises(ccxt.BadRequest, match="NOTIONAL"):
        await stepped.rest.create_order("ETH/BTC", "market", "buy", minimum)


async def test_an_unknown_order_raises_order_not_found(stepped: ExchangeClients) -> None:
    with pytest.raises(ccxt.OrderNotFound):
        await stepped.rest.fetch_order("424242", "ETH/BTC")


async def test_a_duplicate_client_order_id_is_rejected(stepped: ExchangeClients) -> None:
    params = {"clientOrderId": "wb-once"}
    first = await stepped.rest.create_order("ETH/BTC", "limit", "buy", 1.0, 0.01, params)
    assert first["clientOrderId"] == "wb-once"
    with pytest.raises(ccxt.InvalidOrder, match="Duplicate"):
        await stepped.rest.create_order("ETH/BTC", "limit", "buy", 1.0, 0.01, params)
    assert len(await stepped.rest.fetch_open_orders("ETH/BTC")) == 1
    by_client_id = await stepped.rest.fetch_order(None, "ETH/BTC", {"origClientOrderId": "wb-once"})
    assert by_client_id["id"] == first["id"]


async def test_a_wrong_secret_raises_authentication_error(
    stepped_exchange: LocalExchange, settings: Settings
) -> None:
    async with connect(
        "local", port=stepped_exchange.port, settings=settings, secret="not-the-secret"
    ) as ex:
        with pytest.raises(ccxt.AuthenticationError):
            await ex.rest.fetch_balance()


async def test_an_unknown_key_raises_authentication_error(
    stepped_exchange: LocalExchange, settings: Settings
) -> None:
    async with connect(
        "local", port=stepped_exchange.port, settings=settings, api_key="nobody", secret="x"
    ) as ex:
        with pytest.raises(ccxt.AuthenticationError):
            await ex.rest.create_order("ETH/BTC", "market", "buy", 1.0)
