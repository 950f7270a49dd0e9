"""Restart figure: 50 strategies on 10 markets, `live run --real --connect` SIGKILLed and
started again; seconds from the kill to trading again (every strategy replayed, its orders,
balances and protective legs reconciled, feeds running), beside the first start's time.

Run: .venv/bin/python benchmarks/bench_restart.py [--strategies 50] [--run-s 20]
The exchange is a separate `workbench exchange serve` process replaying the shipped candles.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import socket
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MARKETS = [
    "ETH/BTC",
    "LTC/BTC",
    "XLM/BTC",
    "NXT/BTC",
    "ADA/BTC",
    "XMR/BTC",
    "DASH/BTC",
    "ZEC/BTC",
    "ETC/BTC",
    "TRX/BTC",
]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def spawn(args: list[str], env: dict[str, str]) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "workbench",
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
        env={**os.environ, **env},
    )


async def until(process: asyncio.subprocess.Process, prefix: str, timeout_s: float) -> None:
    assert process.stdout is not None
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        raw = await asyncio.wait_for(process.stdout.readline(), deadline - time.monotonic())
        if not raw:
            raise RuntimeError(f"the process ended before {prefix!r}")
        if raw.decode(errors="replace").startswith(prefix):
            return
    raise TimeoutError(prefix)


async def drain(process: asyncio.subprocess.Process) -> None:
    assert process.stdout is not None
    while await process.stdout.readline():
        pass


def specs(folder: Path, count: int) -> list[Path]:
    base = json.loads((ROOT / "data" / "strategies" / "sma_cross.json").read_text())
    paths = []
    for n in range(count):
        raw = json.loads(json.dumps(base))
        raw["name"] = f"s{n:02d}"
        raw["market"]["symbol"] = MARKETS[n % len(MARKETS)]
        raw["params"]["fast"]["default"] = 5 + n % 5
        raw["params"]["slow"]["default"] = 20
        raw["risk"] = {
            "sizing": {"method": "fixed_fraction", "fraction": 0.5},
            "stop_loss": 0.01,
            "take_profit": 0.02,
        }
        path = folder / f"s{n:02d}.json"
        path.write_text(json.dumps(raw))
        paths.append(path)
    return paths


async def main(count: int, run_s: float) -> None:
    with tempfile.TemporaryDirectory() as folder:
        port = free_port()
        env = {"WORKBENCH_DB": str(Path(folder) / "b.duckdb"), "WORKBENCH_LOCAL_PORT": str(port)}
        exchange = await spawn(
            [
                "exchange",
                "serve",
                "--port",
                str(port),
                "--candles",
                str(ROOT / "data" / "candles"),
                "--speed",
                "120",
            ],
            env,
        )
        await until(exchange, "local exchange on", 120)
        drained = asyncio.create_task(drain(exchange))
        files = [str(p) for p in specs(Path(folder), count)]
        run = ["live", "run", *files, "--real", "--connect", "--allocation", "0.01"]
        started = time.monotonic()
        first = await spawn(run, env)
        await until(first, "running", 600)
        first_s = time.monotonic() - started
        keep = asyncio.create_task(drain(first))
        await asyncio.sleep(run_s)
        killed = time.monotonic()
        first.send_signal(signal.SIGKILL)
        await first.wait()
        keep.cancel()
        again = await spawn(run, env)
        await until(again, "running", 600)
        restart_s = time.monotonic() - killed
        again.send_signal(signal.SIGINT)
        await drain(again)
        await again.wait()
        exchange.send_signal(signal.SIGINT)
        await exchange.wait()
        drained.cancel()
    print(
        f"{count} strategies on {min(count, len(MARKETS))} markets, real broker: first start "
        f"{first_s:.1f} s; SIGKILL -> trading again (replayed and reconciled) {restart_s:.1f} s "
        f"(ratio {restart_s / first_s:.2f} of the first start)"
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--strategies", type=int, default=50)
    parser.add_argument("--run-s", type=float, default=20.0)
    args = parser.parse_args()
    asyncio.run(main(args.strategies, args.run_s))
