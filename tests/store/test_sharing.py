"""Reading the database while a live run owns it: directly refused, served by the owner."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from shipped import live_run

from workbench.store import Store, StoreError, StoreLocked
from workbench.store.sharing import owner_file, query


async def wait_for_line(stream: asyncio.StreamReader, prefix: str, timeout_s: float = 90) -> None:
    async def scan() -> None:
        async for raw in stream:
            if raw.decode().startswith(prefix):
                return
        raise AssertionError(f"the run ended before {prefix!r}")

    await asyncio.wait_for(scan(), timeout_s)


async def test_a_notebook_reads_while_the_engine_owns_the_file(tmp_path: Path) -> None:
    db = tmp_path / "owned.duckdb"
    run = await asyncio.create_subprocess_exec(
        *live_run(),
        stdout=asyncio.subprocess.PIPE,
        env={**os.environ, "WORKBENCH_DB": str(db)},
    )
    assert run.stdout is not None
    try:
        await wait_for_line(run.stdout, "running")
        with pytest.raises(StoreLocked, match=f"PID {run.pid}"):
            Store.open(db, read_only=True, wait_s=0.2)
        first = await asyncio.to_thread(query, "SELECT count(*) AS n FROM equity", None, db)
        await asyncio.sleep(1.5)
        later = await asyncio.to_thread(query, "SELECT count(*) AS n FROM equity", None, db)
        assert later["n"].iloc[0] > first["n"].iloc[0], "reads see the engine's new rows"
        candles = await asyncio.to_thread(
            query, "SELECT symbol, count(*) AS n FROM candles GROUP BY 1 ORDER BY 1", None, db
        )
        assert len(candles) == 11 and (candles["n"] > 1900).all()
        with pytest.raises(StoreError, match="only one SELECT"):
            await asyncio.to_thread(query, "DELETE FROM candles", None, db)
    finally:
        run.send_signal(signal.SIGINT)
        assert await asyncio.wait_for(run.wait(), 30) == 0
    assert not owner_file(db).exists()
    with Store.open(db, read_only=True) as store:
        assert store.con.execute("SELECT count(*) FROM candles").fetchone()[0] > 50_000


def test_a_lock_holder_that_serves_nothing_is_named_and_a_stale_address_ignored(
    tmp_path: Path,
) -> None:
    db = tmp_path / "held.duckdb"
    Store.open(db).close()
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    owner_file(db).write_text(json.dumps({"pid": dead.pid, "url": "http://127.0.0.1:9/query"}))
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time; from workbench.store import Store; s = Store.open(sys.argv[1]); "
            "print('holding', flush=True); time.sleep(30)",
            str(db),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "holding"
        with pytest.raises(StoreLocked, match="serves no reads"):
            query("SELECT 1", db=db)
    finally:
        holder.kill()
        holder.wait()
