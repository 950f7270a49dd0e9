"""The live dashboard: the process's shared engine seen by one browser session.

Each session subscribes an event buffer to the shared `LiveService` and drains it on a
periodic callback (which holds the document lock, so Bokeh models may change there): the
market view and the comparison stream what closed or formed since the last tick; the
strategies table, portfolio and tables refresh from `engine.status()` once a second and from
the store when an order, fill, refusal or state change happened; the Risk tab from halts,
limit changes and refusals, and its bars every 2 s. The buffer is dropped when the session
ends; the engine goes on.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

import pandas as pd
import panel as pn
import param

from workbench.auth.accounts import accounts_for
from workbench.auth.acting import ActingEngine
from workbench.auth.roles import Action, User
from workbench.auth.web import LOGIN_URL, LOGOUT_URL, SessionUser, session_address
from workbench.ui import shared
from workbench.ui.admin import AuditView, UsersView
from workbench.ui.layout import lazy_tabs
from workbench.ui.live_alerts import AlertsView, notify
from workbench.ui.live_market import MarketView
from workbench.ui.live_orders import OrderTicket
from workbench.ui.live_risk import RiskView
from workbench.ui.live_strategies import AddStrategy
from workbench.ui.live_strategy_table import StrategyTable
from workbench.ui.live_tables import ComparisonView, LiveTables, PortfolioView
from workbench.ui.shared import EventBuffer, LiveService

STATUS_EVERY_S = 1.0  # the strategies table
TABLES_EVERY_S = 3.0  # positions, portfolio and metrics tables (each sent whole)
SESSION_CHECK_S = 5.0  # the session checked again (logout, role change, removal)
log = logging.getLogger(__name__)


class LiveDashboard(param.Parameterized):
    """Market, strategies, tables, portfolio and comparison of the shared live engine."""

    tick_ms = param.Integer(default=500, bounds=(50, None), doc="how often updates are drawn")

    def __init__(
        self,
        service: LiveService | None = None,
        user: User | Callable[[], User] | None = None,
        **params: Any,
    ) -> None:
        super().__init__(**params)
        self.service = service or shared.service()
        # Who acts in this browser session, checked again at every action through
        # `self.acting` (and every few seconds here): a logout or role change ends the page.
        if user is None:
            self.who: Callable[[], User] = SessionUser()
        elif callable(user):
            self.who = user
        else:
            fixed = user
            self.who = lambda: fixed
        self.user = self.who()
        self._signed_in = self.user.name
        self._checked_at = time.monotonic()
        self.address = session_address()
        self.acting: ActingEngine | None = None
        self.expired = False
        self.buffer: EventBuffer | None = None
        self.known: set[str] = set()  # strategies the page has been told of
        self.main = pn.Column(
            pn.pane.Markdown("Starting the live engine…", name="starting"),
            sizing_mode="stretch_width",
        )
        self.sidebar = pn.Column(width=330)
        self._status_at = 0.0
        self._tables_at = 0.0
        self._stored_states: pd.Series | None = None
        self._callback: Any = None

    # -- session life -------------------------------------------------------------------
    def serve(self) -> None:
        """Start drawing updates in this session, and stop when it ends."""
        if self.service.ready:
            self.build()  # in the first document sent: much faster than patching it in
        # Nothing changes before the browser has the document (else it is sent patches
        # referring to models it does not know yet).
        pn.state.onload(self._loaded)
        pn.state.on_session_destroyed(self._session_ended)

    def _loaded(self) -> None:
        self._callback = pn.state.add_periodic_callback(self.tick, period=self.tick_ms)

    def _session_ended(self, _context: Any) -> None:
        if self.buffer is not None:
            self.service.unsubscribe(self.buffer)
            self.buffer = None
        if self._callback is not None:
            self._callback.stop()

    def tick(self) -> None:
        """Draw what happened since the last tick (build the page once the engine runs)."""
        if time.monotonic() - self._checked_at >= SESSION_CHECK_S:
            self._checked_at = time.monotonic()
            now = self.who()
            if now.role != self.user.role or now.name != self.user.name:
                self.user = now
        if self.user.expired() or self.user.name != self._signed_in:
            self._end_expired()
            return
        if self.buffer is None:
            if self.service.error:
                self.main[:] = [
                    pn.pane.Alert(
                        f"The live engine failed: {self.service.error}", alert_type="danger"
                    )
                ]
            elif self.service.ready:
                try:
                    self.build()
                except Exception as exc:  # say it on the page; the engine goes on
                    self.service.error = f"the page could not be built: {exc!r}"
                    raise
            return
        began = time.perf_counter()
        self._draw()
        took_ms = (time.perf_counter() - began) * 1000
        if took_ms > self.tick_ms:
            log.warning("live page update took %.0f ms (tick %d ms)", took_ms, self.tick_ms)

    def _end_expired(self) -> None:
        if self.expired:
            return
        self.expired = True
        self.main[:] = [
            pn.pane.Alert(
                f"Your session has ended: [log in again]({LOGIN_URL}).",
                alert_type="warning",
                name="session-expired",
            )
        ]
        self.sidebar[:] = []
        self._session_ended(None)

    def _draw(self) -> None:
        assert self.buffer is not None
        closed, forming, fills, dirty = self.buffer.drain()
        notify(self.buffer.take_notes())
        if "alert" in dirty:
            self.alerts_view.refresh()
        if len(self.service.engine.strategies) != len(self.known):
            self._add_new_strategies()
        self.market.push(closed, forming, fills)
        self.comparison.push(closed)
        if dirty & {"fill", "order", "refused"}:
            self.tables.refresh_stored()
        self.risk.update(dirty)
        now = time.monotonic()
        if "state" in dirty:
            self._read_stored_states()
        if "state" in dirty or now - self._status_at >= STATUS_EVERY_S:
            self._status_at = now
            self.refresh_status()

    # -- building and refreshing ---------------------------------------------------------
    def build(self) -> None:
        """Lay the page out on the running engine and start listening to it."""
        began = time.perf_counter()
        store = self.service.store
        self.acting = acting = ActingEngine(
            self.service.engine, self.who, store.audit, self.address
        )
        self.market = MarketView(self.service)
        self.tables = LiveTables(self.service, acting)
        self.portfolio = PortfolioView(self.service)
        self.comparison = ComparisonView(self.service)
        self.add_form = AddStrategy(self.service, acting)
        self.ticket = OrderTicket(self.service, acting)
        self.risk = RiskView(self.service, acting)
        self.alerts_view = AlertsView(store)
        self.strategies = StrategyTable(acting, self._curve, self._show_strategy)
        self.market.param.watch(lambda e: self.strategies.select(e.new), "strategy")
        self._add_new_strategies()
        self.refresh_status()
        tabs: list[tuple[str, Any]] = [
            ("Market", self.market),
            ("Orders & trades", self.tables),
            ("Portfolio", self.portfolio),
            ("Risk", self.risk),
            ("Comparison", self.comparison),
            ("Alerts", self.alerts_view),
        ]
        if acting.may(Action.MANAGE_USERS):
            accounts = accounts_for(self.service.settings, store)
            tabs.append(("Users", UsersView(accounts, acting)))
        if acting.may(Action.VIEW_AUDIT):
            self.audit_view = AuditView(acting)
            self.audit_view.refresh()
            tabs.append(("Audit", self.audit_view))
        self.main[:] = [
            pn.Row(
                self.strategies,
                lazy_tabs(*tabs, sizing_mode="stretch_width"),
                sizing_mode="stretch_width",
            )
        ]
        self.sidebar[:] = [self.add_form, self.ticket]
        self.buffer = self.service.subscribe()
        log.warning("live page built in %.2f s", time.perf_counter() - began)

    def _add_new_strategies(self) -> None:
        self.known = set(self.service.engine.strategies)
        self.market.refresh_strategies()
        self.comparison.add_missing()
        self.ticket.refresh_strategies()

    def _curve(self, sid: str) -> list[float]:
        """Give a strategy's recent return curve (the comparison's, streamed on each bar)."""
        source = self.comparison.sources.get(sid)
        return [] if source is None else source.data["ret"]

    def _show_strategy(self, sid: str) -> None:
        if sid in self.market.param.strategy.objects and self.market.strategy != sid:
            self.market.strategy = sid

    def refresh_status(self) -> pd.DataFrame:
        """Update the strategies table (and, every few seconds, positions, portfolio and
        metrics)."""
        status = self.service.engine.status()
        if self._stored_states is None or len(self._stored_states) != len(status):
            self._read_stored_states()
        strategies = self.service.engine.strategies
        peaks = {sid: live.risk.state.peak_equity for sid, live in strategies.items()}
        stored = {str(k): str(v) for k, v in self._stored_states.items()}  # type: ignore[union-attr]
        self.strategies.update(status, peaks, stored)
        now = time.monotonic()
        if now - self._tables_at >= TABLES_EVERY_S:
            self._tables_at = now
            self.tables.refresh_status(status)
            self.portfolio.refresh(status)
            self.comparison.refresh_metrics(status)
        return status

    def _read_stored_states(self) -> None:
        """Read the states as stored (what a restart would come back with)."""
        rows = self.service.store.trading.strategies()
        self._stored_states = rows.set_index("strategy_id")["state"]

    def signed_in(self) -> pn.pane.Markdown:
        """Give the header's line on who is signed in (or that nobody needs to be)."""
        if not self.service.settings.auth:
            text = (
                "**Auth is off**: anyone who reaches this address can trade "
                "(local use only; `workbench serve` requires login)"
            )
        else:
            text = f"Signed in as **{self.user.name}** ({self.user.role}) · [Log out]({LOGOUT_URL})"
        return pn.pane.Markdown(text, name="who", styles={"color": "white"}, margin=(0, 20))

    def template(self) -> pn.template.BootstrapTemplate:
        """Give the page (Bootstrap template: no external fonts, works offline)."""
        return pn.template.BootstrapTemplate(
            title="Workbench · Live (paper, local exchange)",
            sidebar=[self.sidebar],
            main=[self.main],
            header=[self.signed_in()],
            header_background="#1f2937",
            sidebar_width=340,
        )

    def __panel__(self) -> Any:
        return pn.Row(self.sidebar, self.main, sizing_mode="stretch_width")
