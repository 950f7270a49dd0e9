"""Per-strategy tables of the live engine: status now, and metrics to date."""

from __future__ import annotations

import numpy as np
import pandas as pd

from workbench.live.running import LiveStrategy
from workbench.portfolio.metrics import live_metrics
from workbench.store import Store


def metrics_frame(store: Store, strategies: dict[str, LiveStrategy]) -> pd.DataFrame:
    """Give live metrics per strategy: return, drawdown, Sharpe to date, win rate, trades."""
    rows = []
    for sid, live in strategies.items():
        runner = live.runner
        pnl = np.array([t.pnl for t in runner.portfolio.round_trips], dtype=np.float64)
        found = live_metrics(store.trading.equity(sid), pnl, runner.initial_cash, runner.timeframe)
        rows.append({"strategy_id": sid, "equity": runner.equity(), **found})
    return pd.DataFrame(rows)


def status_frame(strategies: dict[str, LiveStrategy]) -> pd.DataFrame:
    """Give one row per strategy: state, position, cash, equity, P&L, trades."""
    rows = []
    for sid, live in strategies.items():
        r = live.runner
        pos = r.portfolio.position(r.symbol)
        marks = {r.symbol: r.last_price} if r.last_price else {}
        rows.append(
            {
                "strategy_id": sid,
                "state": str(live.state),
                "problem": live.problem,
                "symbol": r.symbol,
                "position": pos.amount,
                "average_price": pos.average_price,
                "cash": r.portfolio.cash,
                "equity": r.equity(),
                "realized_pnl": r.portfolio.realized,
                "unrealized_pnl": r.portfolio.unrealized(marks),
                "fees": r.portfolio.fees,
                "fees_apart": dict(r.portfolio.fees_apart),
                "trades": len(r.portfolio.round_trips),
                "return": r.equity() / r.initial_cash - 1.0,
            }
        )
    return pd.DataFrame(rows)
