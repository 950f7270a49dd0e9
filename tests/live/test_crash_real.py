"""Crash safety on the real broker: `workbench live run --real --connect` against a separate
`workbench exchange serve` process, SIGKILLed at three points of the order path (an order row
stored but not sent; sent but its answer not stored; fills received but not stored), with
positions open and protective legs resting, then started again. Afterwards the stored position
equals what the exchange account holds (to the lot step), every client order id exists once on
the exchange, and no order was placed for a bar older than one bar."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import socket
import sys
from pathlib import Path

import ccxt
import pytest
from shipped import CANDLE_DIR, ROOT

from workbench.portfolio.accounting import Portfolio
from workbench.settings import Settings
from workbench.store import Store
from workbench.venue import connect
from workbench.venue.rules import market_rules

STEP_MS = 300_000
SID = "sma_fast-ETHBTC"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Process:
    """A workbench command in a child process, its output read line by line."""

    def __init__(self, process: asyncio.subprocess.Process) -> None:
        self.process = process
        self.lines: list[str] = []
        self.reader = asyncio.create_task(self._read())

    async def _read(self) -> None:
        assert self.process.stdout is not None
        async for raw in self.process.stdout:
            self.lines.append(raw.decode(errors="replace").rstrip())

    async def wait_for(self, prefix: str, count: int = 1, timeout_s: float = 90) -> list[str]:
        for _ in range(int(timeout_s / 0.05)):
            found = [line for line in self.lines if line.startswith(prefix)]
            if len(found) >= count:
                return found
            if self.process.returncode is not None:
                break
            await asyncio.sleep(0.05)
        raise AssertionError(f"no {count} x {prefix!r} in {self.lines[-30:]}")


async def spawn(*args: str, env: dict[str, str]) -> Process:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "workbench",
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
        env={**os.environ, **env},
    )
    return Process(process)


@pytest.fixture
def spec_file(tmp_path: Path) -> Path:
    raw = json.loads((ROOT / "data" / "strategies" / "sma_cross.json").read_text())
    raw["name"] = "sma_fast"
    raw["params"] = {
        "fast": {"default": 3, "range": [2, 10, 1]},
        "slow": {"default": 8, "range": [5, 30, 1]},
    }
    raw["risk"] = {
        "sizing": {"method": "fixed_fraction", "fraction": 0.5},
        "stop_loss": 0.01,
        "take_profit": 0.01,
    }
    path = tmp_path / "sma_fast.json"
    path.write_text(json.dumps(raw))
    return path


@pytest.mark.slow
async def test_killed_at_each_point_of_the_order_path_the_real_books_stay_whole(
    spec_file: Path, tmp_path: Path
) -> None:
    port = free_port()
    env = {
        "WORKBENCH_DB": str(tmp_path / "live.duckdb"),
        "WORKBENCH_LOCAL_PORT": str(port),
        # Real-looking keys in the settings must never reach the local exchange.
        "WORKBENCH_API_KEY": "a-real-binance-key",
        "WORKBENCH_API_SECRET": "a-real-binance-secret",
    }
    exchange = await spawn(
        "exchange",
        "serve",
        "--port",
        str(port),
        "--candles",
        str(CANDLE_DIR),
        "--symbols",
        "ETH/BTC",
        "--speed",
        "600",  # a 5-minute bar every half second
        env=env,
    )
    await exchange.wait_for("local exchange on")
    clients = connect("local", settings=Settings(), port=port)
    await clients.load_markets()
    before = (await clients.rest.fetch_balance())["ETH"]["total"]
    run = ["live", "run", str(spec_file), "--real", "--connect", "--allocation", "0.5"]
    try:
        for point in ("order_stored:3", "order_sent:3", "fill_received:3"):
            engine = await spawn(*run, env={**env, "WORKBENCH_CRASH_AT": point})
            assert await asyncio.wait_for(engine.process.wait(), 120) == -signal.SIGKILL, (
                point,
                engine.lines[-20:],
            )
        last = await spawn(*run, env=env)
        await last.wait_for("running")
        await asyncio.sleep(8)  # sixteen bars more, then a clean stop
        last.process.send_signal(signal.SIGINT)
        assert await asyncio.wait_for(last.process.wait(), 60) == 0, last.lines[-20:]
        # The exchange goes on and may fire a resting leg. To compare books at one instant,
        # cancel what rests, then let one more start reconcile and die before it sends
        # anything new (its first new order is stored and never sent).
        with contextlib.suppress(ccxt.OrderNotFound):  # -2011 when nothing rests, as on Binance
            await clients.rest.cancel_all_orders("ETH/BTC")
        check = await spawn(*run, env={**env, "WORKBENCH_CRASH_AT": "order_stored:1"})
        try:
            await asyncio.wait_for(check.process.wait(), 60)
        except TimeoutError:
            check.process.kill()
            await check.process.wait()
        await check.wait_for("ready")
        placed = await clients.rest.fetch_orders("ETH/BTC", limit=1000)
        after = (await clients.rest.fetch_balance())["ETH"]["total"]
        step = market_rules(clients.rest, "ETH/BTC").amount_step
    finally:
        await clients.close()
        exchange.process.send_signal(signal.SIGINT)
        await asyncio.wait_for(exchange.process.wait(), 30)

    with Store.open(tmp_path / "live.duckdb", read_only=True) as store:
        fills = store.trading.fills(SID)
        orders = {o.client_order_id: o for o in store.trading.orders(SID)}
        events = store.trading.events(SID)
    book = Portfolio(cash=0.5)
    for fill in fills:
        book.apply(fill)
    # The position the store holds is what the account holds, to the lot step.
    assert abs(book.position("ETH/BTC").amount - (after - before)) <= step
    # Every order the exchange has is ours, once; every one of ours that went out is there.
    ids = [o["clientOrderId"] for o in placed]
    assert len(ids) == len(set(ids)) and set(ids) <= set(orders)
    sent = {cid for cid, o in orders.items() if o.exchange_order_id is not None}
    assert sent == set(ids)
    assert any(o.type.is_stop for o in orders.values()), "protective legs rested"
    assert (events["kind"] == "reconcile").any(), "the restarts had something to settle"
    # No order was placed for a bar older than one bar when it went out.
    for raw in placed:
        bar = orders[raw["clientOrderId"]].created_ms
        if orders[raw["clientOrderId"]].type.is_stop:
            continue  # legs are named after their entry; they go out as soon as it fills
        assert bar <= raw["timestamp"] < bar + STEP_MS, orders[raw["clientOrderId"]]
