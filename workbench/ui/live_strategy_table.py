"""The live page's strategies: one compact row each (state, equity, return, drawdown, trades,
a sparkline of equity, start / pause / stop), sortable by any column; the selected row's
details beside it.

Fifty strategies fit one screen and the page opens fast: the table is one Tabulator (one
Bokeh model, rows drawn as they scroll into view) where cards were three buttons and two
panes each. Its rows change by patches of the cells that changed. Controls are shown to those
whose role may use them; every click goes through the acting user's `ActingEngine`, which
checks the role again and writes the audit row, so a crafted click from a viewer is refused
on the server.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
import panel as pn
from bokeh.models import HTMLTemplateFormatter

from workbench.auth.acting import ActingEngine, ActionFailed, BadInput
from workbench.auth.roles import Action, NotAuthorized
from workbench.ui.formats import COLOURS, Tone, money, percent, pnl, quote_of, tone
from workbench.ui.stat_tables import NUMBER_SORT

SPARK_POINTS = 60  # points of a sparkline (the curve sampled evenly, its last point kept)
SPARK_WIDTH, SPARK_HEIGHT = 72, 20
WIDTH_PX, MAX_HEIGHT_PX = 660, 620  # the table scrolls past these
#: Column widths; the three controls share what is left of WIDTH_PX.
COLUMN_PX = {"strategy": 140, "state": 60, "equity": 112, "return": 62, "drawdown": 64}
COLUMN_PX |= {"trades": 46, "curve": 80}
#: Small type and tight cells: fifty rows on a screen or two, the chart still beside them.
COMPACT = """
.tabulator { font-size: 12.5px !important; }
.tabulator-row .tabulator-cell { padding: 3px 5px !important; }
.tabulator-col .tabulator-col-content { padding: 4px 5px !important; }
.tabulator-col[aria-sort="none"] .tabulator-col-sorter { display: none !important; }
.tabulator-col[aria-sort="none"] .tabulator-col-title { padding-right: 0 !important; }
.tabulator-row.tabulator-selected { background-color: #dbeafe !important; }
.tabulator-cell button { font-size: 10px; padding: 0 3px; line-height: 16px; cursor: pointer; }
"""
#: The per-row controls: column, the state it sets, its label (the cell's text), its name.
CONTROLS = (("start", "running", "▶", "Start"), ("pause", "paused", "❚❚", "Pause"))
CONTROLS += (("stop", "stopped", "■", "Stop"),)
COLUMNS = ["strategy", "state", "equity", "return", "drawdown", "trades", "curve"]
NUMBERS = ["equity", "return", "drawdown", "trades"]
STATE_COLOURS = {
    "running": "#1b7f3b",
    "paused": "#b26a00",
    "stopped": "#555555",
    "degraded": "#d84315",
    "error": "#c62828",
}


def control_buttons() -> list[tuple[str, str]]:
    """Give each control column's cell: a small button named for what it does."""
    return [
        (column, f'<button type="button" title="{name}" aria-label="{name}">{label}</button>')
        for column, _, label, name in CONTROLS
    ]


def sparkline(values: Sequence[float], width: int = SPARK_WIDTH, height: int = SPARK_HEIGHT) -> str:
    """Give an equity curve as a small inline SVG line, green when it ends above where it
    started, red below (empty for fewer than two finite points)."""
    curve = np.asarray(values, dtype=float)
    curve = curve[np.isfinite(curve)]
    if len(curve) < 2:
        return ""
    if len(curve) > SPARK_POINTS:
        curve = curve[np.linspace(0, len(curve) - 1, SPARK_POINTS).round().astype(int)]
    low, high = float(curve.min()), float(curve.max())
    span = high - low
    xs = np.linspace(1.0, width - 1.0, len(curve))
    ys = (
        np.full(len(curve), height / 2.0)
        if span <= 0
        else (height - 2.0) - (curve - low) / span * (height - 4.0)
    )
    points = " ".join(f"{x:.1f},{y:.1f}" for x, y in zip(xs, ys, strict=True))
    colour = COLOURS[tone(float(curve[-1] - curve[0]))]
    return (
        f'<svg width="{width}" height="{height}" viewBox="0 0 {width} {height}">'
        f'<polyline fill="none" stroke="{colour}" stroke-width="1.5" points="{points}"/></svg>'
    )


def drawdown(equity: float, peak: float) -> float:
    """Give how far equity is below its peak, as a fraction (0 at a new high)."""
    top = max(peak, equity)
    return 1.0 - equity / top if top > 0 else 0.0


def strategy_rows(
    status: pd.DataFrame, peaks: Mapping[str, float], curves: Mapping[str, str]
) -> pd.DataFrame:
    """Give the table's rows from `LiveEngine.status()`: display text, amounts in each
    market's quote currency, the current drawdown from each strategy's peak equity, and
    each one's sparkline (already drawn, by strategy id)."""
    rows = []
    for row in status.to_dict("records"):
        sid = str(row["strategy_id"])
        quote = quote_of(row["symbol"])
        equity = float(row["equity"])
        rows.append(
            {
                "strategy": sid,
                "state": str(row["state"]),
                "equity": money(equity, quote),
                "return": percent(row["return"], signed=True),
                "drawdown": percent(drawdown(equity, peaks.get(sid, equity))),
                "trades": f"{int(row['trades']):,d}",
                "curve": curves.get(sid, ""),
            }
        )
    return pd.DataFrame(rows, columns=COLUMNS)


def changed_cells(old: pd.DataFrame, new: pd.DataFrame) -> dict[str, list[tuple[int, Any]]] | None:
    """Give the cells of ``new``'s first rows that differ from ``old`` as a Tabulator patch
    (column → [(row, value)]); None when ``old``'s strategies are not the first of ``new``'s
    in the same order (the table is then replaced). Rows past ``old``'s are new strategies,
    appended (`new_rows`)."""
    ids = list(old["strategy"])
    if list(old.columns) != list(new.columns) or list(new["strategy"][: len(ids)]) != ids:
        return None
    patch: dict[str, list[tuple[int, Any]]] = {}
    head = new.iloc[: len(ids)]
    for column in new.columns:
        differ = np.flatnonzero(old[column].to_numpy() != head[column].to_numpy())
        if len(differ):
            patch[column] = [(int(i), head[column].iat[i]) for i in differ]
    return patch


def new_rows(old: pd.DataFrame, new: pd.DataFrame) -> pd.DataFrame:
    """Give the rows of ``new`` past ``old``'s: strategies added since (to append), with
    their own row numbers as index (the table's index stays unique: clicks find their row)."""
    return new.iloc[len(old) :]


def details_text(row: Mapping[str, Any], stored_state: str) -> str:
    """Give the selected strategy's details as Markdown (amounts in its quote currency)."""
    quote = quote_of(row["symbol"])
    problem = row.get("problem")
    why = f"  \n⚠ {problem}" if isinstance(problem, str) and problem else ""
    return (
        f"#### {row['strategy_id']}\n"
        f"**{row['state']}** (stored state: {stored_state}) · {row['symbol']}{why}  \n"
        f"equity **{money(row['equity'], quote)}** · return "
        f"**{percent(row['return'], signed=True)}**  \n"
        f"position {money(row['position'], base_of(row['symbol']))} · "
        f"cash {money(row['cash'], quote)}  \n"
        f"realized {pnl(row['realized_pnl'], quote)} · "
        f"unrealized {pnl(row['unrealized_pnl'], quote)}  \n"
        f"fees {money(row['fees'], quote)} · trades {int(row['trades']):,d}"
    )


def base_of(symbol: str) -> str:
    """Give a market's base currency: `ETH/BTC` → `ETH`."""
    return str(symbol).split("/")[0]


def cell_colours() -> dict[str, HTMLTemplateFormatter]:
    """Give the formatters that colour the state and return cells in the browser: states in
    their colour, returns by their sign as `tone_of_text` reads it (`+0.00%` is flat).

    Coloured by the browser as it draws a cell, not by a pandas style: a style is computed
    again and sent on every patch, and the browser then redraws every row of the table (once
    a second, fifty rows; a click landing on a row being redrawn is lost).
    """
    states = json.dumps(STATE_COLOURS)
    flat, gain, loss = (COLOURS[t] for t in (Tone.FLAT, Tone.GAIN, Tone.LOSS))
    state = f'<span style="color: <%= {states}[value] || "{flat}" %>"><%= value %></span>'
    signed = (
        f'<span style="color: <%= !/[1-9∞]/.test(String(value).split(" ")[0]) ? "{flat}" : '
        f'String(value)[0] == "+" ? "{gain}" : String(value)[0] == "-" ? "{loss}" : "{flat}" %>">'
        "<%= value %></span>"
    )
    return {
        "state": HTMLTemplateFormatter(template=state),
        "return": HTMLTemplateFormatter(template=signed),
    }


class StrategyTable:
    """The strategies of the shared engine as one sortable table, and the selected one's
    details; ``on_select`` is told each strategy picked (a click on its row or control)."""

    def __init__(
        self,
        acting: ActingEngine,
        curve: Callable[[str], Sequence[float]],
        on_select: Callable[[str], None],
    ) -> None:
        self.acting = acting
        self.curve = curve
        self.on_select = on_select
        controls = acting.may(Action.SET_STATE)  # shown to those who may; checked anyway
        self.table = pn.widgets.Tabulator(
            pd.DataFrame(columns=COLUMNS),
            name="strategies",
            show_index=False,
            disabled=True,
            selectable=1,
            layout="fit_columns",  # the columns share its width: nothing spills over
            buttons=dict(control_buttons()) if controls else {},
            css_classes=["strategy-table"],
            formatters={"curve": {"type": "html"}, **cell_colours()},
            configuration={
                "columns": [
                    *({"field": c, **NUMBER_SORT} for c in NUMBERS),
                    {"field": "curve", "headerSort": False},
                ],
                # Grows with its rows up to this, then scrolls (drawing only the rows seen).
                "maxHeight": f"{MAX_HEIGHT_PX}px",
                "columnDefaults": {"minWidth": 30},
            },
            titles={"curve": "equity", "equity": "equity now"},
            theme="simple",
            stylesheets=[COMPACT],
            widths=COLUMN_PX,
            width=WIDTH_PX,
        )
        self.table.on_click(self._clicked)
        self.table.param.watch(self._selected, "selection")
        self.details = pn.pane.Markdown(
            "", name="strategy-details", margin=(0, 10), css_classes=["strategy-details"]
        )
        self.note = pn.pane.Markdown(
            "", name="strategy-note", margin=(0, 10), css_classes=["strategy-note"]
        )
        self.selected: str | None = None
        self._sparks: dict[str, tuple[int, float, str]] = {}
        self._status: pd.DataFrame | None = None
        self._stored: Mapping[str, str] = {}

    # -- what the rows show -------------------------------------------------------------
    def _spark(self, sid: str) -> str:
        """Give a strategy's sparkline, drawn again only when its curve changed."""
        values = self.curve(sid)
        key = (len(values), float(values[-1]) if len(values) else float("nan"))
        cached = self._sparks.get(sid)
        if cached is None or cached[:2] != key:
            cached = (*key, sparkline(values))
            self._sparks[sid] = cached
        return cached[2]

    def update(
        self, status: pd.DataFrame, peaks: Mapping[str, float], stored: Mapping[str, str]
    ) -> None:
        """Show the engine's status now: patch the cells that changed, or the whole table
        when strategies came or went; refresh the selected one's details."""
        self._status, self._stored = status, stored
        curves = {sid: self._spark(sid) for sid in status.get("strategy_id", [])}
        rows = strategy_rows(status, peaks, curves)
        old = self.table.value
        patch = changed_cells(old, rows) if len(old) else None
        if patch is None:
            self.table.value = rows
        else:
            # Patched and appended, never replaced: a replaced table is sent with new
            # column models, which races the patches already on their way to the browser.
            if patch:
                self.table.patch(patch, as_index=False)
            if len(rows) > len(old):
                self.table.stream(new_rows(old, rows), reset_index=False)
        if self.selected is None and len(rows):
            self.select(str(rows["strategy"].iat[0]))
        self._show_details()

    def _show_details(self) -> None:
        if self._status is None or self.selected is None:
            return
        found = self._status[self._status["strategy_id"] == self.selected]
        if found.empty:
            return
        row = found.iloc[0].to_dict()
        text = details_text(row, str(self._stored.get(self.selected, "?")))
        if text != self.details.object:
            self.details.object = text

    # -- choosing and acting ------------------------------------------------------------
    def select(self, sid: str) -> None:
        """Show this strategy's chart and details."""
        if sid != self.selected:
            # The note stays: it names its strategy, and a click on a row's control also
            # selects the row (Tabulator sends both), which must not wipe what it said.
            self.selected = sid
            self.on_select(sid)
        ids = list(self.table.value["strategy"])
        if sid in ids and self.table.selection != [ids.index(sid)]:
            self.table.selection = [ids.index(sid)]
        self._show_details()

    def _selected(self, event: Any) -> None:
        if event.new:
            self.select(str(self.table.value["strategy"].iat[event.new[0]]))

    def _clicked(self, event: Any) -> None:
        # A control acts on its row's strategy (the chart stays where it is); any other cell
        # picks the strategy (Tabulator's own row selection does not reach the server when a
        # cell is clicked).
        states = {column: state for column, state, _, _ in CONTROLS}
        try:
            sid = str(self.table.value["strategy"].iat[event.row])
        except (IndexError, TypeError):
            self.note.object = f"No strategy at row {event.row!r}."
            return
        if event.column in states:
            self.set_state(sid, states[event.column])
        else:
            self.select(sid)

    def set_state(self, sid: str, state: str) -> None:
        """Run, pause or stop a strategy as the acting user (the engine stores the change)."""
        try:
            self.acting.set_state(sid, state)
            self.note.object = f"{sid}: set {state}."
        except (NotAuthorized, BadInput, ActionFailed) as exc:
            why = f"Refused: {exc}" if isinstance(exc, NotAuthorized) else str(exc)
            self.note.object = f"{sid}: {why}"

    def __panel__(self) -> Any:
        return pn.Column(self.table, self.details, self.note, width=WIDTH_PX)
