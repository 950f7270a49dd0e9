"""Paper trading: fills on live prices with the shared fill model, no keys, no exchange.

A market order fills at once at the fill model's price for the latest price seen (the open of
the bar when a strategy acts at the open). A market order that carries `stop_price` is a
protective exit that the strategy found triggered on the bar's path: it fills at that trigger
price, as in the backtest. Limit orders rest until a closed bar's range crosses them
(`workbench.fills.limit_fill_price`).
"""

from __future__ import annotations

from workbench.broker.base import Balance, ExchangeStops, Execution, OrderRejected, Report
from workbench.broker.models import Fill, Order, OrderState, OrderType
from workbench.candles import Candle
from workbench.fills import FillModel, limit_fill_price


class PaperBroker:
    """Simulated execution on the prices the feeds deliver."""

    name = "paper"

    def __init__(self, fill_model: FillModel | None = None) -> None:
        self.fill_model = fill_model or FillModel()
        self._last: dict[str, tuple[float, int]] = {}
        self._orders: dict[str, Execution] = {}
        self._resting: dict[str, Order] = {}

    def on_price(self, symbol: str, price: float, ts_ms: int) -> None:
        self._last[symbol] = (price, ts_ms)

    def exchange_stops(self, symbol: str) -> ExchangeStops:
        """Paper stops are watched by the strategy, exactly as the backtest checks them."""
        return ExchangeStops.NONE

    async def submit_oco(self, legs: tuple[Order, Order]) -> list[Execution]:
        raise OrderRejected(legs[0], "paper trading watches its stops; it takes no OCO lists")

    async def run(self, report: Report) -> None:
        """Nothing to follow: paper orders are settled when they are placed or on a bar."""

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
        """Place an order at once (paper needs no waiting); `submit` is its async face."""
        if order.client_order_id in self._orders:
            return self._orders[order.client_order_id]
        if order.symbol not in self._last:
            raise OrderRejected(order, f"no price yet for {order.symbol}")
        price, ts_ms = self._last[order.symbol]
        if order.type is OrderType.MARKET:
            reference = order.stop_price if order.stop_price is not None else price
            return self._fill(order, reference, ts_ms, slip=True)
        if order.type is OrderType.LIMIT and order.price is not None:
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
        known = self._orders.get(order.client_order_id, Execution(order)).order
        if known.state.is_final:
            return Execution(known)
        canceled = Execution(known.update(state=OrderState.CANCELED))
        self._orders[order.client_order_id] = canceled
        return canceled

    def _fill(self, order: Order, reference: float, ts_ms: int, slip: bool) -> Execution:
        price = self.fill_model.market_price(order.side, reference) if slip else reference
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
            fee=self.fill_model.fee(price * order.amount),
            ts_ms=ts_ms,
            purpose=order.purpose,
        )
        filled = order.update(
            state=OrderState.FILLED, filled=order.amount, average_price=price, updated_ms=ts_ms
        )
        self._orders[order.client_order_id] = Execution(filled, [fill])
        return self._orders[order.client_order_id]
