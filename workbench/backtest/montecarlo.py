"""Monte Carlo on a run's trades: how final equity, drawdown and recovery could have varied.

Each closed trade becomes a return on the equity it started from,
``r_k = pnl_k / equity_before_k`` (equity_before = initial cash + earlier P&L). Paths re-order
(``shuffle``: a permutation), resample (``bootstrap``: with replacement) or resample blocks of
``block`` consecutive trades (``block``) and compound from the initial cash. A fixed seed makes
every run reproducible: with ``rng = numpy.random.default_rng(seed)``, a shuffle orders each
path's trades by ``rng.random((paths, n))``, a bootstrap draws ``rng.integers(0, n, (paths,
n))``, and blocks start at ``rng.integers(0, n - block + 1, (paths, ceil(n / block)))``.
Time to recover = trades from the deepest drawdown's trough until the equity regains the peak
before it (NaN when it never does). Percentiles interpolate linearly between ranks.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike

from workbench.backtest.errors import BacktestError

METHODS = ("shuffle", "bootstrap", "block")
PERCENTILES = (5, 25, 50, 75, 95)


@runtime_checkable
class HasTrades(Protocol):
    """A backtest result: its trades (``pnl`` and ``exit_reason`` columns) and initial cash."""

    trades: pd.DataFrame
    cash: float


@dataclass(frozen=True)
class MonteCarloResult:
    """Distributions over paths and their summary."""

    final_equity: np.ndarray
    max_drawdown: np.ndarray
    recovery_trades: np.ndarray
    summary: dict[str, object]


def trade_returns(pnl: np.ndarray, cash: float) -> np.ndarray:
    """Give each trade's return on the equity it started from."""
    pnl = np.asarray(pnl, dtype=float)
    before = cash + np.concatenate([[0.0], np.cumsum(pnl)[:-1]])
    return pnl / before


def _indices(rng: np.random.Generator, n: int, paths: int, method: str, block: int) -> np.ndarray:
    if method == "shuffle":
        return np.argsort(rng.random((paths, n)), axis=1)
    if method == "bootstrap":
        return rng.integers(0, n, size=(paths, n))
    if method == "block":
        size = max(1, min(block, n))
        starts = rng.integers(0, n - size + 1, size=(paths, -(-n // size)))
        idx = (starts[:, :, None] + np.arange(size)[None, None, :]).reshape(paths, -1)
        return idx[:, :n]
    raise BacktestError(f"unknown method {method!r}; choose from {METHODS}")


def _recovery(equity: np.ndarray, peaks: np.ndarray, drawdown: np.ndarray) -> np.ndarray:
    out = np.full(len(equity), np.nan)
    trough = drawdown.argmax(axis=1)
    for p in range(len(equity)):  # one small loop per path over its trades after the trough
        t = trough[p]
        if drawdown[p, t] <= 0:
            out[p] = 0.0
            continue
        later = np.nonzero(equity[p, t:] >= peaks[p, t])[0]
        if len(later):
            out[p] = float(later[0])
    return out


def monte_carlo(
    pnl: ArrayLike | HasTrades,
    cash: float | None = None,
    paths: int = 10_000,
    method: str = "shuffle",
    block: int = 5,
    seed: int = 42,
    loss: float = 0.0,
) -> MonteCarloResult:
    """Give distributions of final equity, max drawdown and recovery over ``paths`` paths.

    ``pnl`` is the closed trades' P&L in order, with ``cash`` the initial cash, or a backtest
    result (its closed trades and cash). ``loss`` is the loss fraction whose probability is
    reported (0.1 = "lose 10 % or more").
    """
    if isinstance(pnl, HasTrades):
        trades = pnl.trades
        cash = pnl.cash if cash is None else cash
        pnl = trades.loc[trades["exit_reason"] != "open", "pnl"].to_numpy(dtype=float)
    if cash is None:
        raise BacktestError("cash: give the initial cash the trades' P&L was made from")
    returns = trade_returns(pnl, cash)
    if len(returns) == 0:
        raise BacktestError("the run has no closed trades to resample")
    rng = np.random.default_rng(seed)
    sampled = returns[_indices(rng, len(returns), paths, method, block)]
    equity = cash * np.cumprod(1.0 + sampled, axis=1)
    with_start = np.hstack([np.full((paths, 1), cash), equity])
    peaks = np.maximum.accumulate(with_start, axis=1)[:, 1:]
    drawdown = 1.0 - equity / peaks
    final, max_dd = equity[:, -1], drawdown.max(axis=1)
    recovery = _recovery(equity, peaks, drawdown)
    summary: dict[str, object] = {
        "method": method,
        "paths": paths,
        "seed": seed,
        "trades": len(returns),
        "final_equity": {f"p{q}": float(np.percentile(final, q)) for q in PERCENTILES},
        "max_drawdown": {f"p{q}": float(np.percentile(max_dd, q)) for q in PERCENTILES},
        "recovery_trades": {
            f"p{q}": float(np.nanpercentile(recovery, q)) if np.isfinite(recovery).any() else None
            for q in PERCENTILES
        },
        "never_recovered": float(np.isnan(recovery).mean()),
        "loss": loss,
        "probability_of_loss": float((final < cash * (1.0 - loss)).mean()),
    }
    return MonteCarloResult(final, max_dd, recovery, summary)
