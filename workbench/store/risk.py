"""The account's risk as stored: the limits in force, the account guard's memory, the kill
switch (every halt and resume, in order)."""

from __future__ import annotations

import json
from dataclasses import fields

import pandas as pd

from workbench.risk.account import AccountLimits, Halt, QuoteState
from workbench.risk.limits import RiskLimits
from workbench.store.database import Database
from workbench.store.dialect import ms_of
from workbench.store.journal import Write
from workbench.store.trading import TradingStore


def _now() -> object:
    return pd.Timestamp.now(tz="UTC").tz_localize(None).to_pydatetime()


def account_scope(exchange: str) -> str:
    return f"account:{exchange}"


class RiskStore:
    """Reads and writes the ``risk_limits``, ``account_risk`` and ``halts`` tables.

    The guard's memory changes with the account's peak, at nearly every bar, and the engine
    stores it from its event loop: it goes with the trading writes (`trading.writes`,
    journaled on DuckDB, queued on PostgreSQL), not through a commit of its own that held
    the loop for a millisecond or more."""

    def __init__(self, db: Database, trading: TradingStore) -> None:
        self.db = db
        self.trading = trading

    # -- limits ---------------------------------------------------------------------------
    def save_limits(self, scope: str, limits: AccountLimits | RiskLimits, by: str) -> None:
        """Store the limits in force for an account (`account_scope`) or a strategy."""
        values = {f.name: getattr(limits, f.name) for f in fields(limits)}
        self.db.execute(
            "INSERT INTO risk_limits (scope, limits, updated_by, updated_at) VALUES (?, ?, ?, ?)"
            " ON CONFLICT (scope) DO UPDATE SET limits = excluded.limits,"
            " updated_by = excluded.updated_by, updated_at = excluded.updated_at",
            [scope, json.dumps(values, sort_keys=True), by, _now()],
        )

    def limits_of(self, scope: str) -> dict[str, object] | None:
        """Give the limits stored for a scope as plain values (None: never stored)."""
        row = self.db.fetchone("SELECT limits FROM risk_limits WHERE scope = ?", [scope])
        return None if row is None else dict(json.loads(row[0]))

    def account_limits(self, exchange: str) -> AccountLimits | None:
        """Give an account's limits in force as stored (None: never stored)."""
        values = self.limits_of(account_scope(exchange))
        return None if values is None else AccountLimits.from_dict(values)

    # -- the account guard ----------------------------------------------------------------
    def save_states(self, exchange: str, states: dict[str, QuoteState]) -> None:
        now = _now()
        self.trading.writes.submit(
            [
                Write("save_account_state", [exchange, quote, json.dumps(state.as_dict()), now])
                for quote, state in states.items()
            ]
        )

    def states(self, exchange: str) -> dict[str, QuoteState]:
        self.trading.writes.drain()
        rows = self.db.fetchall(
            "SELECT quote, state FROM account_risk WHERE exchange = ?", [exchange]
        )
        return {quote: QuoteState(**json.loads(state)) for quote, state in rows}

    # -- the kill switch ------------------------------------------------------------------
    def record_halt(
        self, exchange: str, *, halted: bool, reason: str, by: str, flatten: bool = False
    ) -> int:
        """Store a halt (or a resume) before it is acted on; give its sequence number."""
        with self.db.transaction() as tx:
            row = tx.fetchone("SELECT coalesce(max(seq), 0) + 1 FROM halts")
            seq = int(row[0]) if row else 1
            tx.execute(
                "INSERT INTO halts (seq, exchange, halted, flatten, reason, by_user, halted_at)"
                " VALUES (?, ?, ?, ?, ?, ?, ?)",
                [seq, exchange, halted, flatten, reason, by, _now()],
            )
        return seq

    def halt(self, exchange: str) -> tuple[int, Halt | None]:
        """Give the newest halt row's sequence number and the halt in force (None: trading)."""
        row = self.db.fetchone(
            "SELECT seq, halted, flatten, reason, by_user, halted_at FROM halts WHERE exchange = ?"
            " ORDER BY seq DESC LIMIT 1",
            [exchange],
        )
        if row is None:
            return 0, None
        seq, halted, flatten, reason, by, at = row
        if not halted:
            return int(seq), None
        return int(seq), Halt(reason, by, int(ms_of(at) or 0), bool(flatten))

    def halts(self, exchange: str | None = None) -> pd.DataFrame:
        """Give every halt and resume, newest first."""
        where, args = ("WHERE exchange = ?", [exchange]) if exchange else ("", [])
        return self.db.frame(
            f"SELECT seq, exchange, halted, flatten, reason, by_user, halted_at FROM halts {where}"
            " ORDER BY seq DESC",
            args,
        )
