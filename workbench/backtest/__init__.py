"""Backtests: one run, sweeps, Optuna search and walk-forward, all on one compiled pass.

Call the package to run one backtest: ``workbench.backtest(spec, candles, params)`` is
`workbench.backtest.engine.backtest` (stats, trades, equity). That is what
``from workbench import backtest`` gives: this package, callable, so the name means one
thing however it was imported. The modules:

* `engine`: ``backtest`` and ``simulate``: one combination's stats, trades and equity;
* `sweep`: ``sweep(spec, candles, grid)``, a grid in memory-bounded chunks, locally or on
  Dask (`cluster`), one row of statistics per combination;
* both run `run_nb` / `fused`, which repeat vectorbt's ``from_signals`` order arithmetic
  without importing vectorbt (`reference` is the vectorbt run the tests hold them equal to);
* `search` (Optuna), `walkforward`, `montecarlo`, `overfit` (deflated Sharpe);
* `persist`: candles from the store in, runs to the store out.

Fill rules: `workbench.backtest.plan`; sizing: `workbench.risk.sizing`; statistics and
annualization: `workbench.portfolio.stats` (shared with the live metrics). Nothing heavy is
imported until a name is used (numba's kernels take a second or more).
"""

from __future__ import annotations

import importlib
import inspect
import sys
import types
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from workbench.backtest.engine import BacktestResult, Simulation, backtest, simulate
    from workbench.backtest.errors import BacktestError, SweepError

# Names given by this package, and the module each lives in.
_NAMES = {
    "BacktestResult": "workbench.backtest.engine",
    "Simulation": "workbench.backtest.engine",
    "backtest": "workbench.backtest.engine",
    "simulate": "workbench.backtest.engine",
    "BacktestError": "workbench.backtest.errors",
    "SweepError": "workbench.backtest.errors",
}
__all__ = [
    "BacktestError",
    "BacktestResult",
    "Simulation",
    "SweepError",
    "backtest",
    "simulate",
]


def __getattr__(name: str) -> Any:
    if name in _NAMES:
        return getattr(importlib.import_module(_NAMES[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


class _CallablePackage(types.ModuleType):
    """This package's type: calling it runs `workbench.backtest.engine.backtest`."""

    def __call__(self, *args: Any, **kwargs: Any) -> BacktestResult:
        from workbench.backtest.engine import backtest

        return backtest(*args, **kwargs)

    @property
    def __signature__(self) -> inspect.Signature:  # what help() and Jupyter show for a call
        from workbench.backtest.engine import backtest

        return inspect.signature(backtest)


sys.modules[__name__].__class__ = _CallablePackage
