"""A local HTTP receiver that apprise's json:// sink posts alerts to (tests only)."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web


@dataclass
class Receiver:
    """Alerts posted by apprise, as JSON bodies; can fail or hold answers on request."""

    port: int = 0
    posts: list[dict[str, Any]] = field(default_factory=list)
    fail_next: int = 0  # answer 500 to this many posts first
    hold: threading.Event | None = None  # when set, answers wait until it is set
    got: threading.Event = field(default_factory=threading.Event)

    @property
    def url(self) -> str:
        return f"json://127.0.0.1:{self.port}/alerts"

    def titles(self) -> list[str]:
        return [str(p.get("title", "")) for p in self.posts]

    def wait_for(self, count: int, timeout_s: float = 10.0) -> bool:
        deadline = threading.Event()
        timer = threading.Timer(timeout_s, deadline.set)
        timer.start()
        try:
            while len(self.posts) < count and not deadline.is_set():
                self.got.wait(0.05)
                self.got.clear()
            return len(self.posts) >= count
        finally:
            timer.cancel()


def _serve(receiver: Receiver, ready: threading.Event, stop: threading.Event) -> None:
    async def alerts(request: web.Request) -> web.Response:
        body = await request.json()
        if receiver.hold is not None:
            while not receiver.hold.is_set():
                await asyncio.sleep(0.01)
        if receiver.fail_next > 0:
            receiver.fail_next -= 1
            return web.Response(status=500)
        receiver.posts.append(body)
        receiver.got.set()
        return web.Response(text="ok")

    async def main() -> None:
        app = web.Application()
        app.router.add_post("/alerts", alerts)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        receiver.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        ready.set()
        while not stop.is_set():
            await asyncio.sleep(0.02)
        await runner.cleanup()

    asyncio.run(main())


@contextmanager
def receiving() -> Iterator[Receiver]:
    """Run a receiver on its own thread and loop (apprise posts from the sender's thread)."""
    found = Receiver()
    ready, stop = threading.Event(), threading.Event()
    thread = threading.Thread(target=_serve, args=(found, ready, stop), daemon=True)
    thread.start()
    assert ready.wait(10)
    try:
        yield found
    finally:
        if found.hold is not None:
            found.hold.set()
        stop.set()
        thread.join(5)
