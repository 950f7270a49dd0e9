"""Alerting for one process: the rules, the dedupe window, the sender, and who else hears.

`Alerting.on_event` is an engine listener; `raise_alert` takes any alert (a stale feed, an
audit row, the summary). An alert let through is logged, told to the `listeners` (the
dashboard's in-page notifications), then queued for the sender thread.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from workbench.live.events import EngineEvent
from workbench.ops.alerts import Alert, AlertLevel, AlertRules, Deduper, RuleSettings
from workbench.ops.notify import AlertSender

log = logging.getLogger(__name__)


class Alerting:
    """Rules → dedupe → listeners and the sender."""

    def __init__(
        self,
        store: Any,
        settings: Any,
        *,
        where: str = "",
        clock: Callable[[], float],
        outcome: Callable[[Alert, str], None] | None = None,
        held: Callable[[Alert], None] | None = None,
        backoff_s: float = 1.0,
    ) -> None:
        self.rules = AlertRules(RuleSettings.of(settings), where)
        self.dedupe = Deduper(settings.alert_dedupe_s)
        self.sender = AlertSender(
            store, list(settings.alert_urls), outcome=outcome, backoff_s=backoff_s
        )
        self.clock = clock
        self.held = held
        #: called on the raising thread with each alert let through
        self.listeners: list[Callable[[Alert], None]] = []

    def start(self) -> Alerting:
        self.sender.start()
        return self

    def stop(self, timeout_s: float = 5.0) -> None:
        self.sender.stop(timeout_s)

    def on_event(self, event: EngineEvent) -> None:
        """The engine listener: raise what the rules find in an event."""
        for alert in self.rules.on_event(event, self.clock()):
            self.raise_alert(alert)

    def raise_alert(self, alert: Alert) -> None:
        """Send an alert unless the same one went out within the dedupe window."""
        admitted = self.dedupe.admit(alert, self.clock())
        if admitted is None:
            if self.held is not None:
                self.held(alert)
            return
        level = logging.INFO if admitted.level is AlertLevel.INFO else logging.WARNING
        log.log(
            level,
            "alert %s: %s",
            admitted.rule,
            admitted.title,
            extra={
                "event": "alert",
                "rule": str(admitted.rule),
                "strategy_id": admitted.strategy_id,
            },
        )
        for listener in list(self.listeners):
            try:
                listener(admitted)
            except Exception:
                log.exception("an alert listener failed")
        self.sender.submit(admitted)


class AuditWatch:
    """Failed logins and lockouts from the audit log, whichever process of the database
    wrote them: `poll()` (in a worker thread) raises what appeared since the last poll."""

    def __init__(self, store: Any, alerting: Alerting) -> None:
        self.store = store
        self.alerting = alerting
        row = store.db.fetchone("SELECT coalesce(max(seq), 0) FROM audit_log")
        self.seq = int(row[0]) if row else 0  # what was there before this process started

    def poll(self) -> int:
        """Raise the alerts of the audit rows since the last poll; give how many rows."""
        rows = self.store.db.fetchall(
            "SELECT seq, action, actor, address, reason FROM audit_log "
            "WHERE seq > ? ORDER BY seq LIMIT 500",
            [self.seq],
        )
        for seq, action, actor, address, reason in rows:
            self.seq = max(self.seq, int(seq))
            for alert in self.alerting.rules.on_audit(str(action), str(actor), address, reason):
                self.alerting.raise_alert(alert)
        return len(rows)
