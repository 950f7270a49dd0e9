"""`evolve` gives what `dataclasses.replace` gives, faster, for the values the live path copies."""

from __future__ import annotations

import dataclasses

import pytest

from workbench.broker.models import Order, OrderIntent, OrderPurpose, OrderState, OrderType
from workbench.fills import Protection, Side
from workbench.records import evolve

ORDER = Order("c1", "s", "ETH/BTC", Side.BUY, OrderType.LIMIT, 1.5, price=0.05, reason="why")
INTENT = OrderIntent("s", "ETH/BTC", Side.SELL, 2.0, purpose=OrderPurpose.EXIT, bar_ts_ms=7)


@pytest.mark.parametrize(
    ("value", "changes"),
    [
        (ORDER, {"state": OrderState.OPEN, "filled": 0.5, "average_price": 0.049}),
        (ORDER, {"state": "filled", "purpose": "exit"}),  # strings made enums by __post_init__
        (ORDER, {}),
        (INTENT, {"amount": 1.0, "reason": "scaled"}),
        (INTENT, {"purpose": "late_exit", "stop_price": None}),
        (Protection(0.9, 1.2, 0.05, 1.0), {"peak": 1.1}),
    ],
)
def test_evolve_gives_what_replace_gives(value: object, changes: dict[str, object]) -> None:
    copied = evolve(value, **changes)
    expected = dataclasses.replace(value, **changes)  # type: ignore[type-var]
    assert copied == expected and copied is not value
    assert {k: type(v) for k, v in vars(copied).items()} == {
        k: type(v) for k, v in vars(expected).items()
    }
    assert value == dataclasses.replace(value), "the original is left as it was"
    with pytest.raises(dataclasses.FrozenInstanceError):
        copied.reason = "changed"  # type: ignore[attr-defined,misc]


def test_evolve_refuses_a_field_the_class_does_not_have() -> None:
    with pytest.raises(TypeError, match="Order has no field colour"):
        evolve(ORDER, colour="red")
    with pytest.raises(ValueError):
        evolve(ORDER, state="no such state")
