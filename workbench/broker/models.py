"""Orders and fills: the values that move between strategies, the risk manager and brokers.

Ids: every order carries a `client_order_id` chosen by the workbench before it is sent and
stored before it is sent, so a retry after a network error, or a restart after a crash, asks
the exchange about the same order instead of placing a second one.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field, replace
from enum import StrEnum

from workbench.fills import Side


class OrderType(StrEnum):
    """What the exchange is asked to do; stop kinds fire at `stop_price`.

    STOP_LOSS and TAKE_PROFIT become market orders when they fire (the fill model's stop);
    the *_LIMIT kinds become limit orders at `price`.
    """

    MARKET = "market"
    LIMIT = "limit"
    STOP_LOSS = "stop_loss"
    STOP_LOSS_LIMIT = "stop_loss_limit"
    TAKE_PROFIT = "take_profit"
    TAKE_PROFIT_LIMIT = "take_profit_limit"

    @property
    def is_stop(self) -> bool:
        """Tell whether the order waits for its `stop_price` to fire."""
        return self not in (OrderType.MARKET, OrderType.LIMIT)


#: Purposes of the exchange-side protective orders of a position (and of the watched exits).
PROTECTIVE = frozenset({"stop_loss", "take_profit"})


class OrderState(StrEnum):
    """Where an order is in its life. PENDING: stored, not yet acknowledged by the exchange."""

    PENDING = "pending"
    OPEN = "open"
    PARTIALLY_FILLED = "partially_filled"
    FILLED = "filled"
    CANCELED = "canceled"
    REJECTED = "rejected"
    EXPIRED = "expired"

    @property
    def is_final(self) -> bool:
        return self in _FINAL


_FINAL = {OrderState.FILLED, OrderState.CANCELED, OrderState.REJECTED, OrderState.EXPIRED}


def client_order_id(strategy_id: str, bar_ts_ms: int, purpose: str, attempt: int = 0) -> str:
    """Give a deterministic client order id: the same decision always gets the same id.

    Binance accepts up to 36 characters of [.A-Z:/a-z0-9_-]; a hash keeps ours short.
    """
    digest = hashlib.sha1(f"{strategy_id}|{bar_ts_ms}|{purpose}|{attempt}".encode()).hexdigest()
    return f"wb-{digest[:28]}"


@dataclass(frozen=True)
class OrderIntent:
    """What a strategy (through the risk manager) wants placed."""

    strategy_id: str
    symbol: str
    side: Side
    amount: float
    type: OrderType = OrderType.MARKET
    price: float | None = None
    stop_price: float | None = None
    purpose: str = "entry"
    bar_ts_ms: int = 0

    @property
    def client_order_id(self) -> str:
        return client_order_id(self.strategy_id, self.bar_ts_ms, self.purpose)


@dataclass(frozen=True)
class Order:
    """An order as the workbench knows it: what was asked and how far it has filled."""

    client_order_id: str
    strategy_id: str
    symbol: str
    side: Side
    type: OrderType
    amount: float
    price: float | None = None
    stop_price: float | None = None
    purpose: str = "entry"
    state: OrderState = OrderState.PENDING
    filled: float = 0.0
    average_price: float | None = None
    exchange_order_id: str | None = None
    created_ms: int = 0
    updated_ms: int = 0
    reason: str | None = None

    @classmethod
    def from_intent(cls, intent: OrderIntent, now_ms: int) -> Order:
        return cls(
            client_order_id=intent.client_order_id,
            strategy_id=intent.strategy_id,
            symbol=intent.symbol,
            side=intent.side,
            type=intent.type,
            amount=intent.amount,
            price=intent.price,
            stop_price=intent.stop_price,
            purpose=intent.purpose,
            created_ms=now_ms,
            updated_ms=now_ms,
        )

    @property
    def remaining(self) -> float:
        return max(self.amount - self.filled, 0.0)

    def update(self, **changes: object) -> Order:
        """Give a copy with some fields changed."""
        return replace(self, **changes)  # type: ignore[arg-type]


@dataclass(frozen=True)
class Fill:
    """One execution of (part of) an order; fee in the quote currency (see workbench.fills)."""

    fill_id: str
    client_order_id: str
    strategy_id: str
    symbol: str
    side: Side
    amount: float
    price: float
    fee: float
    ts_ms: int
    purpose: str = "entry"
    extra: dict[str, object] = field(default_factory=dict, compare=False)

    @property
    def notional(self) -> float:
        return self.amount * self.price
