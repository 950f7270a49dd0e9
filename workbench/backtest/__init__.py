"""Backtests: one run, sweeps, Optuna search and walk-forward, all on one compiled pass.

`backtest(spec, candles, params)` runs one combination (stats, trades, equity);
`sweep(spec, candles, grid)` runs a grid in memory-bounded chunks (locally or on Dask) and
keeps one row of statistics per combination. Both run `workbench.backtest.run_nb`, which
repeats vectorbt's ``from_signals`` order arithmetic without importing vectorbt
(`workbench.backtest.reference` is the vectorbt run the tests hold it equal to). Fill rules:
`workbench.backtest.plan`; sizing: `workbench.backtest.sizing`; statistics and annualization:
`workbench.portfolio.stats` (shared with the live metrics).
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
