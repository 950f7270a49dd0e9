"""Numbered schema migrations, recorded in `schema_migrations`.

Each migration is a file `NNNN_name.sql` beside this module. Migrations run in order, each in
its own transaction together with the row that records it, so a failed migration leaves the
database at the previous version.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from importlib import resources

import duckdb

from workbench.store.errors import SchemaTooNew, StoreError

_NAME = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")


@dataclass(frozen=True)
class Migration:
    """One schema change: its version number, name and SQL."""

    version: int
    name: str
    sql: str


def known_migrations() -> list[Migration]:
    """Give the migrations this package ships, in version order."""
    found = []
    for entry in resources.files("workbench.store").joinpath("migrations").iterdir():
        match = _NAME.match(entry.name)
        if match:
            found.append(Migration(int(match.group(1)), match.group(2), entry.read_text()))
    found.sort(key=lambda m: m.version)
    versions = [m.version for m in found]
    if versions != list(range(1, len(found) + 1)):
        raise StoreError(f"migrations must be numbered 1..n without holes, found {versions}")
    return found


def latest_version() -> int:
    """Give the schema version this package writes."""
    return len(known_migrations())


def current_version(con: duckdb.DuckDBPyConnection) -> int:
    """Give the schema version recorded in a database (0 for an empty one)."""
    exists = con.execute(
        "SELECT count(*) FROM information_schema.tables WHERE table_name = 'schema_migrations'"
    ).fetchone()
    if not exists or exists[0] == 0:
        return 0
    row = con.execute("SELECT coalesce(max(version), 0) FROM schema_migrations").fetchone()
    return int(row[0]) if row else 0


def check_version(con: duckdb.DuckDBPyConnection) -> int:
    """Give the database's schema version, refusing one newer than this package knows."""
    version = current_version(con)
    latest = latest_version()
    if version > latest:
        raise SchemaTooNew(
            f"the database is at schema version {version}, but this workbench knows only up to "
            f"{latest}: upgrade the workbench (pip install -U workbench) to open it"
        )
    return version


def migrate(con: duckdb.DuckDBPyConnection, target: int | None = None) -> list[Migration]:
    """Apply the migrations the database lacks, up to `target` (default: all); give those run."""
    version = check_version(con)
    con.execute(
        "CREATE TABLE IF NOT EXISTS schema_migrations ("
        " version INTEGER PRIMARY KEY, name VARCHAR NOT NULL,"
        " applied_at TIMESTAMP NOT NULL DEFAULT now())"
    )
    applied = []
    for migration in known_migrations():
        if migration.version <= version or (target is not None and migration.version > target):
            continue
        con.execute("BEGIN TRANSACTION")
        try:
            con.execute(migration.sql)
            con.execute(
                "INSERT INTO schema_migrations (version, name) VALUES (?, ?)",
                [migration.version, migration.name],
            )
            con.execute("COMMIT")
        except duckdb.Error as exc:
            con.execute("ROLLBACK")
            raise StoreError(
                f"migration {migration.version:04d}_{migration.name} failed: {exc}"
            ) from exc
        applied.append(migration)
    return applied
