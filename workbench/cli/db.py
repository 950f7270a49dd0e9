"""`workbench db`: the database's schema version, migrations, and copies between backends."""

from __future__ import annotations

from typing import Annotated

import typer

from workbench.cli.common import DbOption, JsonOption, console, fail, print_json, settings_with

app = typer.Typer(help="The database: status, migrations, copies.", no_args_is_help=True)


@app.command()
def status(db: DbOption = None, as_json: JsonOption = False) -> None:
    """Show where the database is, its schema version, pending migrations and table sizes."""
    from workbench.store import Store, StoreError
    from workbench.store.migrations import current_version, latest_version, pending

    settings = settings_with(db)
    try:
        with Store.open(settings.db, read_only=True, migrate_schema=False) as store:
            version = current_version(store.db)
            waiting = pending(store.db)
            tables = {
                t: int((store.db.fetchone(f"SELECT count(*) FROM {t}") or (0,))[0])
                for t in store.db.tables()
                if t != "schema_migrations"
            }
            where, backend = store.describe(), str(store.backend)
    except StoreError as exc:
        fail(str(exc))
    out = {
        "backend": backend,
        "db": where,
        "version": version,
        "latest": latest_version(),
        "pending": [f"{m.version:04d}_{m.name}" for m in waiting],
        "tables": tables,
    }
    if as_json:
        print_json(out)
        return
    console.print(f"{backend} database {where}", highlight=False)
    console.print(f"schema version {version} of {latest_version()} known", highlight=False)
    for name in out["pending"]:
        console.print(f"pending {name} (run `workbench db migrate`)", highlight=False)
    for table, rows in tables.items():
        console.print(f"  {table:<20} {rows:>12,} rows", highlight=False)


@app.command("migrate")
def migrate_command(
    db: DbOption = None,
    to: Annotated[int | None, typer.Option("--to", help="stop at this version")] = None,
) -> None:
    """Apply the migrations the database lacks."""
    from workbench.store import Store, StoreError
    from workbench.store.migrations import current_version, migrate

    settings = settings_with(db)
    try:
        with Store.open(settings.db, migrate_schema=False) as store:
            applied = migrate(store.db, target=to)
            version = current_version(store.db)
            where = store.describe()
    except StoreError as exc:
        fail(str(exc))
    for m in applied:
        console.print(f"applied {m.version:04d}_{m.name}", highlight=False)
    console.print(f"{where} is at schema version {version}", highlight=False)


@app.command("copy")
def copy_command(
    source: Annotated[str, typer.Option("--from", help="DuckDB file or postgresql:// URL")],
    target: Annotated[str, typer.Option("--to", help="an empty DuckDB file or PostgreSQL db")],
    as_json: JsonOption = False,
) -> None:
    """Copy a whole database to another backend, verified by counts and checksums per table."""
    from workbench.store import Store, StoreError
    from workbench.store.copy import copy_store

    try:
        with (
            Store.open(source, read_only=True) as src,
            Store.open(target, migrate_schema=False) as dst,
        ):
            copied = copy_store(src, dst)
            where = dst.describe()
    except StoreError as exc:
        fail(str(exc))
    if as_json:
        print_json([c.__dict__ for c in copied])
        return
    for c in copied:
        console.print(f"{c.table:<20} {c.rows:>12,} rows  checksum {c.checksum}  verified")
    console.print(f"copied {len(copied)} tables to {where}", highlight=False)
