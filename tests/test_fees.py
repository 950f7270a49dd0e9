"""The fill model's fees in the asset the venue takes them in: what a fill moves."""

from __future__ import annotations

import pytest

from workbench.fills import FeeAsset, FeeIn, FillModel, Side


@pytest.mark.parametrize("asset", list(FeeAsset))
@pytest.mark.parametrize("side", list(Side))
def test_a_fill_moves_the_notional_and_costs_exactly_its_fee(asset: FeeAsset, side: Side) -> None:
    model = FillModel(fee_rate=0.001, fee_asset=asset)
    price, quantity = 0.05, 12.0
    charge = model.charge(side, price, quantity)
    # Valued at the fill price, the account loses the fee and nothing else.
    value = charge.base * price + charge.quote
    paid_apart = charge.fee_quote if charge.fee_in is FeeIn.OTHER else 0.0
    assert value - paid_apart == pytest.approx(-charge.fee_quote, rel=1e-12)
    assert charge.fee_quote == pytest.approx(price * quantity * model.effective_rate)


def test_binance_takes_the_asset_received() -> None:
    model = FillModel(fee_rate=0.001, fee_asset=FeeAsset.RECEIVED)
    buy = model.charge(Side.BUY, 2.0, 10.0)
    sell = model.charge(Side.SELL, 2.0, 10.0)
    assert (buy.fee_in, buy.base, buy.quote, buy.fee) == (FeeIn.BASE, 9.99, -20.0, 0.01)
    assert (sell.fee_in, sell.base, sell.quote) == (FeeIn.QUOTE, -10.0, 19.98)
    # All the cash buys an order of cash / price: the fee comes out of what is received.
    assert model.max_buy_quantity(20.0, 2.0) == 10.0


def test_bnb_pays_at_a_discount_and_leaves_both_balances_whole() -> None:
    model = FillModel(fee_rate=0.001, fee_asset=FeeAsset.BNB, bnb_discount=0.25)
    buy = model.charge(Side.BUY, 2.0, 10.0)
    assert (buy.base, buy.quote, buy.fee_in) == (10.0, -20.0, FeeIn.OTHER)
    assert buy.fee_quote == pytest.approx(0.015)


def test_quote_fees_are_as_before() -> None:
    model = FillModel(fee_rate=0.001, fee_asset=FeeAsset.QUOTE)
    assert model.quote_delta(Side.BUY, 2.0, 10.0) == pytest.approx(-20.02)
    assert model.max_buy_quantity(20.02, 2.0) == pytest.approx(10.0)


def test_covering_a_short_with_the_fee_in_base_buys_a_little_more() -> None:
    received = FillModel(fee_rate=0.001, fee_asset=FeeAsset.RECEIVED)
    quantity = received.order_quantity(Side.BUY, 9.99)
    assert received.charge(Side.BUY, 2.0, quantity).base == pytest.approx(9.99, rel=1e-15)
    assert received.order_quantity(Side.SELL, 9.99) == 9.99
    quote = FillModel(fee_rate=0.001, fee_asset=FeeAsset.QUOTE)
    assert quote.order_quantity(Side.BUY, 9.99) == 9.99


def test_an_account_of_two_balances_pays_bnb_fees_in_quote_at_the_discount() -> None:
    bnb = FillModel(fee_rate=0.001, fee_asset=FeeAsset.BNB, bnb_discount=0.25)
    booked = bnb.on_pair()
    assert (booked.fee_asset, booked.fee_rate) == (FeeAsset.QUOTE, pytest.approx(0.00075))
    assert booked.max_buy_quantity(20.0, 2.0) == pytest.approx(10.0 / 1.00075)
    received = FillModel(fee_rate=0.001, fee_asset=FeeAsset.RECEIVED)
    assert received.on_pair() is received
