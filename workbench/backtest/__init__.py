"""Backtests on vectorbt: one run, sweeps, Optuna search, walk-forward, Monte Carlo.

`backtest(spec, candles, params)` runs one combination; `sweep(spec, candles, grid)` runs a
grid in memory-bounded chunks (locally or on Dask). Fill rules: `workbench.backtest.plan`;
sizing: `workbench.backtest.sizing`; statistics and annualization: `workbench.portfolio.stats`
(shared with the live metrics).
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
