"""Backtests: one run on vectorbt; sweeps, Optuna search and walk-forward on the fused kernel.

`backtest(spec, candles, params)` runs one combination on vectorbt (stats, trades, equity);
`sweep(spec, candles, grid)` runs a grid in memory-bounded chunks (locally or on Dask) through
`workbench.backtest.fused`, which gives the same statistics without building a Portfolio.
Fill rules: `workbench.backtest.plan`; sizing: `workbench.backtest.sizing`; statistics and
annualization: `workbench.portfolio.stats` (shared with the live metrics).
"""

from workbench.backtest.engine import BacktestResult, Simulation, backtest, simulate
from workbench.backtest.sweep import SweepSettings, build_grid, sweep

__all__ = [
    "BacktestResult",
    "Simulation",
    "SweepSettings",
    "backtest",
    "build_grid",
    "simulate",
    "sweep",
]
