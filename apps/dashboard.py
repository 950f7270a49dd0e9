"""The live dashboard: `panel serve apps/dashboard.py` (what `make demo` opens).

Paper trading on the local exchange, which replays the stored candles; one engine per server
process, shared by every browser session (see workbench/ui/shared.py).
"""

import panel as pn

from workbench.ui.layout import without_mathjax
from workbench.ui.live import LiveDashboard

pn.extension("tabulator", notifications=True)
without_mathjax()

dashboard = LiveDashboard()
dashboard.serve()
dashboard.template().servable()
