"""The `workbench` command: one subcommand per job, `workbench <noun> <verb>`.

Each subcommand's module is imported only when that subcommand runs (or help lists it), so
`workbench backtest` does not pay for the live engine, the dashboard or the user store.
"""

from __future__ import annotations

import atexit
import contextlib
import gc
import importlib
from typing import Any, ClassVar

import click
import typer

from workbench.cli.common import WorkbenchGroup

#: name -> "module:attribute", the attribute a `typer.Typer` (a command group) or a function.
COMMANDS = {
    "config": "workbench.cli.config:app",
    "data": "workbench.cli.data:app",
    "db": "workbench.cli.db:app",
    "demo": "workbench.cli.demo:demo",
    "exchange": "workbench.cli.exchange:app",
    "strategy": "workbench.cli.strategy:app",
    "live": "workbench.cli.live:app",
    "serve": "workbench.cli.serve:serve",
    "users": "workbench.cli.users:app",
    "keys": "workbench.cli.keys:app",
    "audit": "workbench.cli.audit:app",
    "status": "workbench.cli.ops:status",
    "doctor": "workbench.cli.ops:doctor",
    "backup": "workbench.cli.ops:backup",
    "restore": "workbench.cli.ops:restore",
    "backtest": "workbench.cli.backtest:backtest_command",
    "sweep": "workbench.cli.optimize:sweep_command",
    "walkforward": "workbench.cli.optimize:walkforward_command",
    "montecarlo": "workbench.cli.optimize:montecarlo_command",
    "runs": "workbench.cli.backtest:runs_app",
}


def load_command(name: str, target: str) -> click.Command:
    """Import one subcommand and build its click command under ``name``."""
    module, attribute = target.split(":")
    value = getattr(importlib.import_module(module), attribute)
    if isinstance(value, typer.Typer):
        command = typer.main.get_group(value)
    else:
        single = typer.Typer()
        single.command(name)(value)
        command = typer.main.get_command(single)
    command.name = name
    return command


class RootGroup(WorkbenchGroup):
    """The root group: subcommands from `COMMANDS`, each loaded on first use."""

    lazy: ClassVar[dict[str, str]] = COMMANDS

    def list_commands(self, ctx: click.Context) -> list[str]:
        return [*self.commands, *(name for name in self.lazy if name not in self.commands)]

    def get_command(self, ctx: click.Context, cmd_name: str) -> Any:
        command = self.commands.get(cmd_name)
        if command is None and cmd_name in self.lazy:
            command = load_command(cmd_name, self.lazy[cmd_name])
            self.commands[cmd_name] = command
        return command


app = typer.Typer(
    cls=RootGroup,
    help="Crypto trading workbench: candle data, strategies, backtests, live trading.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)


@app.callback()
def root() -> None:
    """Crypto trading workbench: candle data, strategies, backtests, live trading."""


def main() -> None:
    """Run the command line (secrets in the settings never reach a log line or traceback)."""
    from workbench.auth import redact
    from workbench.settings import load_settings

    # Settings that do not load are reported by the command that needs them.
    with contextlib.suppress(ValueError):
        redact.install(redact.settings_secrets(load_settings()))
    # Last at exit: the interpreter's final garbage collections skip the heap (pandas,
    # numba, ccxt's SSL contexts...). They walked all of it for 3-4 s of a `live run`'s stop
    # on a busy machine (up to 30 s at load 18), longer than the engine's whole stop.
    atexit.register(gc.freeze)
    app()
