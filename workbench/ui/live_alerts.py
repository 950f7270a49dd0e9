"""The dashboard's alerts: the stored history in a tab, and in-page notifications of fills,
rejected or refused orders and alerts as they happen.

The notes come from the session's event buffer (`EventBuffer.notes`, filled by the shared
`LiveService` from engine events and from the ops service's alerts); `notify` shows them as
Panel notifications (toasts) at the session's next tick.
"""

from __future__ import annotations

from typing import Any

import pandas as pd
import panel as pn

from workbench.ui.stat_tables import refill

ALERT_ROWS = 200
LEVELS = {"info": "info", "success": "success", "warning": "warning", "error": "error"}
TOAST_MS = {"info": 4000, "success": 4000, "warning": 8000, "error": 0}  # 0: until closed
MAX_TOASTS = 5  # per tick: a burst of fills must not bury the page


def notify(notes: list[tuple[str, str]]) -> int:
    """Show notes as notifications on the current page; give how many were shown."""
    notifications = pn.state.notifications
    if notifications is None or not notes:
        return 0
    shown = notes[-MAX_TOASTS:]
    for level, text in shown:
        kind = LEVELS.get(level, "info")
        getattr(notifications, kind)(text, duration=TOAST_MS[kind])
    return len(shown)


class AlertsView:
    """The alert history, newest first (what was raised, and whether it reached a sink)."""

    def __init__(self, store: Any) -> None:
        self.store = store
        self.table = pn.widgets.Tabulator(
            pd.DataFrame(),
            show_index=False,
            disabled=True,
            sizing_mode="stretch_width",
            name="alerts",
            pagination="local",
            page_size=25,
        )
        self.refresh()

    def refresh(self) -> None:
        frame = self.store.ops.alerts(limit=ALERT_ROWS)
        refill(self.table, frame.drop(columns=["alert_id"], errors="ignore"))

    def __panel__(self) -> Any:
        return pn.Column(
            pn.pane.Markdown(
                "Alerts raised by this server's engine and where they went "
                "(`WORKBENCH_ALERT_URLS`)."
            ),
            self.table,
            sizing_mode="stretch_width",
        )
