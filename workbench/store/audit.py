"""The audit log: an append-only table whose rows are chained by hashes.

Each row's `row_hash` is the SHA-256 of its content together with the previous row's hash
(`prev_hash`; the first row's is 64 zeros). Editing a row changes its hash; deleting one
breaks the link of the row after it; `verify` recomputes the chain and names the first row
that does not hold. Rows are only ever inserted: this module has no update or delete.
(Deleting the newest rows leaves a shorter chain that still holds: keep the head hash that
`verify` gives somewhere else to notice that.)
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import pandas as pd

from workbench.store.database import Database
from workbench.store.dialect import Backend

GENESIS = "0" * 64
_COLUMNS = (
    "seq, ts, actor, address, action, target, before_json, after_json, result, reason, "
    "prev_hash, row_hash"
)
# Appends of one process are serialized: each reads the head of the chain it extends.
_append_lock = threading.Lock()
_AUDIT_LOCK = 0x776B_6175_6469  # "wkaudi": the advisory lock key of appending (PostgreSQL)


@dataclass(frozen=True)
class AuditEntry:
    """One row of the audit log."""

    seq: int
    ts: dt.datetime  # UTC, naive, microseconds
    actor: str
    address: str | None
    action: str
    target: str | None
    before_json: str | None
    after_json: str | None
    result: str  # allowed | refused | failed
    reason: str | None
    prev_hash: str
    row_hash: str = ""

    def content_hash(self) -> str:
        """Give the hash this row must carry: over its content and the previous hash."""
        content = [
            self.seq,
            self.ts.isoformat(timespec="microseconds"),
            self.actor,
            self.address,
            self.action,
            self.target,
            self.before_json,
            self.after_json,
            self.result,
            self.reason,
            self.prev_hash,
        ]
        text = json.dumps(content, ensure_ascii=False, separators=(",", ":"))
        return hashlib.sha256(text.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class ChainCheck:
    """What `verify` found: rows checked, the head hash, and the first broken row if any."""

    rows: int
    head: str
    broken_seq: int | None = None
    problem: str | None = None

    @property
    def ok(self) -> bool:
        return self.broken_seq is None


def to_json(value: Any) -> str | None:
    """Give a before/after value as canonical JSON (None stays None)."""
    if value is None:
        return None
    return json.dumps(value, sort_keys=True, default=str, separators=(",", ":"))


class AuditLog:
    """The audit table of one database connection."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def append(
        self,
        *,
        actor: str,
        action: str,
        result: str,
        target: str | None = None,
        before: Any = None,
        after: Any = None,
        reason: str | None = None,
        address: str | None = None,
        ts: dt.datetime | None = None,
    ) -> AuditEntry:
        """Add a row at the head of the chain; give it as stored."""
        when = ts or dt.datetime.now(dt.UTC).replace(tzinfo=None)
        with _append_lock, self.db.transaction() as session:
            if self.db.dialect.backend is Backend.POSTGRES:
                # Other processes append too: one at a time at the head of the chain (the
                # lock ends with the transaction).
                session.execute(f"SELECT pg_advisory_xact_lock({_AUDIT_LOCK})")
            head = session.fetchone("SELECT seq, row_hash FROM audit_log ORDER BY seq DESC LIMIT 1")
            seq, prev = (int(head[0]) + 1, str(head[1])) if head else (1, GENESIS)
            entry = AuditEntry(
                seq,
                when,
                actor,
                address,
                str(action),
                target,
                to_json(before),
                to_json(after),
                str(result),
                reason,
                prev,
            )
            entry = AuditEntry(**{**entry.__dict__, "row_hash": entry.content_hash()})
            session.execute(
                f"INSERT INTO audit_log ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [getattr(entry, name.strip()) for name in _COLUMNS.split(",")],
            )
        return entry

    def entries(self) -> list[AuditEntry]:
        """Give every row, oldest first."""
        with self.db.session() as session:
            rows = session.fetchall(f"SELECT {_COLUMNS} FROM audit_log ORDER BY seq")
        return [AuditEntry(*row) for row in rows]

    def verify(self) -> ChainCheck:
        """Recompute the chain; give how many rows hold and the first that does not."""
        return verify_chain(self.entries())

    def frame(
        self,
        *,
        actor: str | None = None,
        action: str | None = None,
        result: str | None = None,
        since: dt.datetime | None = None,
        limit: int | None = 200,
    ) -> pd.DataFrame:
        """Give the rows matching every filter given, newest first."""
        sql, args = frame_query(actor=actor, action=action, result=result, since=since, limit=limit)
        with self.db.session() as session:
            return session.frame(sql, args)


# Every row, oldest first, as `AuditEntry` takes them (for a reader that is not the owner).
ENTRIES_SQL = f"SELECT {_COLUMNS} FROM audit_log ORDER BY seq"


def verify_chain(entries: Iterable[AuditEntry]) -> ChainCheck:
    """Recompute the chain of `entries` (oldest first); give how many rows hold and the first
    that does not."""
    prev, expected_seq, count = GENESIS, 1, 0
    for entry in entries:
        if entry.seq != expected_seq:
            return ChainCheck(
                count, prev, entry.seq, f"row {expected_seq} is missing before row {entry.seq}"
            )
        if entry.prev_hash != prev:
            return ChainCheck(count, prev, entry.seq, "its link to the previous row does not match")
        if entry.content_hash() != entry.row_hash:
            return ChainCheck(
                count, prev, entry.seq, "its content does not match its hash (edited)"
            )
        prev, expected_seq, count = entry.row_hash, entry.seq + 1, count + 1
    return ChainCheck(count, prev)


def frame_query(
    *,
    actor: str | None = None,
    action: str | None = None,
    result: str | None = None,
    since: dt.datetime | None = None,
    limit: int | None = 200,
) -> tuple[str, list[Any]]:
    """Give the SELECT (and its parameters) of the rows matching every filter, newest first."""
    where: list[str] = []
    args: list[Any] = []
    for column, value in (("actor", actor), ("action", action), ("result", result)):
        if value is not None:
            where.append(f"{column} = ?")
            args.append(value)
    if since is not None:
        where.append("ts >= ?")
        args.append(since)
    sql = (
        "SELECT seq, ts, actor, address, action, target, before_json AS before, "
        "after_json AS after, result, reason FROM audit_log"
        + (f" WHERE {' AND '.join(where)}" if where else "")
        + " ORDER BY seq DESC"
        + (" LIMIT ?" if limit is not None else "")
    )
    if limit is not None:
        args.append(limit)
    return sql, args
