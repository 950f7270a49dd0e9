"""What order sizes a market takes: its lot step, minimum amount and minimum notional.

The live order path rounds an order's amount down to the market's lot step (ccxt's
``amount_to_precision`` truncates) and the exchange refuses an order under the minimum amount
or notional. The backtest applies the same `LotRules` to its entries (`round_down`,
`allows`) when they are known: stored with the candles from the exchange's markets
(`workbench.store.markets`), or the local exchange's own rules for the shipped data.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

#: ccxt's precision modes (ccxt.base.decimal_to_precision), without importing ccxt.
DECIMAL_PLACES = 2
SIGNIFICANT_DIGITS = 3
TICK_SIZE = 4


@dataclass(frozen=True)
class LotRules:
    """A market's order-size rules; 0 means "no such rule"."""

    amount_step: float = 0.0
    min_amount: float = 0.0
    min_notional: float = 0.0

    def __post_init__(self) -> None:
        for name in ("amount_step", "min_amount", "min_notional"):
            value = getattr(self, name)
            if not (isinstance(value, int | float) and math.isfinite(value) and value >= 0):
                raise ValueError(f"LotRules.{name} must be a finite number >= 0, got {value!r}")

    @property
    def active(self) -> bool:
        """Tell whether any rule constrains an order."""
        return self.amount_step > 0 or self.min_amount > 0 or self.min_notional > 0

    def round_down(self, quantity: float) -> float:
        """Give ``quantity`` rounded down to the lot step (a hair of rounding tolerated, and
        cut to the step's decimals: 3 × 0.1 is 0.30000000000000004)."""
        step = self.amount_step
        if step <= 0:
            return quantity
        steps = math.floor(quantity / step + 1e-9)
        return round(steps * step, _decimals(step))

    def allows(self, quantity: float, price: float) -> bool:
        """Tell whether the exchange takes an order of ``quantity`` at ``price``."""
        return self.refusal(quantity, price) is None

    def refusal(self, quantity: float, price: float) -> str | None:
        """Give why the exchange would refuse an order of ``quantity`` at ``price``, or None."""
        if quantity <= 0 or quantity < self.min_amount:
            return f"amount {quantity:.10g} is under the market's minimum {self.min_amount:.10g}"
        if price > 0 and quantity * price < self.min_notional:
            return (
                f"notional {quantity * price:.10g} is under the market's minimum "
                f"{self.min_notional:.10g}"
            )
        return None

    @property
    def dust(self) -> float:
        """Give the largest position too small to sell (a lot-rounded exit leaves less)."""
        smallest = max(self.amount_step, self.min_amount)
        return smallest * (1 - 1e-9) if smallest > 0 else 0.0

    @classmethod
    def from_ccxt(cls, market: dict[str, Any], precision_mode: int = TICK_SIZE) -> LotRules:
        """Give the rules of a market as ccxt's ``load_markets`` describes it."""
        precision = (market.get("precision") or {}).get("amount")
        step = 0.0
        if precision:
            step = float(precision) if precision_mode == TICK_SIZE else 10.0 ** -float(precision)
        limits = market.get("limits") or {}
        min_amount = (limits.get("amount") or {}).get("min") or 0.0
        min_notional = (limits.get("cost") or {}).get("min") or 0.0
        return cls(step, float(min_amount), float(min_notional))


def _decimals(value: float) -> int:
    """Give how many decimals a step is written with (0.001: 3; 1e-08: 8; 7.5: 1)."""
    exponent = Decimal(repr(value)).as_tuple().exponent
    return max(0, -exponent) if isinstance(exponent, int) else 0
