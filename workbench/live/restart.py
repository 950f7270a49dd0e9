"""What the live engine does when it takes up a stored strategy again (a restart, a crash).

Positions come back from the stored fills (the engine books them); here the rest is settled
with the outside world and the store: the orders left open are reconciled with the broker, the
base asset's balance with the exchange's (`workbench.live.protection` says what a correction
is), missing protective legs are placed again, the trailing stop's peak continues from the bars
stored since the entry, and the drawdown guard continues from its stored state.
"""

from __future__ import annotations

import logging
from typing import Any

import pandas as pd

from workbench.broker.base import Broker, Execution
from workbench.broker.models import OrderState
from workbench.candles import Candle
from workbench.fills import StopKind
from workbench.live.exchange_side import ExchangeSideProtection
from workbench.live.protection import balance_write_offs
from workbench.live.running import LiveStrategy
from workbench.risk.limits import RiskLimits, RiskManager
from workbench.timeframes import timeframe_ms
from workbench.venue.client import market_now_ms
from workbench.venue.rules import amount_step

log = logging.getLogger(__name__)


class Recovery:
    """Takes a stored strategy up again: reconciliation, protection, trailing peak, guard."""

    def __init__(self, protection: ExchangeSideProtection, clients: Any) -> None:
        self.protection = protection
        self.booking = protection.booking
        self.store = protection.store
        self.exchange = protection.exchange
        self.broker: Broker = protection.broker
        self.clients = clients

    def risk_manager(self, strategy_id: str, limits: RiskLimits | None) -> RiskManager:
        """Give the strategy's risk manager on its stored guard state (a running cool-down,
        today's start), the peak's rises since then rebuilt from the stored equity marks."""
        stored = self.store.trading.risk_state(strategy_id)
        if stored is None:
            return RiskManager(limits)
        marks = self.store.trading.equity_marks(strategy_id, stored.marked_ms)
        return RiskManager(limits, stored.with_peak(marks))

    def rebuild_peak(self, live: LiveStrategy, current_open_ms: int) -> None:
        """Walk the stored bars since the entry into the trailing stop's peak."""
        runner = live.runner
        trader = runner.trader
        if trader.side == 0 or trader.protection.trail is None or trader.entry_ms is None:
            return
        step = timeframe_ms(runner.timeframe)
        start = pd.Timestamp(trader.entry_ms - trader.entry_ms % step, unit="ms", tz="UTC")
        end = pd.Timestamp(current_open_ms, unit="ms", tz="UTC")
        bars = self.store.candles.read(self.exchange, runner.symbol, runner.timeframe, start, end)
        trader.rebuild_peak(
            Candle(int(ts.value // 1_000_000), r.open, r.high, r.low, r.close, r.volume)
            for ts, r in zip(bars.index, bars.itertuples(), strict=True)
        )

    async def reconcile(self, live: LiveStrategy) -> None:
        """Settle the orders the store has open with what the broker knows of them.

        Known to the exchange: its state and any fills not yet stored are taken and booked.
        Unknown and never acknowledged (stored pending, then the process died): sent again
        under the same client order id at the next bar. Unknown but acknowledged before:
        expired. Every correction is logged as a `reconcile` event.
        """
        sid = live.runner.strategy_id
        for order in self.store.trading.orders(sid, open_only=True):
            execution = await self.broker.lookup(order)
            if execution is None and order.state is OrderState.PENDING and order.type.is_stop:
                # Protective legs are placed again as a whole (an OCO list), with new ids.
                self.store.trading.save_order(
                    order.update(state=OrderState.EXPIRED, reason="never reached the broker"),
                    self.exchange,
                )
                detail = f"{order.client_order_id} never reached the broker: protection redone"
            elif execution is None and order.state is OrderState.PENDING:
                live.resubmit.append(order)
                detail = f"{order.client_order_id} never reached the broker: sending it again"
            elif execution is None:
                self.store.trading.save_order(
                    order.update(state=OrderState.EXPIRED, reason="unknown to the broker"),
                    self.exchange,
                )
                detail = f"{order.client_order_id} is unknown to the broker: expired"
            else:
                fills_before = len(self.store.trading.fills(sid))
                await self.protection.settle(live, execution)
                booked = len(self.store.trading.fills(sid)) - fills_before
                detail = (
                    f"{order.client_order_id} was {order.state}, the broker says "
                    f"{execution.order.state}; {booked} new fill(s) booked"
                )
            log.warning("reconcile %s: %s", sid, detail)
            self.store.trading.add_event(sid, "reconcile", detail)

    async def reconcile_balances(
        self, live: LiveStrategy, strategies: dict[str, LiveStrategy]
    ) -> None:
        """Bring the long positions in this strategy's base asset down to the exchange's.

        The exchange's free + locked balance is the truth; the `strategies` running here are
        corrected by write-off fills (see `workbench.live.protection`), each logged as a
        `reconcile` event. No order is ever placed to fix a balance.
        """
        balances = await self.broker.balances()
        if balances is None:
            return
        runner = live.runner
        base = runner.symbol.split("/")[0]
        holders = {
            sid: other
            for sid, other in strategies.items()
            if other.runner.symbol.split("/")[0] == base
        }
        held = {
            sid: (o.runner.symbol, o.runner.portfolio.position(o.runner.symbol).amount)
            for sid, o in holders.items()
        }
        balance = balances.get(base)
        on_exchange = balance.total if balance is not None else 0.0
        step = amount_step(self.clients.rest, runner.symbol)
        now_ms = await market_now_ms(self.clients.rest)
        for off in balance_write_offs(base, held, on_exchange, now_ms, step / 2):
            other = holders[off.order.strategy_id]
            log.warning("reconcile %s: %s", off.order.strategy_id, off.detail)
            self.store.trading.add_event(off.order.strategy_id, "reconcile", off.detail)
            self.store.trading.save_order(off.order, self.exchange)
            self.booking.book(other, Execution(off.order, [off.fill]))
            if other is not live and other.lock.locked():
                continue  # busy: its next exit or restart settles its legs
            if self.protection.open_legs(other):
                # The resting legs are for the old amount: place them again for the new one.
                await self.protection.unprotect(other)
                await self.protection.protect(other)

    async def restore_protection(self, live: LiveStrategy) -> None:
        """After a restart: know which levels rest on the exchange; place missing ones."""
        legs = self.protection.open_legs(live)
        trader = live.runner.trader
        trader.exchange_side = frozenset(StopKind(o.purpose) for o in legs)
        if not legs:
            await self.protection.protect(live)
