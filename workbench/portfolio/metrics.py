"""Live metrics of a running strategy, with the backtest's definitions (portfolio.stats)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from workbench.portfolio.stats import equity_stats, trade_stats
from workbench.timeframes import timeframe_seconds


def live_metrics(
    equity: pd.DataFrame, pnl: np.ndarray, initial_cash: float, timeframe: str
) -> dict[str, float]:
    """Give a strategy's metrics to date with the backtest's definitions (portfolio.stats)."""
    if equity.empty:
        return {
            "total_return": 0.0,
            "max_drawdown": 0.0,
            "drawdown": 0.0,
            "sharpe": np.nan,
            "win_rate": np.nan,
            "trades": 0,
        }
    values = equity["equity"].to_numpy(dtype=np.float64)
    index = pd.DatetimeIndex(pd.to_datetime(equity["ts"], utc=True))
    stats = equity_stats(values, initial_cash, index, timeframe_seconds(timeframe))
    trades = trade_stats(pnl, np.zeros(len(pnl), dtype=np.int64), 1)
    peak = max(initial_cash, float(values.max()))
    return {
        "total_return": float(stats["total_return"][0]),
        "max_drawdown": float(stats["max_drawdown"][0]),
        "drawdown": 1.0 - float(values[-1]) / peak,
        "sharpe": float(stats["sharpe"][0]),
        "win_rate": float(trades["win_rate"][0]),
        "trades": int(trades["trades"][0]),
    }
