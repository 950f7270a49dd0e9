"""Order matching and balances: orders fill against the replayed price path, via the fill model.

There is no order book of other traders: the replay is the market. A market order fills whole at
the current replay price (`FillModel.market_price`); a resting limit or a stop fills when the
path between two replay ticks crosses it (`workbench.fills` defines when and at what price).

Liquidity (opt-in, ``max_volume_fraction``): by default an order fills whole or not at all. With
a fraction, a *resting* limit order (a LIMIT, a LIMIT_MAKER, a triggered *_LIMIT stop) fills at
most that fraction of the volume the replay trades between two ticks (the bar's volume pro rata
of time), so a large order fills in several trades over several ticks, PARTIALLY_FILLED until
done, as a maker order does on a real book. Orders that take liquidity (market orders, a
marketable limit on arrival, a triggered market stop) still fill whole: they sweep the book.

OCO order lists (Binance's POST /api/v3/orderList/oco): two legs of the same side and
quantity that lock the balance once. When one leg triggers or starts to fill, the other
expires; cancelling either leg cancels both.

Commissions are booked in the asset the fill model's ``fee_asset`` names, as Binance takes them
(`workbench.localexchange.commission`): a resting buy locks its notional, plus the fee only
when the fee is paid in quote; a buy for a quote amount (quoteOrderQty) spends at most it.

Every state change is told to the listeners synchronously, so they must copy what they need
before returning.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable
from dataclasses import dataclass

from workbench.fills import (
    FillModel,
    Side,
    limit_fill_price,
    stop_trigger_price,
    would_trigger_now,
)
from workbench.localexchange.commission import BNB, Commission, commission
from workbench.localexchange.errors import INSUFFICIENT_BALANCE, ExchangeRejection, filter_failure
from workbench.localexchange.markets import MarketRules, market_id
from workbench.localexchange.orders import Order, OrderStatus, OrderType, Trade
from workbench.localexchange.replay import PathPoint, SymbolReplay

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
        max_volume_fraction: float | None = None,
    ) -> None:
        if max_volume_fraction is not None and not 0.0 < max_volume_fraction <= 1.0:
            raise ValueError(f"max_volume_fraction must be in (0, 1], got {max_volume_fraction}")
        self.max_volume_fraction = max_volume_fraction
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
        self._list_ids = itertools.count(1)
        self._client_ids: dict[tuple[str, str], int] = {}
        self.lists: dict[int, list[int]] = {}  # OCO order list id → its legs' order ids

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
        account = self._account(account_name)
        price_now = self._price_now(request.symbol, now_ms)
        model = self.fill_model
        quantity = self._validate(account_name, request, price_now)
        marketable = self._marketable(request, price_now)
        asset, need = self._need(request, quantity, price_now)
        if account.free.get(asset, 0.0) + EPSILON < need:
            raise ExchangeRejection(-2010, INSUFFICIENT_BALANCE)
        order = self._new_order(account_name, request, quantity, now_ms)
        self._emit(OrderEvent(order, "NEW", None, now_ms))
        if request.type is OrderType.MARKET:
            self._fill(
                order, model.market_price(request.side, price_now), order.quantity, False, now_ms
            )
        elif request.type is OrderType.LIMIT and marketable:
            assert request.price is not None
            taker = model.market_price(request.side, price_now)
            capped = (
                min(taker, request.price) if request.side is Side.BUY else max(taker, request.price)
            )
            self._fill(order, capped, order.quantity, False, now_ms)
        elif request.time_in_force in ("IOC", "FOK") and request.type.stop_kind is None:
            self._finish(order, OrderStatus.EXPIRED, "EXPIRED", now_ms)
        else:
            order.locked_asset, order.locked_amount = asset, need
            account.lock(asset, need)
            self.working[order.order_id] = order
            self._emit(BalanceEvent(account_name, (asset,), now_ms))
        return order

    def place_oco(
        self,
        account_name: str,
        legs: tuple[OrderRequest, OrderRequest],
        list_client_id: str,
        now_ms: int,
    ) -> tuple[int, list[Order]]:
        """Accept an OCO pair (same symbol, side and quantity) resting as one; give its list id."""
        account = self._account(account_name)
        first, second = legs
        if (first.symbol, first.side, first.quantity) != (
            second.symbol,
            second.side,
            second.quantity,
        ):
            raise ExchangeRejection(-1102, "OCO legs must share symbol, side and quantity.")
        if first.client_order_id == second.client_order_id:
            raise ExchangeRejection(-2010, "Duplicate order sent.")
        price_now = self._price_now(first.symbol, now_ms)
        for leg in legs:
            if leg.type in (OrderType.MARKET, OrderType.LIMIT):
                raise ExchangeRejection(-1116, "Invalid orderType.")
            self._validate(account_name, leg, price_now)
        quantity = float(first.quantity or 0.0)
        needs = [self._need(leg, quantity, price_now) for leg in legs]
        asset, need = max(needs, key=lambda n: n[1])
        if account.free.get(asset, 0.0) + EPSILON < need:
            raise ExchangeRejection(-2010, INSUFFICIENT_BALANCE)
        list_id = next(self._list_ids)
        orders = [self._new_order(account_name, leg, quantity, now_ms, list_id) for leg in legs]
        self.lists[list_id] = [o.order_id for o in orders]
        # The list locks once, on its first leg; a leg that triggers takes the lock over.
        orders[0].locked_asset, orders[0].locked_amount = asset, need
        orders[1].locked_asset = asset
        account.lock(asset, need)
        for order in orders:
            self.working[order.order_id] = order
            self._emit(OrderEvent(order, "NEW", None, now_ms))
        self._emit(BalanceEvent(account_name, (asset,), now_ms))
        return list_id, orders

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
        # Cancelling a leg of an OCO cancels the whole list, as on Binance.
        for leg in self._list_of(order):
            if leg.status.is_open:
                self._finish(leg, OrderStatus.CANCELED, "CANCELED", now_ms)
        return order

    def advance(
        self, symbol: str, points: list[PathPoint], now_ms: int, volume: float = math.inf
    ) -> None:
        """Match the working orders of ``symbol`` against the path the price just walked.

        ``volume`` is what the market traded meanwhile; with ``max_volume_fraction`` the
        resting orders share that fraction of it, oldest first.
        """
        working = [o for o in self.working.values() if o.symbol == symbol]
        if not working or len(points) < 2:
            return
        budget = [
            math.inf if self.max_volume_fraction is None else self.max_volume_fraction * volume
        ]
        for previous, point in itertools.pairwise(points):
            start = point.price if point.jump else previous.price
            high, low = max(start, point.price), min(start, point.price)
            for order in working:
                if order.status.is_open:
                    self._match(order, start, high, low, point.price, now_ms, budget)

    # -- internals -----------------------------------------------------------------------
    def _match(
        self,
        order: Order,
        start: float,
        high: float,
        low: float,
        end: float,
        now_ms: int,
        budget: list[float],
    ) -> None:
        kind = order.type.stop_kind
        if kind is not None and not order.triggered:
            assert order.stop_price is not None
            fired = stop_trigger_price(kind, order.side, order.stop_price, start, high, low)
            if fired is None:
                return
            order.triggered = True
            self._settle_list(order, now_ms)
            if not order.type.has_limit_price:
                price = self.fill_model.market_price(order.side, fired)
                self._fill(order, price, order.remaining, False, now_ms)
                return
            start, high, low = fired, max(fired, end), min(fired, end)
        assert order.price is not None
        price = limit_fill_price(order.side, order.price, start, high, low)
        if price is None:
            return
        quantity = self._fillable(order, budget[0])
        if quantity > 0:
            budget[0] -= quantity
            self._fill(order, price, quantity, bool(price == order.price), now_ms)

    def _fillable(self, order: Order, budget: float) -> float:
        """Give how much of a resting order the liquidity left lets fill now (lot-rounded)."""
        remaining = order.remaining
        if budget >= remaining:
            return remaining
        step = self.markets[order.symbol].step_size
        quantity = math.floor(budget / step + 1e-9) * step
        if remaining - quantity < step / 2:
            return remaining
        return max(quantity, 0.0)

    def _list_of(self, order: Order) -> list[Order]:
        """Give the legs of the order's OCO list (just the order when it is in none)."""
        if order.order_list_id < 0:
            return [order]
        return [self.orders[i] for i in self.lists[order.order_list_id]]

    def _settle_list(self, order: Order, now_ms: int) -> None:
        """A leg triggered or started to fill: it takes the list's lock, the others expire."""
        for leg in self._list_of(order):
            if leg is order or not leg.status.is_open:
                continue
            if leg.locked_amount:
                order.locked_asset, order.locked_amount = leg.locked_asset, leg.locked_amount
                leg.locked_amount = 0.0
            self._finish(leg, OrderStatus.EXPIRED, "EXPIRED", now_ms)

    def _account(self, name: str) -> Account:
        account = self.accounts.get(name)
        if account is None:
            raise ExchangeRejection(-2015, "Invalid API-key, IP, or permissions for action.", 401)
        return account

    def _price_now(self, symbol: str, now_ms: int) -> float:
        price_now = self.replays[symbol].price_at(now_ms)
        if price_now is None:
            raise ExchangeRejection(-2010, "Market is closed.")
        return price_now

    def _validate(self, account_name: str, request: OrderRequest, price_now: float) -> float:
        """Check an order against the filters, ids and triggers; give its quantity."""
        rules = self.markets[request.symbol]
        quantity = self._quantity(request, rules, price_now)
        self._check_filters(request, rules, quantity, price_now)
        if (account_name, request.client_order_id) in self._client_ids:
            raise ExchangeRejection(-2010, "Duplicate order sent.")
        kind = request.type.stop_kind
        if kind is not None:
            assert request.stop_price is not None
            if would_trigger_now(kind, request.side, request.stop_price, price_now):
                raise ExchangeRejection(-2010, "Stop price would trigger immediately.")
        if request.type is OrderType.LIMIT_MAKER and self._marketable(request, price_now):
            raise ExchangeRejection(-2010, "Order would immediately match and take.")
        return quantity

    @staticmethod
    def _marketable(request: OrderRequest, price_now: float) -> bool:
        return request.price is not None and (
            price_now <= request.price if request.side is Side.BUY else price_now >= request.price
        )

    def _need(self, request: OrderRequest, quantity: float, price_now: float) -> tuple[str, float]:
        """Give the asset and amount an order must have free (and locks while it rests)."""
        model = self.fill_model
        reference = {
            OrderType.MARKET: model.market_price(request.side, price_now),
            OrderType.STOP_LOSS: model.market_price(request.side, request.stop_price or 0.0),
            OrderType.TAKE_PROFIT: model.market_price(request.side, request.stop_price or 0.0),
        }.get(request.type, request.price or price_now)
        return self._requirement(self.markets[request.symbol], request.side, reference, quantity)

    def _new_order(
        self,
        account_name: str,
        request: OrderRequest,
        quantity: float,
        now_ms: int,
        list_id: int = -1,
    ) -> Order:
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
            quote_order_qty=request.quote_quantity or 0.0,
            created_ms=now_ms,
            updated_ms=now_ms,
            order_list_id=list_id,
        )
        self.orders[order.order_id] = order
        self._client_ids[(account_name, order.client_order_id)] = order.order_id
        return order

    def _quantity(self, request: OrderRequest, rules: MarketRules, price_now: float) -> float:
        if request.quantity is not None:
            return request.quantity
        if request.type is not OrderType.MARKET or request.quote_quantity is None:
            raise ExchangeRejection(
                -1102, "Mandatory parameter 'quantity' was not sent, was empty/null, or malformed."
            )
        fill_price = self.fill_model.market_price(request.side, price_now)
        if request.side is Side.BUY:
            # Spend at most quoteOrderQty, the fee included when it is paid in quote.
            wanted = self.fill_model.max_buy_quantity(request.quote_quantity, fill_price)
        else:
            wanted = request.quote_quantity / fill_price
        return math.floor(wanted / rules.step_size + 1e-9) * rules.step_size

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

    def _fill(
        self, order: Order, price: float, quantity: float, is_maker: bool, now_ms: int
    ) -> None:
        """Execute ``quantity`` of an order at ``price``: one trade, balances, events."""
        self._settle_list(order, now_ms)
        account = self.accounts[order.account]
        remaining = order.remaining
        done = quantity >= remaining - EPSILON
        if order.locked_amount:
            # A partial fill releases its share of the lock; the last one releases the rest.
            release = order.locked_amount if done else order.locked_amount * quantity / remaining
            account.unlock(order.locked_asset, release)
            order.locked_amount -= release
        notional = price * quantity
        booked = self._commission(order, price, quantity, now_ms)
        for asset, amount in booked.moves.items():
            account.credit(asset, amount)
        trade = Trade(
            trade_id=next(self._trade_ids),
            order_id=order.order_id,
            symbol=order.symbol,
            side=order.side,
            price=price,
            quantity=quantity,
            commission=booked.fee,
            commission_asset=booked.fee_asset,
            time_ms=now_ms,
            is_maker=is_maker,
        )
        self.trades.append(trade)
        order.trades.append(trade)
        order.executed_qty = order.quantity if done else order.executed_qty + quantity
        order.cum_quote += notional
        if done:
            self.working.pop(order.order_id, None)
            order.status = OrderStatus.FILLED
        else:
            order.status = OrderStatus.PARTIALLY_FILLED
        order.updated_ms = now_ms
        account.updated_ms = now_ms
        self._emit(OrderEvent(order, "TRADE", trade, now_ms))
        self._emit(BalanceEvent(order.account, tuple(booked.moves), now_ms))

    def _commission(self, order: Order, price: float, quantity: float, now_ms: int) -> Commission:
        """Give what a fill books, its fee in the asset the exchange takes it in."""
        rules = self.markets[order.symbol]
        bnb_market = self.replays.get(market_id(f"{BNB}/{rules.quote}"))
        return commission(
            self.fill_model,
            order.side,
            price,
            quantity,
            base=rules.base,
            quote=rules.quote,
            bnb_price=bnb_market.price_at(now_ms) if bnb_market is not None else None,
            bnb_free=self.accounts[order.account].free.get(BNB, 0.0),
        )

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
