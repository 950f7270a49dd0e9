"""Market rules of a venue, read from the markets ccxt loaded: lot step and minimums.

The rules themselves are `workbench.lots.LotRules` (the backtest applies the same): an order's
amount is rounded down to the lot step (never more than the account holds or the cash buys);
an order under the minimum amount or notional is not sent (the exchange would refuse it);
what a rounded exit leaves of a position is dust, too small to trade, so it counts as flat.
"""

from __future__ import annotations

from typing import Any

from ccxt.base.decimal_to_precision import TICK_SIZE

from workbench.lots import LotRules


def market_rules(rest: Any, symbol: str) -> LotRules:
    """Give a market's rules from a ccxt client's loaded markets (none when unknown)."""
    market = (rest.markets or {}).get(symbol)
    if not market:
        return LotRules()
    return LotRules.from_ccxt(market, getattr(rest, "precisionMode", TICK_SIZE))


def amount_step(rest: Any, symbol: str) -> float:
    """Give a market's amount step (a tolerance for balance comparisons)."""
    return market_rules(rest, symbol).amount_step or 1e-8
