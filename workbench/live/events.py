"""What the live engine tells its listeners: one frozen dataclass per kind of event.

Listeners (the CLI's log, the dashboard's buffers, alerts, metrics) are called synchronously on
the engine's loop with each event, after it is stored; they must be quick and must not raise
(one that raises is logged and kept). Match on the type:

    def on_event(event: EngineEvent) -> None:
        match event:
            case FillBooked(fill=fill): ...
            case StateChanged(strategy_id=sid, state=state): ...
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum

from workbench.broker.models import Fill, Order, OrderIntent
from workbench.candles import Candle
from workbench.risk.account import AccountLimits, Halt
from workbench.risk.limits import Refusal

#: A market the engine follows: (exchange, symbol, timeframe).
FeedKey = tuple[str, str, str]


class StrategyState(StrEnum):
    """What a strategy does with each closed bar (every state keeps its indicators current).

    RUNNING trades. PAUSED opens nothing new but takes every exit (signals, stops, targets,
    the guard's flatten). STOPPED places no order at all but the protection of a position
    still open (stop-loss, take-profit, trailing stop) until it is flat. ERROR is a strategy
    whose own code raised: its stops stay watched; Start takes it up again. DEGRADED is shown,
    never set: a running strategy with a transient problem (an order whose outcome is not yet
    known, an exit the exchange refused, a dead feed); it keeps evaluating bars and watching
    its stops and shows RUNNING again once the problem is settled.
    """

    RUNNING = "running"
    PAUSED = "paused"
    STOPPED = "stopped"
    ERROR = "error"
    DEGRADED = "degraded"


class NoticeKind(StrEnum):
    """Kinds of things worth telling about a strategy (stored as its events)."""

    STATE = "state"
    ERROR = "error"
    RECONCILE = "reconcile"
    PROTECTION = "protection"
    RISK = "risk"
    LATE_EXIT = "late_exit"
    MISSED = "missed"  # bars caught up after a restart or an outage: warmed, not traded
    DEGRADED = "degraded"
    RECOVERED = "recovered"
    EXIT_FAILED = "exit_failed"


@dataclass(frozen=True)
class CandleClosed:
    """A closed bar, after every strategy on its market acted on it.

    ``fresh``: it was the newest closed bar when it arrived, so its decisions may trade;
    a bar caught up late (a restart, a backfill) only warms the strategies.
    """

    key: FeedKey
    candle: Candle
    latency_ms: float
    fresh: bool = True


@dataclass(frozen=True)
class CandleForming:
    """An update of the bar forming now (drawn, never traded on)."""

    key: FeedKey
    candle: Candle


@dataclass(frozen=True)
class OrderChanged:
    """An order as just stored: new, acknowledged, filled further, or final."""

    order: Order


@dataclass(frozen=True)
class FillBooked:
    """A fill stored and taken into its strategy's book."""

    fill: Fill


@dataclass(frozen=True)
class OrderRefused:
    """An intent the risk limits or the market's rules refused (stored with the numbers)."""

    intent: OrderIntent
    refusal: Refusal


@dataclass(frozen=True)
class StateChanged:
    """A strategy's shown state changed; ``reason`` says why (the error, the problem)."""

    strategy_id: str
    state: StrategyState
    reason: str | None = None


@dataclass(frozen=True)
class Notice:
    """Something about a strategy worth telling (a reconciliation, a late exit, ...)."""

    strategy_id: str
    kind: NoticeKind
    detail: str


@dataclass(frozen=True)
class TaskFailed:
    """A background task of the engine died; loops are restarted after ``retry_s``."""

    name: str
    error: str
    retry_s: float | None


@dataclass(frozen=True)
class HaltChanged:
    """The account's kill switch turned on (``halt`` set) or off (``halt`` None, by ``by``)."""

    exchange: str
    halt: Halt | None
    by: str
    reason: str


@dataclass(frozen=True)
class LimitsChanged:
    """The account's limits in force changed (stored first; they apply to the next order)."""

    exchange: str
    limits: AccountLimits
    by: str
    before: AccountLimits | None = None  # the limits in force until then (None: not told)


EngineEvent = (
    CandleClosed
    | CandleForming
    | OrderChanged
    | FillBooked
    | OrderRefused
    | StateChanged
    | Notice
    | TaskFailed
    | HaltChanged
    | LimitsChanged
)
Listener = Callable[[EngineEvent], None]
