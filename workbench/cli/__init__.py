"""The `workbench` command: one subcommand per job, `workbench <noun> <verb>`."""

from __future__ import annotations

import contextlib

import typer

from workbench.cli import (
    audit,
    config,
    data,
    db,
    demo,
    exchange,
    keys,
    live,
    ops,
    serve,
    strategy,
    users,
)
from workbench.cli import backtest as backtest_cli
from workbench.cli.common import WorkbenchGroup

app = typer.Typer(
    cls=WorkbenchGroup,
    help="Crypto trading workbench: candle data, strategies, backtests, live trading.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
app.add_typer(config.app, name="config")
app.add_typer(data.app, name="data")
app.add_typer(db.app, name="db")
app.command("demo")(demo.demo)
app.add_typer(exchange.app, name="exchange")
app.add_typer(strategy.app, name="strategy")
app.add_typer(live.app, name="live")
app.command("serve")(serve.serve)
app.add_typer(users.app, name="users")
app.add_typer(keys.app, name="keys")
app.add_typer(audit.app, name="audit")
app.command("status")(ops.status)
app.command("doctor")(ops.doctor)
app.command("backup")(ops.backup)
app.command("restore")(ops.restore)
backtest_cli.register(app)


def main() -> None:
    """Run the command line (secrets in the settings never reach a log line or traceback)."""
    from workbench.auth import redact
    from workbench.settings import load_settings

    # Settings that do not load are reported by the command that needs them.
    with contextlib.suppress(ValueError):
        redact.install(redact.settings_secrets(load_settings()))
    app()
