"""The package's face: the few names a notebook starts with, imported only when used."""

from __future__ import annotations

import inspect
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from shipped import CANDLE_DIR, shipped

import workbench

ROOT = Path(__file__).resolve().parents[1]
SPEC = ROOT / "data" / "strategies" / "ema_cross_rsi.json"
HEAVY = ["pandas", "numpy", "numba", "vectorbt", "duckdb", "panel", "ccxt", "dask", "optuna"]


def fresh_python(code: str) -> str:
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120
    )
    return done.stdout.strip().splitlines()[-1]


def test_importing_the_package_imports_none_of_its_heavy_dependencies() -> None:
    code = (
        f"import sys, json, workbench; print(json.dumps([m for m in {HEAVY} if m in sys.modules]))"
    )
    loaded = json.loads(fresh_python(code))
    assert loaded == []


def test_every_face_name_resolves_and_is_listed() -> None:
    assert workbench.__all__ == sorted(workbench._FACE)
    for name in workbench.__all__:
        assert getattr(workbench, name) is not None, name
        assert name in dir(workbench)
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        _ = workbench.nope


def test_backtest_is_one_object_however_it_was_imported_first() -> None:
    # A submodule imported first binds workbench.backtest to the package: the face's
    # `backtest` is that package, callable, so both orders give the same thing.
    for first in ("import workbench.backtest.errors", "from workbench import backtest"):
        out = fresh_python(
            f"{first}\n"
            "import sys, workbench\n"
            "from workbench import backtest\n"
            "print(backtest is sys.modules['workbench.backtest'] is workbench.backtest,"
            " callable(backtest))"
        )
        assert out == "True True"


def test_the_sweep_module_imports_plainly_beside_the_face_s_sweep_function() -> None:
    import workbench.backtest.sweep as module

    assert inspect.ismodule(module) and module.__name__ == "workbench.backtest.sweep"
    assert workbench.sweep is module.sweep and inspect.isfunction(workbench.sweep)
    from workbench.backtest import sweep as same

    assert same is module


@pytest.fixture(scope="module")
def eth() -> pd.DataFrame:
    return shipped(CANDLE_DIR / "ETH_BTC-5m.csv.gz")[1]


def test_a_first_hour_through_the_face_equals_the_deeper_calls(eth: pd.DataFrame) -> None:
    from workbench import (
        backtest,
        load_spec,
        montecarlo,
        sweep,
        walkforward,
    )
    from workbench.backtest.engine import backtest as engine_backtest
    from workbench.backtest.montecarlo import monte_carlo
    from workbench.backtest.sweep import build_grid
    from workbench.backtest.sweep import sweep as grid_sweep
    from workbench.backtest.walkforward import walk_forward

    spec = load_spec(SPEC)
    result = backtest(spec, eth, {"fast": 10})
    assert result.stats == engine_backtest(spec, {"ETH/BTC": eth}, {"fast": 10}).stats

    table = sweep(
        spec, eth, {"fast": range(10, 40, 10), "slow": [20, 30]}, constraints=["fast < slow"]
    )
    grid = build_grid(spec, {"fast": [10, 20, 30], "slow": [20, 30]}, ["fast < slow"])
    pd.testing.assert_frame_equal(table, grid_sweep(spec, {"ETH/BTC": eth}, grid))
    assert list(zip(table.fast, table.slow, strict=True)) == [(10, 20), (10, 30), (20, 30)]

    wf = walkforward(spec, eth, {"fast": [8, 12]}, train="7D", test="3D")
    deep = walk_forward(
        spec,
        {"ETH/BTC": eth},
        build_grid(spec, {"fast": [8, 12]}),
        pd.Timedelta("7D"),
        pd.Timedelta("3D"),
    )
    pd.testing.assert_series_equal(wf.oos_equity, deep.oos_equity)

    mc = montecarlo(result, paths=300, seed=3)
    closed = result.trades[result.trades["exit_reason"] != "open"]
    plain = monte_carlo(closed["pnl"].to_numpy(), result.cash, paths=300, seed=3)
    np.testing.assert_array_equal(mc.final_equity, plain.final_equity)


def test_a_grid_naming_a_parameter_the_spec_lacks_is_refused(eth: pd.DataFrame) -> None:
    from workbench import WorkbenchError, load_spec, sweep

    with pytest.raises(WorkbenchError, match=r"no parameter\(s\) \['fsat'\]"):
        sweep(load_spec(SPEC), eth, {"fsat": [5, 10]})
