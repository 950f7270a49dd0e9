"""`workbench exchange serve` in its own process, reached by ccxt, with its liquidity option;
`fault` and `state` too."""

from __future__ import annotations

import asyncio
import json
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import ccxt
import pytest

from workbench.settings import Settings
from workbench.venue import connect

from .conftest import candles_dir


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def cli(*args: str) -> list[str]:
    return [sys.executable, "-c", "from workbench.cli.exchange import app; app()", *args]


async def test_serve_runs_a_local_exchange_that_ccxt_and_the_fault_command_reach(
    tmp_path: Path,
) -> None:
    port = free_port()
    server = subprocess.Popen(
        cli(
            "serve",
            "--port",
            str(port),
            "--speed",
            "600",
            "--symbols",
            "ETH/BTC",
            "--candles",
            str(candles_dir()),
            "--start",
            "2018-01-20",
            "--max-volume-fraction",
            "0.01",
            "--fee-asset",
            "received",
        ),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        cwd=tmp_path,
    )
    try:
        state = None
        deadline = time.monotonic() + 20
        while state is None and time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/_local/state") as r:
                    state = json.loads(r.read())
            except OSError:
                await asyncio.sleep(0.1)
        assert state is not None, server.stdout.read().decode() if server.stdout else ""
        assert state["symbols"] == ["ETH/BTC"] and state["now"].startswith("2018-01-20")
        assert state["max_volume_fraction"] == 0.01  # resting orders fill in parts
        assert state["fee_asset"] == "received"
        async with connect("local", port=port, settings=Settings()) as ex:
            candles = await ex.rest.fetch_ohlcv("ETH/BTC", "5m", limit=10)
            assert len(candles) == 10
            done = subprocess.run(
                cli("fault", "rate_limit", "--count", "1", "--port", str(port)),
                capture_output=True,
                text=True,
                check=True,
                cwd=tmp_path,
            )
            assert "rate_limit" in done.stdout
            with pytest.raises(ccxt.DDoSProtection):
                await ex.rest.fetch_ticker("ETH/BTC")
            fault = cli("fault", "insufficient_balance", "--port", str(port))
            subprocess.run(fault, capture_output=True, check=True, cwd=tmp_path)
            with pytest.raises(ccxt.InsufficientFunds):
                await ex.rest.create_order("ETH/BTC", "market", "buy", 1.0)
            bought = await ex.rest.create_order("ETH/BTC", "market", "buy", 1.0)
            assert bought["fee"] == {"cost": pytest.approx(0.001), "currency": "ETH"}
            refused = subprocess.run(
                cli("fault", "lookup_failing", "--hang", "-1", "--port", str(port)),
                capture_output=True,
                text=True,
                cwd=tmp_path,
            )
            assert refused.returncode == 1
            assert "hang_s must not be negative, got -1.0" in refused.stderr
    finally:
        server.terminate()
        server.wait(10)


def test_serve_refuses_a_volume_fraction_outside_zero_to_one(tmp_path: Path) -> None:
    done = subprocess.run(
        cli(
            "serve",
            "--port",
            str(free_port()),
            "--symbols",
            "ETH/BTC",
            "--candles",
            str(candles_dir()),
            "--max-volume-fraction",
            "1.5",
        ),
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=60,
    )
    assert done.returncode == 1
    assert "max_volume_fraction must be in (0, 1], got 1.5" in done.stderr
