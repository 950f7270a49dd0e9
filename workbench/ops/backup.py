"""Backups of the database and restoring them.

DuckDB. A backup is a new DuckDB file with every table as it stood at one moment: all tables
are read inside one transaction (DuckDB's snapshot isolation, so an engine that writes
meanwhile changes nothing in it) and written to the new file, each checked by its row count
and checksum read back (`workbench.store.copy`). While an engine owns the file, the owner
makes the copy: `workbench backup` asks its read service (`POST /backup` with the owner
file's token), which runs it on a worker thread, off the trading loop.

PostgreSQL. `pg_dump --format=custom` (consistent by itself: one snapshot), restored with
`pg_restore --clean --if-exists`.

Restoring a DuckDB file needs the database free (stop the engine first); the file it replaces
is moved aside (`<db>.before-restore-<time>`), never deleted.
"""

from __future__ import annotations

import datetime as dt
import glob
import json
import os
import shutil
import subprocess
import tempfile
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qsl, unquote, urlencode, urlsplit, urlunsplit

from workbench.store.copy import TableCopy, columns_of, frame_hash
from workbench.store.db import Store
from workbench.store.errors import StoreError, StoreLocked
from workbench.store.migrations import check_version, current_version, migrate
from workbench.store.sharing import _read_owner, owner_file
from workbench.store.target import PostgresTarget, parse_target

DUCKDB_SUFFIX = ".duckdb"
PG_SUFFIX = ".pgdump"


class BackupError(StoreError):
    """A backup or restore that cannot be done: what and why, and what to do."""


@dataclass(frozen=True)
class Backup:
    """A backup made: where, of what, and each table's rows and checksum."""

    path: Path
    source: str
    tables: tuple[TableCopy, ...]


def default_backup_path(backup_dir: Path, db: str, now: dt.datetime | None = None) -> Path:
    """Give a new backup's file name in `backup_dir` (UTC time in the name)."""
    now = now or dt.datetime.now(dt.UTC)
    suffix = PG_SUFFIX if isinstance(parse_target(db), PostgresTarget) else DUCKDB_SUFFIX
    return Path(backup_dir) / f"workbench-{now:%Y%m%d-%H%M%S}{suffix}"


def newest_backup(backup_dir: Path) -> Path | None:
    """Give the newest backup file in a folder, or None."""
    found = [
        p for p in Path(backup_dir).glob("workbench-*") if p.suffix in (DUCKDB_SUFFIX, PG_SUFFIX)
    ]
    return max(found, key=lambda p: p.stat().st_mtime) if found else None


def _check_destination(dest: Path) -> None:
    if dest.exists():
        raise BackupError(f"{dest} exists: a backup never overwrites a file")
    if not dest.parent.is_dir():
        raise BackupError(f"{dest.parent} is not a folder: create it first")


def snapshot_to_file(store: Store, dest: Path) -> Backup:
    """Copy every table of a DuckDB store, as of one moment, to a new DuckDB file."""
    dest = Path(dest)
    _check_destination(dest)
    store.trading.writes.drain()  # the copy holds every trading write made before it
    # Written in a folder only this user can enter, then moved into place readable by this
    # user only: a backup holds the password hashes and the audit log.
    work = Path(tempfile.mkdtemp(prefix=f".{dest.name}.", dir=dest.parent))
    partial = work / dest.name
    copies = []
    try:
        with store.db.transaction() as tx:  # one snapshot for every table
            version = int(
                (tx.fetchone("SELECT coalesce(max(version), 0) FROM schema_migrations") or (0,))[0]
            )
            tables = [
                str(r[0])
                for r in tx.fetchall(
                    "SELECT table_name FROM information_schema.tables WHERE table_schema = "
                    "current_schema() AND table_type = 'BASE TABLE' ORDER BY 1"
                )
                if r[0] != "schema_migrations"
            ]
            with Store.open(partial, migrate_schema=False) as target:
                migrate(target.db, target=version)
                for table in tables:
                    columns = columns_of(store.db, table)
                    names = ", ".join(c for c, _ in columns)
                    kinds = [k for _, k in columns]
                    rows, sent = 0, 0
                    with target.db.transaction() as out:
                        for frame in tx.iter_frames(f"SELECT {names} FROM {table}"):
                            out.insert_frame(table, frame)
                            rows += len(frame)
                            sent = (sent + frame_hash(frame, kinds)) % 2**64
                    back = target.db.frame(f"SELECT {names} FROM {table}")
                    if len(back) != rows or frame_hash(back, kinds) % 2**64 != sent:
                        raise BackupError(f"{table}: the copy read back differs from the source")
                    copies.append(TableCopy(table, rows, f"{sent:016x}"))
                target.db.execute("CHECKPOINT")
        os.chmod(partial, 0o600)
        os.replace(partial, dest)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return Backup(dest, store.describe(), tuple(copies))


def backup_duckdb(db: Path, dest: Path, timeout_s: float = 600) -> Backup:
    """Back up a DuckDB file: directly when it is free, through its owner while an engine
    holds it."""
    db = Path(db)
    if not db.exists():
        raise BackupError(f"no database at {db}")
    try:
        with Store.open(db, read_only=True, wait_s=0.5) as store:
            return snapshot_to_file(store, dest)
    except StoreLocked as locked:
        served = _read_owner(owner_file(db))
        if served is None:
            raise BackupError(
                f"{locked} and serves no reads: back up from that process, or stop it"
            ) from locked
    return _ask_owner(served, db, Path(dest), timeout_s)


def _ask_owner(served: dict[str, object], db: Path, dest: Path, timeout_s: float) -> Backup:
    url = str(served["url"]).rsplit("/", 1)[0] + "/backup"
    request = urllib.request.Request(
        url,
        data=json.dumps({"path": str(Path(dest).resolve())}).encode(),
        headers={
            "Content-Type": "application/json",
            "Authorization": f"Bearer {served.get('token', '')}",
        },
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout_s) as answer:
            body = json.loads(answer.read())
    except urllib.error.HTTPError as exc:
        raise BackupError(json.loads(exc.read() or b"{}").get("error", str(exc))) from exc
    except urllib.error.URLError as exc:
        raise BackupError(f"the process holding {db} does not answer at {url}: {exc}") from exc
    tables = tuple(TableCopy(t["table"], int(t["rows"]), t["checksum"]) for t in body["tables"])
    return Backup(Path(body["path"]), str(body["source"]), tables)


def pg_tool(name: str) -> str:
    """Give the path of pg_dump or pg_restore (Debian's newest, else the PATH's)."""
    found = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    if found:
        return found[-1]
    on_path = shutil.which(name)
    if on_path:
        return on_path
    raise BackupError(f"{name} is not installed: apt-get install postgresql-client")


def pg_connection(target: PostgresTarget) -> tuple[str, dict[str, str]]:
    """Give the URL to hand pg_dump / pg_restore without its password, and their environment
    with the password in PGPASSWORD: a command line is readable by every user of the machine
    (`ps`), an environment only by the same user."""
    parts = urlsplit(target.url)
    env = dict(os.environ)
    netloc = parts.netloc
    user, at, host = netloc.rpartition("@")
    if at and ":" in user:
        name, password = user.split(":", 1)
        env["PGPASSWORD"] = unquote(password)
        netloc = f"{name}@{host}"
    pairs = parse_qsl(parts.query, keep_blank_values=True)
    for key, value in pairs:
        if key == "password":
            env["PGPASSWORD"] = value
    query = urlencode([(k, v) for k, v in pairs if k != "password"])
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment)), env


def _run(command: list[str], what: str, env: dict[str, str] | None = None) -> None:
    done = subprocess.run(command, capture_output=True, text=True, env=env)
    if done.returncode != 0:
        raise BackupError(f"{what} failed: {done.stderr.strip()[-2000:]}")


def backup_postgres(target: PostgresTarget, dest: Path) -> Backup:
    """Dump a PostgreSQL database with pg_dump (custom format)."""
    dest = Path(dest)
    _check_destination(dest)
    partial = dest.with_name(dest.name + ".partial")
    partial.unlink(missing_ok=True)
    os.close(os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))  # this user only
    url, env = pg_connection(target)
    try:
        _run(
            [
                pg_tool("pg_dump"),
                "--format=custom",
                "--no-owner",
                f"--file={partial}",
                f"--dbname={url}",
            ],
            f"pg_dump of {target.describe()}",
            env,
        )
        os.replace(partial, dest)
    finally:
        partial.unlink(missing_ok=True)
    return Backup(dest, target.describe(), ())


def backup(db: str, dest: Path) -> Backup:
    """Back up the database `db` (a DuckDB file or a PostgreSQL URL) to `dest`."""
    target = parse_target(db)
    if isinstance(target, PostgresTarget):
        return backup_postgres(target, dest)
    return backup_duckdb(target, dest)


def restore(backup_file: Path, db: str) -> Path | None:
    """Put a backup in place of the database `db`; give where the replaced file went (DuckDB)."""
    backup_file = Path(backup_file)
    if not backup_file.is_file():
        raise BackupError(f"no backup at {backup_file}")
    target = parse_target(db)
    if isinstance(target, PostgresTarget):
        if backup_file.suffix != PG_SUFFIX:
            raise BackupError(
                f"{backup_file} is not a pg_dump file ({PG_SUFFIX}): restore it to a DuckDB file"
            )
        url, env = pg_connection(target)
        _run(
            [
                pg_tool("pg_restore"),
                "--clean",
                "--if-exists",
                "--no-owner",
                f"--dbname={url}",
                str(backup_file),
            ],
            f"pg_restore into {target.describe()}",
            env,
        )
        return None
    if backup_file.suffix != DUCKDB_SUFFIX:
        raise BackupError(f"{backup_file} is not a DuckDB backup ({DUCKDB_SUFFIX})")
    try:
        with Store.open(backup_file, read_only=True, wait_s=0.5) as opened:
            if current_version(opened.db) == 0:
                raise BackupError(f"{backup_file} has no workbench schema")
            check_version(opened.db)
    except StoreLocked as exc:
        raise BackupError(f"{backup_file} is open in another process: {exc}") from exc
    path = Path(target)
    aside = None
    if path.exists():
        try:
            Store.open(path, wait_s=0.5, migrate_schema=False).close()
        except StoreLocked as exc:
            raise BackupError(
                f"{path} is in use (an engine runs on it): stop it, then restore"
            ) from exc
        stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%d-%H%M%S")
        aside = path.with_name(f"{path.name}.before-restore-{stamp}")
        os.replace(path, aside)
        for suffix in (".wal", ".journal"):  # the open above applied the journal
            extra = path.with_name(path.name + suffix)
            if extra.exists():
                os.replace(extra, aside.with_name(aside.name + suffix))
    shutil.copyfile(backup_file, path)
    return aside
