"""Balances reconciled with the exchange after a restart (the rules are in
`workbench.live.protection`): the exchange is the truth; a shortfall in the strategies' long
positions is written off, never traded."""

from __future__ import annotations

import logging

from workbench.broker.base import Broker, BrokerUnavailable, Execution
from workbench.live.events import NoticeKind
from workbench.live.protection import balance_write_offs
from workbench.live.running import LiveStrategy

log = logging.getLogger(__name__)


async def reconcile_balances(
    live: LiveStrategy, strategies: dict[str, LiveStrategy], broker: Broker, now_ms: int
) -> bool:
    """Bring the long positions in this strategy's base asset down to the exchange's.

    The exchange's free + locked balance is the truth; the `strategies` running here are
    corrected by write-off fills, each a `reconcile` notice. No order is ever placed to fix a
    balance. Give False when the exchange could not be asked (try again later).
    """
    try:
        balances = await broker.balances()
    except BrokerUnavailable as exc:
        log.warning("balances of %s not reconciled now: %s", live.strategy_id, exc)
        return False
    if balances is None:
        return True
    runner = live.runner
    base = runner.symbol.split("/")[0]
    holders = {
        sid: other for sid, other in strategies.items() if other.runner.symbol.split("/")[0] == base
    }
    held = {
        sid: (o.runner.symbol, o.runner.portfolio.position(o.runner.symbol).amount)
        for sid, o in holders.items()
    }
    balance = balances.get(base)
    on_exchange = balance.total if balance is not None else 0.0
    tolerance = max(live.orders.rules.amount_step, 1e-8) / 2
    for off in balance_write_offs(base, held, on_exchange, now_ms, tolerance):
        other = holders[off.order.strategy_id]
        log.warning("reconcile %s: %s", off.order.strategy_id, off.detail)
        other.orders.notice(NoticeKind.RECONCILE, off.detail)
        other.orders.save(off.order)
        await other.orders.book(Execution(off.order, [off.fill]))
        if other is not live and other.lock.locked():
            continue  # busy: its next exit or restart settles its legs
        if other.orders.open_legs():
            # The resting legs are for the old amount: place them again for the new one.
            await other.orders.unprotect()
            await other.orders.protect()
    return True
