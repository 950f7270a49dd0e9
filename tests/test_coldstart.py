"""A cold start loads only what the command runs (the figures are in benchmarks/bench_coldstart.py).

One fresh interpreter runs a backtest through the face and resolves the `backtest` command of
the CLI, then lists the heavy modules it loaded: none of vectorbt (only a vectorbt Portfolio
asks for it), rich (only a command printing a table or an error), psycopg (only a PostgreSQL
store), scipy.linalg (numba's BLAS check, deferred by `workbench.kernel_cache`), numba's
compiler registries (random generators, cffi: a kernel loaded from numba's cache needs none,
`workbench.kernel_cache.load_cached_lightly`), the live engine, the dashboard or the user
store. A compilation after such a load still finds them.
"""

from __future__ import annotations

import json
import subprocess
import sys

from shipped import ROOT

UNWANTED = (
    "vectorbt",
    "rich",
    "psycopg",
    "scipy.linalg",
    "numba.np.random.generator_methods",
    "numba.core.typing.cffi_utils",
    "workbench.live.engine",
    "workbench.live.trader",
    "workbench.auth.accounts",
    "panel",
)

PROGRAM = f"""
import json, sys
from workbench import backtest, load_spec
from workbench.data import read_candle_file
result = backtest(load_spec("data/strategies/sma_cross.json"),
                  read_candle_file("data/candles/ETH_BTC-5m.csv.gz", "5m"))
assert result.stats["trades"] > 0
import click
from workbench.cli import app
import typer.main
group = typer.main.get_command(app)
assert group.get_command(click.Context(group), "backtest") is not None
print(json.dumps([m for m in {UNWANTED!r} if m in sys.modules]))
"""


def test_a_backtest_and_its_command_load_nothing_they_do_not_run() -> None:
    done = subprocess.run(
        [sys.executable, "-c", PROGRAM], cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert json.loads(done.stdout.strip().splitlines()[-1]) == []


COMPILE_AFTER_LOAD = """
import numpy as np
from numba import njit
from workbench import backtest, load_spec
from workbench.data import read_candle_file
result = backtest(load_spec("data/strategies/sma_cross.json"),
                  read_candle_file("data/candles/ETH_BTC-5m.csv.gz", "5m"))
@njit
def draws(n):
    a = np.random.random(n)  # numba's random generators: a registry the load skipped
    return np.dot(a, a), a.min()  # np.dot: the BLAS check, deferred at import
dot, low = draws(50)
assert 0.0 <= low < 1.0 and 50 * low * low <= dot < 50.0
print(result.stats["trades"])
"""


def test_a_compilation_after_a_cached_kernel_loads_finds_what_it_needs() -> None:
    done = subprocess.run(
        [sys.executable, "-c", COMPILE_AFTER_LOAD],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    assert int(done.stdout.split()[-1]) > 0
