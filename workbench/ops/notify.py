"""Sending alerts off the trading loop: a queue, one sender thread, apprise, retries.

`AlertSender.submit` only puts the alert on a bounded queue (the engine's listener returns
at once, whatever the sinks do). The sender thread stores each alert (`store.ops`), then
gives it to every sink (an apprise URL: Telegram, Discord, Slack, e-mail, a JSON webhook,
...) and retries a sink that fails with backoff; the outcome is stored with the alert. A sink
that keeps failing is logged and given up on for that alert; trading never waits on it.
"""

from __future__ import annotations

import logging
import queue
import re
import threading
import time
from collections.abc import Callable
from urllib.parse import unquote

import apprise

from workbench.auth import redact
from workbench.errors import WorkbenchError
from workbench.ops.alerts import Alert, AlertLevel

log = logging.getLogger(__name__)
_TYPES = {
    AlertLevel.INFO: apprise.NotifyType.INFO,
    AlertLevel.WARNING: apprise.NotifyType.WARNING,
    AlertLevel.CRITICAL: apprise.NotifyType.FAILURE,
}
_STOP = object()


class AlertSinkError(WorkbenchError, ValueError):
    """An alert URL apprise cannot use: which one (masked) and why."""


def masked_url(url: str) -> str:
    """Give an alert URL fit to print: its service, never its tokens."""
    return url.split("://", 1)[0] + "://…" if "://" in url else "…"


_PIECES = re.compile(r"[/?&=@:#,;]+")
# Query arguments that carry secrets in apprise's generic webhooks: `+name` headers, `-name`
# payload fields, `:name` renamed fields, and anything named like a credential.
_SECRET_ARG = re.compile(r"^[+:-]|token|key|secret|pass|auth|sig", re.IGNORECASE)
_WEBHOOKS = frozenset({"json", "jsons", "xml", "xmls", "form", "forms"})


def url_secrets(url: str) -> list[str]:
    """Give the parts of an alert URL that must never be shown, and remember them with
    `workbench.auth.redact`.

    The password, the values of credential-like and header arguments, the whole path of a
    generic webhook (json://, xml://, form://: apprise shows it, but it is often the token),
    and every other piece that apprise's own privacy view of the URL hides (a Telegram bot's
    token, a Discord webhook's). Hosts, ports and options stay readable in the logs. A URL
    apprise cannot parse gives all its pieces.
    """
    scheme, sep, rest = url.partition("://")
    if not sep:
        redact.remember(url)
        return [url]
    before, _, query = rest.partition("?")
    found = {rest}
    user, at, _host = before.partition("/")[0].rpartition("@")
    if at and ":" in user:
        found.add(user.split(":", 1)[1])
    values = []
    for pair in query.split("&"):
        key, _, value = pair.partition("=")
        values.append(value)  # the names are no secret
        if value and _SECRET_ARG.search(unquote(key)):
            found |= {value, unquote(value)}
    if scheme.lower() in _WEBHOOKS:
        path = "/" + before.partition("/")[2]
        found |= {path, unquote(path)}
    redact.remember(*found)  # before apprise logs the URL it loads
    pieces = {p for part in (before, *values) for p in _PIECES.split(part) if p}
    pieces |= {unquote(p) for p in pieces}
    try:
        plugin = apprise.Apprise.instantiate(url)
        shown = plugin.url(privacy=True) if plugin else ""
    except Exception:  # apprise cannot read it: hide everything
        shown = ""
    shown_pieces = {p for p in _PIECES.split(shown.partition("://")[2]) if p}
    shown_pieces |= {unquote(p) for p in shown_pieces}
    found |= {p for p in pieces if p not in shown_pieces}
    redact.remember(*found)
    return sorted(found)


def sink_of(url: str) -> apprise.Apprise:
    """Give an apprise sender for one URL; AlertSinkError when apprise cannot parse it."""
    sink = apprise.Apprise()
    if not sink.add(url):
        raise AlertSinkError(
            f"alert_urls: {masked_url(url)} is not a URL apprise knows (see apprise's list of "
            "services, e.g. tgram://BOT_TOKEN/CHAT_ID, json://host:port/path)"
        )
    return sink


class AlertSender:
    """Stores alerts and delivers them to apprise sinks from a thread of its own."""

    def __init__(
        self,
        store: object,
        urls: list[str],
        *,
        retries: int = 3,
        backoff_s: float = 1.0,
        capacity: int = 1000,
        outcome: Callable[[Alert, str], None] | None = None,
    ) -> None:
        for url in urls:  # tokens in the URLs never reach a log line
            url_secrets(url)
        self.store = store
        self.sinks = [(masked_url(url), sink_of(url)) for url in urls]
        self.retries = retries
        self.backoff_s = backoff_s
        self.outcome = outcome  # told "sent", "failed" or "no_sink" per alert (metrics)
        #: called on the sender thread each time an alert's row was written (its history)
        self.stored: list[Callable[[Alert], None]] = []
        self._queue: queue.Queue[object] = queue.Queue(capacity)
        self._thread: threading.Thread | None = None
        self._stopping = threading.Event()

    def start(self) -> AlertSender:
        self._thread = threading.Thread(target=self._run, name="alert-sender", daemon=True)
        self._thread.start()
        return self

    def submit(self, alert: Alert) -> None:
        """Queue an alert for storing and sending; never blocks (a full queue drops it,
        loudly)."""
        try:
            self._queue.put_nowait(alert)
        except queue.Full:
            log.error("alert queue full: dropped %s %s", alert.rule, alert.title)

    def stop(self, timeout_s: float = 5.0) -> None:
        """Send what is queued for up to `timeout_s`, then stop (retries are cut short)."""
        if self._thread is None:
            return
        self._queue.put(_STOP)
        self._thread.join(timeout_s)
        self._stopping.set()
        self._thread.join(1.0)
        self._thread = None

    def wait_idle(self, timeout_s: float = 10.0) -> bool:
        """Wait until every queued alert was handled (tests, shutdown); tell if it was."""
        deadline = time.monotonic() + timeout_s
        while self._queue.unfinished_tasks and time.monotonic() < deadline:
            time.sleep(0.01)
        return not self._queue.unfinished_tasks

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            try:
                if item is _STOP:
                    return
                assert isinstance(item, Alert)
                self._handle(item)
            except Exception:  # one alert's failure must not end the sender
                log.exception("handling an alert failed")
            finally:
                self._queue.task_done()

    def _handle(self, alert: Alert) -> None:
        ops = getattr(self.store, "ops", None)
        status = "queued" if self.sinks else "no_sink"
        if ops is not None:
            try:
                ops.add_alert(
                    alert.alert_id,
                    ts=alert.ts,
                    rule=str(alert.rule),
                    level=str(alert.level),
                    strategy_id=alert.strategy_id,
                    title=alert.title,
                    body=alert.body,
                    status=status,
                )
            except Exception:  # the database may be busy or gone: still tell the trader
                log.exception("storing alert %s failed", alert.title)
                ops = None
            else:
                self._stored(alert)
        if not self.sinks:
            self._tell(alert, "no_sink")
            return
        attempts, errors = 0, []
        for name, sink in self.sinks:
            sent, tries = self._deliver(alert, name, sink)
            attempts = max(attempts, tries)
            if not sent:
                errors.append(name)
        outcome = "failed" if errors else "sent"
        error = f"not delivered to {', '.join(errors)}" if errors else None
        if ops is not None:
            try:
                ops.set_delivery(alert.alert_id, outcome, attempts, error)
            except Exception:
                log.exception("storing the delivery of alert %s failed", alert.title)
            else:
                self._stored(alert)
        self._tell(alert, outcome)

    def _deliver(self, alert: Alert, name: str, sink: apprise.Apprise) -> tuple[bool, int]:
        delay = self.backoff_s
        for attempt in range(1, self.retries + 2):
            try:
                ok = bool(
                    sink.notify(body=alert.body, title=alert.title, notify_type=_TYPES[alert.level])
                )
            except Exception:
                log.exception("alert sink %s raised", name)
                ok = False
            if ok:
                return True, attempt
            if attempt <= self.retries:
                log.warning(
                    "alert sink %s failed (try %d of %d); again in %.1fs",
                    name,
                    attempt,
                    self.retries + 1,
                    delay,
                )
                if self._stopping.wait(delay):
                    break
                delay *= 2
        log.error("alert %r not delivered to %s", alert.title, name)
        return False, attempt

    def _stored(self, alert: Alert) -> None:
        for listener in list(self.stored):
            try:
                listener(alert)
            except Exception:
                log.exception("an alert-stored listener failed")

    def _tell(self, alert: Alert, outcome: str) -> None:
        if self.outcome is not None:
            try:
                self.outcome(alert, outcome)
            except Exception:
                log.exception("alert outcome listener failed")
