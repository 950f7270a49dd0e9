"""Paper trading: fills on live prices with the shared fill model, no keys, no exchange.

A market order fills at the next price the feed shows after it is placed, with slippage (the
engine shows the bar's open right after the orders a strategy places at the open, so those fill
at the open, as in the backtest; an order placed by hand fills at the next price update). A
market order that carries `stop_price` is a protective exit the strategy found triggered on
the bar's path: it fills at once at that trigger price, as in the backtest. A limit order that
is marketable when placed fills at once at the current price (capped at the limit); others
rest until a later closed bar's range crosses them (`workbench.fills.limit_fill_price`). Fees
are charged in the asset the fill model says (`FillModel.charge`); BNB fees are valued at the
last BNB/quote price seen, or paid in quote when none was.
"""

from __future__ import annotations

from workbench.broker.base import Balance, ExchangeStops, Execution, OrderRejected, Report
from workbench.broker.models import Fill, Order, OrderState, OrderType
from workbench.candles import Candle
from workbench.fills import FeeIn, FillModel, Side, limit_fill_price


class PaperBroker:
    """Simulated execution on the prices the feeds deliver."""

    name = "paper"

    def __init__(self, fill_model: FillModel | None = None) -> None:
        self.fill_model = fill_model or FillModel()
        self._last: dict[str, tuple[float, int]] = {}
        self._orders: dict[str, Execution] = {}
        self._resting: dict[str, Order] = {}
        self._waiting: dict[str, Order] = {}  # market orders waiting for the next price

    def on_price(self, symbol: str, price: float, ts_ms: int) -> list[Execution]:
        """Take a price; fill the market orders of `symbol` that waited for one."""
        self._last[symbol] = (price, ts_ms)
        done = []
        for cid, order in list(self._waiting.items()):
            if order.symbol == symbol:
                del self._waiting[cid]
                done.append(self._fill(order, price, ts_ms, slip=True))
        return done

    def exchange_stops(self, symbol: str) -> ExchangeStops:
        """Paper stops are watched by the strategy, exactly as the backtest checks them."""
        return ExchangeStops.NONE

    async def submit_oco(self, legs: tuple[Order, Order]) -> list[Execution]:
        raise OrderRejected(legs[0], "paper trading watches its stops; it takes no OCO lists")

    async def run(self, report: Report) -> None:
        """Nothing to follow: paper orders are settled on prices and bars."""

    async def balances(self) -> dict[str, Balance] | None:
        return None

    def on_bar(self, symbol: str, candle: Candle) -> list[Execution]:
        """Fill the resting limit orders a closed bar crossed (the bars after the one an order
        was placed in: that bar's range holds prices from before the order)."""
        done = []
        for cid, order in list(self._resting.items()):
            if order.symbol != symbol or order.price is None or order.updated_ms >= candle.ts_ms:
                continue
            price = limit_fill_price(order.side, order.price, candle.open, candle.high, candle.low)
            if price is not None:
                del self._resting[cid]
                done.append(self._fill(order, price, candle.ts_ms, slip=False))
        return done

    async def submit(self, order: Order) -> Execution:
        return self.execute(order)

    def execute(self, order: Order) -> Execution:
        """Take an order (paper needs no waiting); `submit` is its async face."""
        if order.client_order_id in self._orders:
            return self._orders[order.client_order_id]
        last = self._last.get(order.symbol)
        if order.type is OrderType.MARKET:
            if order.stop_price is not None:
                # At the bar it was decided on (the price shown last may be the bar before).
                ts_ms = max(last[1], order.created_ms) if last is not None else order.created_ms
                return self._fill(order, order.stop_price, ts_ms, slip=True)
            opened = order.update(state=OrderState.OPEN)
            self._waiting[order.client_order_id] = opened
            self._orders[order.client_order_id] = Execution(opened)
            return self._orders[order.client_order_id]
        if order.type is OrderType.LIMIT and order.price is not None:
            if last is None:
                raise OrderRejected(order, f"no price yet for {order.symbol}")
            price, ts_ms = last
            # Marketable as the local exchange judges it: the price now against the limit;
            # it takes at the market price, never worse than the limit.
            if price <= order.price if order.side is Side.BUY else price >= order.price:
                taker = self.fill_model.market_price(order.side, price)
                capped = (
                    min(taker, order.price) if order.side is Side.BUY else max(taker, order.price)
                )
                return self._fill(order, capped, ts_ms, slip=False)
            opened = order.update(state=OrderState.OPEN, updated_ms=ts_ms)
            self._resting[order.client_order_id] = opened
            self._orders[order.client_order_id] = Execution(opened)
            return self._orders[order.client_order_id]
        raise OrderRejected(order, f"paper trading does not take {order.type} orders")

    async def lookup(self, order: Order) -> Execution | None:
        """Give this session's execution of the order (a restarted paper broker knows none)."""
        return self._orders.get(order.client_order_id)

    async def cancel(self, order: Order) -> Execution:
        self._resting.pop(order.client_order_id, None)
        self._waiting.pop(order.client_order_id, None)
        known = self._orders.get(order.client_order_id, Execution(order)).order
        if known.state.is_final:
            return Execution(known)
        canceled = Execution(known.update(state=OrderState.CANCELED))
        self._orders[order.client_order_id] = canceled
        return canceled

    def _fill(self, order: Order, reference: float, ts_ms: int, slip: bool) -> Execution:
        model = self.fill_model
        price = model.market_price(order.side, reference) if slip else reference
        charge = model.charge(order.side, price, order.amount)
        base, quote = order.symbol.split("/")
        currency = {FeeIn.BASE: base, FeeIn.QUOTE: quote}.get(charge.fee_in, "BNB")
        fee = charge.fee
        if charge.fee_in is FeeIn.OTHER:
            bnb = self._last.get(f"BNB/{quote}")
            if bnb is None:  # nothing to value BNB with: pay in quote at the discounted rate
                currency = quote
            else:
                fee = charge.fee_quote / bnb[0]
        fill = Fill(
            # One fill per paper order: its id follows from the order's, so executing the
            # same order again after a restart gives the same fill, not a second one.
            fill_id=f"{order.client_order_id}-1",
            client_order_id=order.client_order_id,
            strategy_id=order.strategy_id,
            symbol=order.symbol,
            side=order.side,
            amount=order.amount,
            price=price,
            fee=fee,
            ts_ms=ts_ms,
            purpose=order.purpose,
            fee_currency=currency,
            fee_quote=charge.fee_quote,
        )
        filled = order.update(
            state=OrderState.FILLED, filled=order.amount, average_price=price, updated_ms=ts_ms
        )
        self._orders[order.client_order_id] = Execution(filled, [fill])
        return self._orders[order.client_order_id]
