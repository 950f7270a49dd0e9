"""Many processes on one PostgreSQL database at once: two `live run` engines on different
strategies, a third refused the strategy the first runs, a notebook reading, a CLI import
writing. No lock errors, no lost write: every fill an engine reported is stored."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import time
from pathlib import Path

import pytest
from shipped import CANDLE_DIR, ROOT

from workbench.data.shipped import ensure_shipped
from workbench.store import Store
from workbench.store.sharing import query

SPECS = ROOT / "data" / "strategies"


async def engine(url: str, spec: str, log: Path | None = None) -> asyncio.subprocess.Process:
    """Start `workbench live run` (its errors to `log`, or piped)."""
    return await asyncio.create_subprocess_exec(
        sys.executable, "-m", "workbench", "live", "run", str(SPECS / spec), "--speed", "3000",
        stdout=asyncio.subprocess.PIPE,
        stderr=log.open("ab") if log else asyncio.subprocess.PIPE,
        env={**os.environ, "WORKBENCH_DB": url},
    )  # fmt: skip


async def collect(process: asyncio.subprocess.Process, out: list[str]) -> None:
    """Keep reading an engine's output (a full pipe would stall it)."""
    assert process.stdout is not None
    async for raw in process.stdout:
        out.append(raw.decode().rstrip())


async def seen(out: list[str], prefix: str, timeout_s: float) -> None:
    for _ in range(int(timeout_s / 0.05)):
        if any(line.startswith(prefix) for line in out):
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"no {prefix!r} in {out[-10:]}")


def read_like_a_notebook(url: str) -> list[int]:
    """Count equity marks twenty times over two seconds, straight from the database."""
    counts = []
    for _ in range(20):
        counts.append(int(query("SELECT count(*) AS n FROM equity", db=url)["n"].iloc[0]))
        time.sleep(0.1)
    return counts


@pytest.mark.slow
async def test_engines_a_reader_and_an_import_share_one_postgres_database(
    pg_url: str, tmp_path: Path
) -> None:
    with Store.open(pg_url) as store:  # the shipped candles, once, before the engines start
        ensure_shipped(store)
    err = tmp_path / "engines.log"
    first = await engine(pg_url, "sma_cross.json", err)
    second = await engine(pg_url, "ema_cross_rsi.json", err)
    logs: dict[int, list[str]] = {first.pid: [], second.pid: []}
    readers = [asyncio.create_task(collect(p, logs[p.pid])) for p in (first, second)]
    try:
        await asyncio.gather(*(seen(logs[p.pid], "running", 120) for p in (first, second)))
        # A third engine may not take up the strategy the first one runs; meanwhile a notebook
        # reads and the CLI imports, against the two writing engines.
        third = await engine(pg_url, "sma_cross.json")
        reading = asyncio.create_task(asyncio.to_thread(read_like_a_notebook, pg_url))
        imported = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "workbench", "data", "import", "--exchange", "elsewhere",
            str(CANDLE_DIR / "LTC_BTC-5m.csv.gz"), str(CANDLE_DIR / "XMR_BTC-5m.csv.gz"),
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
            env={**os.environ, "WORKBENCH_DB": pg_url},
        )  # fmt: skip
        refused, (out, import_err), counts = await asyncio.wait_for(
            asyncio.gather(third.communicate(), imported.communicate(), reading), 120
        )
        assert third.returncode == 1
        assert (
            f"sma_cross-ETHBTC is already run by workbench pid {first.pid}" in refused[1].decode()
        )
        assert imported.returncode == 0, import_err.decode()
        assert counts == sorted(counts) and counts[-1] > counts[0], "reads see new marks"
        for process in (first, second):
            process.send_signal(signal.SIGINT)
        await asyncio.wait_for(asyncio.gather(*readers), 60)
        assert [await p.wait() for p in (first, second)] == [0, 0]
        assert all(logs[p.pid][-1].startswith("stopped") for p in (first, second))
    finally:
        for process in (first, second):
            if process.returncode is None:
                process.kill()
                await process.wait()
    imported_rows = {
        line.split(": ")[0]: int(line.split(": ")[1].split()[0])
        for line in out.decode().splitlines()
    }
    with Store.open(pg_url, read_only=True) as store:
        # Nothing lost: each fill an engine reported is stored, under its own strategy.
        for process, sid in ((first, "sma_cross-ETHBTC"), (second, "ema_cross_rsi-ETHBTC")):
            reported = [line for line in logs[process.pid] if line.startswith("fill")]
            assert all(sid in line for line in reported)
            assert len(store.trading.fills(sid)) == len(reported)
            assert len(store.trading.equity(sid)) > 0
        for path, rows in imported_rows.items():
            symbol = Path(path).name.split("-")[0].replace("_", "/")
            assert len(store.candles.read("elsewhere", symbol, "5m")) == rows
    assert len(query("SELECT * FROM strategies", db=pg_url)) == 2
