"""`workbench demo`: the live dashboard and the research app on the embedded defaults, served
by one `panel serve` process (it owns the database; both apps share its one connection)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Annotated

import typer

from workbench.cli.common import DbOption, console, fail, settings_with
from workbench.data.shipped import ensure_shipped, shipped_files
from workbench.store import Store

APPS = Path(__file__).resolve().parents[2] / "apps"
APP = APPS / "dashboard.py"
RESEARCH = APPS / "research.py"
# Starts the live engine with the server rather than with the first page.
SETUP = Path(__file__).resolve().parents[1] / "ui" / "server_setup.py"


def demo(
    port: Annotated[int, typer.Option(help="dashboard port")] = 5006,
    db: DbOption = None,
) -> None:
    """Import the shipped candles on first run, then serve the dashboard and the research app
    on 127.0.0.1."""
    settings = settings_with(db)
    if not shipped_files() or not APP.exists() or not RESEARCH.exists():
        fail("the demo runs from a clone of the repository (data/candles and apps/ are missing)")
    with Store.open(settings.db) as store:
        for done in ensure_shipped(store):
            console.print(f"imported {done.symbol} {done.timeframe}: {done.rows} bars")
    console.print(f"live dashboard: http://127.0.0.1:{port}/dashboard")
    console.print(f"research:       http://127.0.0.1:{port}/research  (Ctrl-C stops both)")
    command = [
        sys.executable,
        "-m",
        "panel",
        "serve",
        str(APP),
        str(RESEARCH),
        "--setup",
        str(SETUP),
        "--address",
        "127.0.0.1",
        "--port",
        str(port),
        "--allow-websocket-origin",
        f"127.0.0.1:{port}",
        "--allow-websocket-origin",
        f"localhost:{port}",
    ]
    server = subprocess.Popen(command, env={**os.environ, "WORKBENCH_DB": str(settings.db)})
    try:
        code = server.wait()
    except KeyboardInterrupt:
        # Ctrl-C reached the server too: let it stop its engine and write what it holds.
        try:
            code = server.wait(timeout=60)
        except (KeyboardInterrupt, subprocess.TimeoutExpired):
            server.terminate()
            code = server.wait()
    raise typer.Exit(0 if code in (0, -2, 130) else code)
