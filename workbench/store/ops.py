"""Operations records: the alerts raised and how their delivery went, and the processes that
ran an engine (started, last heartbeat, stopped).

A process run that started and never stopped ended in a crash (or a kill): the next start of
the same role on the same host says so. The heartbeat is written by /ready's database probe,
so "writable" means a row was really written.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import pandas as pd

from workbench.store.database import Database


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(tzinfo=None)


@dataclass(frozen=True)
class ProcessRun:
    """One process that ran an engine."""

    run_id: str
    role: str
    host: str
    pid: int
    started_at: dt.datetime
    beat_at: dt.datetime
    stopped_at: dt.datetime | None


class OpsStore:
    """The alerts and process_runs tables of one database (DuckDB or PostgreSQL)."""

    def __init__(self, db: Database) -> None:
        self.db = db

    # -- alerts -----------------------------------------------------------------------------
    def add_alert(
        self,
        alert_id: str,
        *,
        ts: dt.datetime,
        rule: str,
        level: str,
        strategy_id: str | None,
        title: str,
        body: str,
        status: str,
    ) -> None:
        """Record an alert as raised (before any sink is tried)."""
        self.db.execute(
            "INSERT INTO alerts (alert_id, ts, rule, level, strategy_id, title, body, status, "
            "attempts) VALUES (?, ?, ?, ?, ?, ?, ?, ?, 0)",
            [alert_id, ts, rule, level, strategy_id, title, body, status],
        )

    def set_delivery(
        self, alert_id: str, status: str, attempts: int, error: str | None = None
    ) -> None:
        """Record how delivering an alert went (sent, or failed with the last error)."""
        self.db.execute(
            "UPDATE alerts SET status = ?, attempts = ?, error = ?, sent_at = ? WHERE alert_id = ?",
            [status, attempts, error, utcnow() if status == "sent" else None, alert_id],
        )

    def alerts(self, limit: int | None = 200, since: dt.datetime | None = None) -> pd.DataFrame:
        """Give the alerts raised, newest first."""
        sql = (
            "SELECT ts, level, rule, strategy_id, title, body, status, attempts, error, alert_id "
            "FROM alerts" + (" WHERE ts >= ?" if since is not None else "") + " ORDER BY ts DESC"
        )
        args: list[object] = [since] if since is not None else []
        if limit is not None:
            sql += " LIMIT ?"
            args.append(limit)
        return self.db.frame(sql, args)

    # -- process runs -----------------------------------------------------------------------
    def start_run(self, run_id: str, role: str, host: str, pid: int) -> ProcessRun | None:
        """Record this process's start; give the previous run of the role on this host if it
        never stopped (a crash), else None."""
        row = self.db.fetchone(
            "SELECT run_id, role, host, pid, started_at, beat_at, stopped_at FROM process_runs "
            "WHERE role = ? AND host = ? ORDER BY started_at DESC LIMIT 1",
            [role, host],
        )
        now = utcnow()
        self.db.execute(
            "INSERT INTO process_runs (run_id, role, host, pid, started_at, beat_at) "
            "VALUES (?, ?, ?, ?, ?, ?)",
            [run_id, role, host, pid, now, now],
        )
        if row is None or row[6] is not None:
            return None
        return ProcessRun(*row)

    def beat(self, run_id: str) -> None:
        """Write this process's heartbeat (the database write probe)."""
        self.db.execute("UPDATE process_runs SET beat_at = ? WHERE run_id = ?", [utcnow(), run_id])

    def stop_run(self, run_id: str) -> None:
        """Record a clean stop."""
        self.db.execute(
            "UPDATE process_runs SET stopped_at = ? WHERE run_id = ?", [utcnow(), run_id]
        )
