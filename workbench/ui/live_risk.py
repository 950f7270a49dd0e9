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
import json
import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields
from typing import Any

import pandas as pd
import panel as pn

from workbench.auth.acting import ActingEngine, ActionFailed, BadInput
from workbench.auth.roles import Action, NotAuthorized, refusal
from workbench.risk.account import AccountLimits, Halt, Usage
from workbench.ui.shared import LiveService

USAGE_EVERY_S = 2.0  # the bars and the halt state, read again from the engine
ROWS = 200  # newest halts and refusals shown
HOUR_MS = 3_600_000
#: Limits whose use is a fraction of equity, and those that count.
FRACTIONS = frozenset({"daily loss", "drawdown"})
COUNTS = frozenset({"open positions", "orders per minute"})
BAR_COLORS = ["#16a34a", "#65a30d", "#ca8a04", "#ea580c", "#dc2626"]


# -- what is shown (pure) -----------------------------------------------------------------
def _amount(value: float) -> str:
    return f"{value:.6g}"


def usage_rows(usages: Sequence[Usage]) -> pd.DataFrame:
    """Give one row per limit in force: what is used, what is allowed, and the use in % (the
    bar; over 100 when a limit was lowered below what is already held)."""
    rows = []
    for u in usages:
        if u.limit in FRACTIONS:
            used, allowed = f"{u.used:.2%}", f"{u.allowed:.2%}"
        elif u.limit in COUNTS:
            used, allowed = f"{u.used:.0f}", f"{u.allowed:.0f}"
        else:
            used, allowed = f"{_amount(u.used)} {u.quote}", f"{_amount(u.allowed)} {u.quote}"
        rows.append(
            {
                "limit": u.limit,
                "quote": u.quote or "all",
                "used": used,
                "allowed": allowed,
                "use_pct": round(100.0 * u.fraction, 1),
            }
        )
    return pd.DataFrame(rows, columns=["limit", "quote", "used", "allowed", "use_pct"])


def _when(ms: int) -> str:
    return pd.Timestamp(ms, unit="ms", tz="UTC").strftime("%Y-%m-%d %H:%M:%S UTC")


def halt_text(halt: Halt | None) -> str:
    """Give the kill switch's state as Markdown."""
    if halt is None:
        return "**Trading**: no halt in force."
    flattened = " Every position was closed at market." if halt.flatten else ""
    return (
        f"**Halted** since {_when(halt.at_ms)} by **{halt.by}**: {halt.reason}.  \n"
        f"No new entry on any strategy until a resume; protection stays in place.{flattened}"
    )


def history_rows(halts: pd.DataFrame) -> pd.DataFrame:
    """Give each stored halt and resume, newest first (from `RiskStore.halts`)."""
    columns = ["when", "action", "by", "reason"]
    if halts.empty:
        return pd.DataFrame(columns=columns)
    action = [
        ("halt and flatten" if flatten else "halt") if halted else "resume"
        for halted, flatten in zip(halts["halted"], halts["flatten"], strict=True)
    ]
    return pd.DataFrame(
        {
            "when": pd.to_datetime(halts["halted_at"]).dt.strftime("%Y-%m-%d %H:%M:%S"),
            "action": action,
            "by": halts["by_user"],
            "reason": halts["reason"],
        },
        columns=columns,
    ).head(ROWS)


def _number_text(value: Any) -> str:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return str(value)
    return _amount(value)


def numbers_text(detail: Mapping[str, Any]) -> str:
    """Give a refusal's numbers on one line (times as UTC); the other strategies' share last."""
    parts = [
        f"{k} {_when(v) if k.endswith('_ms') and isinstance(v, int) else _number_text(v)}"
        for k, v in detail.items()
        if k != "others"
    ]
    others = detail.get("others")
    if isinstance(others, Mapping) and others:
        shares = ", ".join(f"{sid} {_number_text(v)}" for sid, v in others.items())
        parts.append(f"others: {shares}")
    return " · ".join(parts)


def refusal_rows(refused: pd.DataFrame) -> pd.DataFrame:
    """Give the refused orders (from `TradingStore.refusals`) as rule, numbers, strategy; `bar`
    is the market time of the bar the order was for (the replay's, on the local exchange)."""
    columns = ["bar", "strategy", "symbol", "side", "amount", "rule", "numbers"]
    if refused.empty:
        return pd.DataFrame(columns=columns)
    return pd.DataFrame(
        {
            "bar": pd.to_datetime(refused["ts"]).dt.strftime("%Y-%m-%d %H:%M:%S"),
            "strategy": refused["strategy_id"],
            "symbol": refused["symbol"],
            "side": refused["side"],
            "amount": refused["amount"],
            "rule": refused["rule"],
            "numbers": [numbers_text(json.loads(d)) for d in refused["detail"]],
        },
        columns=columns,
    ).head(ROWS)


def limits_text(limits: Any) -> str:
    """Give the limits set in a limits dataclass (a strategy's or the account's) on one line,
    or "none"."""
    if limits is None:
        return "none"
    values = {f.name: getattr(limits, f.name) for f in fields(limits)}
    drawdown = values.get("max_drawdown_fraction") is not None
    shown = []
    for name, value in values.items():
        if name == "drawdown_cooldown_ms":
            if drawdown:
                shown.append(f"drawdown cool-down {value / HOUR_MS:g} h")
        elif name == "flatten_on_drawdown":
            if drawdown and value:
                shown.append("flatten on drawdown")
        elif value is not None:
            shown.append(f"{name} {_number_text(value)}")
    return ", ".join(shown) or "none"


def strategy_limit_rows(strategies: Mapping[str, Any]) -> pd.DataFrame:
    """Give each strategy's own limits in force (its risk manager's)."""
    return pd.DataFrame(
        [
            {"strategy": sid, "symbol": live.runner.symbol, "limits": limits_text(live.risk.limits)}
            for sid, live in strategies.items()
        ],
        columns=["strategy", "symbol", "limits"],
    )


# -- the limits form (pure) -----------------------------------------------------------------
@dataclass(frozen=True)
class LimitField:
    """One input of the limits form: the limit's name, what it holds, what it means."""

    name: str
    kind: str  # "amount", "fraction", "count" or "hours"
    description: str


LIMIT_FIELDS = (
    LimitField("max_exposure", "amount", "total position value, in each quote currency"),
    LimitField("max_exposure_fraction", "fraction", "total position value / account equity"),
    LimitField("max_open_positions", "count", "open positions at once"),
    LimitField("max_symbol_position", "amount", "position value per symbol over strategies"),
    LimitField("daily_loss_fraction", "fraction", "loss since the UTC day's start"),
    LimitField("max_drawdown_fraction", "fraction", "account drawdown that halts entries"),
    LimitField("drawdown_cooldown_h", "hours", "hours the drawdown halt lasts (default 24)"),
    LimitField("max_orders_per_minute", "count", "orders sent per minute"),
    LimitField("max_order_notional", "amount", "largest single order (a fat-finger stop)"),
    LimitField("price_band_fraction", "fraction", "furthest a manual limit price may be"),
)


def _parse(field: LimitField, text: str) -> int | float:
    raw = text.strip().replace(",", "").replace("_", "")
    percent = field.kind == "fraction" and raw.endswith("%")
    try:
        number = float(raw.removesuffix("%")) / (100.0 if percent else 1.0)
    except ValueError:
        raise BadInput(f"{field.name}: a number is needed, got {text!r}") from None
    if not math.isfinite(number):
        raise BadInput(f"{field.name}: a finite number is needed, got {text!r}")
    if field.kind == "count":
        if not number.is_integer():
            raise BadInput(f"{field.name}: a whole number is needed, got {text!r}")
        return int(number)
    if field.kind == "hours":
        if number <= 0:
            raise BadInput(f"{field.name}: must be > 0 hours, got {text!r}")
        return round(number * HOUR_MS)
    return number


def parse_limits(texts: Mapping[str, str], flatten_on_drawdown: bool = False) -> dict[str, Any]:
    """Give the account limits typed in the form (empty: no limit; a fraction may be typed
    as "5%"), keyed as `AccountLimits` names them; raise BadInput naming the field. The
    limits' own rules (> 0, a fraction at most 1) are checked by `AccountLimits`."""
    values: dict[str, Any] = {"flatten_on_drawdown": bool(flatten_on_drawdown)}
    for field in LIMIT_FIELDS:
        text = texts.get(field.name, "")
        if not text.strip():
            continue
        name = "drawdown_cooldown_ms" if field.kind == "hours" else field.name
        values[name] = _parse(field, text)
    return values


def form_texts(limits: AccountLimits) -> dict[str, str]:
    """Give the form's texts for limits in force (the inverse of `parse_limits`)."""
    texts = {}
    for field in LIMIT_FIELDS:
        if field.kind == "hours":
            texts[field.name] = f"{limits.drawdown_cooldown_ms / HOUR_MS:g}"
            continue
        value = getattr(limits, field.name)
        texts[field.name] = "" if value is None else f"{value:.15g}"
    return texts


# -- the view -------------------------------------------------------------------------------
@dataclass(frozen=True)
class Pending:
    """A kill-switch action asked for and waiting for its confirmation."""

    kind: str  # "halt", "flatten" or "resume"
    reason: str


ASK = {
    "halt": (
        "Confirm halt",
        "Halt all trading? No new entry on any strategy; resting entry orders are "
        "cancelled; stops and targets stay.",
    ),
    "flatten": (
        "Confirm halt and flatten",
        "Halt all trading **and close every position at market**? Resting entry orders are "
        "cancelled too.",
    ),
    "resume": ("Confirm resume", "Resume trading? Strategies may open positions again."),
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
        self.halt_button.on_click(lambda _e: self._ask("halt"))
        self.flatten_button.on_click(lambda _e: self._ask("flatten"))
        self.resume_button.on_click(lambda _e: self._ask("resume"))
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
            widths={"use_pct": 260},
        )  # fmt: skip
        self.no_limits = pn.pane.Markdown("", name="no-limits")
        self.history = _table("halts")
        self.refusals = _table("risk-refusals", formatters={"numbers": {"type": "textarea"}})
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
        if not rows.equals(self.usage.value):
            self.usage.value = rows
        self.usage.visible = not rows.empty
        self.no_limits.object = (
            "" if not rows.empty else "No account limit is set: each strategy's own limits apply."
        )
        limits = strategy_limit_rows(engine.strategies)
        if not limits.equals(self.strategy_limits.value):
            self.strategy_limits.value = limits
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
                self.history.value = history_rows(halts)
                self.refusals.value = refusal_rows(refused)
                if not self._again:
                    break
        finally:
            self._reading = False

    def _stored(self) -> tuple[pd.DataFrame, pd.DataFrame]:
        store = self.service.store
        halts = store.risk.halts(self.service.engine.exchange)
        return halts, store.trading.refusals(latest=ROWS)

    # -- the kill switch ------------------------------------------------------------------
    def _ask(self, kind: str) -> None:
        reason = self.reason.value.strip()
        if kind != "resume" and not reason:
            self._drop("reason: say why trading halts (the halt is stored with it).")
            return
        if kind == "resume" and self.service.engine.halted is None:
            self._drop("Not halted: nothing to resume.")
            return
        self.pending = Pending(kind, reason)
        label, question = ASK[kind]
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
            if pending.kind == "resume":
                await self.acting.resume(pending.reason or "resumed")
                done = f"Resumed by {self.acting.actor}."
            else:
                await self.acting.halt(pending.reason, flatten=pending.kind == "flatten")
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
            f"Applied by {self.acting.actor} (stored; from the next order): {limits_text(limits)}."
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
            pn.Row(self.apply_button, self.limits_message),
            "### Halts and resumes",
            self.history,
            "### Last refused orders (every strategy)",
            self.refusals,
            "### Each strategy's own limits",
            self.strategy_limits,
            sizing_mode="stretch_width",
        )
