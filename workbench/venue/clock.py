"""The market's clock without asking the exchange each time: synced now and then, read often.

`sync()` asks the exchange for its time (the replay clock on the local exchange, with its
speed) and remembers it against this machine's monotonic clock; `now_ms()` extrapolates from
there, at no cost. A real venue's clock runs at real speed; a local exchange replays at the
speed it says; one whose clock only moves when a test moves it has no speed, and `now_ms()`
is then None (unknown): callers fall back to what the feed knows. `known_ms()` gives the
best reading without asking: the extrapolation, or else the time the exchange last told
(`moves_alone` False: ask again with `sync()` for a current one).
"""

from __future__ import annotations

import time
from typing import Any


def _local_state_url(client: Any) -> str | None:
    base = str(client.urls["api"]["public"])
    if base.startswith(("http://127.0.0.1", "http://localhost")) and base.endswith("/api/v3"):
        return base.removesuffix("/api/v3") + "/_local/state"
    return None


class MarketClock:
    """The market time of one exchange, extrapolated from the last sync."""

    def __init__(self, client: Any) -> None:
        self.client = client
        self._at: tuple[int, float] | None = None  # (market ms, monotonic s) at the last sync
        self.speed: float | None = None

    async def sync(self) -> int:
        """Ask the exchange for its time now; give it."""
        url = _local_state_url(self.client)
        if url is not None:
            state = await self.client.fetch(url, "GET")
            now_ms, speed = int(state["now_ms"]), state.get("speed")
            self.speed = float(speed) if speed else None
        elif self.client.has.get("fetchTime"):
            now_ms, self.speed = int(await self.client.fetch_time()), 1.0
        else:
            now_ms, self.speed = int(self.client.milliseconds()), 1.0
        self._at = (now_ms, time.monotonic())
        return now_ms

    @property
    def moves_alone(self) -> bool:
        """Tell whether the market time runs on by itself (a speed), so it can be extrapolated;
        False before the first sync and for a clock that moves only when told to."""
        return self._at is not None and self.speed is not None

    def known_ms(self) -> int | None:
        """Give the market time now when it runs by itself, else the time the exchange gave at
        the last sync (None before any)."""
        if self._at is None:
            return None
        return self.now_ms() if self.speed is not None else self._at[0]

    def now_ms(self) -> int | None:
        """Give the market time now, or None when it cannot be told without asking."""
        if self._at is None or self.speed is None:
            return None
        market_ms, mono = self._at
        return int(market_ms + (time.monotonic() - mono) * 1000.0 * self.speed)
