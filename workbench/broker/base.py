"""The broker protocol: PaperBroker and CcxtBroker are interchangeable.

See docs/architecture.md, decision 4.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Protocol

from workbench.broker.models import Fill, Order
from workbench.candles import Candle
from workbench.errors import WorkbenchError


class BrokerError(WorkbenchError):
    """Something a broker could not do, with the order it was about."""


class OrderRejected(BrokerError):
    """A definite answer: the broker or the exchange refused an order (why, in the
    exchange's words). It ends that order; the same order is never sent again."""

    def __init__(self, order: Order, reason: str, *, permanent: bool = False) -> None:
        super().__init__(
            f"order {order.client_order_id} ({order.side} {order.amount:g} "
            f"{order.symbol}) rejected: {reason}"
        )
        self.order = order
        self.reason = reason
        #: the account itself is refused (keys, permissions): nothing will go through
        self.permanent = permanent


class BrokerUnavailable(BrokerError):
    """A transient failure (network, 5xx, 429, a clock out of step): the broker could not be
    asked or could not answer. Nothing is known to have changed; ask again later."""

    def __init__(self, what: str, reason: str) -> None:
        super().__init__(f"{what}: {reason}")
        self.what = what
        self.reason = reason


class OutcomeUnknown(BrokerUnavailable):
    """An order was sent and its fate is not known (the answer was lost and every lookup
    since failed). It may rest or have filled on the exchange: look it up again later,
    never send it under another id."""

    def __init__(self, order: Order, reason: str) -> None:
        super().__init__(f"order {order.client_order_id}", reason)
        self.order = order


@dataclass(frozen=True)
class Execution:
    """What a broker reports about an order: its state now and any new fills."""

    order: Order
    fills: list[Fill] = field(default_factory=list)


Report = Callable[[Execution], Awaitable[None]]


class ExchangeStops(StrEnum):
    """Where a position's stop-loss and take-profit live.

    NONE: watched by the strategy on every price update (paper trading, or an exchange
    without stop orders). STOP: one resting stop order at a time (a spot exchange locks the
    position for each sell order, so two cannot rest at once); the other level is watched.
    OCO: both as one exchange-side one-cancels-the-other list.
    """

    NONE = "none"
    STOP = "stop"
    OCO = "oco"


@dataclass(frozen=True)
class Balance:
    """An asset on the exchange account: free, and locked by resting orders."""

    free: float
    locked: float

    @property
    def total(self) -> float:
        return self.free + self.locked


class Broker(Protocol):
    """Places and follows orders; the same client order id never makes a second order."""

    name: str

    def on_price(self, symbol: str, price: float, ts_ms: int) -> list[Execution]:
        """Take the latest trade price of a symbol; give what it filled of the orders waiting
        for a price here (an exchange reports its own fills through `run`: nothing)."""
        ...

    def on_bar(self, symbol: str, candle: Candle) -> list[Execution]:
        """Give what a closed bar filled of the orders resting here (an exchange reports its
        own fills through `run`: nothing)."""
        ...

    def exchange_stops(self, symbol: str) -> ExchangeStops:
        """Tell how protective orders can rest on the exchange for a symbol."""
        ...

    async def submit_oco(self, legs: tuple[Order, Order]) -> list[Execution]:
        """Place two protective legs as one OCO list (idempotent on their client ids)."""
        ...

    async def run(self, report: Report) -> None:
        """Follow the broker's open orders until cancelled, reporting each change."""
        ...

    async def balances(self) -> dict[str, Balance] | None:
        """Give the exchange account's balances (None: the broker has no account).

        Raises `BrokerUnavailable` when the exchange cannot be asked now."""
        ...

    async def submit(self, order: Order) -> Execution:
        """Place an order (idempotent on its client order id); give its state and fills.

        Raises `OrderRejected` on a definite refusal, `OutcomeUnknown` when it may or may not
        have reached the exchange and no lookup could tell."""
        ...

    async def cancel(self, order: Order) -> Execution:
        """Cancel an open order; give its final state (`BrokerUnavailable` when it cannot
        be asked now)."""
        ...

    async def lookup(self, order: Order) -> Execution | None:
        """Give what the broker knows of an order by client id (None: it never arrived;
        `BrokerUnavailable` when it cannot be asked now)."""
        ...
