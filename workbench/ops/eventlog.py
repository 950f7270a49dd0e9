"""The engine's events as structured log records (logger `workbench.live.events`).

Each record carries the event's kind and its ids as fields (`strategy_id`, `client_order_id`,
`symbol`, and the process's `exchange`), so a JSON log can be searched by strategy or order
without parsing messages. Fills, orders, refusals, state changes, notices and dead tasks are
INFO or WARNING; closed bars DEBUG; forming bars are not logged. The ops service hands the
events on after the burst (`workbench.ops.deferred`); each record has the time its event came.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from workbench.broker.models import OrderState
from workbench.live.events import (
    CandleClosed,
    CandleForming,
    EngineEvent,
    FillBooked,
    Notice,
    NoticeKind,
    OrderChanged,
    OrderRefused,
    StateChanged,
    StrategyState,
    TaskFailed,
)
from workbench.ops.logs import LiveContext, live_context

log = logging.getLogger("workbench.live.events")
_WARN_NOTICES = {NoticeKind.ERROR, NoticeKind.DEGRADED, NoticeKind.EXIT_FAILED, NoticeKind.RISK}
_WARN_STATES = {StrategyState.ERROR, StrategyState.DEGRADED}


def record_of(event: EngineEvent) -> tuple[int, str, dict[str, Any]] | None:
    """Give (level, message, fields) of an event's log record; None for those not logged."""
    match event:
        case FillBooked(fill=f):
            return (
                logging.INFO,
                f"fill {f.side} {f.amount:.8g} {f.symbol} @ {f.price:.8g} fee {f.fee:.8g} "
                f"{f.fee_currency} ({f.purpose})",
                {
                    "event": "fill",
                    "strategy_id": f.strategy_id,
                    "client_order_id": f.client_order_id,
                    "symbol": f.symbol,
                    "purpose": str(f.purpose),
                },
            )
        case OrderChanged(order=o):
            level = logging.WARNING if o.state is OrderState.REJECTED else logging.INFO
            reason = f": {o.reason}" if o.reason and o.state.is_final else ""
            return (
                level,
                f"order {o.side} {o.amount:.8g} {o.symbol} {o.state} ({o.purpose}){reason}",
                {
                    "event": "order",
                    "strategy_id": o.strategy_id,
                    "client_order_id": o.client_order_id,
                    "symbol": o.symbol,
                    "state": str(o.state),
                    "purpose": str(o.purpose),
                },
            )
        case OrderRefused(intent=i, refusal=r):
            return (
                logging.INFO,
                f"refused {i.side} {i.amount:.8g} {i.symbol} by {r.rule} {r.detail}",
                {
                    "event": "refused",
                    "strategy_id": i.strategy_id,
                    "client_order_id": i.client_order_id,
                    "symbol": i.symbol,
                    "rule": r.rule,
                },
            )
        case StateChanged(strategy_id=sid, state=state, reason=reason):
            level = logging.WARNING if state in _WARN_STATES else logging.INFO
            why = f": {reason.strip().splitlines()[-1]}" if reason else ""
            return (
                level,
                f"state {state}{why}",
                {"event": "state", "strategy_id": sid, "state": str(state)},
            )
        case Notice(strategy_id=sid, kind=kind, detail=detail):
            level = logging.WARNING if kind in _WARN_NOTICES else logging.INFO
            return level, f"{kind}: {detail}", {"event": str(kind), "strategy_id": sid}
        case TaskFailed(name=name, error=error, retry_s=retry_s):
            again = f"; again in {retry_s:g}s" if retry_s is not None else ""
            return (
                logging.ERROR,
                f"task {name} died: {error.strip().splitlines()[-1]}{again}",
                {"event": "task_failed", "task": name},
            )
        case CandleClosed(key=key, candle=c, latency_ms=latency_ms, fresh=fresh):
            return (
                logging.DEBUG,
                f"closed {key[1]} {key[2]} {c.ts_ms} in {latency_ms:.2f} ms",
                {
                    "event": "closed",
                    "symbol": key[1],
                    "timeframe": key[2],
                    "latency_ms": round(latency_ms, 3),
                    "fresh": fresh,
                },
            )
    return None


class EventLog:
    """A listener that logs each engine event with its fields, timed when the event came."""

    def __init__(self, context: LiveContext = live_context) -> None:
        self.context = context

    def __call__(self, event: EngineEvent, at: float | None = None) -> None:
        """Log an event that came at `at` (perf_counter seconds; None: now)."""
        kind = type(event)
        if kind is CandleForming or (kind is CandleClosed and not log.isEnabledFor(logging.DEBUG)):
            return  # not logged (at this level): nothing built
        sid = getattr(event, "strategy_id", None)
        if isinstance(sid, str):
            self.context.know_strategy(sid)
        found = record_of(event)
        if found is None:
            return
        level, message, fields = found
        if not log.isEnabledFor(level):
            return
        # Built here, not by log.log: no look up the stack for the caller (no format shows
        # it), and the record's time is the event's, however late it is handed on.
        record = log.makeRecord(log.name, level, __file__, 0, message, (), None,
                                extra=fields)  # fmt: skip
        if at is not None:
            late = time.perf_counter() - at
            record.created -= late
            record.msecs = int((record.created - int(record.created)) * 1000) + 0.0
            record.relativeCreated -= late * 1000
        log.handle(record)
