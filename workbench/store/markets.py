"""Market rules stored with the candles: what order sizes each market takes (`LotRules`)."""

from __future__ import annotations

import pandas as pd

from workbench.lots import LotRules
from workbench.store.database import Database


class MarketRulesStore:
    """Reads and writes the ``market_rules`` table of a store's database."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def put(self, exchange: str, symbol: str, rules: LotRules) -> None:
        """Store (or replace) a market's rules."""
        now = pd.Timestamp.now(tz="UTC").tz_localize(None).to_pydatetime()
        self.db.execute(
            "INSERT INTO market_rules (exchange, symbol, amount_step, min_amount, min_notional,"
            " updated_at) VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (exchange, symbol) DO UPDATE SET"
            " amount_step = excluded.amount_step, min_amount = excluded.min_amount,"
            " min_notional = excluded.min_notional, updated_at = excluded.updated_at",
            [exchange, symbol, rules.amount_step, rules.min_amount, rules.min_notional, now],
        )

    def get(self, exchange: str, symbol: str) -> LotRules | None:
        """Give a market's stored rules (None when none were stored)."""
        row = self.db.fetchone(
            "SELECT amount_step, min_amount, min_notional FROM market_rules"
            " WHERE exchange = ? AND symbol = ?",
            [exchange, symbol],
        )
        return None if row is None else LotRules(*(float(v) for v in row))
