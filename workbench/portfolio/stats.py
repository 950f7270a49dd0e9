"""Performance statistics from equity curves and trades, for one or many combinations at once.

Annualization (documented once, used everywhere): crypto trades every day, so a year is 365
days of 24 h. Bar returns are the equity's close-to-close changes on the strategy's bars (the
first bar against the initial cash); ``periods_per_year = 365 * 86400 / timeframe_seconds``.

* Sharpe = mean(bar returns) / std(bar returns, ddof=1) * sqrt(periods_per_year), risk-free 0;
* Sortino = mean(bar returns) / sqrt(mean(min(r, 0)^2)) * sqrt(periods_per_year);
* CAGR = (final / initial) ** (1 / years) - 1, years = (last bar open - first bar open + one
  timeframe) / 365 days (calendar time, so gaps in the data do not shorten a year);
* max drawdown = largest fall from a running peak (the initial cash counts as a peak), as a
  positive fraction; its duration = the longest stretch of bars spent below a peak, in bars
  and in days (bars x timeframe);
* Calmar = CAGR / max drawdown;
* win rate, profit factor (gross profit / gross loss) and expectancy (mean P&L per trade, in
  quote) count CLOSED trades only; exposure = share of bars with a position open at any time
  within the bar.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

SECONDS_PER_YEAR = 365 * 86400

STAT_COLUMNS = (
    "total_return",
    "cagr",
    "sharpe",
    "sortino",
    "calmar",
    "max_drawdown",
    "max_drawdown_bars",
    "max_drawdown_days",
    "win_rate",
    "profit_factor",
    "expectancy",
    "trades",
    "exposure",
    "fees",
    "final_equity",
)


def periods_per_year(timeframe_seconds: int) -> float:
    """Give the number of bars in a 365-day year."""
    return SECONDS_PER_YEAR / timeframe_seconds


def _longest_run(under: np.ndarray) -> np.ndarray:
    """Give, per column, the longest run of consecutive True values along axis 0."""
    counts = np.cumsum(under, axis=0, dtype=np.int64)
    resets = np.where(under, 0, counts)
    runs = counts - np.maximum.accumulate(resets, axis=0)
    return runs.max(axis=0) if len(runs) else np.zeros(under.shape[1], dtype=np.int64)


def equity_stats(
    equity: np.ndarray, init_cash: float, index: pd.DatetimeIndex, timeframe_seconds: int
) -> dict[str, np.ndarray]:
    """Give return and risk statistics per column of an equity array (bars x combinations)."""
    equity = np.asarray(equity, dtype=np.float64)
    if equity.ndim == 1:
        equity = equity[:, None]
    final = equity[-1]
    ppy = periods_per_year(timeframe_seconds)
    span_s = (index[-1] - index[0]).total_seconds() + timeframe_seconds
    years = span_s / SECONDS_PER_YEAR
    growth = final / init_cash
    with np.errstate(divide="ignore", invalid="ignore"):
        cagr = np.where(growth > 0, np.power(np.maximum(growth, 0.0), 1.0 / years) - 1.0, -1.0)
        prev = np.vstack([np.full((1, equity.shape[1]), init_cash), equity[:-1]])
        rets = equity / prev - 1.0
        mean = rets.mean(axis=0)
        std = rets.std(axis=0, ddof=1) if len(rets) > 1 else np.full(len(mean), np.nan)
        sharpe = np.where(std > 0, mean / std * np.sqrt(ppy), np.nan)
        downside = np.sqrt(np.mean(np.minimum(rets, 0.0) ** 2, axis=0))
        sortino = np.where(downside > 0, mean / downside * np.sqrt(ppy), np.nan)
        peaks = np.maximum.accumulate(np.vstack([prev[:1], equity]), axis=0)[1:]
        drawdown = 1.0 - equity / peaks
        max_dd = np.maximum(drawdown.max(axis=0), 0.0)
        dd_bars = _longest_run(equity < peaks)
        calmar = np.where(max_dd > 0, cagr / max_dd, np.nan)
    return {
        "total_return": growth - 1.0,
        "cagr": cagr,
        "sharpe": sharpe,
        "sortino": sortino,
        "calmar": calmar,
        "max_drawdown": max_dd,
        "max_drawdown_bars": dd_bars.astype(np.int64),
        "max_drawdown_days": dd_bars * timeframe_seconds / 86400.0,
        "final_equity": final,
    }


def trade_stats(pnl: np.ndarray, group: np.ndarray, n_groups: int) -> dict[str, np.ndarray]:
    """Give win rate, profit factor, expectancy and count per group of closed-trade P&Ls."""
    pnl = np.asarray(pnl, dtype=np.float64)
    group = np.asarray(group, dtype=np.int64)
    count = np.bincount(group, minlength=n_groups).astype(np.int64)
    wins = np.bincount(group, weights=(pnl > 0).astype(float), minlength=n_groups)
    gross_profit = np.bincount(group, weights=np.where(pnl > 0, pnl, 0.0), minlength=n_groups)
    gross_loss = -np.bincount(group, weights=np.where(pnl < 0, pnl, 0.0), minlength=n_groups)
    total = np.bincount(group, weights=pnl, minlength=n_groups)
    with np.errstate(divide="ignore", invalid="ignore"):
        win_rate = np.where(count > 0, wins / count, np.nan)
        profit_factor = np.where(
            gross_loss > 0, gross_profit / gross_loss, np.where(gross_profit > 0, np.inf, np.nan)
        )
        expectancy = np.where(count > 0, total / count, np.nan)
    return {
        "win_rate": win_rate,
        "profit_factor": profit_factor,
        "expectancy": expectancy,
        "trades": count,
    }


def stats_frame(parts: dict[str, np.ndarray]) -> pd.DataFrame:
    """Give the statistics as a DataFrame, one row per combination, in the standard order."""
    return pd.DataFrame({name: parts[name] for name in STAT_COLUMNS})
