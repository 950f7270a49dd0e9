"""watch_ohlcv through ccxt.pro: forming and closed candles, in order, no gaps at high speed."""

from __future__ import annotations

import asyncio
import itertools
import json
import time

import aiohttp
import pandas as pd

from workbench.localexchange import LocalExchange
from workbench.venue.client import ExchangeClients

FIVE_MIN_MS = 300_000


async def test_watch_ohlcv_delivers_every_bar_in_order_at_high_speed(
    fast: ExchangeClients, history: dict[str, pd.DataFrame]
) -> None:
    latest: dict[int, list[float]] = {}
    order: list[int] = []
    deadline = time.monotonic() + 2.0
    while time.monotonic() < deadline:
        for candle in await fast.pro.watch_ohlcv("ETH/BTC", "5m"):
            if not order or candle[0] != order[-1]:
                order.append(candle[0])
            latest[candle[0]] = candle
    assert len(order) >= 20, "6000x for 2 s should replay about 40 bars"
    assert order == sorted(order)
    assert all(b - a == FIVE_MIN_MS for a, b in itertools.pairwise(order))
    stored = history["ETH/BTC"]
    for ts in order[:-1]:  # every bar but the forming one was last seen closed
        bar = stored.loc[pd.Timestamp(ts, unit="ms", tz="UTC")]
        assert latest[ts][1:] == [bar.open, bar.high, bar.low, bar.close, bar.volume]


async def test_kline_events_are_forming_then_closed_for_each_bar(
    fast_exchange: LocalExchange,
) -> None:
    """The raw stream, as Binance documents it: x=false updates, then one x=true per bar."""
    events: list[dict[str, object]] = []
    async with (
        aiohttp.ClientSession() as session,
        session.ws_connect(f"ws://127.0.0.1:{fast_exchange.port}/ws/0") as ws,
    ):
        streams = ["ltcbtc@kline_5m", "ltcbtc@kline_15m"]
        await ws.send_str(json.dumps({"method": "SUBSCRIBE", "params": streams, "id": 7}))
        assert json.loads((await ws.receive()).data) == {"result": None, "id": 7}
        deadline = time.monotonic() + 1.0
        while time.monotonic() < deadline:
            message = await asyncio.wait_for(ws.receive(), 1.0)
            events.append(json.loads(message.data)["k"])
    for interval, step in (("5m", FIVE_MIN_MS), ("15m", 3 * FIVE_MIN_MS)):
        klines = [k for k in events if k["i"] == interval]
        closed = [k["t"] for k in klines if k["x"]]
        assert closed, f"no closed {interval} kline"
        assert all(b - a == step for a, b in itertools.pairwise(closed))
        opens = [k["t"] for k in klines]
        assert opens == sorted(opens)
        for t in closed:  # once closed, a bar is sent once and never updated again
            of_bar = [k for k in klines if k["t"] == t]
            assert of_bar[-1]["x"] is True
            assert sum(1 for k in of_bar if k["x"]) == 1


async def test_several_symbols_stream_at_once(fast: ExchangeClients) -> None:
    got: set[str] = set()
    deadline = time.monotonic() + 2.0
    while got != {"ETH/BTC", "LTC/BTC"} and time.monotonic() < deadline:
        candles = await fast.pro.watch_ohlcv_for_symbols([["ETH/BTC", "5m"], ["LTC/BTC", "5m"]])
        got.update(candles)
    assert got == {"ETH/BTC", "LTC/BTC"}
