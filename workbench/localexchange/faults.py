"""Faults on demand: the local exchange misbehaves the way real exchanges do.

Kinds (`FaultKind`):

* ``drop_websockets`` closes every WebSocket at once; with a duration, new connections are
  refused (HTTP 503) until it ends.
* ``stall_streams`` holds every outgoing WebSocket message (streams and user data) for the
  duration, then delivers the backlog in one burst, in order.
* ``rate_limit`` answers REST calls with HTTP 429, ``Retry-After`` and Binance's -1003 body.
* ``ban`` answers HTTP 418 (an IP ban) with ``Retry-After``.
* ``server_error`` answers HTTP 5xx (503 by default) with a non-JSON body, as a failing
  gateway does.
* ``latency`` delays REST and WebSocket API answers by ``latency_ms``.

A fault lasts ``duration_s`` seconds of real time, or ``count`` requests, or both (whichever
ends first); with neither, the HTTP kinds hit just the next request.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from enum import StrEnum


class FaultKind(StrEnum):
    """What goes wrong."""

    DROP_WEBSOCKETS = "drop_websockets"
    STALL_STREAMS = "stall_streams"
    RATE_LIMIT = "rate_limit"
    BAN = "ban"
    SERVER_ERROR = "server_error"
    LATENCY = "latency"


HTTP_KINDS = (FaultKind.RATE_LIMIT, FaultKind.BAN, FaultKind.SERVER_ERROR)


@dataclass
class Fault:
    """One injected fault and how much of it is left."""

    kind: FaultKind
    until: float | None = None
    remaining: int | None = None
    status: int = 0
    retry_after_s: int = 1
    latency_ms: float = 0.0

    def expired(self, now: float) -> bool:
        """Tell whether the fault is over."""
        return (self.until is not None and now >= self.until) or self.remaining == 0


class Faults:
    """The faults in force on one local exchange."""

    def __init__(self) -> None:
        self._faults: dict[FaultKind, Fault] = {}

    def inject(
        self,
        kind: FaultKind | str,
        *,
        duration_s: float | None = None,
        count: int | None = None,
        status: int | None = None,
        retry_after_s: int = 1,
        latency_ms: float = 0.0,
    ) -> Fault:
        """Start a fault (replacing one of the same kind) and give it."""
        kind = FaultKind(kind)
        if kind in HTTP_KINDS and duration_s is None and count is None:
            count = 1
        default_status = {FaultKind.RATE_LIMIT: 429, FaultKind.BAN: 418}.get(kind, 503)
        fault = Fault(
            kind=kind,
            until=time.monotonic() + duration_s if duration_s is not None else None,
            remaining=count,
            status=status or default_status,
            retry_after_s=retry_after_s,
            latency_ms=latency_ms,
        )
        self._faults[kind] = fault
        return fault

    def clear(self, kind: FaultKind | str | None = None) -> None:
        """End one kind of fault, or all of them."""
        if kind is None:
            self._faults.clear()
        else:
            self._faults.pop(FaultKind(kind), None)

    def active(self, kind: FaultKind) -> Fault | None:
        """Give the fault of this kind in force now, if any."""
        fault = self._faults.get(kind)
        if fault is not None and fault.expired(time.monotonic()):
            del self._faults[kind]
            return None
        return fault

    def take_http(self) -> Fault | None:
        """Give the HTTP fault that hits this request (using up one of its count), if any."""
        for kind in HTTP_KINDS:
            fault = self.active(kind)
            if fault is not None:
                if fault.remaining is not None:
                    fault.remaining -= 1
                return fault
        return None

    def latency_s(self) -> float:
        """Give the delay to add to an answer now."""
        fault = self.active(FaultKind.LATENCY)
        return fault.latency_ms / 1000.0 if fault is not None else 0.0

    def stalled(self) -> bool:
        """Tell whether outgoing WebSocket messages are held now."""
        return self.active(FaultKind.STALL_STREAMS) is not None

    def refusing_websockets(self) -> bool:
        """Tell whether new WebSocket connections are refused now."""
        fault = self.active(FaultKind.DROP_WEBSOCKETS)
        return fault is not None and fault.until is not None

    def describe(self) -> list[dict[str, object]]:
        """Give the faults in force, fit for JSON."""
        now = time.monotonic()
        return [
            {
                "kind": f.kind.value,
                "seconds_left": None if f.until is None else max(0.0, f.until - now),
                "remaining": f.remaining,
                "status": f.status,
            }
            for f in list(self._faults.values())
            if not f.expired(now)
        ]
