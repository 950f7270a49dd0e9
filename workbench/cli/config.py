"""`workbench config`: the settings in force."""

from __future__ import annotations

import typer
from rich.table import Table

from workbench.cli.common import JsonOption, console, print_json
from workbench.settings import config_file, load_settings

app = typer.Typer(help="Show the settings in force.", no_args_is_help=True)


@app.command("show")
def show(as_json: JsonOption = False) -> None:
    """Print the effective settings (environment, TOML file, defaults), secrets masked."""
    shown = load_settings().masked()
    if as_json:
        print_json(shown)
        return
    source = config_file()
    table = Table(title=f"settings (file: {source}{'' if source.exists() else ', absent'})")
    table.add_column("name")
    table.add_column("value")
    table.add_column("variable")
    for name, value in shown.items():
        table.add_row(name, str(value), f"WORKBENCH_{name.upper()}")
    console.print(table)
