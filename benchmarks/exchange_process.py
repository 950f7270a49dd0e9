"""The local exchange in a process of its own, on a replay clock the benchmark steps.

A real venue is another machine: its matching and its publishing of every market's candles
never take the engine's event loop or its core. Served in the engine's process, the local
exchange's tick (about 3 ms for ten markets' candles) and its websocket sends ran on the
engine's loop, between a close and its orders. Here it runs in a spawned process; the clock
is one shared 64-bit integer the benchmark moves forward.
"""

from __future__ import annotations

import asyncio
import contextlib
import multiprocessing
from collections.abc import AsyncIterator
from multiprocessing.connection import Connection
from multiprocessing.sharedctypes import Synchronized
from pathlib import Path
from typing import Any

from workbench.localexchange import LocalExchange, load_csv_history

_CONTEXT = multiprocessing.get_context("spawn")  # no fork of a process running a loop


class SharedClock:
    """Replay time both processes read; only the benchmark moves it (never back)."""

    def __init__(self, start_ms: int, value: Any = None) -> None:
        self.value: Synchronized[int] = value if value is not None else _CONTEXT.RawValue("q")
        if value is None:
            self.value.value = int(start_ms)

    def now_ms(self) -> int:
        return int(self.value.value)

    def advance(self, ms: int) -> None:
        if ms < 0:
            raise ValueError("a replay clock never goes back")
        self.value.value += int(ms)


def _serve(candles: Path, symbols: list[str], bars: int, value: Any, conn: Connection) -> None:
    history = {s: f.iloc[: bars + 1] for s, f in load_csv_history(candles, symbols).items()}

    async def main() -> None:
        clock = SharedClock(0, value)
        async with LocalExchange(history, clock=clock, tick_s=0.002) as server:
            conn.send(server.port)
            await asyncio.to_thread(conn.recv)  # until told to stop

    asyncio.run(main())


@contextlib.asynccontextmanager
async def exchange_process(
    candles: Path, symbols: list[str], bars: int, clock: SharedClock
) -> AsyncIterator[int]:
    """Serve the shipped candles of `symbols` (their first `bars` + 1) on `clock` in another
    process; give its port while it runs."""
    ours, theirs = _CONTEXT.Pipe()
    process = _CONTEXT.Process(
        target=_serve, args=(candles, symbols, bars, clock.value, theirs), daemon=True
    )
    process.start()
    try:
        if not await asyncio.to_thread(ours.poll, 120):
            raise RuntimeError("the local exchange process did not start within 120 s")
        yield int(ours.recv())
    finally:
        with contextlib.suppress(OSError):
            ours.send("stop")
        await asyncio.to_thread(process.join, 10)
        if process.is_alive():
            process.kill()
