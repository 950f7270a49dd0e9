"""What every subcommand shares: settings with command-line overrides, printing, errors.

Errors are reported in one place: the root command group (`WorkbenchGroup`) prints any
`WorkbenchError` a command lets through as ``error: <what and why>`` on stderr and exits 1,
so commands do not catch the workbench's errors themselves; `fail` is for what a command
checks on its own.

``console`` (stdout) and ``errors`` (stderr) are rich consoles made on first use: a command
that prints JSON does not import rich.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, NoReturn

import click
import typer
from typer.core import TyperGroup

from workbench.errors import WorkbenchError
from workbench.settings import Settings, load_settings

if TYPE_CHECKING:
    import pandas as pd
    from rich.console import Console

    console: Console
    errors: Console


def __getattr__(name: str) -> Any:
    if name not in ("console", "errors"):
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return _console(name)


def _console(name: str) -> Console:
    """Give the rich console ``console`` or ``errors``, made on first use."""
    made = globals().get(name)
    if made is None:
        from rich.console import Console

        made = Console(stderr=name == "errors", soft_wrap=True)
        globals()[name] = made  # once made, a plain attribute
    return made


DbOption = Annotated[
    str | None,
    typer.Option("--db", help="DuckDB file or postgresql:// URL (default: settings, WORKBENCH_DB)"),
]
JsonOption = Annotated[bool, typer.Option("--json", help="print machine-readable JSON")]


def settings_with(db: str | Path | None = None, exchange: str | None = None) -> Settings:
    """Give the settings in force, with the options given on the command line on top."""
    overrides: dict[str, Any] = {}
    if db is not None:
        overrides["db"] = str(db)
    if exchange is not None:
        overrides["exchange"] = exchange
    return load_settings(**overrides)


def fail(message: str, code: int = 1) -> NoReturn:
    """Print an error the user can act on and exit."""
    _console("errors").print(f"[bold red]error:[/] {message}", highlight=False, markup=True)
    raise typer.Exit(code)


def ask_secret(prompt: str, variable: str, *, twice: bool = False) -> str:
    """Give a secret typed at the terminal (not echoed; `twice`: typed again to confirm);
    with no terminal to ask at, fail naming `variable`, the setting that gives it instead."""
    if not sys.stdin.isatty():
        fail(f"{prompt}: no terminal to ask at; set {variable} (scripts, services)")
    value = str(typer.prompt(prompt, hide_input=True))
    if twice and typer.prompt("again", hide_input=True) != value:
        fail(f"{prompt}: the two differ; nothing changed")
    return value


class WorkbenchGroup(TyperGroup):
    """The `workbench` command group: any `WorkbenchError` becomes one `fail` line, exit 1."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except WorkbenchError as exc:
            fail(str(exc))


def print_frame(frame: pd.DataFrame, title: str | None = None, as_json: bool = False) -> None:
    """Print a DataFrame as a table, or as JSON records."""
    if as_json:
        typer.echo(frame.to_json(orient="records", date_format="iso", indent=2))
        return
    from rich.table import Table

    table = Table(title=title)
    for column in frame.columns:
        table.add_column(str(column))
    for row in frame.itertuples(index=False):
        table.add_row(*(str(value) for value in row))
    _console("console").print(table)


def print_json(value: Any) -> None:
    """Print a value as indented JSON."""
    typer.echo(json.dumps(value, indent=2, default=str))
