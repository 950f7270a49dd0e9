"""Walk-forward analysis: optimize on a training window, trade the next test window, repeat.

Windows are calendar spans (``train`` and ``test`` Timedeltas). Rolling windows slide by
``test``; anchored windows keep the first bar as the training start. In each window the grid
is swept on the training bars, the best combination by ``metric`` is run on the test bars (the
training bars before them only warm the indicators up: no signal acts before the test window),
and the test equity curves are chained (each starts from the previous one's final equity) into
one out-of-sample curve. Walk-forward efficiency = annualized out-of-sample return (CAGR of the
stitched curve) / mean annualized in-sample return of the chosen combinations.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd

from workbench.backtest.engine import CandlesLike, align_candles, simulate
from workbench.backtest.errors import BacktestError
from workbench.backtest.sweep import GridLike, SweepSettings, as_grid, sweep
from workbench.portfolio.stats import STAT_COLUMNS, equity_stats
from workbench.strategy.model import Spec


@dataclass
class WalkForwardResult:
    """Per-window choices and metrics, the stitched out-of-sample equity, and a summary."""

    windows: pd.DataFrame
    oos_equity: pd.Series
    summary: dict[str, float]


def windows(
    index: pd.DatetimeIndex, train: pd.Timedelta, test: pd.Timedelta, anchored: bool = False
) -> list[tuple[int, int, int]]:
    """Give (train_start, test_start, test_end) bar positions; test_end is exclusive."""
    out, first = [], index[0]
    test_start_ts = first + train
    while True:
        test_end_ts = test_start_ts + test
        train_start_ts = first if anchored else test_start_ts - train
        a = int(index.searchsorted(train_start_ts))
        b = int(index.searchsorted(test_start_ts))
        c = int(index.searchsorted(test_end_ts))
        if b >= len(index) or c - b < 2:
            break
        out.append((a, b, c))
        test_start_ts = test_end_ts
    return out


def walk_forward(
    spec: Spec,
    candles: CandlesLike,
    grid: GridLike,
    train: pd.Timedelta | str,
    test: pd.Timedelta | str,
    anchored: bool = False,
    metric: str = "sharpe",
    settings: SweepSettings | None = None,
    progress: Callable[[int, int], None] | None = None,
    constraints: list[str] | None = None,
) -> WalkForwardResult:
    """Give the walk-forward analysis of ``grid`` over ``candles``.

    ``candles`` and ``grid`` (with ``constraints``) are as `sweep` takes them; ``train`` and
    ``test`` are spans (``pd.Timedelta`` or text such as ``"30D"``).
    """
    settings = settings or SweepSettings()
    candles = align_candles(candles, spec.market.symbol)
    grid = as_grid(spec, grid, constraints)
    train, test = _span("train", train), _span("test", test)
    if metric not in STAT_COLUMNS:
        raise BacktestError(f"metric {metric!r}: choose from {list(STAT_COLUMNS)}")
    index = pd.DatetimeIndex(next(iter(candles.values())).index)
    spans = windows(index, train, test, anchored)
    if not spans:
        raise BacktestError("the data is shorter than one training plus one test window")
    rows, pieces, equity_now = [], [], settings.cash
    fill_model = settings.fill_model
    tf_s = spec.market.timeframe_seconds
    for n, (a, b, c) in enumerate(spans):
        train_c = {s: f.iloc[a:b] for s, f in candles.items()}
        table = sweep(spec, train_c, grid, settings)
        # Ties go to the first combination in grid order (a stable sort), so the choice is
        # the same on every run and platform.
        best = table.sort_values(metric, ascending=False, na_position="last", kind="stable").iloc[0]
        params = best[list(grid.columns)].to_frame().T.reset_index(drop=True)
        params = params.astype(grid.dtypes.to_dict())
        test_c = {s: f.iloc[a:c] for s, f in candles.items()}
        sim = simulate(
            spec,
            test_c,
            params,
            fill_model,
            equity_now,
            settings.shared_cash,
            start_bar=b - a,
            lot_rules=settings.lot_rules,
        )
        out = sim.stats().iloc[0]
        curve = pd.Series(sim.equity()[:, 0], index=sim.bars)
        pieces.append(curve)
        rows.append(
            {
                "window": n,
                "train_start": index[a],
                "test_start": index[b],
                "test_end": index[c - 1],
                **{k: best[k] for k in grid.columns},
                f"is_{metric}": best[metric],
                "is_cagr": best["cagr"],
                "is_total_return": best["total_return"],
                f"oos_{metric}": out[metric],
                "oos_cagr": out["cagr"],
                "oos_total_return": out["total_return"],
                "oos_trades": out["trades"],
            }
        )
        equity_now = float(curve.iloc[-1])
        if progress:
            progress(n + 1, len(spans))
    oos = pd.concat(pieces)
    oos_stats = equity_stats(oos.to_numpy(), settings.cash, pd.DatetimeIndex(oos.index), tf_s)
    table = pd.DataFrame(rows)
    is_cagr = float(np.nanmean(table["is_cagr"]))
    oos_cagr = float(oos_stats["cagr"][0])
    summary = {
        "windows": len(table),
        "combinations_per_window": len(grid),
        "is_mean_cagr": is_cagr,
        f"is_mean_{metric}": float(np.nanmean(table[f"is_{metric}"])),
        "oos_cagr": oos_cagr,
        "oos_total_return": float(oos_stats["total_return"][0]),
        "oos_sharpe": float(oos_stats["sharpe"][0]),
        "oos_max_drawdown": float(oos_stats["max_drawdown"][0]),
        "efficiency": oos_cagr / is_cagr
        if is_cagr not in (0.0,) and np.isfinite(is_cagr)
        else np.nan,
    }
    return WalkForwardResult(table, oos.rename("equity"), summary)


def _span(name: str, value: pd.Timedelta | str) -> pd.Timedelta:
    try:
        span = pd.Timedelta(value)
    except ValueError as exc:
        raise BacktestError(f"{name} {value!r} is not a time span such as '30D': {exc}") from exc
    if span <= pd.Timedelta(0):
        raise BacktestError(f"{name} {value!r} must be longer than zero")
    return span
