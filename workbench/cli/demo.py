"""`workbench demo`: the live dashboard and the research app on the embedded defaults, served
by one `panel serve` process on 127.0.0.1 (it owns the database; both apps share its one
connection). Auth is off unless WORKBENCH_AUTH=true; the page says so."""

from __future__ import annotations

from typing import Annotated

import typer

from workbench.cli.common import DbOption, settings_with
from workbench.cli.serve import APP, RESEARCH, SETUP, run_server

__all__ = ["APP", "RESEARCH", "SETUP", "demo"]


def demo(
    port: Annotated[int, typer.Option(help="dashboard port")] = 5006,
    db: DbOption = None,
) -> None:
    """Import the shipped candles on first run, then serve the dashboard and the research app
    on 127.0.0.1."""
    settings = settings_with(db)
    run_server(settings, address="127.0.0.1", port=port, auth=bool(settings.auth))
