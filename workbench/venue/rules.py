"""Market rules of a venue, read from the markets ccxt loaded: lot step and minimums."""

from __future__ import annotations

from typing import Any

from ccxt.base.decimal_to_precision import TICK_SIZE


def amount_step(rest: Any, symbol: str) -> float:
    """Give a market's amount step (a tolerance for balance comparisons)."""
    market = (rest.markets or {}).get(symbol) or {}
    precision = (market.get("precision") or {}).get("amount")
    if not precision:
        return 1e-8
    if getattr(rest, "precisionMode", TICK_SIZE) == TICK_SIZE:
        return float(precision)
    return 10.0 ** -float(precision)  # DECIMAL_PLACES / SIGNIFICANT_DIGITS: a digit count
