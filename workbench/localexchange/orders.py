"""Orders and trades of the local exchange, in Binance's vocabulary."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

from workbench.fills import Side, StopKind


class OrderType(StrEnum):
    """Binance spot order types the local exchange accepts."""

    MARKET = "MARKET"
    LIMIT = "LIMIT"
    LIMIT_MAKER = "LIMIT_MAKER"
    STOP_LOSS = "STOP_LOSS"
    STOP_LOSS_LIMIT = "STOP_LOSS_LIMIT"
    TAKE_PROFIT = "TAKE_PROFIT"
    TAKE_PROFIT_LIMIT = "TAKE_PROFIT_LIMIT"

    @property
    def stop_kind(self) -> StopKind | None:
        """Give the kind of trigger of a conditional type (None for plain orders)."""
        if self in (OrderType.STOP_LOSS, OrderType.STOP_LOSS_LIMIT):
            return StopKind.STOP_LOSS
        if self in (OrderType.TAKE_PROFIT, OrderType.TAKE_PROFIT_LIMIT):
            return StopKind.TAKE_PROFIT
        return None

    @property
    def has_limit_price(self) -> bool:
        """Tell whether the order rests at a limit price once working."""
        return self in (
            OrderType.LIMIT,
            OrderType.LIMIT_MAKER,
            OrderType.STOP_LOSS_LIMIT,
            OrderType.TAKE_PROFIT_LIMIT,
        )


class OrderStatus(StrEnum):
    """Binance order statuses used here (PARTIALLY_FILLED only with a liquidity limit)."""

    NEW = "NEW"
    PARTIALLY_FILLED = "PARTIALLY_FILLED"
    FILLED = "FILLED"
    CANCELED = "CANCELED"
    EXPIRED = "EXPIRED"

    @property
    def is_open(self) -> bool:
        """Tell whether the order still works."""
        return self in (OrderStatus.NEW, OrderStatus.PARTIALLY_FILLED)


@dataclass
class Trade:
    """One fill of an order."""

    trade_id: int
    order_id: int
    symbol: str
    side: Side
    price: float
    quantity: float
    commission: float
    commission_asset: str
    time_ms: int
    is_maker: bool

    @property
    def quote_quantity(self) -> float:
        """Give the notional of the fill."""
        return self.price * self.quantity


@dataclass
class Order:
    """An order and its state; mutable only inside the matcher."""

    order_id: int
    client_order_id: str
    account: str
    symbol: str
    side: Side
    type: OrderType
    time_in_force: str
    quantity: float
    price: float | None
    stop_price: float | None
    created_ms: int
    #: a market order's quoteOrderQty (0: it was sized in base)
    quote_order_qty: float = 0.0
    status: OrderStatus = OrderStatus.NEW
    executed_qty: float = 0.0
    cum_quote: float = 0.0
    updated_ms: int = 0
    triggered: bool = False
    locked_asset: str = ""
    locked_amount: float = 0.0
    trades: list[Trade] = field(default_factory=list)
    #: the OCO order list this order is a leg of (-1: none)
    order_list_id: int = -1

    @property
    def remaining(self) -> float:
        """Give the quantity still to fill."""
        return max(self.quantity - self.executed_qty, 0.0)

    @property
    def working_ms(self) -> int:
        """Give when the order started working (-1 while a stop waits for its trigger)."""
        if self.type.stop_kind is not None and not self.triggered:
            return -1
        return self.created_ms
