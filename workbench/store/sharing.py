"""Reading the database while another process owns it (docs/architecture.md, decision 6).

On PostgreSQL there is nothing to share: `query()` reads directly, in a read-only
transaction, whoever else is connected. The rest of this module is for DuckDB files.

DuckDB lets one process hold a file read-write and locks out every other process, readers
included. The process that runs the engine (the dashboard, `workbench live run`) owns the
file for as long as it runs, and serves reads: `ReadServer` answers read-only SQL over HTTP
on 127.0.0.1 and leaves its address beside the database (`<db>.owner.json`). `query()` reads
directly when the file is free and through the owner when it is not, so a notebook can read
candles, runs, trades and equity while the dashboard trades.

The service is locked down: it listens on 127.0.0.1 only; each request carries the token
written to the owner file, which only the file's owner can read (mode 0600); only single
SELECT statements are served (`duckdb` parses them first), on a database instance with
external access off and its configuration locked (no `read_text`, `read_csv`, `glob`,
`COPY`, `ATTACH`, extension loading; nothing can turn it back on); and each query runs on a
worker thread, off the owner's event loop, for at most `read_timeout_s`, after which DuckDB
interrupts it and the caller gets an error that says so.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import hmac
import json
import os
import secrets
import urllib.error
import urllib.request
from collections.abc import Awaitable, Callable
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
DEFAULT_TIMEOUT_S = 30.0


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


# What the read service serves: the trading, candle and run tables, never credentials, and no
# table function but those that make rows out of nothing (`read_blob` of the database file
# itself stays possible with external access off, as would `duckdb_*` catalogue functions).
PRIVATE_TABLES = frozenset({"users", "auth_sessions", "login_throttle"})
SAFE_TABLE_FUNCTIONS = frozenset({"range", "generate_series", "unnest"})


def _sources(node: Any, found: set[tuple[str, str]]) -> None:
    if isinstance(node, dict):
        kind = node.get("type")
        if kind == "BASE_TABLE":
            found.add(("table", str(node.get("table_name", "")).lower()))
        elif kind == "TABLE_FUNCTION":
            function = node.get("function") or {}
            found.add(("function", str(function.get("function_name", "")).lower()))
        for value in node.values():
            _sources(value, found)
    elif isinstance(node, list):
        for value in node:
            _sources(value, found)


def check_served(con: duckdb.DuckDBPyConnection, sql: str) -> None:
    """Raise StoreError unless `sql` is one SELECT the read service may answer."""
    check_select(con, sql)
    rows = con.execute("SELECT json_serialize_sql(?)", [sql]).fetchall()
    row = rows[0] if rows else None
    tree = json.loads(row[0]) if row else {"error": True}
    if tree.get("error"):
        raise StoreError(f"the read service cannot check this query: {tree.get('error_message')}")
    found: set[tuple[str, str]] = set()
    _sources(tree, found)
    private = sorted(name for kind, name in found if kind == "table" and name in PRIVATE_TABLES)
    if private:
        raise StoreError(f"the read service does not serve {', '.join(private)}")
    functions = sorted(
        name for kind, name in found if kind == "function" and name not in SAFE_TABLE_FUNCTIONS
    )
    if functions:
        raise StoreError(
            f"the read service does not run table functions ({', '.join(functions)}); "
            f"only {', '.join(sorted(SAFE_TABLE_FUNCTIONS))}"
        )


def lock_down(con: duckdb.DuckDBPyConnection) -> None:
    """Turn external access off for the whole database instance and lock its configuration.

    DuckDB keeps these settings per instance, and every cursor of this process's file shares
    one: the owner's own reads and writes go on (registered frames included), but no SQL can
    reach a file, a URL or an extension any more, nor change a setting.
    """
    con.execute("SET enable_external_access = false")
    con.execute("SET lock_configuration = true")


def _write_private(path: Path, text: str) -> None:
    """Write `text` to `path` readable by this user only (0600 from the start)."""
    partial = path.with_name(path.name + ".partial")
    partial.unlink(missing_ok=True)
    fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write(text)
    os.replace(partial, path)


class ReadServer:
    """Serves read-only SQL on an open store, from the process that owns it."""

    def __init__(
        self, store: Store, host: str = "127.0.0.1", timeout_s: float = DEFAULT_TIMEOUT_S
    ) -> None:
        if store.path is None:
            raise StoreError("an in-memory store has no file to share")
        self.store = store
        self.host = host
        self.port = 0
        self.timeout_s = timeout_s
        self._token = secrets.token_urlsafe(32)
        self._runner: web.AppRunner | None = None
        #: the owner's answer to a control request (`live halt`, `live resume`), when it
        #: runs an engine: given the request's JSON, it gives the JSON answer
        self.control: Callable[[dict[str, Any]], Awaitable[dict[str, Any]]] | None = None
        # Queries run here, never on the event loop; two at once at most.
        self._pool = concurrent.futures.ThreadPoolExecutor(2, thread_name_prefix="read-service")
        self._running: set[duckdb.DuckDBPyConnection] = set()

    async def start(self) -> ReadServer:
        lock_down(self.store.con)
        app = web.Application(client_max_size=1 << 20)
        app.router.add_post("/query", self._query)
        app.router.add_post("/control", self._control)
        app.router.add_post("/backup", self._backup)  # workbench backup (workbench.ops.backup)
        self._runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, 0)
        await site.start()
        server = site._server
        sockets = getattr(server, "sockets", None) or []
        self.port = int(sockets[0].getsockname()[1])
        assert self.store.path is not None
        _write_private(
            owner_file(self.store.path),
            json.dumps(
                {
                    "pid": os.getpid(),
                    "url": f"http://{self.host}:{self.port}/query",
                    "control": f"http://{self.host}:{self.port}/control",
                    "token": self._token,
                }
            ),
        )
        return self

    async def stop(self) -> None:
        """Stop serving: queries still running are interrupted, and done before this returns
        (the store can then be closed: DuckDB refuses to close a connection a query uses)."""
        if self.store.path is not None:
            owner_file(self.store.path).unlink(missing_ok=True)
        for cursor in list(self._running):
            cursor.interrupt()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        try:
            await asyncio.to_thread(self._pool.shutdown, wait=True, cancel_futures=True)
        except RuntimeError:  # at a server's exit the loop's executor is shut down already
            self._pool.shutdown(wait=True, cancel_futures=True)  # in line: queries interrupted

    def _authorized(self, request: web.Request) -> bool:
        given = request.headers.get("Authorization", "")
        return hmac.compare_digest(given.encode(), f"Bearer {self._token}".encode())

    async def _control(self, request: web.Request) -> web.Response:
        if not self._authorized(request):
            return web.json_response(
                {"error": "control needs the token from the owner file"}, status=401
            )
        if self.control is None:
            return web.json_response({"error": "this process runs no engine"}, status=404)
        try:
            body = await request.json()
            if not isinstance(body, dict):
                raise TypeError
        except (ValueError, TypeError):
            return web.json_response({"error": "the body must be a JSON object"}, status=400)
        try:
            return web.json_response(await self.control(body))
        except Exception as exc:  # the refusal or the failure, said to the caller
            return web.json_response({"error": str(exc)}, status=400)

    async def _query(self, request: web.Request) -> web.Response:
        if not self._authorized(request):
            return web.json_response(
                {"error": "the read service needs the token from the owner file"}, status=401
            )
        try:
            body = await request.json()
            sql, params = str(body.get("sql", "")), list(body.get("params") or [])
        except (ValueError, AttributeError, TypeError):
            return web.json_response({"error": "the body must be JSON: {sql, params}"}, status=400)
        cursor = self.store.con.cursor()
        self._running.add(cursor)
        loop = asyncio.get_running_loop()
        work = loop.run_in_executor(self._pool, self._select, cursor, sql, params)
        try:
            async with asyncio.timeout(self.timeout_s):
                answer = await asyncio.shield(work)
        except TimeoutError:
            cursor.interrupt()
            with contextlib.suppress(duckdb.Error, StoreError):
                await work
            return web.json_response(
                {
                    "error": f"the query ran longer than {self.timeout_s:g} s and was "
                    "cancelled (read_timeout_s)"
                },
                status=408,
            )
        except (StoreError, duckdb.Error) as exc:
            return web.json_response({"error": str(exc)}, status=400)
        finally:
            # Closed once the worker is done with it (at once unless it is still running).
            work.add_done_callback(lambda _f: self._done(cursor))
        return web.Response(body=answer, content_type=ARROW_STREAM)

    def _select(self, cursor: duckdb.DuckDBPyConnection, sql: str, params: list[Any]) -> bytes:
        self.store.trading.writes.drain()  # a reader sees every write made before it asked
        return _run_select(cursor, sql, params)

    def _done(self, cursor: duckdb.DuckDBPyConnection) -> None:
        self._running.discard(cursor)
        cursor.close()

    async def _backup(self, request: web.Request) -> web.Response:
        """Write a consistent copy of the database to the path asked (a new file), on a
        worker thread: the owner is the only process that can read the file now."""
        if not self._authorized(request):
            return web.json_response(
                {"error": "the read service needs the token from the owner file"}, status=401
            )
        from workbench.ops.backup import snapshot_to_file

        try:
            dest = Path(str((await request.json())["path"]))
        except (ValueError, KeyError, TypeError):
            return web.json_response({"error": "the body must be JSON: {path}"}, status=400)
        if not dest.is_absolute():
            return web.json_response({"error": f"{dest} is not an absolute path"}, status=400)
        loop = asyncio.get_running_loop()
        try:
            done = await loop.run_in_executor(self._pool, snapshot_to_file, self.store, dest)
        except (StoreError, duckdb.Error, OSError) as exc:
            return web.json_response({"error": str(exc)}, status=400)
        return web.json_response(
            {
                "path": str(done.path),
                "source": done.source,
                "tables": [t.__dict__ for t in done.tables],
            }
        )


def _run_select(cursor: duckdb.DuckDBPyConnection, sql: str, params: list[Any]) -> bytes:
    """Give the answer to a served SELECT as an Arrow stream (encoded here, off the loop)."""
    check_served(cursor, sql)
    table = cursor.sql(sql, params=params or None).to_arrow_table()
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    return bytes(sink.getvalue().to_pybytes())


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
        served = _read_owner(owner)
        if served is None or not _alive(int(served["pid"])):
            # No owner file, or one left by a process that died without removing it.
            raise StoreLocked(f"{locked} (the holder serves no reads)") from locked
    return query_owner(sql, params, db)


def _read_owner(owner: Path) -> dict[str, Any] | None:
    if not owner.exists():
        return None
    try:
        return dict(json.loads(owner.read_text()))
    except PermissionError as exc:
        raise StoreError(
            f"{owner} is readable only by the user running the engine: read as that user"
        ) from exc


def query_owner(
    sql: str, params: list[Any] | None = None, db: str | Path | None = None, timeout_s: float = 600
) -> pd.DataFrame:
    """Give the result of a SELECT through the read service of the process owning `db`."""
    return query_owner_arrow(sql, params, db, timeout_s).to_pandas()


def query_owner_arrow(
    sql: str, params: list[Any] | None = None, db: str | Path | None = None, timeout_s: float = 600
) -> pa.Table:
    """Give the result of a SELECT through the owner's read service, as the Arrow table it
    sent (Python values come back exactly: `to_pylist()`)."""
    if db is None:
        from workbench.settings import load_settings

        db = load_settings().db
    served = _read_owner(owner_file(db))
    if served is None:
        raise StoreError(f"no process serves reads of {db} (no {owner_file(db).name})")
    url = served["url"]
    request = urllib.request.Request(
        url,
        data=json.dumps({"sql": sql, "params": params or []}).encode(),
        headers={
            "Content-Type": "application/json",
            "Authorization": f"Bearer {served.get('token', '')}",
        },
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout_s) as answer:
            return pa.ipc.open_stream(answer.read()).read_all()
    except urllib.error.HTTPError as exc:
        raise StoreError(json.loads(exc.read() or b"{}").get("error", str(exc))) from exc
    except urllib.error.URLError as exc:
        raise StoreError(f"the process holding {db} does not answer at {url}: {exc}") from exc


def owner_control(db: str | Path, body: dict[str, Any], timeout_s: float = 120) -> dict[str, Any]:
    """Send a control request to the running process that owns `db`; give its answer.

    Raises StoreError when no live process owns the file, or with the owner's refusal."""
    served = _read_owner(owner_file(db))
    if served is None or not _alive(int(served["pid"])):
        raise StoreError(f"no running process owns {db}")
    url = served.get("control")
    if not url:
        raise StoreError(f"the process owning {db} takes no control requests (an older one)")
    request = urllib.request.Request(
        url,
        data=json.dumps(body).encode(),
        headers={
            "Content-Type": "application/json",
            "Authorization": f"Bearer {served.get('token', '')}",
        },
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout_s) as answer:
            return dict(json.loads(answer.read()))
    except urllib.error.HTTPError as exc:
        raise StoreError(json.loads(exc.read() or b"{}").get("error", str(exc))) from exc
    except urllib.error.URLError as exc:
        raise StoreError(f"the process holding {db} does not answer at {url}: {exc}") from exc


def owned_by_running_process(db: str | Path) -> bool:
    """Tell whether a live process owns the DuckDB file `db` (and serves it)."""
    if isinstance(parse_target(db), PostgresTarget):
        return False
    served = _read_owner(owner_file(db))
    return served is not None and _alive(int(served["pid"]))


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
