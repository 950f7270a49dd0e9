"""Many processes on one PostgreSQL database at once: two `live run` engines on different
strategies, a third refused the strategy the first runs, a notebook reading, a CLI import
writing. No lock errors, no lost write: every fill an engine reported is stored."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from shipped import CANDLE_DIR, ROOT

from workbench.data.shipped import ensure_shipped
from workbench.store import Store
from workbench.store.sharing import query

SPECS = ROOT / "data" / "strategies"
READER = """
import sys, time
from workbench.store.sharing import query
seen = []
for _ in range(20):
    seen.append(int(query("SELECT count(*) AS n FROM equity", db=sys.argv[1])["n"].iloc[0]))
    time.sleep(0.1)
print("counts", *seen, flush=True)
"""


async def engine(url: str, spec: str) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable, "-m", "workbench", "live", "run", str(SPECS / spec), "--speed", "3000",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        env={**os.environ, "WORKBENCH_DB": url},
    )  # fmt: skip


async def lines_until(process: asyncio.subprocess.Process, prefix: str, out: list[str]) -> None:
    assert process.stdout is not None
    async for raw in process.stdout:
        out.append(raw.decode().rstrip())
        if out[-1].startswith(prefix):
            return
    raise AssertionError(f"ended before {prefix!r}: {out[-10:]}")


@pytest.mark.slow
async def test_engines_a_reader_and_an_import_share_one_postgres_database(
    pg_url: str, tmp_path: Path
) -> None:
    with Store.open(pg_url) as store:  # the shipped candles, once, before the engines start
        ensure_shipped(store)
    first, second = (
        await engine(pg_url, "sma_cross.json"),
        await engine(pg_url, "ema_cross_rsi.json"),
    )
    logs: dict[int, list[str]] = {first.pid: [], second.pid: []}
    try:
        await asyncio.wait_for(
            asyncio.gather(*(lines_until(p, "running", logs[p.pid]) for p in (first, second))), 120
        )
        # A third engine may not take up the strategy the first one runs; meanwhile a notebook
        # reads and the CLI imports, against the two writing engines.
        third = await engine(pg_url, "sma_cross.json")
        reader = subprocess.Popen([sys.executable, "-c", READER, pg_url], stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, text=True)  # fmt: skip
        imported = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "workbench", "data", "import", "--exchange", "elsewhere",
            str(CANDLE_DIR / "LTC_BTC-5m.csv.gz"), str(CANDLE_DIR / "XMR_BTC-5m.csv.gz"),
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
            env={**os.environ, "WORKBENCH_DB": pg_url},
        )  # fmt: skip
        _, refused = await asyncio.wait_for(third.communicate(), 60)
        assert third.returncode == 1
        assert f"sma_cross-ETHBTC is already run by workbench pid {first.pid}" in refused.decode()
        out, err = await asyncio.wait_for(imported.communicate(), 120)
        assert imported.returncode == 0, err.decode()
        read_out, read_err = await asyncio.to_thread(reader.communicate, timeout=120)
        assert reader.returncode == 0, read_err
        counts = [int(n) for n in read_out.split()[1:]]
        assert counts == sorted(counts) and counts[-1] > counts[0], "reads see new marks"
        for process in (first, second):
            process.send_signal(signal.SIGINT)
        rest = [
            asyncio.create_task(lines_until(p, "stopped", logs[p.pid])) for p in (first, second)
        ]
        await asyncio.wait_for(asyncio.gather(*rest), 60)
        assert [await p.wait() for p in (first, second)] == [0, 0]
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
