"""Market rules stored with the candles: what order sizes each market takes (`LotRules`)."""

from __future__ import annotations

from typing import Any

import pandas as pd

from workbench.lots import LotRules


class MarketRulesStore:
    """Reads and writes the ``market_rules`` table on a store's connection."""

    def __init__(self, con: Any) -> None:
        self.con = con

    def put(self, exchange: str, symbol: str, rules: LotRules) -> None:
        """Store (or replace) a market's rules."""
        now = pd.Timestamp.now(tz="UTC").tz_localize(None)
        self.con.execute(
            "INSERT INTO market_rules (exchange, symbol, amount_step, min_amount, min_notional,"
            " updated_at) VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (exchange, symbol) DO UPDATE SET"
            " amount_step = excluded.amount_step, min_amount = excluded.min_amount,"
            " min_notional = excluded.min_notional, updated_at = excluded.updated_at",
            [exchange, symbol, rules.amount_step, rules.min_amount, rules.min_notional, now],
        )

    def get(self, exchange: str, symbol: str) -> LotRules | None:
        """Give a market's stored rules (None when none were stored)."""
        row = self.con.execute(
            "SELECT amount_step, min_amount, min_notional FROM market_rules"
            " WHERE exchange = ? AND symbol = ?",
            [exchange, symbol],
        ).fetchone()
        return None if row is None else LotRules(*(float(v) for v in row))
