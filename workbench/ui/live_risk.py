"""The dashboard's Risk tab: the account's limits in force with their use now, the kill switch
(halt, halt and flatten, resume, each confirmed by a second click), its history, the last
refusals over every strategy, each strategy's own limits, and the account limits changed at
run time (admins).

Every action goes through `ActingEngine`, which checks the role where the action runs and
audits it; the controls a user may not use are shown disabled with the reason. The engine's
in-memory state (the halt, the limits, their use) is read on the event loop, where the engine
lives; the store's rows (halts, refusals) are read on a thread, so the loop never waits on SQL.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import pandas as pd
import panel as pn

from workbench.auth.acting import ActingEngine, ActionFailed, BadInput
from workbench.auth.roles import Action, NotAuthorized, refusal
from workbench.ui.live_risk_rows import (
    LIMIT_FIELDS,
    ROWS,
    form_summary,
    form_texts,
    halt_text,
    history_rows,
    parse_limits,
    refusal_rows,
    strategy_limit_rows,
    usage_rows,
)
from workbench.ui.shared import LiveService
from workbench.ui.stat_tables import refill

USAGE_EVERY_S = 2.0  # the bars and the halt state, read again from the engine
BAR_COLORS = ["#16a34a", "#65a30d", "#ca8a04", "#ea580c", "#dc2626"]


class Switch(StrEnum):
    """What a kill-switch button asks for."""

    HALT = "halt"
    FLATTEN = "halt and flatten"
    RESUME = "resume"


@dataclass(frozen=True)
class Pending:
    """A kill-switch action asked for and waiting for its confirmation."""

    switch: Switch
    reason: str


ASK = {
    Switch.HALT: (
        "Confirm halt",
        "Halt all trading? No new entry on any strategy; resting entry orders are "
        "cancelled; stops and targets stay.",
    ),
    Switch.FLATTEN: (
        "Confirm halt and flatten",
        "Halt all trading **and close every position at market**? Resting entry orders are "
        "cancelled too.",
    ),
    Switch.RESUME: ("Confirm resume", "Resume trading? Strategies may open positions again."),
}


def _table(name: str, **kw: Any) -> pn.widgets.Tabulator:
    return pn.widgets.Tabulator(
        pd.DataFrame(), show_index=False, disabled=True, sizing_mode="stretch_width",
        pagination="local", page_size=10, name=name, **kw,
    )  # fmt: skip


class RiskView:
    """The Risk tab of one browser session."""

    def __init__(self, service: LiveService, acting: ActingEngine) -> None:
        self.service = service
        self.acting = acting
        self.state = pn.pane.Alert("", alert_type="success", name="halt-state")
        self.reason = pn.widgets.TextInput(
            name="Reason", placeholder="why trading halts (required to halt)", width=420
        )
        self.halt_button = pn.widgets.Button(name="Halt", button_type="danger")
        self.flatten_button = pn.widgets.Button(name="Halt and flatten", button_type="danger")
        self.resume_button = pn.widgets.Button(name="Resume", button_type="success")
        self.confirm_button = pn.widgets.Button(name="Confirm", button_type="danger")
        self.cancel_button = pn.widgets.Button(name="Cancel", button_type="default")
        self.ask = pn.pane.Markdown("", name="risk-confirm")
        self.confirm_row = pn.Row(self.ask, self.confirm_button, self.cancel_button, visible=False)
        self.message = pn.pane.Markdown("", name="risk-message")
        self.halt_note = pn.pane.Markdown("", name="halt-note")
        self.halt_button.on_click(lambda _e: self._ask(Switch.HALT))
        self.flatten_button.on_click(lambda _e: self._ask(Switch.FLATTEN))
        self.resume_button.on_click(lambda _e: self._ask(Switch.RESUME))
        self.confirm_button.on_click(self._confirm)
        self.cancel_button.on_click(lambda _e: self._drop("Nothing done."))
        self.pending: Pending | None = None

        self.usage = _table(
            "usage",
            titles={"use_pct": "use %"},
            formatters={
                "use_pct": {"type": "progress", "min": 0, "max": 100, "legend": True,
                            "color": BAR_COLORS},
            },
            widths={"used": 150, "allowed": 150, "use_pct": 260},  # fixed: values change
        )  # fmt: skip
        self.no_limits = pn.pane.Markdown("", name="no-limits")
        self.history = _table("halts")
        self.refusals = _table(
            "risk-refusals",
            formatters={"numbers": {"type": "textarea"}},  # wrapped in its width
            widths={"numbers": 320},
        )  # fmt: skip
        self.strategy_limits = _table("strategy-limits")

        self.inputs = {
            f.name: pn.widgets.TextInput(
                name=f.name, placeholder="no limit", description=f.description, width=200
            )
            for f in LIMIT_FIELDS
        }
        self.flatten_input = pn.widgets.Checkbox(name="flatten_on_drawdown")
        self.apply_button = pn.widgets.Button(name="Apply limits", button_type="primary")
        self.apply_button.on_click(self._apply)
        self.limits_message = pn.pane.Markdown("", name="limits-message")
        self.limits_note = pn.pane.Markdown("", name="limits-note")

        self._live_at = 0.0
        self._reading = self._again = False
        self.refresh_form()
        self.refresh_live()
        self.read_stored()

    # -- refreshing ----------------------------------------------------------------------
    def update(self, dirty: set[str]) -> None:
        """Draw what changed (called on each tick with what the engine's events touched)."""
        if dirty & {"halt", "limits"} or time.monotonic() - self._live_at >= USAGE_EVERY_S:
            self.refresh_live()
        if "limits" in dirty:
            self.refresh_form()
        if dirty & {"halt", "refused"}:
            self.read_stored()

    def refresh_live(self) -> None:
        """Read the halt, the limits' use and each strategy's limits from the engine."""
        self._live_at = time.monotonic()
        engine = self.service.engine
        halt = engine.halted
        self.state.object = halt_text(halt)
        self.state.alert_type = "danger" if halt is not None else "success"
        rows = usage_rows(engine.risk_usage())
        refill(self.usage, rows)
        self.usage.visible = not rows.empty
        self.no_limits.object = (
            "" if not rows.empty else "No account limit is set: each strategy's own limits apply."
        )
        limits = strategy_limit_rows(engine.strategies)
        refill(self.strategy_limits, limits)
        self._show_permissions()

    def refresh_form(self) -> None:
        """Fill the form with the account limits in force."""
        limits = self.service.engine.account.limits
        for name, text in form_texts(limits).items():
            self.inputs[name].value = text
        self.flatten_input.value = limits.flatten_on_drawdown

    def _show_permissions(self) -> None:
        # The facade refuses anyway; these say so before a click.
        user = self.acting.user
        why_not = refusal(user, Action.HALT)
        for button in (self.halt_button, self.flatten_button, self.resume_button):
            button.disabled = why_not is not None
        self.reason.disabled = why_not is not None
        self.halt_note.object = (
            "" if why_not is None else f"Halt and resume are not for {user.name}: {why_not}."
        )
        why_not = refusal(user, Action.SET_RISK_LIMITS)
        for widget in (*self.inputs.values(), self.flatten_input, self.apply_button):
            widget.disabled = why_not is not None
        self.limits_note.object = (
            "" if why_not is None else f"Changing limits is not for {user.name}: {why_not}."
        )

    def read_stored(self) -> None:
        """Read the halts and refusals again, off the event loop."""
        pn.state.execute(self.refresh_stored)

    async def refresh_stored(self) -> None:
        if self._reading:  # one read at a time; a change meanwhile reads once more after
            self._again = True
            return
        self._reading = True
        try:
            while True:
                self._again = False
                halts, refused = await asyncio.to_thread(self._stored)
                refill(self.history, history_rows(halts))
                refill(self.refusals, refusal_rows(refused))
                if not self._again:
                    break
        finally:
            self._reading = False

    def _stored(self) -> tuple[pd.DataFrame, pd.DataFrame]:
        store = self.service.store
        halts = store.risk.halts(self.service.engine.exchange)
        return halts, store.trading.refusals(latest=ROWS)

    # -- the kill switch ------------------------------------------------------------------
    def _ask(self, switch: Switch) -> None:
        reason = self.reason.value.strip()
        if switch is not Switch.RESUME and not reason:
            self._drop("reason: say why trading halts (the halt is stored with it).")
            return
        if switch is Switch.RESUME and self.service.engine.halted is None:
            self._drop("Not halted: nothing to resume.")
            return
        self.pending = Pending(switch, reason)
        label, question = ASK[switch]
        self.confirm_button.name = label
        self.ask.object = question
        self.confirm_row.visible = True
        self.message.object = ""

    def _drop(self, message: str) -> None:
        self.pending = None
        self.confirm_row.visible = False
        self.message.object = message

    async def _confirm(self, _event: Any = None) -> None:
        pending, self.pending = self.pending, None
        self.confirm_row.visible = False
        if pending is None:
            return
        self.confirm_button.disabled = True
        try:
            if pending.switch is Switch.RESUME:
                await self.acting.resume(pending.reason or "resumed")
                done = f"Resumed by {self.acting.actor}."
                self.reason.value = ""
            else:
                await self.acting.halt(pending.reason, flatten=pending.switch is Switch.FLATTEN)
                done = f"Halted by {self.acting.actor}: {pending.reason}."
                self.reason.value = ""
        except (NotAuthorized, BadInput, ActionFailed) as exc:
            self.message.object = f"Not done: {exc}"
            return
        finally:
            self.confirm_button.disabled = False
        self.message.object = done
        self.refresh_live()
        await self.refresh_stored()

    # -- the limits -----------------------------------------------------------------------
    async def _apply(self, _event: Any = None) -> None:
        texts = {name: widget.value for name, widget in self.inputs.items()}
        try:
            values = parse_limits(texts, self.flatten_input.value)
            limits = await self.acting.set_risk_limits(values)
        except (NotAuthorized, BadInput, ActionFailed) as exc:
            self.limits_message.object = f"Not applied: {exc}"
            return
        self.limits_message.object = (
            f"Applied by {self.acting.actor} (stored; from the next order): {form_summary(limits)}."
        )
        self.refresh_form()
        self.refresh_live()

    def __panel__(self) -> Any:
        return pn.Column(
            "### Kill switch",
            self.state,
            self.reason,
            pn.Row(self.halt_button, self.flatten_button, self.resume_button),
            self.halt_note,
            self.confirm_row,
            self.message,
            "### Account limits in force, used now",
            self.no_limits,
            self.usage,
            "### Change the account limits",
            self.limits_note,
            pn.FlexBox(*self.inputs.values(), self.flatten_input),
            self.apply_button,
            self.limits_message,
            "### Halts and resumes",
            self.history,
            "### Last refused orders (every strategy)",
            self.refusals,
            "### Each strategy's own limits",
            self.strategy_limits,
            sizing_mode="stretch_width",
        )
