"""Orders move only forward: one state machine, refused backwards in one place."""

from __future__ import annotations

import pytest

from workbench.broker.models import (
    Order,
    OrderIntent,
    OrderPurpose,
    OrderState,
    OrderTransitionError,
    OrderType,
)
from workbench.fills import Side


def order(**changes: object) -> Order:
    base = Order.from_intent(OrderIntent("s", "ETH/BTC", Side.BUY, 2.0, bar_ts_ms=5), 5)
    return base.update(**changes) if changes else base


def test_a_final_order_cannot_go_back_to_working() -> None:
    filled = order(state=OrderState.FILLED, filled=2.0)
    with pytest.raises(OrderTransitionError, match="from filled to open"):
        filled.update(state=OrderState.OPEN)
    with pytest.raises(OrderTransitionError):
        order(state=OrderState.PARTIALLY_FILLED).update(state=OrderState.PENDING)


def test_an_older_answer_changes_nothing_and_fills_never_shrink() -> None:
    stored = order(state=OrderState.PARTIALLY_FILLED, filled=1.0, exchange_order_id="7")
    older = order(state=OrderState.OPEN, filled=0.0, exchange_order_id="7")
    assert stored.advanced(older) is None
    newer = order(state=OrderState.FILLED, filled=2.0, exchange_order_id="7")
    moved = stored.advanced(newer)
    assert moved is not None and (moved.state, moved.filled) == (OrderState.FILLED, 2.0)
    # A final answer that says less keeps what was known.
    assert moved.advanced(order(state=OrderState.CANCELED, filled=1.0)) is None


def test_a_cancel_that_lost_the_race_with_a_fill_becomes_filled() -> None:
    canceled = order(state=OrderState.CANCELED, filled=0.0)
    filled = canceled.advanced(order(state=OrderState.FILLED, filled=2.0))
    assert filled is not None and filled.state is OrderState.FILLED


def test_purposes_are_an_enum_that_knows_what_they_do() -> None:
    assert OrderPurpose("entry") is OrderPurpose.ENTRY
    assert {p for p in OrderPurpose if p.opens} == {OrderPurpose.ENTRY, OrderPurpose.MANUAL}
    assert not OrderPurpose.RECONCILE.closes and OrderPurpose.LATE_EXIT.closes
    assert OrderPurpose.STOP_LOSS.protective and not OrderPurpose.EXIT.protective
    with pytest.raises(ValueError):
        OrderIntent("s", "ETH/BTC", Side.SELL, 1.0, OrderType.MARKET, purpose="sl")  # type: ignore[arg-type]
