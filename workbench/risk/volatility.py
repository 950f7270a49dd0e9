"""The account's volatility target: new entries scaled by realized volatility. Pure: no IO.

Each strategy's market volatility is measured on its past closed bars only (annualized std of
the last `lookback` log returns, as the `volatility_target` sizing method measures it); an
entry is scaled by `min(1, target / realized)`: a market moving more than the target gets a
smaller entry, one moving less is never scaled up (leverage is the sizing method's business).
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Iterable

import numpy as np

from workbench.risk.sizing import log_returns, realized_volatility


class RealizedVolatility:
    """Annualized realized volatility of the last `lookback` closed bars."""

    def __init__(self, lookback: int, timeframe_seconds: int) -> None:
        if lookback < 2:
            raise ValueError(f"volatility lookback must be >= 2 bars, got {lookback}")
        self.lookback = lookback
        self.timeframe_seconds = timeframe_seconds
        self._closes: deque[float] = deque(maxlen=lookback + 1)

    def update(self, close: float) -> None:
        """Take in a closed bar's close."""
        self._closes.append(float(close))

    def seed(self, closes: Iterable[float]) -> None:
        for close in closes:
            self.update(close)

    @property
    def value(self) -> float | None:
        """Give the realized volatility (None: fewer than `lookback` returns seen yet)."""
        if len(self._closes) <= self.lookback:
            return None
        closes = np.fromiter(self._closes, dtype=np.float64, count=len(self._closes))
        realized = realized_volatility(log_returns(closes), self.lookback, self.timeframe_seconds)
        value = float(realized[-1])
        return value if math.isfinite(value) else None


def entry_scale(target: float, realized: float | None) -> float:
    """Give what an entry is multiplied by under a volatility target (1: unchanged)."""
    if realized is None or realized <= 0:
        return 1.0
    return min(1.0, target / realized)
