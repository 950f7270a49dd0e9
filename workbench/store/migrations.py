"""Numbered schema migrations, the same on both backends, recorded in `schema_migrations`.

Each migration is a file `NNNN_name.sql` beside this module, written in the SQL both DuckDB
and PostgreSQL accept (DOUBLE PRECISION, VARCHAR, BIGINT[], `ON CONFLICT`). Where the
dialects truly differ, `NNNN_name.duckdb.sql` or `NNNN_name.postgres.sql` replaces the
common file on that backend. Migrations run in order, each in its own transaction together
with the row that records it, so a failed migration leaves the database at the previous
version. On PostgreSQL an advisory lock makes processes that start together migrate one
after the other.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from importlib import resources

from workbench.store.database import Database, Session
from workbench.store.dialect import Backend
from workbench.store.errors import SchemaTooNew, StoreError

_NAME = re.compile(r"^(\d{4})_([a-z0-9_]+?)(?:\.(duckdb|postgres))?\.sql$")
_MIGRATE_LOCK = 0x776B_6D69_6772  # "wkmigr": the advisory lock key of migrating


@dataclass(frozen=True)
class Migration:
    """One schema change: its version number, name and SQL for each backend."""

    version: int
    name: str
    sql: str  # the common SQL (or the DuckDB one when only per-backend files exist)
    postgres_sql: str | None = None

    def sql_for(self, backend: Backend) -> str:
        if backend is Backend.POSTGRES and self.postgres_sql is not None:
            return self.postgres_sql
        return self.sql


def known_migrations() -> list[Migration]:
    """Give the migrations this package ships, in version order."""
    files: dict[int, dict[str | None, str]] = {}
    names: dict[int, str] = {}
    for entry in resources.files("workbench.store").joinpath("migrations").iterdir():
        match = _NAME.match(entry.name)
        if not match:
            continue
        version, name, backend = int(match.group(1)), match.group(2), match.group(3)
        if names.setdefault(version, name) != name:
            raise StoreError(f"migration {version:04d} has two names: {names[version]}, {name}")
        files.setdefault(version, {})[backend] = entry.read_text()
    found = []
    for version in sorted(files):
        sqls = files[version]
        duck = sqls.get("duckdb", sqls.get(None))
        pg = sqls.get("postgres", sqls.get(None))
        if duck is None or pg is None:
            raise StoreError(
                f"migration {version:04d}_{names[version]} lacks SQL for "
                f"{'DuckDB' if duck is None else 'PostgreSQL'}: add the common .sql file"
            )
        found.append(Migration(version, names[version], duck, pg if pg != duck else None))
    versions = [m.version for m in found]
    if versions != list(range(1, len(found) + 1)):
        raise StoreError(f"migrations must be numbered 1..n without holes, found {versions}")
    return found


def latest_version() -> int:
    """Give the schema version this package writes."""
    return len(known_migrations())


def _version(session: Session) -> int:
    if session.dialect.is_postgres:
        # The catalog, not information_schema: that one hides the tables a user may not
        # read, and a user without rights must hear so, not "no workbench tables yet".
        exists = session.fetchone(
            "SELECT count(*) FROM pg_class WHERE relname = 'schema_migrations' "
            "AND relnamespace = current_schema()::regnamespace"
        )
    else:
        exists = session.fetchone(
            "SELECT count(*) FROM information_schema.tables "
            "WHERE table_name = 'schema_migrations' AND table_schema = current_schema()"
        )
    if not exists or exists[0] == 0:
        return 0
    row = session.fetchone("SELECT coalesce(max(version), 0) FROM schema_migrations")
    return int(row[0]) if row else 0


def current_version(db: Database) -> int:
    """Give the schema version recorded in a database (0 for an empty one)."""
    with db.session() as session:
        return _version(session)


def _refuse_newer(db: Database, version: int) -> None:
    latest = latest_version()
    if version > latest:
        raise SchemaTooNew(
            f"the database {db.describe()} is at schema version {version}, but this workbench "
            f"knows only up to {latest}: upgrade the workbench (pip install -U workbench) to "
            "open it"
        )


def check_version(db: Database) -> int:
    """Give the database's schema version, refusing one newer than this package knows."""
    version = current_version(db)
    _refuse_newer(db, version)
    return version


def pending(db: Database) -> list[Migration]:
    """Give the migrations a database lacks."""
    version = check_version(db)
    return [m for m in known_migrations() if m.version > version]


def migrate(db: Database, target: int | None = None) -> list[Migration]:
    """Apply the migrations the database lacks, up to `target` (default: all); give those run."""
    backend = db.dialect.backend
    with db.session() as session:
        if backend is Backend.POSTGRES:
            session.execute(f"SELECT pg_advisory_lock({_MIGRATE_LOCK})")
        try:
            return _apply(db, session, backend, target)
        finally:
            if backend is Backend.POSTGRES:
                session.execute(f"SELECT pg_advisory_unlock({_MIGRATE_LOCK})")


def _apply(db: Database, session: Session, backend: Backend, target: int | None) -> list[Migration]:
    version = _version(session)  # read under the lock: another process may have migrated
    _refuse_newer(db, version)
    wanted = [
        m
        for m in known_migrations()
        if m.version > version and (target is None or m.version <= target)
    ]
    if not wanted:
        return []
    session.execute(
        "CREATE TABLE IF NOT EXISTS schema_migrations ("
        " version INTEGER PRIMARY KEY, name VARCHAR NOT NULL,"
        " applied_at TIMESTAMP NOT NULL DEFAULT now())"
    )
    applied = []
    for migration in wanted:
        session.execute("BEGIN TRANSACTION" if backend is Backend.DUCKDB else "BEGIN")
        try:
            session.execute(migration.sql_for(backend))
            session.execute(
                "INSERT INTO schema_migrations (version, name) VALUES (?, ?)",
                [migration.version, migration.name],
            )
            session.execute("COMMIT")
        except Exception as exc:
            session.execute("ROLLBACK")
            raise _migration_error(db, migration, exc) from exc
        applied.append(migration)
    return applied


def _migration_error(db: Database, migration: Migration, exc: Exception) -> StoreError:
    from workbench.store.postgres import connect_error
    from workbench.store.target import PostgresTarget

    target = getattr(db, "target", None)
    if isinstance(target, PostgresTarget) and type(exc).__name__ == "InsufficientPrivilege":
        return connect_error(target, exc)
    return StoreError(
        f"migration {migration.version:04d}_{migration.name} failed on {db.describe()}: {exc}"
    )
