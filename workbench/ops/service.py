"""The operations side of one engine process: metrics, structured event logs, alerts,
readiness probes, the loop-lag probe, systemd's watchdog, the daily summary.

Everything here listens (`engine.subscribe`) or runs in tasks and threads of its own; none
of it is on the engine's path from a bar to an order: its one engine listener keeps each event
with the time it came and hands it to the metrics, the event log and the alert rules after
the burst (`workbench.ops.deferred`); a scrape and the stop hand on what is kept. Alerts go
through a queue to a sender thread (`workbench.ops.notify`); database reads and writes of the
probes and the summary run in worker threads, never on the loop.

    ops = await OpsService(live.engine, live.store, settings, role="live").start()
    ...
    await ops.stop()

The process's service is `current()` (the dashboard's /health, /ready and /metrics routes
read it).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import os
import socket
import time
import uuid
from collections import deque
from collections.abc import Callable
from typing import Any

from workbench.live.events import EngineEvent
from workbench.ops import systemd
from workbench.ops.alerting import Alerting, AuditWatch
from workbench.ops.alerts import Alert, restarted_alert
from workbench.ops.deferred import AfterBurst
from workbench.ops.eventlog import EventLog
from workbench.ops.health import Probe, Readiness, assess
from workbench.ops.metrics import EngineMetrics
from workbench.ops.snapshot import EngineView, view_of
from workbench.ops.summary import daily_summary, next_summary_at

log = logging.getLogger(__name__)
LOOP_PROBE_S = 0.25
TICK_S = 1.0
AUDIT_POLL_S = 5.0
PROBE_TIMEOUT_S = 5.0
READY_CACHE_S = 1.0

_current: OpsService | None = None


def current() -> OpsService | None:
    """Give this process's running ops service, if any."""
    return _current


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(tzinfo=None)


class OpsService:
    """Metrics, alerts, probes and logs of one engine."""

    def __init__(
        self,
        engine: Any,
        store: Any,
        settings: Any,
        *,
        role: str = "live",
        clock: Callable[[], float] = time.monotonic,
        tick_s: float = TICK_S,
        audit_poll_s: float = AUDIT_POLL_S,
    ) -> None:
        self.engine = engine
        self.store = store
        self.settings = settings
        self.role = role
        self.clock = clock
        self.tick_s = tick_s
        self.audit_poll_s = audit_poll_s
        self.host = socket.gethostname()
        self.where = f"{role} on {self.host}"
        self.run_id = uuid.uuid4().hex
        self.metrics = EngineMetrics()
        self.metrics.attach(self.view)
        self.event_log = EventLog()
        self.alerting = Alerting(
            store, settings, where=self.where, clock=clock, outcome=self._outcome, held=self._held
        )
        #: the engine listener: events handed to these three after the burst
        self.after = AfterBurst((self.metrics, self.event_log, self._alert_rules))
        #: called on the loop with each alert let through (the dashboard's notifications)
        self.alert_listeners = self.alerting.listeners
        #: called on the sender thread when an alert's row (raised, then delivered) is stored
        self.alert_stored_listeners = self.alerting.sender.stored
        self.raise_alert = self.alerting.raise_alert
        self.started_at = time.time()
        self.loop_lag_s: float | None = None
        self._lags: deque[float] = deque(maxlen=8)
        self._tasks: list[asyncio.Task[None]] = []
        self._started = False
        self._ready: tuple[float, Readiness] | None = None
        self._probing: asyncio.Task[Readiness] | None = None

    # -- life -------------------------------------------------------------------------------
    async def start(self) -> OpsService:
        """Listen to the engine, start the sender and the probes; raise a restart alert when
        the previous run of this role on this host never stopped cleanly."""
        global _current
        self.after.bind(asyncio.get_running_loop())
        self.engine.subscribe(self.after)
        self.alerting.start()
        previous = await asyncio.to_thread(
            self.store.ops.start_run, self.run_id, self.role, self.host, os.getpid()
        )
        if previous is not None:
            self.raise_alert(restarted_alert(previous, self.where))
        loop = asyncio.get_running_loop()
        for work in (self._loop_probe, self._tick, self._watch_audit):
            self._tasks.append(loop.create_task(work(), name=f"ops {work.__name__}"))
        self._started = True
        self.metrics.up.set(1)
        _current = self
        systemd.notify("READY=1")
        return self

    async def stop(self) -> None:
        """Stop the probes, record a clean stop, send what is queued (a few seconds at most)."""
        global _current
        systemd.notify("STOPPING=1")
        self.engine.unsubscribe(self.after)
        self.after.bind(None)
        self.after.flush()  # what the last burst brought: counted, logged, alerted
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks.clear()
        self.metrics.up.set(0)
        # In line, not in worker threads: at a server's exit the loop's executor may be shut
        # down already. One row, and a sender given a few seconds.
        try:
            self.store.ops.stop_run(self.run_id)
        except Exception:
            log.exception("recording the clean stop failed")
        self.alerting.stop()
        self._started = False
        if _current is self:
            _current = None

    # -- alerts -----------------------------------------------------------------------------
    def _alert_rules(self, event: EngineEvent, at: float) -> None:
        self.alerting.on_event(event)

    def _outcome(self, alert: Alert, outcome: str) -> None:
        self.metrics.alerts.labels(str(alert.rule), str(alert.level), outcome).inc()

    def _held(self, alert: Alert) -> None:
        self.metrics.alerts.labels(str(alert.rule), str(alert.level), "held").inc()

    # -- reading ----------------------------------------------------------------------------
    def view(self) -> EngineView | None:
        """Give the engine's state now (None before start)."""
        return view_of(self.engine) if self._started else None

    def exposition(self) -> bytes:
        """Give /metrics: every event so far counted (those kept are handed on first)."""
        self.after.flush()
        return self.metrics.exposition()

    def health(self) -> dict[str, Any]:
        """Give /health: the process answers (nothing else is checked)."""
        uptime_s = round(time.time() - self.started_at, 1)
        return {"status": "alive", "role": self.role, "uptime_s": uptime_s}

    async def readiness(self) -> Readiness:
        """Give /ready, probed at most once a second (concurrent asks share one probe)."""
        now = time.monotonic()
        if self._ready is not None and now - self._ready[0] < READY_CACHE_S:
            return self._ready[1]
        if self._probing is None or self._probing.done():
            self._probing = asyncio.get_running_loop().create_task(self._probe())
        readiness = await asyncio.shield(self._probing)
        self._ready = (time.monotonic(), readiness)
        return readiness

    async def _probe(self) -> Readiness:
        database, exchange, _ = await asyncio.gather(
            self._probe_database(), self._probe_exchange(), self._ask_market_time()
        )
        return assess(
            self.view(),
            database=database,
            exchange=exchange,
            loop_lag_s=self.loop_lag_s,
            max_feed_lag_bars=self.settings.ready_max_feed_lag_bars,
            max_loop_lag_s=self.settings.ready_max_loop_lag_s,
        )

    async def _probe_database(self) -> Probe:
        started = time.perf_counter()
        try:
            async with asyncio.timeout(PROBE_TIMEOUT_S):
                await asyncio.to_thread(self.store.ops.beat, self.run_id)
        except Exception as exc:  # /ready is public: the text (paths, SQL) goes to the log only
            log.warning("readiness: the database write failed: %s", exc)
            return Probe(False, f"write failed: {type(exc).__name__}")
        ms = (time.perf_counter() - started) * 1000
        return Probe(True, "writable", {"write_ms": round(ms, 2)})

    async def _probe_exchange(self) -> Probe:
        rest = self.engine.clients.rest
        sent = time.time()
        try:
            async with asyncio.timeout(PROBE_TIMEOUT_S):
                server_ms = await rest.fetch_time()
        except Exception as exc:
            return Probe(False, f"{self.engine.exchange} unreachable: {type(exc).__name__}")
        back = time.time()
        skew_ms = float(server_ms) - (sent + back) / 2 * 1000
        return Probe(
            True,
            f"{self.engine.exchange} answers",
            {
                "exchange": self.engine.exchange,
                "round_trip_ms": round((back - sent) * 1000, 1),
                "clock_skew_ms": round(skew_ms, 1),
            },
        )

    async def _ask_market_time(self) -> None:
        """Ask the exchange its time when the market clock cannot run on by itself (a replay
        stepped by hand): feed lag is counted in that market's bar closes, never in ours."""
        clock = getattr(self.engine, "market_clock", None)
        if clock is None or clock.moves_alone:
            return
        try:
            # Not wait_for: on 3.11 it swallows a cancel that meets an answer, and the
            # tick that asked then never stops (a stop that hung for good under load).
            async with asyncio.timeout(PROBE_TIMEOUT_S):
                await clock.sync()
        except Exception as exc:  # the last time told stands; feeds look no more behind
            log.debug("market time not asked: %s", exc)

    # -- background -------------------------------------------------------------------------
    async def _loop_probe(self) -> None:
        """Measure how late the loop runs a timer; ping systemd's watchdog while it runs."""
        loop = asyncio.get_running_loop()
        ping_s = systemd.watchdog_interval_s()
        pinged = loop.time()
        while True:
            asked = loop.time()
            await asyncio.sleep(LOOP_PROBE_S)
            lag = max(0.0, loop.time() - asked - LOOP_PROBE_S)
            self.metrics.loop_lag.observe(lag)
            self._lags.append(lag)
            self.loop_lag_s = max(self._lags)
            if ping_s is not None and loop.time() - pinged >= ping_s:
                pinged = loop.time()
                systemd.notify("WATCHDOG=1")

    async def _tick(self) -> None:
        """Check the feeds for staleness each second; send the daily summary when due."""
        hour = self.settings.alert_summary_hour
        due = next_summary_at(utcnow(), hour) if hour is not None else None
        while True:
            await asyncio.sleep(self.tick_s)
            try:
                await self._ask_market_time()
                feeds = view_of(self.engine, strategies=False)
                for alert in self.alerting.rules.on_view(feeds):
                    self.raise_alert(alert)
                if due is not None and utcnow() >= due:
                    summary = await asyncio.to_thread(daily_summary, self.store, due, self.where)
                    due = next_summary_at(utcnow(), hour)  # type: ignore[arg-type]
                    self.raise_alert(summary)
            except Exception:
                log.exception("the ops tick failed")

    async def _watch_audit(self) -> None:
        """Raise the failed-login and lockout alerts from the audit log."""
        watch = await asyncio.to_thread(AuditWatch, self.store, self.alerting)
        while True:
            await asyncio.sleep(self.audit_poll_s)
            try:
                await asyncio.to_thread(watch.poll)
            except Exception:
                log.exception("reading the audit log for alerts failed")
