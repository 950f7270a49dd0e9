"""The read service is locked down: a token, no file access, a time limit, off the loop."""

from __future__ import annotations

import asyncio
import json
import stat
import time
import urllib.error
import urllib.request
from collections.abc import AsyncIterator
from pathlib import Path

import duckdb
import pytest

from workbench.store import Store, StoreError
from workbench.store.sharing import ReadServer, owner_file, query_owner


@pytest.fixture
async def served(tmp_path: Path) -> AsyncIterator[tuple[Path, ReadServer]]:
    db = tmp_path / "served.duckdb"
    store = Store.open(db)
    server = await ReadServer(store, timeout_s=1.0).start()
    try:
        yield db, server
    finally:
        await server.stop()
        store.close()


async def ask(sql: str, db: Path) -> object:
    return await asyncio.to_thread(query_owner, sql, None, db)


async def test_the_token_sits_in_an_owner_only_file_and_answers_select(served) -> None:
    db, _ = served
    mode = stat.S_IMODE(owner_file(db).stat().st_mode)
    assert mode == 0o600
    assert len(json.loads(owner_file(db).read_text())["token"]) >= 40
    frame = await ask("SELECT count(*) AS n FROM candles", db)
    assert frame["n"].tolist() == [0]


@pytest.mark.parametrize("route", ["query", "control", "backup"])
@pytest.mark.parametrize("header", [None, "Bearer wrong", "Bearer "])
async def test_a_request_without_the_token_is_refused(
    served, header: str | None, route: str, tmp_path: Path
) -> None:
    db, _ = served
    url = json.loads(owner_file(db).read_text())["url"].rsplit("/", 1)[0] + f"/{route}"
    headers = {"Content-Type": "application/json"} | ({"Authorization": header} if header else {})
    body = {"sql": "SELECT 1", "action": "status", "path": str(tmp_path / "copy.duckdb")}
    request = urllib.request.Request(url, data=json.dumps(body).encode(), headers=headers)
    with pytest.raises(urllib.error.HTTPError) as refused:
        await asyncio.to_thread(urllib.request.urlopen, request, timeout=10)
    assert refused.value.code == 401
    assert "token" in json.loads(refused.value.read())["error"]
    assert not (tmp_path / "copy.duckdb").exists()


async def test_no_query_reaches_a_file(served, tmp_path: Path) -> None:
    db, _ = served
    secret = tmp_path / "secret.txt"
    secret.write_text("a,b\n1,2\n")
    for sql in (
        f"SELECT * FROM read_text('{secret}')",
        f"SELECT * FROM read_csv('{secret}')",
        f"SELECT * FROM glob('{tmp_path}/*')",
        "SELECT * FROM read_text('/etc/passwd')",
        f"SELECT * FROM read_blob('{db}')",
        f"SELECT * FROM '{secret}'",
    ):
        with pytest.raises(StoreError) as refused:
            await ask(sql, db)
        message = str(refused.value)
        assert "does not run table functions" in message or "does not exist" in message, sql
    with pytest.raises(StoreError, match="does not serve users"):
        await ask("SELECT name, password_hash FROM main.USERS", db)
    with pytest.raises(StoreError, match="does not serve auth_sessions"):
        await ask("WITH s AS (FROM auth_sessions) SELECT count(*) FROM s", db)
    for sql in (
        "SET enable_external_access = true",
        f"COPY candles TO '{tmp_path}/out.csv'",
        f"ATTACH '{tmp_path}/other.duckdb'",
        "INSTALL httpfs",
        "LOAD httpfs",
    ):
        with pytest.raises(StoreError, match="only one SELECT"):
            await ask(sql, db)
    assert not (tmp_path / "out.csv").exists()


async def test_the_instance_itself_refuses_files_if_a_check_were_missed(served, tmp_path) -> None:
    _, server = served
    (tmp_path / "f.txt").write_text("x")
    with pytest.raises(duckdb.PermissionException, match="disabled by configuration"):
        server.store.con.execute(f"SELECT * FROM read_text('{tmp_path}/f.txt')")
    with pytest.raises(duckdb.Error, match="locked"):
        server.store.con.execute("SET enable_external_access = true")


async def test_a_slow_query_is_cancelled_and_does_not_stall_the_loop(served) -> None:
    db, _ = served
    gaps: list[float] = []
    done = asyncio.Event()

    async def ticker() -> None:
        last = time.perf_counter()
        while not done.is_set():
            await asyncio.sleep(0.01)
            now = time.perf_counter()
            gaps.append(now - last)
            last = now

    ticking = asyncio.create_task(ticker())
    began = time.perf_counter()
    with pytest.raises(StoreError, match=r"longer than 1 s and was cancelled"):
        await ask("SELECT count(*) FROM range(1000000000000) t(i) WHERE i % 7 = 3", db)
    took = time.perf_counter() - began
    done.set()
    await ticking
    assert 1.0 <= took < 10, took
    # On the loop, the query would have held it for the whole second it ran.
    assert max(gaps) < 0.5, max(gaps)
    frame = await ask("SELECT 42 AS answer", db)  # the service goes on
    assert frame["answer"].tolist() == [42]


async def test_stopping_interrupts_a_running_query_so_the_store_closes(tmp_path: Path) -> None:
    db = tmp_path / "stopped.duckdb"
    store = Store.open(db)
    server = await ReadServer(store, timeout_s=60.0).start()
    asking = asyncio.create_task(ask("SELECT count(*) FROM range(1000000000000) t(i)", db))
    await asyncio.sleep(0.5)  # the query runs in DuckDB by now
    began = time.perf_counter()
    await server.stop()
    assert time.perf_counter() - began < 10
    store.close()  # DuckDB refuses to close a connection a query still uses
    with pytest.raises(StoreError):
        await asking
