"""`workbench audit`: the audit log, listed and verified."""

from __future__ import annotations

from typing import Annotated

import pandas as pd
import typer

from workbench.cli.common import DbOption, JsonOption, console, fail, print_frame, settings_with
from workbench.store import Store, StoreError

app = typer.Typer(help="The audit log: who did what, when.", no_args_is_help=True)


@app.command("verify")
def verify(db: DbOption = None) -> None:
    """Check the hash chain; name the first row that does not hold (exit code 1)."""
    settings = settings_with(db)
    try:
        with Store.open(settings.db, read_only=True) as store:
            check = store.audit.verify()
    except StoreError as exc:
        fail(str(exc))
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
    settings = settings_with(db)
    try:
        start = pd.Timestamp(since).tz_localize(None).to_pydatetime() if since else None
    except ValueError as exc:
        fail(f"--since: {exc}")
    try:
        with Store.open(settings.db, read_only=True) as store:
            rows = store.audit.frame(
                actor=actor, action=action, result=result, since=start, limit=limit
            )
    except StoreError as exc:
        fail(str(exc))
    print_frame(rows, "audit log", as_json)
