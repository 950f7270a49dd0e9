"""`workbench status`, `workbench doctor`, `workbench backup`, `workbench restore`."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from pathlib import Path
from typing import Annotated, Any

import typer
from pydantic import ValidationError

from workbench.cli.common import DbOption, JsonOption, console, fail, print_json, settings_with


def _get_ready(url: str, timeout_s: float) -> tuple[int, dict[str, Any]]:
    try:
        with urllib.request.urlopen(url, timeout=timeout_s) as answer:
            return answer.status, json.loads(answer.read())
    except urllib.error.HTTPError as exc:  # 503: not ready, with the checks
        try:
            return exc.code, json.loads(exc.read())
        except ValueError:
            fail(f"{url} answered {exc.code} without readiness JSON: is it a workbench?")
    except (urllib.error.URLError, OSError) as exc:
        fail(
            f"no engine answers at {url} ({getattr(exc, 'reason', exc)}): start `workbench "
            "live run --http-port PORT` or `workbench serve`, or pass --url"
        )


def status(
    url: Annotated[
        str | None,
        typer.Option(
            help="the engine's address (default 127.0.0.1 at WORKBENCH_HTTP_PORT, "
            "else the dashboard's 5006)"
        ),
    ] = None,
    timeout_s: Annotated[float, typer.Option(help="seconds to wait for the answer")] = 10.0,
    as_json: JsonOption = False,
) -> None:
    """Print an engine's readiness (its /ready): feeds' lag, loop lag, database, exchange and
    clock skew, strategies by state. Exit status 1 when it is not ready."""
    if url is None:
        settings = settings_with()
        url = f"http://127.0.0.1:{settings.http_port or 5006}"
    code, body = _get_ready(url.rstrip("/") + "/ready", timeout_s)
    if as_json:
        print_json(body)
        raise typer.Exit(0 if body.get("ready") else 1)
    ready = bool(body.get("ready"))
    console.print("[bold green]ready[/]" if ready else "[bold red]NOT READY[/]", f"({url})")
    if "reason" in body:
        console.print(f"  {body['reason']}", highlight=False)
    for name, check in body.get("checks", {}).items():
        mark = "ok  " if check["ok"] else "FAIL"
        console.print(f"  {mark} {name:<9} {check['detail']}", highlight=False)
    states = ", ".join(f"{n} {s}" for s, n in sorted(body.get("strategies", {}).items()))
    console.print(f"  strategies: {states or 'none'}", highlight=False)
    if body.get("halted"):
        console.print("  [bold yellow]kill switch on[/]: no new entries (workbench live resume)")
    for feed in body.get("feeds", []):
        lag = "?" if feed["lag_bars"] is None else f"{feed['lag_bars']:g}"
        up = "up" if feed["up"] else "DOWN"
        console.print(
            f"  feed {feed['symbol']} {feed['timeframe']}: {up}, {lag} bars behind", highlight=False
        )
    raise typer.Exit(0 if ready and code == 200 else 1)


def doctor(
    send_test: Annotated[bool, typer.Option(help="send a test message to each alert sink")] = True,
    min_free_gb: Annotated[float, typer.Option(help="least free disk space (GB)")] = 1.0,
    db: DbOption = None,
    as_json: JsonOption = False,
) -> None:
    """Check a deployment's settings; print each problem and how to fix it (exit 1 on any)."""
    from workbench.ops.doctor import as_json as checks_json
    from workbench.ops.doctor import run_checks

    try:
        settings = settings_with(db)
    except ValidationError as exc:
        problems = [
            f"{'.'.join(str(p) for p in e['loc']) or 'settings'}: {e['msg']}" for e in exc.errors()
        ]
        if as_json:
            print_json(
                [{"name": "settings", "ok": False, "found": p, "problem": True} for p in problems]
            )
        else:
            for problem in problems:
                console.print(f"[bold red]FAIL[/] settings: {problem}", highlight=False)
        raise typer.Exit(1) from None
    checks = run_checks(settings, send_test=send_test, min_free_gb=min_free_gb)
    if as_json:
        print_json(checks_json(checks))
    else:
        for c in checks:
            mark = (
                "[green]ok  [/]" if c.ok else ("[yellow]warn[/]" if c.warn else "[bold red]FAIL[/]")
            )
            console.print(f"{mark} {c.name}: {c.found}", highlight=False)
            if not c.ok and c.fix:
                console.print(f"       fix: {c.fix}", highlight=False)
        problems = sum(c.problem for c in checks)
        console.print(
            f"{problems} problem{'s' if problems != 1 else ''}" if problems else "all good"
        )
    raise typer.Exit(1 if any(c.problem for c in checks) else 0)


def backup(
    to: Annotated[
        Path | None, typer.Option("--to", help="the backup file (default: in backup_dir)")
    ] = None,
    db: DbOption = None,
    as_json: JsonOption = False,
) -> None:
    """Back up the database: a consistent copy of the DuckDB file (through the engine while one
    runs on it), or pg_dump of PostgreSQL."""
    from workbench.ops.backup import BackupError, default_backup_path
    from workbench.ops.backup import backup as make_backup

    settings = settings_with(db)
    dest = to or default_backup_path(settings.backup_dir, settings.db)
    if to is None:
        dest.parent.mkdir(parents=True, exist_ok=True)
    try:
        done = make_backup(settings.db, dest)
    except BackupError as exc:
        fail(str(exc))
    if as_json:
        print_json(
            {
                "path": str(done.path),
                "source": done.source,
                "tables": [t.__dict__ for t in done.tables],
            }
        )
        return
    for t in done.tables:
        console.print(f"  {t.table:<20} {t.rows:>12,} rows  checksum {t.checksum}", highlight=False)
    console.print(f"backed up {done.source} to {done.path}", highlight=False)


def restore(
    backup_file: Annotated[Path, typer.Argument(help="a backup made by `workbench backup`")],
    yes: Annotated[bool, typer.Option("--yes", help="do not ask")] = False,
    db: DbOption = None,
) -> None:
    """Put a backup in place of the database (stop the engine first). A DuckDB file replaced
    is kept beside it as <db>.before-restore-<time>."""
    from workbench.ops.backup import BackupError
    from workbench.ops.backup import restore as put_back
    from workbench.store.target import mask_url

    settings = settings_with(db)
    where = mask_url(str(settings.db))
    if not yes and not typer.confirm(f"replace {where} with {backup_file}?"):
        raise typer.Exit(1)
    try:
        aside = put_back(backup_file, settings.db)
    except BackupError as exc:
        fail(str(exc))
    if aside is not None:
        console.print(f"the database it replaced is kept as {aside}", highlight=False)
    console.print(f"restored {backup_file} to {where}", highlight=False)
