"""Order matching and balances: orders fill against the replayed price path, via the fill model.

There is no order book of other traders: the replay is the market. A market order fills whole at
the current replay price (`FillModel.market_price`); a resting limit or a stop fills when the
path between two replay ticks crosses it (`workbench.fills` defines when and at what price).
Orders fill whole or not at all (no partial fills, no volume limit). Every state change is told
to the listeners synchronously, so they must copy what they need before returning.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable
from dataclasses import dataclass

from workbench.exchange.errors import INSUFFICIENT_BALANCE, ExchangeRejection, filter_failure
from workbench.exchange.markets import MarketRules
from workbench.exchange.orders import Order, OrderStatus, OrderType, Trade
from workbench.exchange.replay import PathPoint, SymbolReplay
from workbench.fills import (
    FillModel,
    Side,
    limit_fill_price,
    stop_trigger_price,
    would_trigger_now,
)

EPSILON = 1e-12


@dataclass(frozen=True)
class OrderEvent:
    """An execution report: the order changed (``exec_type`` NEW, TRADE, CANCELED, EXPIRED)."""

    order: Order
    exec_type: str
    trade: Trade | None
    time_ms: int


@dataclass(frozen=True)
class BalanceEvent:
    """Some assets of an account changed (Binance's outboundAccountPosition)."""

    account: str
    assets: tuple[str, ...]
    time_ms: int


Listener = Callable[[OrderEvent | BalanceEvent], None]


@dataclass(frozen=True)
class OrderRequest:
    """A new order as the REST layer parsed it."""

    symbol: str
    side: Side
    type: OrderType
    quantity: float | None = None
    quote_quantity: float | None = None
    price: float | None = None
    stop_price: float | None = None
    time_in_force: str = "GTC"
    client_order_id: str = ""


class Account:
    """Free and locked amounts per asset."""

    def __init__(self, name: str, balances: dict[str, float]) -> None:
        self.name = name
        self.free: dict[str, float] = {k: float(v) for k, v in balances.items()}
        self.locked: dict[str, float] = dict.fromkeys(balances, 0.0)
        self.updated_ms = 0

    def assets(self) -> list[str]:
        """Give every asset the account has held."""
        return sorted(set(self.free) | set(self.locked))

    def lock(self, asset: str, amount: float) -> None:
        """Move ``amount`` from free to locked."""
        self.free[asset] = self.free.get(asset, 0.0) - amount
        self.locked[asset] = self.locked.get(asset, 0.0) + amount

    def unlock(self, asset: str, amount: float) -> None:
        """Move ``amount`` from locked back to free."""
        self.locked[asset] = max(0.0, self.locked.get(asset, 0.0) - amount)
        self.free[asset] = self.free.get(asset, 0.0) + amount

    def credit(self, asset: str, amount: float) -> None:
        """Add ``amount`` (negative to debit) to the free balance."""
        self.free[asset] = self.free.get(asset, 0.0) + amount
        self.locked.setdefault(asset, 0.0)


class Matcher:
    """Accounts, orders and trades of the local exchange."""

    def __init__(
        self,
        markets: dict[str, MarketRules],
        replays: dict[str, SymbolReplay],
        fill_model: FillModel,
        accounts: dict[str, dict[str, float]],
    ) -> None:
        self.markets = markets  # by market id
        self.replays = replays  # by market id
        self.fill_model = fill_model
        self.accounts = {name: Account(name, bal) for name, bal in accounts.items()}
        self.orders: dict[int, Order] = {}
        self.working: dict[int, Order] = {}  # the orders resting now, oldest first
        self.trades: list[Trade] = []
        self.listeners: list[Listener] = []
        self._order_ids = itertools.count(1001)
        self._trade_ids = itertools.count(5001)
        self._client_ids: dict[tuple[str, str], int] = {}

    # -- queries -------------------------------------------------------------------------
    def find(
        self, account: str, symbol: str, order_id: int | None, client_order_id: str | None
    ) -> Order:
        """Give an order of an account by id or client id, or reject with -2013."""
        if order_id is None and client_order_id is not None:
            order_id = self._client_ids.get((account, client_order_id))
        order = self.orders.get(order_id) if order_id is not None else None
        if order is None or order.account != account or order.symbol != symbol:
            raise ExchangeRejection(-2013, "Order does not exist.")
        return order

    def open_orders(self, account: str, symbol: str | None = None) -> list[Order]:
        """Give the working orders of an account, oldest first."""
        return [
            o
            for o in self.working.values()
            if o.account == account and (symbol is None or o.symbol == symbol)
        ]

    # -- commands ------------------------------------------------------------------------
    def place(self, account_name: str, request: OrderRequest, now_ms: int) -> Order:
        """Accept, fill or rest a new order, or reject it as Binance would."""
        account = self.accounts.get(account_name)
        if account is None:
            raise ExchangeRejection(-2015, "Invalid API-key, IP, or permissions for action.", 401)
        rules = self.markets[request.symbol]
        price_now = self.replays[request.symbol].price_at(now_ms)
        if price_now is None:
            raise ExchangeRejection(-2010, "Market is closed.")
        model = self.fill_model
        kind = request.type.stop_kind
        quantity = self._quantity(request, rules, price_now)
        self._check_filters(request, rules, quantity, price_now)
        if (account_name, request.client_order_id) in self._client_ids:
            raise ExchangeRejection(-2010, "Duplicate order sent.")
        if kind is not None:
            assert request.stop_price is not None
            if would_trigger_now(kind, request.side, request.stop_price, price_now):
                raise ExchangeRejection(-2010, "Stop price would trigger immediately.")
        marketable = request.price is not None and (
            price_now <= request.price if request.side is Side.BUY else price_now >= request.price
        )
        if request.type is OrderType.LIMIT_MAKER and marketable:
            raise ExchangeRejection(-2010, "Order would immediately match and take.")
        reference = {
            OrderType.MARKET: model.market_price(request.side, price_now),
            OrderType.STOP_LOSS: model.market_price(request.side, request.stop_price or 0.0),
            OrderType.TAKE_PROFIT: model.market_price(request.side, request.stop_price or 0.0),
        }.get(request.type, request.price or price_now)
        asset, need = self._requirement(rules, request.side, reference, quantity)
        if account.free.get(asset, 0.0) + EPSILON < need:
            raise ExchangeRejection(-2010, INSUFFICIENT_BALANCE)

        order = Order(
            order_id=next(self._order_ids),
            client_order_id=request.client_order_id,
            account=account_name,
            symbol=request.symbol,
            side=request.side,
            type=request.type,
            time_in_force=request.time_in_force,
            quantity=quantity,
            price=request.price,
            stop_price=request.stop_price,
            created_ms=now_ms,
            updated_ms=now_ms,
        )
        self.orders[order.order_id] = order
        self._client_ids[(account_name, order.client_order_id)] = order.order_id
        self._emit(OrderEvent(order, "NEW", None, now_ms))
        if request.type is OrderType.MARKET:
            self._fill(order, reference, False, now_ms)
        elif request.type is OrderType.LIMIT and marketable:
            assert request.price is not None
            taker = model.market_price(request.side, price_now)
            capped = (
                min(taker, request.price) if request.side is Side.BUY else max(taker, request.price)
            )
            self._fill(order, capped, False, now_ms)
        elif request.time_in_force in ("IOC", "FOK") and kind is None:
            self._finish(order, OrderStatus.EXPIRED, "EXPIRED", now_ms)
        else:
            order.locked_asset, order.locked_amount = asset, need
            account.lock(asset, need)
            self.working[order.order_id] = order
            self._emit(BalanceEvent(account_name, (asset,), now_ms))
        return order

    def cancel(
        self, account: str, symbol: str, order_id: int | None, client_id: str | None, now_ms: int
    ) -> Order:
        """Cancel a working order, or reject with -2011 when there is none to cancel."""
        try:
            order = self.find(account, symbol, order_id, client_id)
        except ExchangeRejection:
            raise ExchangeRejection(-2011, "Unknown order sent.") from None
        if not order.status.is_open:
            raise ExchangeRejection(-2011, "Unknown order sent.")
        self._finish(order, OrderStatus.CANCELED, "CANCELED", now_ms)
        return order

    def advance(self, symbol: str, points: list[PathPoint], now_ms: int) -> None:
        """Match the working orders of ``symbol`` against the path the price just walked."""
        working = [o for o in self.working.values() if o.symbol == symbol]
        if not working or len(points) < 2:
            return
        for previous, point in itertools.pairwise(points):
            start = point.price if point.jump else previous.price
            high, low = max(start, point.price), min(start, point.price)
            for order in working:
                if order.status.is_open:
                    self._match(order, start, high, low, point.price, now_ms)

    # -- internals -----------------------------------------------------------------------
    def _match(
        self, order: Order, start: float, high: float, low: float, end: float, now_ms: int
    ) -> None:
        kind = order.type.stop_kind
        if kind is not None and not order.triggered:
            assert order.stop_price is not None
            fired = stop_trigger_price(kind, order.side, order.stop_price, start, high, low)
            if fired is None:
                return
            order.triggered = True
            if not order.type.has_limit_price:
                self._fill(order, self.fill_model.market_price(order.side, fired), False, now_ms)
                return
            start, high, low = fired, max(fired, end), min(fired, end)
        assert order.price is not None
        price = limit_fill_price(order.side, order.price, start, high, low)
        if price is not None:
            self._fill(order, price, price == order.price, now_ms)

    def _quantity(self, request: OrderRequest, rules: MarketRules, price_now: float) -> float:
        if request.quantity is not None:
            return request.quantity
        if request.type is not OrderType.MARKET or request.quote_quantity is None:
            raise ExchangeRejection(
                -1102, "Mandatory parameter 'quantity' was not sent, was empty/null, or malformed."
            )
        fill_price = self.fill_model.market_price(request.side, price_now)
        per_unit = fill_price * (
            (1.0 + self.fill_model.fee_rate) if request.side is Side.BUY else 1.0
        )
        steps = math.floor(request.quote_quantity / per_unit / rules.step_size + 1e-9)
        return steps * rules.step_size

    def _check_filters(
        self, request: OrderRequest, rules: MarketRules, quantity: float, price_now: float
    ) -> None:
        for value in (request.price, request.stop_price):
            if value is not None and (
                not rules.on_tick(value) or not rules.min_price <= value <= rules.max_price
            ):
                raise filter_failure("PRICE_FILTER")
        if not rules.on_step(quantity) or not rules.min_qty <= quantity <= rules.max_qty:
            raise filter_failure("LOT_SIZE")
        notional_price = request.price if request.price is not None else price_now
        if quantity * notional_price < rules.min_notional:
            raise filter_failure("NOTIONAL")

    def _requirement(
        self, rules: MarketRules, side: Side, price: float, quantity: float
    ) -> tuple[str, float]:
        """Give the asset and amount an order must have free (and locks while it rests)."""
        if side is Side.BUY:
            return rules.quote, -self.fill_model.quote_delta(Side.BUY, price, quantity)
        return rules.base, quantity

    def _fill(self, order: Order, price: float, is_maker: bool, now_ms: int) -> None:
        rules = self.markets[order.symbol]
        account = self.accounts[order.account]
        if order.locked_amount:
            account.unlock(order.locked_asset, order.locked_amount)
            order.locked_amount = 0.0
        notional = price * order.quantity
        account.credit(rules.quote, self.fill_model.quote_delta(order.side, price, order.quantity))
        account.credit(rules.base, order.quantity if order.side is Side.BUY else -order.quantity)
        trade = Trade(
            trade_id=next(self._trade_ids),
            order_id=order.order_id,
            symbol=order.symbol,
            side=order.side,
            price=price,
            quantity=order.quantity,
            commission=self.fill_model.fee(notional),
            commission_asset=rules.quote,
            time_ms=now_ms,
            is_maker=is_maker,
        )
        self.trades.append(trade)
        order.trades.append(trade)
        self.working.pop(order.order_id, None)
        order.executed_qty = order.quantity
        order.cum_quote = notional
        order.status = OrderStatus.FILLED
        order.updated_ms = now_ms
        account.updated_ms = now_ms
        self._emit(OrderEvent(order, "TRADE", trade, now_ms))
        self._emit(BalanceEvent(order.account, (rules.base, rules.quote), now_ms))

    def _finish(self, order: Order, status: OrderStatus, exec_type: str, now_ms: int) -> None:
        account = self.accounts[order.account]
        released = order.locked_asset if order.locked_amount else None
        if order.locked_amount:
            account.unlock(order.locked_asset, order.locked_amount)
            order.locked_amount = 0.0
        self.working.pop(order.order_id, None)
        order.status = status
        order.updated_ms = now_ms
        self._emit(OrderEvent(order, exec_type, None, now_ms))
        if released is not None:
            self._emit(BalanceEvent(order.account, (released,), now_ms))

    def _emit(self, event: OrderEvent | BalanceEvent) -> None:
        for listener in self.listeners:
            listener(event)
