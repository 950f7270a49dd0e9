"""Orders on an exchange through ccxt, never placed twice.

Each order carries the workbench's client order id (`clientOrderId`, which ccxt passes to
the exchange). A network error on placement is ambiguous (the order may or may not have
reached the exchange), so the broker asks the exchange for the order by that id before it
tries again; a retry the exchange refuses as a duplicate id is looked up the same way. So a
retry never makes a second order. Market orders report their fills in the answer; fees are
converted to the quote currency when the exchange charged another asset at the fill price.

Not yet: following resting limit and stop orders (watch_orders) and exchange-side stops;
the strategies place market orders and watch their protective levels on each closed bar.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import ccxt

from workbench.broker.base import Execution, OrderRejected
from workbench.broker.models import Fill, Order, OrderState, OrderType
from workbench.fills import Side

log = logging.getLogger(__name__)

_STATES = {
    "open": OrderState.OPEN,
    "closed": OrderState.FILLED,
    "canceled": OrderState.CANCELED,
    "expired": OrderState.EXPIRED,
    "rejected": OrderState.REJECTED,
}


class CcxtBroker:
    """Places and looks up orders through a ccxt REST client."""

    name = "ccxt"

    def __init__(self, clients: Any, retries: int = 4, backoff_s: float = 0.25) -> None:
        self.rest = clients.rest
        self.retries = retries
        self.backoff_s = backoff_s

    def on_price(self, symbol: str, price: float, ts_ms: int) -> None:
        """The exchange prices its own fills: nothing to keep."""

    async def submit(self, order: Order) -> Execution:
        if order.type is not OrderType.MARKET and order.type is not OrderType.LIMIT:
            raise OrderRejected(order, f"{order.type} orders are not supported yet")
        for attempt in range(self.retries + 1):
            try:
                answer = await self.rest.create_order(
                    order.symbol,
                    str(order.type),
                    str(order.side),
                    float(order.amount),
                    None if order.price is None else float(order.price),
                    {"clientOrderId": order.client_order_id},
                )
                return self._execution(order, answer)
            except (ccxt.InsufficientFunds, ccxt.BadRequest, ccxt.BadSymbol) as exc:
                raise OrderRejected(order, str(exc)) from exc
            except ccxt.InvalidOrder as exc:
                # A duplicate id means an earlier try did get through.
                found = await self._lookup(order)
                if found is not None:
                    return self._execution(order, found)
                raise OrderRejected(order, str(exc)) from exc
            except ccxt.NetworkError as exc:
                log.warning("placing %s failed (%s); looking it up", order.client_order_id, exc)
                found = await self._lookup(order)
                if found is not None:
                    return self._execution(order, found)
                if attempt == self.retries:
                    raise
                await asyncio.sleep(self.backoff_s * 2**attempt)
        raise AssertionError("unreachable")

    async def cancel(self, order: Order) -> Execution:
        answer = await self.rest.cancel_order(
            order.exchange_order_id or "",
            order.symbol,
            {} if order.exchange_order_id else {"origClientOrderId": order.client_order_id},
        )
        return self._execution(order, answer)

    async def lookup(self, order: Order) -> Execution | None:
        found = await self._lookup(order)
        return None if found is None else self._execution(order, found)

    async def _lookup(self, order: Order) -> dict[str, Any] | None:
        """Give the exchange's view of an order by client id, or None if it never arrived."""
        for attempt in range(self.retries + 1):
            try:
                found = await self.rest.fetch_order(
                    None, order.symbol, {"origClientOrderId": order.client_order_id}
                )
            except ccxt.OrderNotFound:
                return None
            except ccxt.NetworkError:
                await asyncio.sleep(self.backoff_s * 2**attempt)
                continue
            if found.get("status") == "closed" and not found.get("trades"):
                found["trades"] = await self.rest.fetch_my_trades(
                    order.symbol, params={"orderId": found["id"]}
                )
            return found
        raise ccxt.NetworkError(f"cannot look up order {order.client_order_id}")

    def _execution(self, order: Order, answer: dict[str, Any]) -> Execution:
        state = _STATES.get(str(answer.get("status")), OrderState.OPEN)
        filled = float(answer.get("filled") or 0.0)
        if 0 < filled < order.amount and state is OrderState.OPEN:
            state = OrderState.PARTIALLY_FILLED
        ts_ms = int(answer.get("timestamp") or 0)
        fills = []
        for n, trade in enumerate(answer.get("trades") or []):
            price = float(trade["price"])
            fee = trade.get("fee") or {}
            cost = float(fee.get("cost") or 0.0)
            if cost and fee.get("currency") == order.symbol.split("/")[0]:
                cost *= price  # charged in base: valued in quote at the fill price
            fills.append(
                Fill(
                    fill_id=str(trade.get("id") or f"{order.client_order_id}-{n + 1}"),
                    client_order_id=order.client_order_id,
                    strategy_id=order.strategy_id,
                    symbol=order.symbol,
                    side=Side(order.side),
                    amount=float(trade["amount"]),
                    price=price,
                    fee=cost,
                    ts_ms=int(trade.get("timestamp") or ts_ms),
                    purpose=order.purpose,
                )
            )
        average = answer.get("average")
        return Execution(
            order.update(
                state=state,
                filled=filled,
                average_price=None if average is None else float(average),
                exchange_order_id=str(answer.get("id")),
                updated_ms=ts_ms or order.updated_ms,
            ),
            fills,
        )
