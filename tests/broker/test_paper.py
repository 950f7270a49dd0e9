"""The paper broker follows the fill model: the next price for a market order, at once for a
marketable limit, fees in the asset the model says."""

from __future__ import annotations

import pytest

from workbench.broker.models import Order, OrderIntent, OrderPurpose, OrderState, OrderType
from workbench.broker.paper import PaperBroker
from workbench.fills import FeeAsset, FillModel, Side

MODEL = FillModel(fee_rate=0.001, slippage=0.001)


def order(
    side: Side, amount: float, kind: OrderType = OrderType.MARKET, bar: int = 10, **more: object
) -> Order:
    intent = OrderIntent("s", "ETH/BTC", side, amount, kind, bar_ts_ms=bar, **more)  # type: ignore[arg-type]
    return Order.from_intent(intent, bar)


def test_a_market_order_fills_at_the_next_price_not_the_last_one() -> None:
    broker = PaperBroker(MODEL)
    broker.on_price("ETH/BTC", 0.050, 1)  # the bar's open, a while ago
    placed = broker.execute(order(Side.BUY, 2.0, purpose=OrderPurpose.MANUAL))
    assert placed.order.state is OrderState.OPEN and not placed.fills
    [done] = broker.on_price("ETH/BTC", 0.052, 2)
    assert done.order.state is OrderState.FILLED
    assert done.fills[0].price == pytest.approx(0.052 * 1.001)
    assert broker.on_price("ETH/BTC", 0.053, 3) == []  # once


def test_a_marketable_limit_fills_at_once_capped_at_its_limit() -> None:
    broker = PaperBroker(MODEL)
    broker.on_price("ETH/BTC", 0.050, 1)
    done = broker.execute(order(Side.BUY, 1.0, OrderType.LIMIT, price=0.051))
    assert done.order.state is OrderState.FILLED
    assert done.fills[0].price == pytest.approx(0.050 * 1.001)
    capped = broker.execute(order(Side.SELL, 1.0, OrderType.LIMIT, bar=11, price=0.04999))
    assert capped.fills[0].price == pytest.approx(0.04999)  # taker 0.04995 capped at the limit
    rests = broker.execute(order(Side.BUY, 1.0, OrderType.LIMIT, bar=12, price=0.049))
    assert rests.order.state is OrderState.OPEN


def test_a_triggered_stop_fills_at_its_trigger_on_the_bar_it_fired() -> None:
    broker = PaperBroker(MODEL)
    broker.on_price("ETH/BTC", 0.050, 5)
    stop = order(Side.SELL, 1.0, stop_price=0.048, purpose=OrderPurpose.STOP_LOSS)
    done = broker.execute(stop)
    assert done.fills[0].price == pytest.approx(0.048 * 0.999)
    assert done.fills[0].ts_ms == 10


@pytest.mark.parametrize(
    ("asset", "currency", "base_delta"),
    [(FeeAsset.RECEIVED, "ETH", 2.0 * 0.999), (FeeAsset.QUOTE, "BTC", 2.0)],
)
def test_paper_fees_are_in_the_asset_the_model_says(
    asset: FeeAsset, currency: str, base_delta: float
) -> None:
    broker = PaperBroker(FillModel(fee_rate=0.001, fee_asset=asset))
    broker.execute(order(Side.BUY, 2.0))
    [done] = broker.on_price("ETH/BTC", 0.05, 1)
    [fill] = done.fills
    assert fill.fee_currency == currency and fill.base_delta == pytest.approx(base_delta)
    assert fill.fee_value == pytest.approx(2.0 * 0.05 * 0.001)
