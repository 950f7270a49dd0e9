"""Capital allocation between strategies: equal, fixed weights, or inverse volatility.

Each strategy trades its own sub-portfolio with the cash it is given; the totals add up
because the allocations sum to the capital (to rounding).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from workbench.errors import WorkbenchError


class AllocationError(WorkbenchError, ValueError):
    """Allocation inputs that do not make sense: which and why."""


def allocate(
    capital: float,
    strategy_ids: Sequence[str],
    method: str = "equal",
    *,
    weights: Mapping[str, float] | None = None,
    volatility: Mapping[str, float] | None = None,
) -> dict[str, float]:
    """Give each strategy's starting cash.

    `equal` splits evenly; `weights` splits by the given non-negative weights (normalized);
    `volatility` gives each a share proportional to 1 / its volatility, so that the calmer
    markets get more capital and each strategy carries a similar risk.
    """
    if capital <= 0 or not strategy_ids:
        raise AllocationError("capital must be positive and there must be strategies")
    if method == "equal":
        raw = dict.fromkeys(strategy_ids, 1.0)
    elif method == "weights":
        raw = _take(strategy_ids, weights, "weights")
        if any(w < 0 for w in raw.values()):
            raise AllocationError("weights must not be negative")
    elif method == "volatility":
        vols = _take(strategy_ids, volatility, "volatility")
        if any(not v > 0 or math.isinf(v) for v in vols.values()):
            raise AllocationError(f"volatilities must be positive and finite, got {vols}")
        raw = {sid: 1.0 / vol for sid, vol in vols.items()}
    else:
        raise AllocationError(f"unknown method {method!r}: equal, weights or volatility")
    total = sum(raw.values())
    if total <= 0:
        raise AllocationError("the weights sum to zero")
    return {sid: capital * w / total for sid, w in raw.items()}


def _take(ids: Sequence[str], values: Mapping[str, float] | None, what: str) -> dict[str, float]:
    missing = [sid for sid in ids if values is None or sid not in values]
    if missing:
        raise AllocationError(f"no {what} for {', '.join(missing)}")
    assert values is not None
    return {sid: float(values[sid]) for sid in ids}


def recent_volatility(candles: pd.DataFrame, bars: int = 288) -> float:
    """Give the standard deviation of the last `bars` log close-to-close returns."""
    close = candles["close"].to_numpy(dtype=np.float64)[-(bars + 1) :]
    if len(close) < 3:
        raise AllocationError("too few candles to measure volatility")
    return float(np.std(np.diff(np.log(close)), ddof=1))
