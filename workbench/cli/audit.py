"""`workbench audit`: the audit log, listed and verified.

Both read the database directly when it is free, and through the read service of the
process that owns a DuckDB file while an engine runs on it (with the owner file's token), as
`workbench.query` does: `verify` then recomputes the chain here, over the rows the owner
sends.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Annotated, TypeVar

import pandas as pd
import typer

from workbench.cli.common import DbOption, JsonOption, console, fail, print_frame, settings_with
from workbench.store import Store, StoreError, StoreLocked
from workbench.store.audit import ENTRIES_SQL, AuditEntry, ChainCheck, frame_query, verify_chain

app = typer.Typer(help="The audit log: who did what, when.", no_args_is_help=True)
T = TypeVar("T")


def _read(db: str, direct: Callable[[Store], T], through_owner: Callable[[], T]) -> T:
    """Read with `direct` on the open store, or with `through_owner` while a running process
    owns the file."""
    from workbench.store.sharing import owned_by_running_process

    try:
        with Store.open(db, read_only=True, wait_s=0.5) as store:
            return direct(store)
    except StoreLocked as locked:
        if not owned_by_running_process(db):
            fail(f"{locked} (the holder serves no reads: stop it, or read when it has ended)")
    except StoreError as exc:
        fail(str(exc))
    try:
        return through_owner()
    except StoreError as exc:
        fail(str(exc))


@app.command("verify")
def verify(db: DbOption = None) -> None:
    """Check the hash chain; name the first row that does not hold (exit code 1)."""
    from workbench.store.sharing import query_owner_arrow

    settings = settings_with(db)

    def through_owner() -> ChainCheck:
        rows = query_owner_arrow(ENTRIES_SQL, db=settings.db).to_pylist()
        return verify_chain(AuditEntry(**row) for row in rows)

    check = _read(settings.db, lambda store: store.audit.verify(), through_owner)
    if not check.ok:
        fail(
            f"audit log broken at row {check.broken_seq}: {check.problem} "
            f"({check.rows} rows before it hold)"
        )
    console.print(f"audit log holds: {check.rows} rows, head {check.head}")


@app.command("list")
def list_rows(
    actor: Annotated[str | None, typer.Option(help="only this user")] = None,
    action: Annotated[
        str | None, typer.Option(help="only this action (login, set_state, ...)")
    ] = None,
    result: Annotated[str | None, typer.Option(help="allowed, refused or failed")] = None,
    since: Annotated[str | None, typer.Option(help="from this UTC time on")] = None,
    limit: Annotated[int, typer.Option(help="newest rows shown")] = 50,
    as_json: JsonOption = False,
    db: DbOption = None,
) -> None:
    """List the newest audit rows, filtered."""
    from workbench.store.sharing import query_owner

    settings = settings_with(db)
    try:
        start = pd.Timestamp(since).tz_localize(None).to_pydatetime() if since else None
    except ValueError as exc:
        fail(f"--since: {exc}")

    def direct(store: Store) -> pd.DataFrame:
        return store.audit.frame(
            actor=actor, action=action, result=result, since=start, limit=limit
        )

    def through_owner() -> pd.DataFrame:
        sql, args = frame_query(actor=actor, action=action, result=result, since=start, limit=limit)
        # The owner takes JSON parameters: the time as ISO text, which DuckDB casts back.
        args = [a.isoformat() if isinstance(a, dt.datetime) else a for a in args]
        return query_owner(sql, args, db=settings.db)

    rows = _read(settings.db, direct, through_owner)
    print_frame(rows, "audit log", as_json)
