"""Orders and fills: the values that move between strategies, the risk manager and brokers.

Ids: every order carries a `client_order_id` chosen by the workbench before it is sent and
stored before it is sent, so a retry after a network error, or a restart after a crash, asks
the exchange about the same order instead of placing a second one.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from enum import StrEnum
from functools import lru_cache

from workbench.fills import FeeIn, Side
from workbench.records import evolve


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


class OrderPurpose(StrEnum):
    """Why an order exists; it decides which limits apply and what its fill means."""

    ENTRY = "entry"  # the spec's entry signal
    EXIT = "exit"  # the spec's exit signal
    STOP_LOSS = "stop_loss"
    TAKE_PROFIT = "take_profit"
    TRAILING_STOP = "trailing_stop"
    FLATTEN = "flatten"  # the drawdown guard or the kill switch closes the position
    LATE_EXIT = "late_exit"  # an exit that fell while the engine was down, taken late
    MANUAL = "manual"  # by hand, adding to the position (meets the limits like an entry)
    MANUAL_EXIT = "manual_exit"  # by hand, only reducing the position
    RECONCILE = "reconcile"  # a write-off to the exchange's balance: no order is placed

    @property
    def opens(self) -> bool:
        """Tell whether the order may add to a position (the risk limits check these)."""
        return self in (OrderPurpose.ENTRY, OrderPurpose.MANUAL)

    @property
    def closes(self) -> bool:
        """Tell whether the order only reduces a position (never refused, always retried)."""
        return not self.opens and self is not OrderPurpose.RECONCILE

    @property
    def protective(self) -> bool:
        """Tell whether the order is a protective level of the position (stop or target)."""
        return self in _PROTECTIVE


_PROTECTIVE = {OrderPurpose.STOP_LOSS, OrderPurpose.TAKE_PROFIT, OrderPurpose.TRAILING_STOP}
#: Purposes of the exchange-side protective orders of a position (and of the watched exits).
PROTECTIVE = frozenset({OrderPurpose.STOP_LOSS, OrderPurpose.TAKE_PROFIT})


class OrderState(StrEnum):
    """Where an order is in its life. PENDING: stored, not yet acknowledged by the exchange.

    States only move forward (`can_become`): pending → open → partially filled → a final
    state; a final state changes only to FILLED, when fills the exchange made arrive late (a
    cancel that lost the race with a fill).
    """

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

    def can_become(self, other: OrderState) -> bool:
        """Tell whether an order in this state may move to ``other`` (staying put is fine)."""
        if other is self:
            return True
        if self.is_final:
            return other is OrderState.FILLED
        return _RANK[other] > _RANK[self] or (other.is_final and not self.is_final)


_FINAL = {OrderState.FILLED, OrderState.CANCELED, OrderState.REJECTED, OrderState.EXPIRED}
_RANK = {
    OrderState.PENDING: 0,
    OrderState.OPEN: 1,
    OrderState.PARTIALLY_FILLED: 2,
    OrderState.FILLED: 3,
    OrderState.CANCELED: 3,
    OrderState.REJECTED: 3,
    OrderState.EXPIRED: 3,
}


class OrderTransitionError(ValueError):
    """An order was asked to move backwards in its life (a bug, never an exchange answer)."""


@lru_cache(maxsize=4096)  # asked several times per order, on the live path
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
    purpose: OrderPurpose = OrderPurpose.ENTRY
    bar_ts_ms: int = 0
    reason: str | None = None  # why, in words (a late exit names the bar it belonged to)

    def __post_init__(self) -> None:
        object.__setattr__(self, "purpose", OrderPurpose(self.purpose))

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
    purpose: OrderPurpose = OrderPurpose.ENTRY
    state: OrderState = OrderState.PENDING
    filled: float = 0.0
    average_price: float | None = None
    exchange_order_id: str | None = None
    created_ms: int = 0
    updated_ms: int = 0
    reason: str | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "purpose", OrderPurpose(self.purpose))
        object.__setattr__(self, "state", OrderState(self.state))

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
            reason=intent.reason,
        )

    @property
    def remaining(self) -> float:
        return max(self.amount - self.filled, 0.0)

    def update(self, **changes: object) -> Order:
        """Give a copy with some fields changed; a state change must move forward."""
        state = changes.get("state")
        if state is not None and not self.state.can_become(OrderState(str(state))):
            raise OrderTransitionError(
                f"order {self.client_order_id} cannot go from {self.state} to {state}"
            )
        return evolve(self, **changes)

    def advanced(self, news: Order) -> Order | None:
        """Give this order moved forward by what a broker says of it (``news``), or None
        when that says nothing new: a late, older answer never moves an order back, and the
        filled amount never shrinks."""
        state = news.state if self.state.can_become(news.state) else self.state
        filled = max(self.filled, news.filled)
        moved = evolve(
            news,
            state=state,
            filled=filled,
            purpose=self.purpose,
            created_ms=self.created_ms,
            reason=news.reason or self.reason,
            exchange_order_id=news.exchange_order_id or self.exchange_order_id,
            average_price=(
                news.average_price if news.average_price is not None else self.average_price
            ),
        )
        if (moved.state, moved.filled, moved.exchange_order_id, moved.average_price) == (
            self.state,
            self.filled,
            self.exchange_order_id,
            self.average_price,
        ) and moved.reason == self.reason:
            return None
        return moved


@dataclass(frozen=True)
class Fill:
    """One execution of (part of) an order, as the venue reports it.

    ``amount`` is the base amount traded (the order's quantity); ``fee`` is the commission in
    the asset the venue took it in, ``fee_currency`` (base, quote or a third asset such as
    BNB; empty means the symbol's quote), and ``fee_quote`` its value in quote at the time.
    A fee in base comes out of what a buy adds to the position (`workbench.fills`).
    """

    fill_id: str
    client_order_id: str
    strategy_id: str
    symbol: str
    side: Side
    amount: float
    price: float
    fee: float
    ts_ms: int
    purpose: OrderPurpose = OrderPurpose.ENTRY
    fee_currency: str = ""
    fee_quote: float | None = None
    extra: dict[str, object] = field(default_factory=dict, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "purpose", OrderPurpose(self.purpose))
        object.__setattr__(self, "side", Side(self.side))

    @property
    def notional(self) -> float:
        return self.amount * self.price

    @property
    def base(self) -> str:
        return self.symbol.split("/")[0]

    @property
    def quote(self) -> str:
        return self.symbol.split("/")[1]

    @property
    def fee_in(self) -> FeeIn:
        """Give which of the market's assets paid the fee (OTHER: a third one)."""
        currency = self.fee_currency or self.quote
        if currency == self.quote:
            return FeeIn.QUOTE
        if currency == self.base:
            return FeeIn.BASE
        return FeeIn.OTHER

    @property
    def fee_value(self) -> float:
        """Give the fee's value in quote (at the fill price when the venue gave none)."""
        if self.fee_quote is not None:
            return self.fee_quote
        return self.fee * self.price if self.fee_in is FeeIn.BASE else self.fee

    @property
    def base_delta(self) -> float:
        """Give the signed change of the base balance, a fee in base included."""
        signed = self.amount if self.side is Side.BUY else -self.amount
        return signed - (self.fee if self.fee_in is FeeIn.BASE else 0.0)
