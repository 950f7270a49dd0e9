"""The workbench dashboard: `panel serve apps/dashboard.py` (what `make demo` opens)."""

import panel as pn

from workbench.settings import load_settings
from workbench.ui.history import HistoryView

pn.extension("tabulator")

settings = load_settings()
pn.template.BootstrapTemplate(
    title="Workbench",
    main=[HistoryView(settings.db)],
    header_background="#1f2937",
).servable()
