"""Reading the database while another process owns it (docs/architecture.md, decision 6).

On PostgreSQL there is nothing to share: `query()` reads directly, in a read-only
transaction, whoever else is connected. The rest of this module is for DuckDB files.

DuckDB lets one process hold a file read-write and locks out every other process, readers
included. The process that runs the engine (the dashboard, `workbench live run`) owns the
file for as long as it runs, and serves reads: `ReadServer` answers read-only SQL over HTTP
on 127.0.0.1 and leaves its address beside the database (`<db>.owner.json`). `query()` reads
directly when the file is free and through the owner when it is not, so a notebook can read
candles, runs, trades and equity while the dashboard trades.

Only single SELECT statements are served (`duckdb` parses them first); the server listens on
127.0.0.1 only.
"""

from __future__ import annotations

import json
import os
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd
import pyarrow as pa
from aiohttp import web

from workbench.store.db import Store
from workbench.store.errors import StoreError, StoreLocked
from workbench.store.target import PostgresTarget, parse_target

ARROW_STREAM = "application/vnd.apache.arrow.stream"


def owner_file(db: str | Path) -> Path:
    """Give the file where the owning process of `db` leaves its read address."""
    db = Path(db)
    return db.with_name(db.name + ".owner.json")


def check_select(con: duckdb.DuckDBPyConnection, sql: str) -> None:
    """Raise StoreError unless `sql` is one SELECT statement."""
    try:
        statements = con.extract_statements(sql)
    except duckdb.Error as exc:
        raise StoreError(f"not valid SQL: {exc}") from exc
    kinds = [s.type for s in statements]
    if kinds != [duckdb.StatementType.SELECT]:
        raise StoreError(f"only one SELECT statement may be served, got {kinds}")


class ReadServer:
    """Serves read-only SQL on an open store, from the process that owns it."""

    def __init__(self, store: Store, host: str = "127.0.0.1") -> None:
        if store.path is None:
            raise StoreError("an in-memory store has no file to share")
        self.store = store
        self.host = host
        self.port = 0
        self._runner: web.AppRunner | None = None

    async def start(self) -> ReadServer:
        app = web.Application()
        app.router.add_post("/query", self._query)
        self._runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, 0)
        await site.start()
        server = site._server
        sockets = getattr(server, "sockets", None) or []
        self.port = int(sockets[0].getsockname()[1])
        assert self.store.path is not None
        owner_file(self.store.path).write_text(
            json.dumps({"pid": os.getpid(), "url": f"http://{self.host}:{self.port}/query"})
        )
        return self

    async def stop(self) -> None:
        if self.store.path is not None:
            owner_file(self.store.path).unlink(missing_ok=True)
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def _query(self, request: web.Request) -> web.Response:
        body = await request.json()
        cursor = self.store.con.cursor()
        try:
            check_select(cursor, str(body.get("sql", "")))
            table = cursor.execute(body["sql"], body.get("params") or []).to_arrow_table()
        except (StoreError, duckdb.Error) as exc:
            return web.json_response({"error": str(exc)}, status=400)
        finally:
            cursor.close()
        sink = pa.BufferOutputStream()
        with pa.ipc.new_stream(sink, table.schema) as writer:
            writer.write_table(table)
        return web.Response(body=sink.getvalue().to_pybytes(), content_type=ARROW_STREAM)


def query(sql: str, params: list[Any] | None = None, db: str | Path | None = None) -> pd.DataFrame:
    """Give the result of a SELECT on the database, read directly or through its owner."""
    if db is None:
        from workbench.settings import load_settings

        db = load_settings().db
    if isinstance(parse_target(db), PostgresTarget):
        return _query_postgres(sql, params, str(db))
    try:
        with Store.open(db, read_only=True, wait_s=0.5) as store:
            check_select(store.con, sql)
            return store.con.execute(sql, params or []).df()
    except StoreLocked as locked:
        owner = owner_file(db)
        served = json.loads(owner.read_text()) if owner.exists() else None
        if served is None or not _alive(int(served["pid"])):
            # No owner file, or one left by a process that died without removing it.
            raise StoreLocked(f"{locked} (the holder serves no reads)") from locked
        url = served["url"]
    request = urllib.request.Request(
        url,
        data=json.dumps({"sql": sql, "params": params or []}).encode(),
        headers={"Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=60) as answer:
            return pa.ipc.open_stream(answer.read()).read_all().to_pandas()
    except urllib.error.HTTPError as exc:
        raise StoreError(json.loads(exc.read() or b"{}").get("error", str(exc))) from exc
    except urllib.error.URLError as exc:
        raise StoreError(f"the process holding {db} does not answer at {url}: {exc}") from exc


def _query_postgres(sql: str, params: list[Any] | None, url: str) -> pd.DataFrame:
    import psycopg

    with Store.open(url, read_only=True) as store, store.db.transaction() as tx:
        tx.execute("SET TRANSACTION READ ONLY")
        try:
            return tx.frame(sql, params or [])
        except psycopg.errors.ReadOnlySqlTransaction as exc:
            raise StoreError(f"only reads may be run through query(): {exc}") from exc
        except psycopg.Error as exc:
            raise StoreError(f"the query failed on {store.describe()}: {exc}") from exc


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
