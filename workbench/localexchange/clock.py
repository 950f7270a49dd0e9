"""Replay clocks: the map from real time to simulated exchange time."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Protocol


class Clock(Protocol):
    """Anything that tells the simulated time, in epoch milliseconds."""

    def now_ms(self) -> int:
        """Give the simulated time now."""
        ...


class ReplayClock:
    """Simulated time that runs ``speed`` times faster than real time from ``start_ms``.

    sim = start + (now - t0) × speed, where t0 is when the clock was made (or ``restart``-ed).
    """

    def __init__(
        self,
        start_ms: int,
        speed: float = 60.0,
        *,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        if speed <= 0:
            raise ValueError(f"speed must be positive, got {speed}")
        self.start_ms = int(start_ms)
        self.speed = float(speed)
        self._monotonic = monotonic
        self._t0 = monotonic()

    def now_ms(self) -> int:
        """Give the simulated time now."""
        return self.start_ms + int((self._monotonic() - self._t0) * 1000.0 * self.speed)

    def restart(self, start_ms: int | None = None, speed: float | None = None) -> None:
        """Re-anchor the clock at real time now (optionally at a new start or speed)."""
        current = self.now_ms()
        self.start_ms = int(start_ms) if start_ms is not None else current
        if speed is not None:
            if speed <= 0:
                raise ValueError(f"speed must be positive, got {speed}")
            self.speed = float(speed)
        self._t0 = self._monotonic()


class ManualClock:
    """Simulated time that moves only when told to: for tests that step the replay."""

    def __init__(self, start_ms: int) -> None:
        self._now_ms = int(start_ms)

    def now_ms(self) -> int:
        """Give the simulated time now."""
        return self._now_ms

    def advance(self, ms: int) -> None:
        """Move simulated time forward by ``ms`` milliseconds."""
        if ms < 0:
            raise ValueError("a replay clock never goes back")
        self._now_ms += int(ms)

    def set(self, now_ms: int) -> None:
        """Move simulated time forward to ``now_ms``."""
        if now_ms < self._now_ms:
            raise ValueError("a replay clock never goes back")
        self._now_ms = int(now_ms)
