"""Entry sizes for live trading, one closed candle at a time, with the backtest's meanings.

The formulas are those of `workbench.backtest.sizing` (its docstring is the reference): an
entry filled at bar i's open is sized from data up to bar i-1's close and bar i's open.

* fixed_amount: spend `amount` quote, fee included.
* fixed_fraction / fixed_risk / volatility_target: spend `fraction` of the cash available,
  fee included; fixed_risk's fraction is risk_fraction × fill × (1 + fee) / (atr_multiple × ATR)
  (so units = cash × risk_fraction / (atr_multiple × ATR)), and that ATR distance is also a
  stop level; volatility_target's is min(max_fraction, target / realized volatility).
Fractions are capped at 1 (no leverage).
"""

from __future__ import annotations

import math
from collections import deque

from workbench.candles import Candle
from workbench.fills import FillModel, Side
from workbench.strategy.indicators.registry import KINDS
from workbench.strategy.risk import FixedAmount, FixedFraction, FixedRisk, Sizing, VolatilityTarget

SECONDS_PER_YEAR = 365 * 86400


class EntrySizer:
    """Keeps what a sizing method needs (ATR, recent returns) and sizes the next entry."""

    def __init__(self, sizing: Sizing, fill_model: FillModel, timeframe_seconds: int) -> None:
        self.sizing = sizing
        self.fill_model = fill_model
        self.timeframe_seconds = timeframe_seconds
        self.atr_value = math.nan
        self._atr = (
            KINDS["atr"].incremental({"period": sizing.atr_period})
            if isinstance(sizing, FixedRisk)
            else None
        )
        lookback = sizing.lookback if isinstance(sizing, VolatilityTarget) else 0
        self._returns: deque[float] = deque(maxlen=max(lookback, 1))
        self._last_close = math.nan

    def update(self, candle: Candle) -> None:
        """Take in a closed candle."""
        if self._atr is not None:
            (self.atr_value,) = self._atr.update(candle.high, candle.low, candle.close)
        if isinstance(self.sizing, VolatilityTarget) and not math.isnan(self._last_close):
            self._returns.append(math.log(candle.close / self._last_close))
        self._last_close = candle.close

    def atr_stop_distance(self) -> float | None:
        """Give the extra stop distance fixed_risk imposes (None for other methods)."""
        if isinstance(self.sizing, FixedRisk) and not math.isnan(self.atr_value):
            return self.sizing.atr_multiple * self.atr_value
        return None

    def fraction(self, fill_price: float) -> float | None:
        """Give the fraction of cash an entry at `fill_price` may spend (None: no entry)."""
        sizing = self.sizing
        fee = self.fill_model.fee_rate
        if isinstance(sizing, FixedFraction):
            return min(sizing.fraction, 1.0)
        if isinstance(sizing, FixedRisk):
            distance = self.atr_stop_distance()
            if distance is None or distance <= 0:
                return None
            return min(sizing.risk_fraction * fill_price * (1.0 + fee) / distance, 1.0)
        if isinstance(sizing, VolatilityTarget):
            if len(self._returns) < sizing.lookback or sizing.lookback < 2:
                return None
            mean = sum(self._returns) / len(self._returns)
            var = sum((r - mean) ** 2 for r in self._returns) / (len(self._returns) - 1)
            realized = math.sqrt(var) * math.sqrt(SECONDS_PER_YEAR / self.timeframe_seconds)
            if realized <= 0:
                return min(sizing.max_fraction, 1.0)
            return min(sizing.max_fraction, sizing.target_volatility / realized, 1.0)
        raise TypeError(f"no fraction for sizing {sizing!r}")

    def amount(self, side: Side, open_price: float, cash: float) -> float | None:
        """Give the base amount of an entry filled at `open_price` (None or 0: no entry)."""
        fill = self.fill_model.market_price(side, open_price)
        per_unit = fill * (1.0 + self.fill_model.fee_rate)
        if isinstance(self.sizing, FixedAmount):
            return min(self.sizing.amount, cash) / per_unit
        fraction = self.fraction(fill)
        if fraction is None or fraction <= 0 or cash <= 0:
            return None
        return fraction * cash / per_unit
