"""Orders on an exchange through ccxt: placed once, followed until they are done.

Placing. Each order carries the workbench's client order id (`clientOrderId`, which ccxt passes
to the exchange). A network error on placement is ambiguous (the order may or may not have
reached the exchange), so the broker asks the exchange for the order by that id before it
tries again; a retry the exchange refuses as a duplicate id is looked up the same way. So a
retry never makes a second order. Market, limit and stop orders go through ccxt's unified
`create_order`: STOP_LOSS / TAKE_PROFIT as a market order with `stopLossPrice` /
`takeProfitPrice` (Binance's STOP_LOSS / TAKE_PROFIT), the *_LIMIT kinds as a limit order with
the same parameter (STOP_LOSS_LIMIT / TAKE_PROFIT_LIMIT). A stop-loss and take-profit pair can
go as one OCO list (Binance's POST /api/v3/orderList/oco, through ccxt's signed endpoint
`private_post_orderlist_oco`): on spot every resting sell locks the position, so two separate
legs of the whole position cannot rest at once; the exchange expires the other leg when one
fires. `exchange_stops` tells the engine what a market allows.

Following. Every order the broker placed or looked up that is still open is followed by `run`:
ccxt.pro `watch_orders` (the user data stream) tells when one changes; its fills are taken
from the update when ccxt has them all, else from REST `fetch_my_trades` for that order, so a
partial fill is reported with every trade so far (the exchange trade id is the fill id, so
the engine stores each trade once).
ccxt.pro resolves a watch only with updates that arrive while it waits, but keeps the latest
state of every order in its cache (`exchange.orders`): the broker reads that cache after each
update and every `scan_s`, so back-to-back updates (an OCO leg fills as the other expires) are
not lost. The followed orders are also swept by REST (`fetch_open_orders`, then `fetch_order`
for the ones that left it) every `sweep_s` as a safety net, after every (re)connection, and
every `poll_s` while the stream is down: polling is the fallback, the stream the fast path.
Fees are kept in the asset the exchange charged (base, quote or BNB) with their value in
quote: a base fee at the fill price, a BNB fee at the BNB/quote price (looked up, then cached
for a minute).

Errors. A definite answer (insufficient funds, an invalid order, a refused key) raises
`OrderRejected` and ends that order. Anything transient (network, 5xx, 429, -1021 for a clock
out of step) is retried with backoff; when the retries run out, a placement whose fate is
unknown raises `OutcomeUnknown` and a lookup, cancel or balance query `BrokerUnavailable`, so
the engine can keep protecting the position and ask again later.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from dataclasses import dataclass, field
from typing import Any

import ccxt

from workbench.broker.base import (
    Balance,
    BrokerUnavailable,
    ExchangeStops,
    Execution,
    OrderRejected,
    OutcomeUnknown,
    Report,
)
from workbench.broker.models import Fill, Order, OrderState, OrderType
from workbench.candles import Candle
from workbench.fills import Side

log = logging.getLogger(__name__)

_STATES = {
    "open": OrderState.OPEN,
    "closed": OrderState.FILLED,
    "canceled": OrderState.CANCELED,
    "expired": OrderState.EXPIRED,
    "rejected": OrderState.REJECTED,
}
# ccxt's unified type and the parameter that makes it a stop, per workbench order type.
_CREATE: dict[OrderType, tuple[str, str | None]] = {
    OrderType.MARKET: ("market", None),
    OrderType.LIMIT: ("limit", None),
    OrderType.STOP_LOSS: ("market", "stopLossPrice"),
    OrderType.STOP_LOSS_LIMIT: ("limit", "stopLossPrice"),
    OrderType.TAKE_PROFIT: ("market", "takeProfitPrice"),
    OrderType.TAKE_PROFIT_LIMIT: ("limit", "takeProfitPrice"),
}
#: Transient: the outcome of what was asked is not known; ask again later.
TRANSIENT = (ccxt.NetworkError, ccxt.InvalidNonce)
#: The account itself is refused: nothing this account sends will go through.
_ACCOUNT_REFUSED = (ccxt.AuthenticationError, ccxt.PermissionDenied, ccxt.AccountSuspended)
_BNB_TTL_S = 60.0
_BINANCE_TYPES = {
    OrderType.STOP_LOSS: "STOP_LOSS",
    OrderType.STOP_LOSS_LIMIT: "STOP_LOSS_LIMIT",
    OrderType.TAKE_PROFIT: "TAKE_PROFIT",
    OrderType.TAKE_PROFIT_LIMIT: "TAKE_PROFIT_LIMIT",
}


@dataclass
class FollowStats:
    """What the follow-up has done: stream updates taken, sweeps by REST, stream failures."""

    stream_updates: int = 0
    sweeps: int = 0
    stream_errors: int = 0
    reported: int = 0
    errors: deque[str] = field(default_factory=lambda: deque(maxlen=20))  # the latest


class CcxtBroker:
    """Places, cancels, looks up and follows orders through ccxt and ccxt.pro clients."""

    name = "ccxt"

    def __init__(
        self,
        clients: Any,
        retries: int = 4,
        backoff_s: float = 0.25,
        *,
        use_exchange_stops: bool = True,
        sweep_s: float = 5.0,
        poll_s: float = 1.0,
        scan_s: float = 0.25,
    ) -> None:
        self.rest = clients.rest
        self.pro = clients.pro
        self.retries = retries
        self.backoff_s = backoff_s
        self.use_exchange_stops = use_exchange_stops
        self.sweep_s = sweep_s
        self.poll_s = poll_s
        self.scan_s = scan_s
        self.streaming = False
        self.stats = FollowStats()
        self._followed: dict[str, Order] = {}
        self._fee_prices: dict[str, tuple[float, float]] = {}  # asset/quote -> (price, at)

    def on_price(self, symbol: str, price: float, ts_ms: int) -> list[Execution]:
        """The exchange prices its own fills: nothing to keep."""
        return []

    def on_bar(self, symbol: str, candle: Candle) -> list[Execution]:
        """The exchange fills resting orders itself; `run` reports them."""
        return []

    @property
    def followed(self) -> list[Order]:
        """Give the open orders being followed, as last reported."""
        return list(self._followed.values())

    def exchange_stops(self, symbol: str) -> ExchangeStops:
        """Tell how protective orders can rest on the exchange for `symbol`."""
        if not self.use_exchange_stops:
            return ExchangeStops.NONE
        market = self.rest.markets.get(symbol) if self.rest.markets else None
        info = (market or {}).get("info") or {}
        types = info.get("orderTypes")
        if types is None:  # not Binance-shaped: trust ccxt's capability flags
            has = self.rest.has
            stops = has.get("createStopLossOrder") or has.get("createTriggerOrder")
            return ExchangeStops.STOP if stops else ExchangeStops.NONE
        if not {"STOP_LOSS", "TAKE_PROFIT"} <= set(types):
            return ExchangeStops.NONE
        if info.get("ocoAllowed") and hasattr(self.rest, "private_post_orderlist_oco"):
            return ExchangeStops.OCO
        return ExchangeStops.STOP

    # -- placing ------------------------------------------------------------------------
    async def submit(self, order: Order) -> Execution:
        self._followed.setdefault(order.client_order_id, order)  # updates may beat the answer
        kind, trigger = _CREATE[order.type]
        params: dict[str, Any] = {"clientOrderId": order.client_order_id}
        if trigger is not None:
            if order.stop_price is None:
                raise OrderRejected(order, f"a {order.type} order needs a stop price")
            params[trigger] = self.rest.price_to_precision(order.symbol, order.stop_price)
        price = None
        if kind == "limit":
            if order.price is None:
                raise OrderRejected(order, f"a {order.type} order needs a limit price")
            price = float(order.price)

        async def create() -> list[dict[str, Any]]:
            answer = await self.rest.create_order(
                order.symbol, kind, str(order.side), float(order.amount), price, params
            )
            return [answer]

        [execution] = await self._place([order], create)
        return execution

    async def submit_oco(self, legs: tuple[Order, Order]) -> list[Execution]:
        """Place a stop-loss and a take-profit of one side as an OCO list; give both legs."""
        first, second = legs
        for leg in legs:
            self._followed.setdefault(leg.client_order_id, leg)
            if leg.type not in _BINANCE_TYPES or leg.stop_price is None:
                raise OrderRejected(leg, "an OCO leg is a stop order with a stop price")
        above, below = sorted(legs, key=lambda o: o.stop_price or 0.0, reverse=True)
        symbol = first.symbol
        request: dict[str, Any] = {
            "symbol": self.rest.market_id(symbol),
            "side": str(first.side).upper(),
            "quantity": self.rest.amount_to_precision(symbol, first.amount),
            "listClientOrderId": f"{first.client_order_id[:30]}-oco",
            "newOrderRespType": "FULL",
        }
        for where, leg in (("above", above), ("below", below)):
            request[f"{where}Type"] = _BINANCE_TYPES[leg.type]
            request[f"{where}ClientOrderId"] = leg.client_order_id
            request[f"{where}StopPrice"] = self.rest.price_to_precision(symbol, leg.stop_price)
            if leg.price is not None:
                request[f"{where}Price"] = self.rest.price_to_precision(symbol, leg.price)
                request[f"{where}TimeInForce"] = "GTC"
        market = self.rest.market(symbol)

        async def create() -> list[dict[str, Any]]:
            answer = await self.rest.private_post_orderlist_oco(request)
            parsed = {
                p["clientOrderId"]: p
                for p in (self.rest.parse_order(r, market) for r in answer["orderReports"])
            }
            return [parsed[first.client_order_id], parsed[second.client_order_id]]

        return await self._place([first, second], create)

    async def _place(self, orders: list[Order], create: Any) -> list[Execution]:
        """Run `create` with retries; an ambiguous failure is settled by looking the orders up."""
        sent = False  # once a try may have reached the exchange, its fate must be looked up
        for attempt in range(self.retries + 1):
            try:
                answers = await create()
                return [await self._settle(o, a) for o, a in zip(orders, answers, strict=True)]
            except _ACCOUNT_REFUSED as exc:
                self._forget(orders)
                raise OrderRejected(orders[0], str(exc), permanent=True) from exc
            except (ccxt.InsufficientFunds, ccxt.BadRequest, ccxt.BadSymbol) as exc:
                found = await self._lookup_all(orders) if sent else None
                if found is not None:  # an earlier try got through after all
                    return found
                self._forget(orders)
                raise OrderRejected(orders[0], str(exc)) from exc
            except ccxt.InvalidOrder as exc:
                # A duplicate id means an earlier try did get through.
                found = await self._lookup_all(orders)
                if found is not None:
                    return found
                self._forget(orders)
                raise OrderRejected(orders[0], str(exc)) from exc
            except TRANSIENT as exc:
                sent = sent or not isinstance(exc, ccxt.InvalidNonce)
                ids = ", ".join(o.client_order_id for o in orders)
                log.warning("placing %s failed (%s); looking it up", ids, exc)
                try:
                    found = await self._lookup_all(orders)
                except BrokerUnavailable as lost:
                    raise OutcomeUnknown(orders[0], f"{exc}; then {lost.reason}") from exc
                if found is not None:
                    return found
                if attempt == self.retries:
                    if not sent:  # refused before it could reach the exchange: nothing rests
                        self._forget(orders)
                        raise BrokerUnavailable(f"placing {ids}", str(exc)) from exc
                    raise OutcomeUnknown(orders[0], str(exc)) from exc
                await asyncio.sleep(self.backoff_s * 2**attempt)
        raise AssertionError("unreachable")

    async def _lookup_all(self, orders: list[Order]) -> list[Execution] | None:
        """Give every order's execution when the exchange knows them all, else None."""
        found = [await self._lookup(o) for o in orders]
        if any(f is None for f in found):
            return None
        return [self._track(self._execution(o, f)) for o, f in zip(orders, found, strict=True)]

    def _forget(self, orders: list[Order]) -> None:
        for order in orders:
            self._followed.pop(order.client_order_id, None)

    async def cancel(self, order: Order) -> Execution:
        """Cancel an open order (an OCO leg cancels its list); give its final state."""
        try:
            answer = await self._retrying(
                f"cancelling {order.client_order_id}",
                lambda: self.rest.cancel_order(
                    order.exchange_order_id or "",
                    order.symbol,
                    {} if order.exchange_order_id else {"origClientOrderId": order.client_order_id},
                ),
            )
        except ccxt.OrderNotFound:
            # Already done (filled, expired as an OCO sibling) or never placed.
            found = await self._lookup(order)
            if found is None:
                self._followed.pop(order.client_order_id, None)
                return Execution(order.update(state=OrderState.EXPIRED, reason="unknown"))
            return self._track(self._execution(order, await self._with_trades(order, found)))
        return await self._settle(order, answer)

    async def lookup(self, order: Order) -> Execution | None:
        found = await self._lookup(order)
        return None if found is None else self._track(self._execution(order, found))

    async def balances(self) -> dict[str, Balance] | None:
        """Give the account's balances by asset (free and locked)."""
        raw = await self._retrying("fetching balances", self.rest.fetch_balance)
        free, used = raw.get("free") or {}, raw.get("used") or {}
        return {
            asset: Balance(float(free.get(asset) or 0.0), float(used.get(asset) or 0.0))
            for asset in set(free) | set(used)
        }

    async def _settle(self, order: Order, answer: dict[str, Any]) -> Execution:
        """Give the execution of an answer, with every trade so far, and follow it if open."""
        answer = await self._with_trades(order, answer)
        return self._track(self._execution(order, answer))

    def _track(self, execution: Execution) -> Execution:
        order = execution.order
        if order.state.is_final:
            self._followed.pop(order.client_order_id, None)
        else:
            self._followed[order.client_order_id] = order
        return execution

    async def _lookup(self, order: Order) -> dict[str, Any] | None:
        """Give the exchange's view of an order by client id, or None if it never arrived."""
        try:
            found = await self._retrying(
                f"looking up {order.client_order_id}",
                lambda: self.rest.fetch_order(
                    None, order.symbol, {"origClientOrderId": order.client_order_id}
                ),
            )
        except ccxt.OrderNotFound:
            return None
        return await self._with_trades(order, found)

    async def _retrying(self, what: str, call: Any) -> Any:
        """Run an idempotent call, retrying transient errors; `BrokerUnavailable` at the end."""
        for attempt in range(self.retries + 1):
            try:
                return await call()
            except TRANSIENT as exc:
                if attempt == self.retries:
                    raise BrokerUnavailable(what, str(exc)) from exc
                await asyncio.sleep(self.backoff_s * 2**attempt)
        raise AssertionError("unreachable")

    async def _fee_value(self, asset: str, quote: str, cost: float) -> float | None:
        """Give the quote value of a fee paid in a third asset (None: no price for it)."""
        pair = f"{asset}/{quote}"
        loop = asyncio.get_running_loop()
        cached = self._fee_prices.get(pair)
        if cached is None or loop.time() - cached[1] > _BNB_TTL_S:
            if pair not in (self.rest.markets or {}):
                return None
            try:
                ticker = await self.rest.fetch_ticker(pair)
            except ccxt.BaseError as exc:
                log.warning("no price for %s to value a fee (%s)", pair, exc)
                return None if cached is None else cost * cached[0]
            cached = self._fee_prices[pair] = (float(ticker["last"]), loop.time())
        return cost * cached[0]

    async def _with_trades(self, order: Order, answer: dict[str, Any]) -> dict[str, Any]:
        """Complete an answer's trades from REST when they do not add up to its filled amount,
        and value each fee paid in a third asset."""
        filled = float(answer.get("filled") or 0.0)
        trades = answer.get("trades") or []
        if filled > 0 and sum(float(t["amount"]) for t in trades) < filled * (1 - 1e-9):
            answer = dict(answer)
            answer["trades"] = trades = await self._retrying(
                f"fetching the trades of {order.client_order_id}",
                lambda: self.rest.fetch_my_trades(order.symbol, params={"orderId": answer["id"]}),
            )
        base, quote = order.symbol.split("/")
        for trade in trades:
            fee = trade.get("fee") or {}
            currency = fee.get("currency")
            if currency and currency not in (base, quote) and "value" not in fee:
                fee["value"] = await self._fee_value(currency, quote, float(fee.get("cost") or 0))
        return answer

    # -- following ------------------------------------------------------------------------
    async def run(self, report: Report) -> None:
        """Follow the open orders until cancelled: watch_orders, swept and polled by REST."""
        watcher: asyncio.Task[Any] | None = None
        resync = True
        last_sweep = 0.0
        attempt = 0
        loop = asyncio.get_running_loop()
        try:
            while True:
                try:
                    if resync:
                        await self._sweep(report)  # what changed while nobody listened
                        resync, last_sweep = False, loop.time()
                    if watcher is None:
                        watcher = asyncio.create_task(self.pro.watch_orders())
                    done, _ = await asyncio.wait({watcher}, timeout=self.scan_s)
                    if watcher in done:
                        finished, watcher = watcher, None
                        self.stats.stream_updates += len(finished.result())
                        self.streaming = True
                        attempt = 0
                    # ccxt.pro keeps the latest state of every order it was told about, also
                    # of updates that came while no watch waited: read them all from there.
                    await self._scan(report)
                    every = self.sweep_s if self.streaming else self.poll_s
                    if loop.time() - last_sweep >= every:
                        await self._sweep(report)
                        last_sweep = loop.time()
                except (ccxt.BaseError, BrokerUnavailable, KeyError) as exc:
                    # ccxt 4.5.90 can raise KeyError from its own error path on a refused login.
                    watcher = None
                    self.streaming = False
                    resync = True
                    self.stats.stream_errors += 1
                    self.stats.errors.append(repr(exc))
                    delay = min(self.backoff_s * 2**attempt, max(self.poll_s, self.backoff_s))
                    attempt += 1
                    # Said once per outage; while it lasts the retries only go to debug.
                    say = log.warning if attempt == 1 else log.debug
                    say("order stream down (%s); polling every %.2fs", str(exc)[:200], delay)
                    await asyncio.sleep(delay)
        finally:
            if watcher is not None:
                watcher.cancel()
                await asyncio.gather(watcher, return_exceptions=True)

    async def _scan(self, report: Report) -> None:
        """Report the followed orders whose latest streamed state is news."""
        for update in list(self.pro.orders or []):
            order = self._followed.get(str(update.get("clientOrderId")))
            if order is not None and self._changed(order, update):
                await self._report(order, update, report)

    async def _sweep(self, report: Report) -> None:
        """Poll the followed orders by REST: open ones in one call per symbol."""
        if not self._followed:
            return
        self.stats.sweeps += 1
        for symbol in sorted({o.symbol for o in self._followed.values()}):
            try:
                listed = await self.rest.fetch_open_orders(symbol)
            except TRANSIENT as exc:
                log.warning("polling open %s orders failed (%s)", symbol, exc)
                continue
            still_open = {str(o.get("clientOrderId")): o for o in listed}
            for order in [o for o in self._followed.values() if o.symbol == symbol]:
                update = still_open.get(order.client_order_id)
                if update is None:
                    try:
                        update = await self._lookup(order)
                    except BrokerUnavailable:
                        continue
                    if update is None:
                        continue  # not (yet) on the exchange: its submit settles it
                if self._changed(order, update):
                    await self._report(order, update, report)

    async def _report(self, order: Order, update: dict[str, Any], report: Report) -> None:
        update = await self._with_trades(order, update)
        execution = self._track(self._execution(order, update))
        self.stats.reported += 1
        await report(execution)

    @staticmethod
    def _changed(order: Order, update: dict[str, Any]) -> bool:
        state = _STATES.get(str(update.get("status")), OrderState.OPEN)
        filled = float(update.get("filled") or 0.0)
        return filled > order.filled + 1e-12 or (state.is_final and not order.state.is_final)

    def _execution(self, order: Order, answer: dict[str, Any]) -> Execution:
        state = _STATES.get(str(answer.get("status")), OrderState.OPEN)
        filled = float(answer.get("filled") or 0.0)
        if 0 < filled < order.amount and state is OrderState.OPEN:
            state = OrderState.PARTIALLY_FILLED
        ts_ms = int(answer.get("lastUpdateTimestamp") or answer.get("timestamp") or 0)
        fills = []
        base, quote = order.symbol.split("/")
        for n, trade in enumerate(answer.get("trades") or []):
            price = float(trade["price"])
            fee = trade.get("fee") or {}
            cost = float(fee.get("cost") or 0.0)
            currency = str(fee.get("currency") or quote)
            if currency == base:
                value: float | None = cost * price  # charged in base: its worth at the fill
            elif currency == quote:
                value = cost
            else:
                value = fee.get("value")
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
                    fee_currency=currency,
                    fee_quote=None if value is None else float(value),
                )
            )
        average = answer.get("average")
        return Execution(
            order.update(
                state=state,
                filled=max(filled, order.filled),
                average_price=None if average is None else float(average),
                exchange_order_id=(
                    order.exchange_order_id if answer.get("id") is None else str(answer["id"])
                ),
                updated_ms=ts_ms or order.updated_ms,
            ),
            fills,
        )
