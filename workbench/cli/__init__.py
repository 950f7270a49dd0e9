"""The `workbench` command: one subcommand per job, `workbench <noun> <verb>`."""

from __future__ import annotations

import typer

from workbench.cli import backtest as backtest_cli
from workbench.cli import config, data, db, demo, exchange, live, strategy
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
backtest_cli.register(app)


def main() -> None:
    """Run the command line."""
    app()
