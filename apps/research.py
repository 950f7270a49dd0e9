"""The research app: backtests, sweeps, walk-forward, Monte Carlo and stored runs
(`panel serve apps/research.py`).

Served beside the live dashboard in one process (`workbench demo`), it reads and writes through
that process's connection: `Store.open` of a file this process holds borrows a cursor of it.
"""

import panel as pn

from workbench.settings import load_settings
from workbench.ui.layout import without_mathjax
from workbench.ui.research import ResearchApp

pn.extension("tabulator")
without_mathjax()

ResearchApp(load_settings().db).template().servable()
