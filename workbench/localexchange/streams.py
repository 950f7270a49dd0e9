"""WebSocket fan-out: kline streams and user-data events, in order, per connection.

Each connection has a FIFO of outgoing messages and one sender task, so a slow client never
blocks the replay and messages never overtake each other. Kline subscriptions remember the
simulated time they were last served up to; each publish sends, in order, the closed candle of
every interval that ended since (even when the clock skipped several), then the forming one.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from workbench.localexchange.faults import Faults
from workbench.localexchange.formats import kline_event
from workbench.localexchange.replay import INTERVAL_MS, SymbolReplay

STALL_POLL_S = 0.02


@dataclass(eq=False)
class Connection:
    """One client WebSocket and what it listens to."""

    ws: web.WebSocketResponse
    faults: Faults
    queue: asyncio.Queue[str] = field(default_factory=asyncio.Queue)
    klines: dict[tuple[str, str], int] = field(default_factory=dict)
    #: account name → subscription id (WS API) or None (listenKey stream: events unwrapped)
    user: dict[str, int | None] = field(default_factory=dict)
    sender: asyncio.Task[None] | None = None

    def send(self, message: dict[str, Any] | list[Any]) -> None:
        """Queue a JSON message for this client."""
        self.queue.put_nowait(json.dumps(message, separators=(",", ":")))

    def start(self) -> None:
        """Start the sender task."""
        self.sender = asyncio.get_running_loop().create_task(self._send_loop())

    async def _send_loop(self) -> None:
        while True:
            text = await self.queue.get()
            while self.faults.stalled():
                await asyncio.sleep(STALL_POLL_S)
            if self.ws.closed:
                return
            try:
                await self.ws.send_str(text)
            except (ConnectionError, RuntimeError):
                return

    async def close(self, code: int = 1001, message: bytes = b"going away") -> None:
        """Stop sending and close the socket."""
        if self.sender is not None:
            self.sender.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self.sender
        with contextlib.suppress(Exception):
            await self.ws.close(code=code, message=message)


class StreamHub:
    """All open connections, and the publishing of market and user data to them."""

    def __init__(self, replays: dict[str, SymbolReplay]) -> None:
        self.replays = replays  # by market id
        self.connections: set[Connection] = set()

    def publish_klines(self, now_ms: int) -> None:
        """Send every kline subscription its closed candles since last time, then the forming."""
        for connection in list(self.connections):
            for key, since_ms in connection.klines.items():
                market_id, interval = key
                if now_ms <= since_ms:
                    continue
                replay = self.replays[market_id]
                interval_ms = INTERVAL_MS[interval]
                window_then = since_ms // interval_ms * interval_ms
                window_now = now_ms // interval_ms * interval_ms
                if window_now > window_then:
                    closed = replay.klines(
                        interval_ms,
                        now_ms,
                        start_ms=window_then,
                        end_ms=window_now - 1,
                        limit=1 + (window_now - window_then) // interval_ms,
                    )
                    for candle in closed:
                        connection.send(kline_event(market_id, interval, candle, now_ms))
                forming = replay.candle(window_now, interval_ms, now_ms)
                if forming is not None:
                    connection.send(kline_event(market_id, interval, forming, now_ms))
                connection.klines[key] = now_ms

    def publish_user(self, account: str, event: dict[str, Any]) -> None:
        """Send a user-data event to every connection subscribed to the account."""
        for connection in list(self.connections):
            if account in connection.user:
                subscription = connection.user[account]
                if subscription is None:
                    connection.send(event)
                else:
                    connection.send({"subscriptionId": subscription, "event": event})

    async def drop_all(self) -> None:
        """Close every connection at once (a fault, or shutdown)."""
        connections = list(self.connections)
        self.connections.clear()
        await asyncio.gather(*(c.close() for c in connections), return_exceptions=True)
