"""Alert rules: what is worth waking the trader for, each with a level. No IO.

`AlertRules` turns engine events, engine views (for stale feeds) and audit rows (for failed
logins) into `Alert`s; `Deduper` holds back an alert whose key was raised within the window
(the next one let through says how many were held). Delivery, storage and the schedule are
`workbench.ops.notify` and `workbench.ops.service`.

Rules, and when each fires once:
- feed_stale: a feed is `alert_stale_bars` bars behind (once per episode; again after it
  caught up);
- strategy_degraded / strategy_error: a strategy's shown state becomes degraded / error;
- drawdown_guard: the drawdown guard tripped (critical);
- kill_switch: the account's kill switch halted trading (critical), or was released;
- limits_changed: the account's risk limits in force changed: who, and each limit's value
  before -> after (a change to the same values says nothing);
- order_rejected: the exchange or the broker rejected an order;
- exchange_errors: `alert_error_rate` errors talking to the exchange (feeds, order outcomes,
  account refusals, failed exits, dead tasks) within `alert_error_window_s`;
- reconcile: reconciling with the exchange corrected an order or a balance (at start, or
  when an order's outcome was found);
- login_failed / lockout: a failed login, or a user name or address locked out;
- process_restarted: this process started after one that never stopped cleanly (a crash,
  a kill, systemd restarting it);
- daily_summary: P&L, trades and equity per strategy, once a day.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections import deque
from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import Any

from workbench.broker.models import OrderState
from workbench.live.events import (
    CandleClosed,
    CandleForming,
    EngineEvent,
    FillBooked,
    HaltChanged,
    LimitsChanged,
    Notice,
    NoticeKind,
    OrderChanged,
    StateChanged,
    StrategyState,
)
from workbench.ops.metrics import error_kind, rejection_kind
from workbench.ops.snapshot import EngineView

#: Error kinds that come from talking to the exchange (a strategy's own bug is not one).
EXCHANGE_ERROR_KINDS = frozenset({"feed", "order_unknown", "account", "exit_failed", "task"})
#: Events no rule looks at (most of each bar's): passed by at the cost of one set lookup.
_QUIET = frozenset({CandleForming, CandleClosed, FillBooked})


class AlertLevel(StrEnum):
    INFO = "info"
    WARNING = "warning"
    CRITICAL = "critical"


class AlertRule(StrEnum):
    FEED_STALE = "feed_stale"
    STRATEGY_DEGRADED = "strategy_degraded"
    STRATEGY_ERROR = "strategy_error"
    DRAWDOWN_GUARD = "drawdown_guard"
    KILL_SWITCH = "kill_switch"
    LIMITS_CHANGED = "limits_changed"
    ORDER_REJECTED = "order_rejected"
    EXCHANGE_ERRORS = "exchange_errors"
    RECONCILE = "reconcile"
    LOGIN_FAILED = "login_failed"
    LOCKOUT = "lockout"
    PROCESS_RESTARTED = "process_restarted"
    DAILY_SUMMARY = "daily_summary"


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(tzinfo=None)


@dataclass(frozen=True)
class Alert:
    """One thing to tell the trader. `key` says which alerts are the same one repeated."""

    rule: AlertRule
    level: AlertLevel
    title: str
    body: str
    key: str
    strategy_id: str | None = None
    ts: dt.datetime = field(default_factory=utcnow)
    alert_id: str = field(default_factory=lambda: uuid.uuid4().hex)


def _limit_shown(value: Any) -> str:
    if value is None:
        return "none"
    if isinstance(value, bool):
        return str(value).lower()
    return f"{value:.12g}" if isinstance(value, float) else str(value)


def limit_changes(before: dict[str, Any], after: dict[str, Any]) -> list[str]:
    """Give one line per limit whose value differs, "name: before -> after", in field order."""
    return [
        f"{name}: {_limit_shown(before.get(name))} -> {_limit_shown(value)}"
        for name, value in after.items()
        if before.get(name) != value
    ]


def _last_line(text: str | None) -> str:
    lines = (text or "").strip().splitlines()
    return lines[-1][:500] if lines else ""


@dataclass
class RuleSettings:
    """The thresholds of the rules (from the settings' alert_* fields)."""

    stale_bars: int = 3
    error_rate: int = 5
    error_window_s: float = 300.0

    @classmethod
    def of(cls, settings: Any) -> RuleSettings:
        return cls(
            settings.alert_stale_bars, settings.alert_error_rate, settings.alert_error_window_s
        )


class AlertRules:
    """The rules' memory: what was shown, which feeds are stale, recent errors."""

    def __init__(self, thresholds: RuleSettings | None = None, where: str = "") -> None:
        self.thresholds = thresholds or RuleSettings()
        self.where = where  # names the process in titles ("live on host")
        self._shown: dict[str, StrategyState] = {}
        self._stale: set[tuple[str, str]] = set()
        self._errors: deque[float] = deque()
        self._errors_firing = False

    def _title(self, text: str) -> str:
        return f"{text} ({self.where})" if self.where else text

    # -- engine events ----------------------------------------------------------------------
    def on_event(self, event: EngineEvent, now_s: float) -> list[Alert]:
        """Give the alerts an engine event raises (`now_s`: a monotonic clock)."""
        if type(event) in _QUIET:
            return []
        found: list[Alert] = []
        match event:
            case StateChanged(strategy_id=sid, state=state, reason=reason):
                before = self._shown.get(sid)
                self._shown[sid] = state
                if state is before:
                    pass
                elif state is StrategyState.DEGRADED:
                    found.append(
                        Alert(
                            AlertRule.STRATEGY_DEGRADED,
                            AlertLevel.WARNING,
                            self._title(f"{sid} degraded"),
                            _last_line(reason),
                            f"degraded:{sid}",
                            sid,
                        )
                    )
                elif state is StrategyState.ERROR:
                    found.append(
                        Alert(
                            AlertRule.STRATEGY_ERROR,
                            AlertLevel.CRITICAL,
                            self._title(f"{sid} stopped on an error"),
                            f"{_last_line(reason)}\nIts stops stay watched; Start takes it up.",
                            f"error:{sid}",
                            sid,
                        )
                    )
            case Notice(strategy_id=sid, kind=NoticeKind.RISK, detail=detail) if (
                "drawdown guard" in detail
            ):
                found.append(
                    Alert(
                        AlertRule.DRAWDOWN_GUARD,
                        AlertLevel.CRITICAL,
                        self._title(f"{sid}: drawdown guard tripped"),
                        detail,
                        f"guard:{sid}",
                        sid,
                    )
                )
            case Notice(strategy_id=sid, kind=NoticeKind.RECONCILE, detail=detail):
                found.append(
                    Alert(
                        AlertRule.RECONCILE,
                        AlertLevel.WARNING,
                        self._title(f"{sid}: reconciled with the exchange"),
                        detail,
                        f"reconcile:{sid}:{detail}",
                        sid,
                    )
                )
            case OrderChanged(order=o) if o.state is OrderState.REJECTED:
                kind = rejection_kind(o.reason)
                found.append(
                    Alert(
                        AlertRule.ORDER_REJECTED,
                        AlertLevel.WARNING,
                        self._title(f"{o.strategy_id}: {o.purpose} order rejected ({kind})"),
                        f"{o.side} {o.amount:.8g} {o.symbol} {o.type} {o.client_order_id}: "
                        f"{o.reason or 'no reason given'}",
                        f"rejected:{o.strategy_id}:{kind}",
                        o.strategy_id,
                    )
                )
            case _:
                pass
        kill = self._kill_switch(event)
        if kill is not None:
            found.append(kill)
        limits = self._limits(event)
        if limits is not None:
            found.append(limits)
        if error_kind(event) in EXCHANGE_ERROR_KINDS:
            errors = self._error_rate(now_s, event)
            if errors is not None:
                found.append(errors)
        return found

    def _kill_switch(self, event: EngineEvent) -> Alert | None:
        if not isinstance(event, HaltChanged):
            return None
        if event.halt is not None:
            flatten = ", flattening every position" if event.halt.flatten else ""
            return Alert(
                AlertRule.KILL_SWITCH,
                AlertLevel.CRITICAL,
                self._title(f"kill switch on {event.exchange}: trading halted{flatten}"),
                f"{event.reason} (by {event.by})",
                f"kill:{event.exchange}:halted",
            )
        return Alert(
            AlertRule.KILL_SWITCH,
            AlertLevel.WARNING,
            self._title(f"kill switch on {event.exchange} released: entries may go out"),
            f"{event.reason} (by {event.by})",
            f"kill:{event.exchange}:resumed",
        )

    def _limits(self, event: EngineEvent) -> Alert | None:
        if not isinstance(event, LimitsChanged):
            return None
        after = event.limits.as_dict()
        before = event.before.as_dict() if event.before is not None else {}
        changes = limit_changes(before, after)
        if not changes:
            return None
        body = "\n".join(changes)
        return Alert(
            AlertRule.LIMITS_CHANGED,
            AlertLevel.WARNING,
            self._title(f"risk limits on {event.exchange} changed by {event.by}"),
            body,
            f"limits:{event.exchange}:{body}",
        )

    def _error_rate(self, now_s: float, event: EngineEvent) -> Alert | None:
        window = self.thresholds.error_window_s
        self._errors.append(now_s)
        while self._errors and self._errors[0] < now_s - window:
            self._errors.popleft()
        count = len(self._errors)
        if count < self.thresholds.error_rate:
            if count <= self.thresholds.error_rate // 2:
                self._errors_firing = False
            return None
        if self._errors_firing:
            return None
        self._errors_firing = True
        detail = getattr(event, "detail", None) or getattr(event, "error", None) or ""
        return Alert(
            AlertRule.EXCHANGE_ERRORS,
            AlertLevel.WARNING,
            self._title(f"{count} exchange errors in {window:g} s"),
            f"latest: {_last_line(str(detail))}",
            "exchange_errors",
        )

    # -- engine views -----------------------------------------------------------------------
    def on_view(self, view: EngineView) -> list[Alert]:
        """Give the alerts of feeds that fell `stale_bars` behind (once per episode)."""
        found = []
        for f in view.feeds:
            key = (f.symbol, f.timeframe)
            stale = f.lag_bars is not None and f.lag_bars >= self.thresholds.stale_bars
            if stale and key not in self._stale:
                self._stale.add(key)
                why = f": {f.problem}" if f.problem else ""
                found.append(
                    Alert(
                        AlertRule.FEED_STALE,
                        AlertLevel.WARNING,
                        self._title(f"feed {f.symbol} {f.timeframe} stale"),
                        f"{f.lag_bars:g} bars behind (threshold {self.thresholds.stale_bars}){why}",
                        f"stale:{f.symbol}:{f.timeframe}",
                    )
                )
            elif not stale and f.lag_bars is not None:
                self._stale.discard(key)
        return found

    # -- audit rows -------------------------------------------------------------------------
    def on_audit(
        self, action: str, actor: str, address: str | None, reason: str | None
    ) -> list[Alert]:
        """Give the alerts of an audit row (failed logins and lockouts)."""
        if action != "login_failed":
            return []
        reason = reason or ""
        where = f" from {address}" if address else ""
        if "locked out" in reason:
            return [
                Alert(
                    AlertRule.LOCKOUT,
                    AlertLevel.WARNING,
                    self._title(f"login locked out: {actor}{where}"),
                    reason,
                    f"lockout:{actor}:{address}",
                )
            ]
        return [
            Alert(
                AlertRule.LOGIN_FAILED,
                AlertLevel.INFO,
                self._title(f"failed login: {actor}{where}"),
                reason,
                f"login_failed:{actor}:{address}",
            )
        ]


def restarted_alert(previous: Any, where: str) -> Alert:
    """Give the alert of a start after a run that never stopped cleanly (`ProcessRun`)."""
    return Alert(
        AlertRule.PROCESS_RESTARTED,
        AlertLevel.WARNING,
        f"{previous.role} restarted after an unclean stop ({where})",
        f"the previous run (pid {previous.pid}, started {previous.started_at:%Y-%m-%d %H:%M:%S}"
        f" UTC, last heartbeat {previous.beat_at:%Y-%m-%d %H:%M:%S} UTC) never stopped cleanly",
        f"restarted:{previous.role}:{previous.host}",
    )


class Deduper:
    """Lets an alert key through once per `window_s`; counts the ones held back."""

    def __init__(self, window_s: float) -> None:
        self.window_s = window_s
        self._last: dict[str, float] = {}
        self._held: dict[str, int] = {}

    def admit(self, alert: Alert, now_s: float) -> Alert | None:
        """Give the alert to send (with how many were held since), or None to hold it."""
        last = self._last.get(alert.key)
        if last is not None and now_s - last < self.window_s:
            self._held[alert.key] = self._held.get(alert.key, 0) + 1
            return None
        self._last[alert.key] = now_s
        if len(self._last) > 10_000:  # keys of alerts long past their window are forgotten
            self._last = {k: t for k, t in self._last.items() if now_s - t < self.window_s}
        held = self._held.pop(alert.key, 0)
        if held:
            body = f"{alert.body}\n({held} more like it held back in the last {self.window_s:g} s)"
            return replace(alert, body=body)
        return alert
