"""One root for the workbench's errors, and one way the command line reports them."""

from __future__ import annotations

import importlib
import inspect
import pkgutil
from pathlib import Path

import pytest
import typer
from shipped import CANDLE_DIR
from typer.testing import CliRunner

import workbench
from workbench.cli import app
from workbench.cli.common import WorkbenchGroup
from workbench.data import import_file
from workbench.errors import WorkbenchError
from workbench.store import Store, StoreError

ROOT = Path(__file__).resolve().parents[1]
SPEC = str(ROOT / "data" / "strategies" / "ema_cross_rsi.json")


# Errors that mean a bug in the workbench, not something a user can act on: they stay out of
# the root so the command line shows their traceback instead of one tidy line.
BUGS = {"workbench.broker.models.OrderTransitionError"}
# Scripts that act when imported: the command line and panel's server setup.
SCRIPTS = {"workbench.__main__", "workbench.ui.server_setup"}


def workbench_modules() -> list[str]:
    return [
        m.name
        for m in pkgutil.walk_packages(workbench.__path__, "workbench.")
        if m.name not in SCRIPTS
    ]


def test_every_error_the_package_defines_is_a_workbench_error() -> None:
    defined = []
    for name in workbench_modules():
        module = importlib.import_module(name)
        for _, cls in inspect.getmembers(module, inspect.isclass):
            if cls.__module__ == name and issubclass(cls, BaseException):
                defined.append(cls)
    assert len(defined) >= 15  # the areas' errors were found, not an empty walk
    names = {f"{c.__module__}.{c.__qualname__}": c for c in defined}
    outside = [n for n, c in names.items() if not issubclass(c, WorkbenchError) and n not in BUGS]
    assert outside == []
    assert all(not issubclass(names[n], WorkbenchError) for n in BUGS)
    # workbench/errors.py draws the tree: it names every one.
    import workbench.errors

    tree = workbench.errors.__doc__ or ""
    assert [
        n for n, c in names.items() if issubclass(c, WorkbenchError) and c.__name__ not in tree
    ] == []


def test_the_command_group_reports_a_workbench_error_in_one_line() -> None:
    demo = typer.Typer(cls=WorkbenchGroup)

    @demo.command()
    def refuse() -> None:
        raise StoreError("the file is held by pid 7")

    @demo.command()
    def crash() -> None:
        raise RuntimeError("a bug")

    result = CliRunner().invoke(demo, ["refuse"])
    assert result.exit_code == 1
    assert result.stderr == "error: the file is held by pid 7\n"
    # Anything else is a bug: it is not dressed up as a user error.
    crashed = CliRunner().invoke(demo, ["crash"])
    assert isinstance(crashed.exception, RuntimeError)


@pytest.fixture(scope="module")
def db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("errors") / "wb.duckdb"
    with Store.open(path) as store:
        import_file(store, CANDLE_DIR / "ETH_BTC-5m.csv.gz", exchange="local")
    return path


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["backtest", "{bad_spec}"], "invalid strategy spec"),  # SpecError
        (["runs", "show", "nope"], "no run 'nope'"),  # StoreError
        (["sweep", SPEC, "--grid", "nope=1:2:1"], "--grid 'nope=1:2:1'"),  # SweepError
        (["backtest", SPEC, "--start", "yesterday-ish"], "start 'yesterday-ish'"),  # Backtest
        (["walkforward", SPEC, "--train", "60d"], "shorter than one training"),  # BacktestError
        (["backtest", SPEC, "--timeframe", "7x"], "7x"),  # SpecError from the timeframe
    ],
)
def test_each_area_s_error_reaches_the_user_the_same_way(
    args: list[str], says: str, db: Path, tmp_path: Path
) -> None:
    bad_spec = tmp_path / "bad.json"
    bad_spec.write_text('{"name": ""}')
    argv = [a.format(bad_spec=bad_spec) for a in args]
    result = CliRunner().invoke(app, [*argv, "--db", str(db)])
    assert result.exit_code == 1, result.output
    assert result.stderr.startswith("error: ")
    assert says in result.stderr
    assert "Traceback" not in result.output
