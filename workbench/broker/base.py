"""The broker protocol: PaperBroker and CcxtBroker are interchangeable (DESIGN decision 4)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

from workbench.broker.models import Fill, Order


class OrderRejected(Exception):
    """The broker or the exchange refused an order: why, in the exchange's words."""

    def __init__(self, order: Order, reason: str) -> None:
        super().__init__(
            f"order {order.client_order_id} ({order.side} {order.amount:g} "
            f"{order.symbol}) rejected: {reason}"
        )
        self.order = order
        self.reason = reason


@dataclass(frozen=True)
class Execution:
    """What a broker reports about an order: its state now and any new fills."""

    order: Order
    fills: list[Fill] = field(default_factory=list)


class Broker(Protocol):
    """Places and follows orders; the same client order id never makes a second order."""

    name: str

    def on_price(self, symbol: str, price: float, ts_ms: int) -> None:
        """Take the latest trade price of a symbol."""

    async def submit(self, order: Order) -> Execution:
        """Place an order (idempotent on its client order id); give its state and fills."""
        ...

    async def cancel(self, order: Order) -> Execution:
        """Cancel an open order; give its final state."""
        ...

    async def lookup(self, order: Order) -> Execution | None:
        """Give what the broker knows of an order by client id (None: it never arrived)."""
        ...
