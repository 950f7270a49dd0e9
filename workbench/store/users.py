"""Users, their login sessions and failed-login counters (the rows; the policy is in
`workbench.auth`). Times are naive UTC datetimes."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import pandas as pd

from workbench.store.database import Database


@dataclass(frozen=True)
class UserRow:
    name: str
    role: str
    password_hash: str | None
    created_at: dt.datetime
    updated_at: dt.datetime


@dataclass(frozen=True)
class SessionRow:
    token_hash: str
    user_name: str
    address: str | None
    created_at: dt.datetime
    expires_at: dt.datetime
    ended_at: dt.datetime | None
    end_reason: str | None


@dataclass(frozen=True)
class ThrottleRow:
    kind: str  # user | address
    subject: str
    failures: int
    lockouts: int
    locked_until: dt.datetime | None
    updated_at: dt.datetime


class UserStore:
    """The users, auth_sessions and login_throttle tables of one connection."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def _rows(self, sql: str, args: Iterable[Any] = ()) -> list[tuple[Any, ...]]:
        with self.db.session() as session:
            return session.fetchall(sql, list(args))

    def _run(self, sql: str, args: Iterable[Any] = ()) -> None:
        with self.db.session() as session:
            session.execute(sql, list(args))

    # -- users ------------------------------------------------------------------------------
    def user(self, name: str) -> UserRow | None:
        rows = self._rows(
            "SELECT name, role, password_hash, created_at, updated_at FROM users WHERE name = ?",
            [name],
        )
        return UserRow(*rows[0]) if rows else None

    def users(self) -> pd.DataFrame:
        """Give every user (name, role, whether a password is set, dates), never the hash."""
        with self.db.session() as session:
            return session.frame(
                "SELECT name, role, password_hash IS NOT NULL AS has_password, created_at, "
                "updated_at FROM users ORDER BY name"
            )

    def count(self) -> int:
        return int(self._rows("SELECT count(*) FROM users")[0][0])

    def insert_user(
        self, name: str, role: str, password_hash: str | None, now: dt.datetime
    ) -> None:
        self._run(
            "INSERT INTO users (name, role, password_hash, created_at, updated_at) "
            "VALUES (?, ?, ?, ?, ?)",
            [name, role, password_hash, now, now],
        )

    def update_user(self, name: str, now: dt.datetime, **changes: Any) -> None:
        sets = ", ".join(f"{column} = ?" for column in changes)
        self._run(
            f"UPDATE users SET {sets}, updated_at = ? WHERE name = ?",
            [*changes.values(), now, name],
        )

    def delete_user(self, name: str) -> None:
        self._run("DELETE FROM users WHERE name = ?", [name])

    # -- sessions ---------------------------------------------------------------------------
    def insert_session(self, row: SessionRow) -> None:
        self._run(
            "INSERT INTO auth_sessions (token_hash, user_name, address, created_at, expires_at) "
            "VALUES (?, ?, ?, ?, ?)",
            [row.token_hash, row.user_name, row.address, row.created_at, row.expires_at],
        )

    def session(self, token_hash: str) -> SessionRow | None:
        rows = self._rows(
            "SELECT token_hash, user_name, address, created_at, expires_at, ended_at, end_reason "
            "FROM auth_sessions WHERE token_hash = ?",
            [token_hash],
        )
        return SessionRow(*rows[0]) if rows else None

    def end_sessions(
        self,
        now: dt.datetime,
        reason: str,
        *,
        token_hash: str | None = None,
        user: str | None = None,
    ) -> int:
        """End the open sessions of one token or of one user; give how many ended."""
        column, value = ("token_hash", token_hash) if token_hash else ("user_name", user)
        rows = self._rows(
            f"UPDATE auth_sessions SET ended_at = ?, end_reason = ? "
            f"WHERE {column} = ? AND ended_at IS NULL RETURNING token_hash",
            [now, reason, value],
        )
        return len(rows)

    def forget_sessions_before(self, cutoff: dt.datetime) -> None:
        """Drop sessions that expired before `cutoff` (they can never be used again)."""
        self._run("DELETE FROM auth_sessions WHERE expires_at < ?", [cutoff])

    # -- failed logins ----------------------------------------------------------------------
    def throttle(self, kind: str, subject: str) -> ThrottleRow | None:
        rows = self._rows(
            "SELECT kind, subject, failures, lockouts, locked_until, updated_at "
            "FROM login_throttle WHERE kind = ? AND subject = ?",
            [kind, subject],
        )
        return ThrottleRow(*rows[0]) if rows else None

    def save_throttle(self, row: ThrottleRow) -> None:
        with self.db.transaction() as session:
            session.execute(
                "DELETE FROM login_throttle WHERE kind = ? AND subject = ?", [row.kind, row.subject]
            )
            session.execute(
                "INSERT INTO login_throttle (kind, subject, failures, lockouts, locked_until, "
                "updated_at) VALUES (?, ?, ?, ?, ?, ?)",
                [
                    row.kind,
                    row.subject,
                    row.failures,
                    row.lockouts,
                    row.locked_until,
                    row.updated_at,
                ],
            )

    def clear_throttle(self, kind: str, subject: str) -> None:
        self._run("DELETE FROM login_throttle WHERE kind = ? AND subject = ?", [kind, subject])
