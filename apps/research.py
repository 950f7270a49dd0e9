"""The research app: backtests, sweeps, walk-forward, Monte Carlo and stored runs
(`panel serve apps/research.py`)."""

import panel as pn

from workbench.settings import load_settings
from workbench.ui.research import ResearchApp

pn.extension("tabulator")

ResearchApp(load_settings().db).template().servable()
