"""Market rules of a venue, read from the markets ccxt loaded: lot step and minimums.

An order's amount is rounded DOWN to the lot step (never more than the account holds or the
cash buys); an order under the minimum amount or notional is not sent (the exchange would
refuse it). What a rounded exit leaves of a position is dust: too small to trade, so the
position counts as flat.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from ccxt.base.decimal_to_precision import TICK_SIZE


@dataclass(frozen=True)
class MarketRules:
    """Lot step, minimum amount and minimum notional of one market (0: none known)."""

    step: float = 0.0
    min_amount: float = 0.0
    min_notional: float = 0.0

    def floor(self, amount: float) -> float:
        """Give ``amount`` rounded down to the lot step."""
        if self.step <= 0:
            return amount
        # A hair of tolerance: 0.3 / 0.1 must stay 3 steps, not 2.999... floored to 2; and
        # the result is cut to the step's decimals (3 × 0.1 is 0.30000000000000004).
        steps = math.floor(amount / self.step + 1e-9)
        return round(steps * self.step, max(0, math.ceil(-math.log10(self.step)) + 1))

    def refusal(self, amount: float, price: float) -> str | None:
        """Give why an order of ``amount`` at ``price`` would be refused, or None."""
        if amount <= 0 or amount < self.min_amount:
            return f"amount {amount:.10g} is under the market's minimum {self.min_amount:.10g}"
        if price > 0 and amount * price < self.min_notional:
            return (
                f"notional {amount * price:.10g} is under the market's minimum "
                f"{self.min_notional:.10g}"
            )
        return None

    @property
    def dust(self) -> float:
        """Give the largest position that cannot be sold (counted as flat)."""
        return max(self.step, self.min_amount) * (1 - 1e-9) if self.step or self.min_amount else 0.0


def market_rules(rest: Any, symbol: str) -> MarketRules:
    """Give a market's rules from a ccxt client's loaded markets (none when unknown)."""
    market = (rest.markets or {}).get(symbol) or {}
    limits = market.get("limits") or {}
    return MarketRules(
        step=amount_step(rest, symbol) if market else 0.0,
        min_amount=float((limits.get("amount") or {}).get("min") or 0.0),
        min_notional=float((limits.get("cost") or {}).get("min") or 0.0),
    )


def amount_step(rest: Any, symbol: str) -> float:
    """Give a market's amount step (a tolerance for balance comparisons)."""
    market = (rest.markets or {}).get(symbol) or {}
    precision = (market.get("precision") or {}).get("amount")
    if not precision:
        return 1e-8
    if getattr(rest, "precisionMode", TICK_SIZE) == TICK_SIZE:
        return float(precision)
    return 10.0 ** -float(precision)  # DECIMAL_PLACES / SIGNIFICANT_DIGITS: a digit count
