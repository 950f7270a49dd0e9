"""Local exchange throughput: kline events per second to one client; orders per second via ccxt.

Run: .venv/bin/python benchmarks/bench_exchange.py [--seconds 3]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from pathlib import Path

import aiohttp

from workbench.localexchange import LocalExchange, ManualClock, load_csv_history
from workbench.settings import Settings
from workbench.venue import connect

CANDLES = Path(__file__).resolve().parents[1] / "data" / "candles"


async def klines_per_second(seconds: float) -> tuple[float, float]:
    """Give (events/s, closed candles/s) one raw client receives at 100000x."""
    history = load_csv_history(CANDLES, ["ETH/BTC"])
    start = int(history["ETH/BTC"].index[0].value // 1_000_000)
    async with (
        LocalExchange(history, speed=100_000, start=start, tick_s=0.001) as server,
        aiohttp.ClientSession() as session,
        session.ws_connect(f"ws://127.0.0.1:{server.port}/ws") as ws,
    ):
        await ws.send_str(
            json.dumps({"method": "SUBSCRIBE", "params": ["ethbtc@kline_5m"], "id": 1})
        )
        await ws.receive()
        events = closed = 0
        started = time.monotonic()
        while time.monotonic() - started < seconds:
            message = await ws.receive()
            events += 1
            closed += json.loads(message.data)["k"]["x"]
        elapsed = time.monotonic() - started
    return events / elapsed, closed / elapsed


async def orders_per_second(seconds: float) -> float:
    """Give market orders per second placed and filled through ccxt, one at a time."""
    history = load_csv_history(CANDLES, ["ETH/BTC"])
    clock = ManualClock(int(history["ETH/BTC"].index[300].value // 1_000_000))
    async with (
        LocalExchange(history, clock=clock, balances={"BTC": 1e9, "ETH": 1e9}) as server,
        connect("local", port=server.port, settings=Settings()) as ex,
    ):
        await ex.load_markets()
        count = 0
        started = time.monotonic()
        while time.monotonic() - started < seconds:
            await ex.rest.create_order("ETH/BTC", "market", "buy" if count % 2 else "sell", 1.0)
            count += 1
        return count / (time.monotonic() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=3.0)
    args = parser.parse_args()
    events, closed = asyncio.run(klines_per_second(args.seconds))
    print(f"kline events/s to one client: {events:,.0f} ({closed:,.0f} closed candles/s)")
    print(f"market orders/s through ccxt: {asyncio.run(orders_per_second(args.seconds)):,.0f}")


if __name__ == "__main__":
    main()
