"""What the live engine shows: snapshots (frozen values the views read instead of runners
and portfolios), the status table built from them, and metrics to date."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

import numpy as np
import pandas as pd

from workbench.live.running import LiveStrategy, StrategyState
from workbench.portfolio.metrics import live_metrics
from workbench.risk.account import Halt
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


@dataclass(frozen=True)
class StrategySnapshot:
    """One running strategy as it stands: what the live views show of it."""

    strategy_id: str
    state: StrategyState
    problem: str | None
    symbol: str
    timeframe: str
    position: float
    average_price: float
    cash: float
    equity: float
    initial_cash: float
    realized_pnl: float
    unrealized_pnl: float
    fees: float
    #: fees paid in an asset kept apart (BNB), by asset
    fees_apart: Mapping[str, float]
    trades: int
    last_price: float | None
    last_close_ms: int | None

    @property
    def total_return(self) -> float:
        return self.equity / self.initial_cash - 1.0


@dataclass(frozen=True)
class EngineSnapshot:
    """The engine as it stands: its strategies in the order they were added, and the halt."""

    exchange: str
    running: bool
    halt: Halt | None
    strategies: tuple[StrategySnapshot, ...]


def strategy_snapshot(live: LiveStrategy) -> StrategySnapshot:
    """Give one strategy's snapshot (values copied: later bars do not change it)."""
    r = live.runner
    pos = r.portfolio.position(r.symbol)
    marks = {r.symbol: r.last_price} if r.last_price else {}
    return StrategySnapshot(
        strategy_id=live.strategy_id,
        state=live.state,
        problem=live.problem,
        symbol=r.symbol,
        timeframe=r.timeframe,
        position=pos.amount,
        average_price=pos.average_price,
        cash=r.portfolio.cash,
        equity=r.equity(),
        initial_cash=r.initial_cash,
        realized_pnl=r.portfolio.realized,
        unrealized_pnl=r.portfolio.unrealized(marks),
        fees=r.portfolio.fees,
        fees_apart=MappingProxyType(dict(r.portfolio.fees_apart)),
        trades=len(r.portfolio.round_trips),
        last_price=r.last_price,
        last_close_ms=r.last_close_ms,
    )


def status_frame(strategies: dict[str, LiveStrategy]) -> pd.DataFrame:
    """Give one row per strategy: state, position, cash, equity, P&L, trades."""
    rows = []
    for live in strategies.values():
        snap = strategy_snapshot(live)
        rows.append(
            {
                "strategy_id": snap.strategy_id,
                "state": str(snap.state),
                "problem": snap.problem,
                "symbol": snap.symbol,
                "position": snap.position,
                "average_price": snap.average_price,
                "cash": snap.cash,
                "equity": snap.equity,
                "realized_pnl": snap.realized_pnl,
                "unrealized_pnl": snap.unrealized_pnl,
                "fees": snap.fees,
                "fees_apart": dict(snap.fees_apart),
                "trades": snap.trades,
                "return": snap.total_return,
            }
        )
    return pd.DataFrame(rows)
