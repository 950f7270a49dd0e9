"""Exchange-side protection of the live engine's positions (the IO; the rules are in
`workbench.live.protection`).

With a broker that can rest stops (`Broker.exchange_stops`), the stop-loss and take-profit of a
filled entry are placed as stop orders (an OCO list when the exchange has them); when one fills
the other is cancelled (the exchange does it for an OCO; this makes sure). Before any other exit
(a signal, the drawdown guard's flatten, a watched level) the engine cancels the resting legs
first, which releases the position they lock. With the paper broker nothing rests: the levels
are watched on every bar, exactly as the backtest checks them.
"""

from __future__ import annotations

from typing import Any

from workbench.broker.base import Broker, ExchangeStops, Execution, OrderRejected
from workbench.broker.models import PROTECTIVE, Order, OrderState
from workbench.fills import StopKind
from workbench.live.booking import Booking
from workbench.live.protection import protective_legs
from workbench.live.running import LiveStrategy
from workbench.venue.rules import amount_step


class ExchangeSideProtection:
    """Settles executions and keeps the protective legs of open positions resting."""

    def __init__(self, booking: Booking, broker: Broker, clients: Any) -> None:
        self.booking = booking
        self.store = booking.store
        self.exchange = booking.exchange
        self.broker = broker
        self.clients = clients

    async def settle(self, live: LiveStrategy, execution: Execution) -> None:
        """Book an execution, then act on what it changed: protect an entry, end an OCO."""
        became_final = self.booking.book(live, execution)
        order = execution.order
        if not became_final:
            return
        if order.purpose == "entry":
            await self.protect(live)
        elif order.purpose in PROTECTIVE and order.type.is_stop and order.filled > 0:
            # One leg fired: the other must not (the exchange expires an OCO sibling itself).
            await self.unprotect(live)

    def open_legs(self, live: LiveStrategy) -> list[Order]:
        """Give the strategy's protective stop orders still resting (as stored)."""
        if self.broker.exchange_stops(live.runner.symbol) is ExchangeStops.NONE:
            return []
        return [
            o
            for o in self.store.trading.orders(live.runner.strategy_id, open_only=True)
            if o.purpose in PROTECTIVE and o.type.is_stop
        ]

    async def protect(self, live: LiveStrategy) -> None:
        """Rest the open position's stop-loss / take-profit on the exchange, if it can."""
        runner = live.runner
        trader = runner.trader
        mode = self.broker.exchange_stops(runner.symbol)
        if mode is ExchangeStops.NONE or trader.side == 0 or trader.entry_ms is None:
            return
        if self.open_legs(live):
            return
        sid = runner.strategy_id
        placed: dict[str, int] = {}
        for o in self.store.trading.orders(sid):
            if o.purpose in PROTECTIVE and o.type.is_stop and o.created_ms == trader.entry_ms:
                placed[o.purpose] = placed.get(o.purpose, 0) + 1
        step = amount_step(self.clients.rest, runner.symbol)
        position = round(runner.portfolio.position(runner.symbol).amount / step) * step
        legs = protective_legs(
            sid,
            runner.symbol,
            position,
            trader.protection,
            trader.entry_ms,
            mode,
            placed,
            trader.entry_ms,
        )
        if not legs:
            return
        for leg in legs:
            self.store.trading.save_order(leg, self.exchange)
        try:
            if len(legs) == 2:
                executions = await self.broker.submit_oco((legs[0], legs[1]))
            else:
                executions = [await self.broker.submit(legs[0])]
        except OrderRejected as exc:
            # The level may already be crossed: watch it instead (it fires at the next bar).
            for leg in legs:
                rejected = leg.update(state=OrderState.REJECTED, reason=exc.reason)
                self.store.trading.save_order(rejected, self.exchange)
                self.booking.emit("order", {"order": rejected})
            self.store.trading.add_event(
                sid, "protection", f"exchange-side stops refused ({exc.reason}): watched instead"
            )
            trader.exchange_side = frozenset()
            return
        trader.exchange_side = frozenset(StopKind(leg.purpose) for leg in legs)
        for execution in executions:
            self.booking.book(live, execution)

    async def unprotect(self, live: LiveStrategy) -> None:
        """Cancel the resting protective legs (their fills so far are booked)."""
        for leg in self.open_legs(live):
            execution = await self.broker.cancel(leg)
            self.booking.book(live, execution)
        if not self.open_legs(live):
            live.runner.trader.exchange_side = frozenset()
