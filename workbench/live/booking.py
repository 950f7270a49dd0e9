"""Booking an execution: its new fills stored, then taken into the strategy's book; its order
stored after. Fills are stored by fill id, so a replayed update books nothing twice, and a
stored order never goes back to an earlier state or a smaller fill."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from workbench.broker.base import Execution
from workbench.live.running import LiveStrategy
from workbench.store import Store

Emit = Callable[[str, dict[str, Any]], None]


class Booking:
    """Stores and books executions for the strategies of one exchange; reports each change."""

    def __init__(self, store: Store, exchange: str, emit: Emit) -> None:
        self.store = store
        self.exchange = exchange
        self.emit = emit

    def book(self, live: LiveStrategy, execution: Execution) -> bool:
        """Store and book an execution's new fills, then its order; give True when the order
        became final now. A stored order never goes back (a late, older answer)."""
        runner = live.runner
        for fill in execution.fills:
            if not self.store.trading.save_fill(fill):
                continue  # already booked
            trips_before = len(runner.portfolio.round_trips)
            runner.on_fill(fill)
            for trip in runner.portfolio.round_trips[trips_before:]:
                live.trades += 1
                self.store.trading.save_round_trip(runner.strategy_id, live.trades, trip)
            self.emit("fill", {"fill": fill})
        order = execution.order
        stored = self.store.trading.order(order.client_order_id)
        if stored is not None and stored.state.is_final and not order.state.is_final:
            return False
        if stored is not None and stored.filled > order.filled:
            order = order.update(filled=stored.filled)
        self.store.trading.save_order(order, self.exchange)
        self.emit("order", {"order": order})
        return order.state.is_final and (stored is None or not stored.state.is_final)
