"""The research app's jobs, as they run in a worker process, and the pool that runs them.

Each job takes `report(done, total)` first, then plain data: the spec as its JSON document (a
`Spec` that has built its parameter class does not pickle), candles, grids and settings that
the caller read from the store. Results come back as plain values; a `BacktestResult` comes
back without its spec (the caller puts its own back) and without the simulation arrays.

The pool is one per process (`research_pool`), sized by the `research_workers` setting; a
sweep's chunks go to the Dask scheduler of the `research_cluster` setting when one is set.
"""

from __future__ import annotations

import atexit
import threading
from dataclasses import replace
from typing import Any

import numpy as np
import pandas as pd

from workbench.backtest.engine import BacktestResult, backtest
from workbench.backtest.montecarlo import MonteCarloResult, monte_carlo
from workbench.backtest.sweep import SweepSettings, sweep
from workbench.backtest.walkforward import WalkForwardResult, walk_forward
from workbench.jobs.pool import JobPool, Report
from workbench.strategy import load_spec

# Research yields the cores to trading (the `research_nice` setting, 19 by default): on a
# busy machine the server's process runs first (nice 10 still took a visible share from the
# engine's loop on 2 saturated cores).
_pool: JobPool | None = None
_pool_lock = threading.Lock()


def research_pool() -> JobPool:
    """Give this process's pool of research workers (created on first use, closed at exit)."""
    global _pool
    with _pool_lock:
        if _pool is None:
            from workbench.settings import load_settings

            settings = load_settings()
            _pool = JobPool(settings.research_workers, warm=[__name__], nice=settings.research_nice)
            atexit.register(_pool.close)
        return _pool


def backtest_job(
    report: Report,
    raw: dict[str, Any],
    candles: pd.DataFrame,
    params: dict[str, Any],
    settings: SweepSettings,
) -> BacktestResult:
    """Give the backtest of `raw` on `candles` with `params` and the settings' costs."""
    result = backtest(
        load_spec(raw),
        candles,
        params,
        cash=settings.cash,
        fees=settings.fee_rate,
        slippage=settings.slippage,
        fee_asset=settings.fee_asset,
        lot_rules=None if settings.lot_rules is None else dict(settings.lot_rules),
    )
    return replace(result, spec=None, simulation=None)  # type: ignore[arg-type]


def sweep_job(
    report: Report,
    raw: dict[str, Any],
    candles: pd.DataFrame,
    grid: pd.DataFrame,
    settings: SweepSettings,
    chunk_size: int,
    cluster: str | None = None,
) -> pd.DataFrame:
    """Give the sweep's table (one row per combination of `grid`), reporting per chunk."""
    spec = load_spec(raw)
    return sweep(
        spec,
        {spec.market.symbol: candles},
        grid,
        settings,
        chunk_size=chunk_size,
        cluster=cluster,
        progress=report,
    )


def walk_forward_job(
    report: Report,
    raw: dict[str, Any],
    candles: pd.DataFrame,
    grid: pd.DataFrame,
    train: pd.Timedelta,
    test: pd.Timedelta,
    anchored: bool,
    metric: str,
    settings: SweepSettings,
) -> WalkForwardResult:
    """Give the walk-forward analysis of `grid`, reporting per window."""
    spec = load_spec(raw)
    return walk_forward(
        spec,
        {spec.market.symbol: candles},
        grid,
        train,
        test,
        anchored,
        metric,
        settings,
        progress=report,
    )


def monte_carlo_job(
    report: Report, pnl: np.ndarray, cash: float, args: dict[str, Any]
) -> tuple[MonteCarloResult, pd.DataFrame]:
    """Give the Monte Carlo of the trades' `pnl` and its equity bands (the same paths)."""
    from workbench.ui.backtest_charts import monte_carlo_bands

    result = monte_carlo(pnl, cash, **args)
    report(1, 2)
    return result, monte_carlo_bands(pnl, cash, **args)
