"""`connect`: keys go only to the venue they belong to; the local exchange always gets its own.

A user who trades on Binance has WORKBENCH_API_KEY/SECRET set; the local exchange knows only its
own pair, so the settings' keys must never reach it (nor any other venue than the settings').
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
from shipped import CANDLE_DIR, ROOT

from workbench.localexchange import LocalExchange, ManualClock, load_csv_history
from workbench.settings import Settings
from workbench.venue import LOCAL_API_KEY, LOCAL_API_SECRET, connect

REAL_KEY = "vmPUZE6mv9SD5VNHk4HlWFsOr6aKE2zvsw0MuIgwCIPy6utIco14y7Ju91duEh8A"
REAL_SECRET = "NhqPtmdSJYdKjVHjA7PZj4Mge3R5YNiP1e3UZjInClVN65XAbvqqM6A7H5fATj0j"
SPEC = ROOT / "data" / "strategies" / "sma_cross.json"


@pytest.fixture
async def local() -> AsyncIterator[LocalExchange]:
    candles = load_csv_history(CANDLE_DIR, ["ETH/BTC"])["ETH/BTC"].iloc[:400]
    clock = ManualClock(int(candles.index[300].value // 1_000_000))
    async with LocalExchange({"ETH/BTC": candles}, clock=clock, tick_s=0.01) as server:
        yield server


async def until_serving(port: int, timeout_s: float = 30) -> None:
    async with aiohttp.ClientSession() as session:
        for _ in range(int(timeout_s / 0.1)):
            try:
                async with session.get(f"http://127.0.0.1:{port}/_local/state") as answer:
                    if answer.status == 200:
                        return
            except aiohttp.ClientConnectionError:
                pass
            await asyncio.sleep(0.1)
    raise AssertionError(f"no local exchange on port {port} after {timeout_s} s")


def real_keys(exchange: str) -> Settings:
    return Settings(exchange=exchange, api_key=REAL_KEY, api_secret=REAL_SECRET)


async def test_the_local_exchange_gets_its_own_pair_not_the_settings_keys(
    local: LocalExchange,
) -> None:
    async with connect("local", settings=real_keys("local"), port=local.port) as ex:
        assert (ex.rest.apiKey, ex.rest.secret) == (LOCAL_API_KEY, LOCAL_API_SECRET)
        assert (ex.pro.apiKey, ex.pro.secret) == (LOCAL_API_KEY, LOCAL_API_SECRET)
        balance = await ex.rest.fetch_balance()  # signed: refused with any other pair
        assert balance["BTC"]["free"] == pytest.approx(1.0)


async def test_a_real_venues_keys_go_to_that_venue_only() -> None:
    settings = real_keys("kraken")
    async with connect("kraken", settings=settings) as own:
        assert (own.rest.apiKey, own.rest.secret) == (REAL_KEY, REAL_SECRET)
        assert own.pro.apiKey == REAL_KEY
    async with connect("binance", settings=settings) as other:
        assert not other.rest.apiKey and not other.rest.secret
        assert not other.pro.apiKey and not other.pro.secret
    async with connect("binance", settings=settings, api_key="k", secret="s") as given:
        assert (given.rest.apiKey, given.rest.secret) == ("k", "s")


async def test_live_real_connects_to_a_served_local_exchange_with_real_keys_set(
    tmp_path: Path, unused_tcp_port: int
) -> None:
    env = {
        **os.environ,
        "WORKBENCH_API_KEY": REAL_KEY,
        "WORKBENCH_API_SECRET": REAL_SECRET,
        "WORKBENCH_LOCAL_PORT": str(unused_tcp_port),
        "WORKBENCH_DB": str(tmp_path / "live.duckdb"),
    }
    serve = [
        *("exchange", "serve", "--speed", "600", "--symbols", "ETH/BTC"),
        *("--candles", str(CANDLE_DIR), "--start", "2018-01-20"),
    ]
    server = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "workbench", *serve, env=env, stdout=subprocess.DEVNULL
    )
    try:
        await until_serving(unused_tcp_port)
        run = [*("live", "run", str(SPEC), "--real", "--connect", "--bars", "1")]
        done = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "workbench",
            *run,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        out, _ = await asyncio.wait_for(done.communicate(), 60)
        assert done.returncode == 0, out.decode()
        assert "ready   sma_cross-ETHBTC" in out.decode() and "stopped" in out.decode()
    finally:
        server.terminate()
        await server.wait()
