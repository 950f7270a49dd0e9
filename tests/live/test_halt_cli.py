"""`workbench live halt` / `live resume` reach a running `live run` in another process (through
the DuckDB owner's control service, or a shared PostgreSQL database the engine looks at), and
a stopped engine's stored state; audited with who did it, and the audit log verified and
listed through the running engine."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
from pathlib import Path

import pytest
from shipped import ROOT

from workbench.auth.acting import BadInput
from workbench.live.control import store_halt
from workbench.store import Store

SPEC = ROOT / "data" / "strategies" / "sma_cross.json"


async def start_engine(db: str) -> tuple[asyncio.subprocess.Process, list[str], asyncio.Task]:
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "workbench", "live", "run", str(SPEC), "--speed", "600",
        "--max-open-positions", "3",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
        env={**os.environ, "WORKBENCH_DB": db},
    )  # fmt: skip
    out: list[str] = []

    async def collect() -> None:
        assert process.stdout is not None
        async for raw in process.stdout:
            out.append(raw.decode().rstrip())

    return process, out, asyncio.create_task(collect())


async def seen(out: list[str], prefix: str, timeout_s: float = 120) -> str:
    for _ in range(int(timeout_s / 0.05)):
        found = [line for line in out if line.startswith(prefix)]
        if found:
            return found[-1]
        await asyncio.sleep(0.05)
    raise AssertionError(f"no {prefix!r} in {out[-15:]}")


async def cli(db: str, *args: str, group: str = "live") -> tuple[int, str]:
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "workbench", group, *args, "--db", db,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )  # fmt: skip
    output, _ = await process.communicate()
    return process.returncode or 0, output.decode()


async def stop(process: asyncio.subprocess.Process, reader: asyncio.Task) -> None:
    process.send_signal(signal.SIGTERM)
    await asyncio.wait_for(process.wait(), 60)
    await reader


@pytest.mark.slow
async def test_halt_and_resume_reach_a_running_engine_and_a_stopped_one(tmp_path: Path) -> None:
    db = str(tmp_path / "h.duckdb")
    process, out, reader = await start_engine(db)
    try:
        await seen(out, "running")
        assert "'max_open_positions': 3" in await seen(out, "limits  account")
        code, said = await cli(db, "halt", "--reason", "exchange incident")
        assert code == 0, said
        assert "halted by cli:" in said and "exchange incident" in said
        assert "the running engine" in said
        # The engine in the other process is halted, and says so.
        assert "exchange incident" in await seen(out, "halted  by cli:", timeout_s=30)
        code, said = await cli(db, "resume", "--reason", "all clear")
        assert code == 0 and "not halted" in said, said
        assert "all clear" in await seen(out, "resumed by cli:", timeout_s=30)
        # The audit log, while the engine owns the file: read through it.
        verified = await cli(db, "verify", group="audit")
        listed = await cli(db, "list", "--json", "--since", "2000-01-01", group="audit")
    finally:
        await stop(process, reader)
    # The oracle: the chain read directly, once the engine let go of the file.
    with Store.open(db, read_only=True) as store:
        entries = store.audit.entries()
    assert verified == (0, f"audit log holds: {len(entries)} rows, head {entries[-1].row_hash}\n")
    rows = json.loads(listed[1])
    assert [r["seq"] for r in rows] == [e.seq for e in reversed(entries)]
    assert [r["action"] for r in rows[:2]] == ["resume", "halt"]

    # Stopped: the halt is stored, and the next start comes up halted.
    code, said = await cli(db, "halt", "--reason", "weekend")
    assert code == 0 and "the database" in said, said
    process, out, reader = await start_engine(db)
    try:
        assert "weekend" in await seen(out, "halted  by cli:")
    finally:
        await stop(process, reader)
    with Store.open(db) as store:
        halts = store.risk.halts("local")
        audit = store.audit.frame(limit=None)
        with pytest.raises(BadInput, match="reason: say why trading halts"):
            store_halt(store, "local", halted=True, reason="  ", by="cli:someone")
        refused = store.audit.frame(limit=1)
    assert halts["halted"].tolist() == [True, False, True]
    assert halts["reason"].tolist() == ["weekend", "all clear", "exchange incident"]
    assert all(by.startswith("cli:") for by in halts["by_user"])
    switched = audit[audit["action"].isin(["halt", "resume"])]
    assert switched["result"].tolist() == ["allowed"] * 3
    assert refused[["actor", "action", "result"]].values.tolist() == [
        ["cli:someone", "halt", "failed"]
    ]


@pytest.mark.slow
async def test_a_halt_stored_on_postgres_reaches_the_engine_running_on_it(pg_url: str) -> None:
    process, out, reader = await start_engine(pg_url)
    try:
        await seen(out, "running")
        code, said = await cli(pg_url, "halt", "--reason", "team halt", "--flatten")
        assert code == 0 and "the database" in said, said
        # The engine looks for new halts every housekeeping tick.
        line = await seen(out, "halted  by cli:", timeout_s=30)
        assert "team halt" in line and "(flattening)" in line
    finally:
        await stop(process, reader)
