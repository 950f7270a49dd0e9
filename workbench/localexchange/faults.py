"""Faults on demand: the local exchange misbehaves the way real exchanges do.

Kinds (`FaultKind`), and the requests each hits (`Scope`):

* ``drop_websockets`` closes every WebSocket at once; with a duration, new connections are
  refused (HTTP 503) until it ends.
* ``stall_streams`` holds every outgoing WebSocket message (streams and user data) for the
  duration, then delivers the backlog in one burst, in order.
* ``rate_limit`` answers REST calls with HTTP 429, ``Retry-After`` and Binance's -1003 body.
* ``ban`` answers HTTP 418 (an IP ban) with ``Retry-After``.
* ``server_error`` answers HTTP 5xx (503 by default) with a non-JSON body, as a failing
  gateway does.
* ``latency`` delays REST and WebSocket API answers by ``latency_ms``.
* ``answer_lost``: an order command (new order, OCO list, cancel) is carried out and booked,
  then its answer is never sent: the connection is closed at once, or after ``hang_s``
  seconds of silence (past the client's timeout). The client cannot tell whether it worked.
* ``lookup_failing``: order and trade lookups (GET order, openOrders, allOrders, myTrades)
  answer HTTP 5xx (``status``, 503 by default), or with ``hang_s`` say nothing for that long
  and close; every other request works.
* ``clock_skew``: the server's clock runs ``skew_ms`` ahead (60 s by default; negative:
  behind), so signed requests fall outside their recvWindow (-1021); GET /api/v3/time shows
  the skewed clock, so a client that measures the offset can trade on.
* ``insufficient_balance``: new orders (and OCO lists) are rejected with -2010 "Account has
  insufficient balance for requested action.", whatever the balance.

A fault lasts ``duration_s`` seconds of real time, or ``count`` requests of its scope, or both
(whichever ends first); with neither, the request kinds hit just the next request of their
scope.
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
    ANSWER_LOST = "answer_lost"
    LOOKUP_FAILING = "lookup_failing"
    CLOCK_SKEW = "clock_skew"
    INSUFFICIENT_BALANCE = "insufficient_balance"


class Scope(StrEnum):
    """Which requests a fault can hit."""

    API = "api"  # every REST request under /api/
    LOOKUP = "lookup"  # order and trade lookups
    ORDER_COMMAND = "order_command"  # new orders, OCO lists, cancels
    NEW_ORDER = "new_order"  # new orders and OCO lists
    SIGNED = "signed"  # signed requests, REST or WebSocket API


SCOPE_OF: dict[FaultKind, Scope] = {
    FaultKind.RATE_LIMIT: Scope.API,
    FaultKind.BAN: Scope.API,
    FaultKind.SERVER_ERROR: Scope.API,
    FaultKind.LOOKUP_FAILING: Scope.LOOKUP,
    FaultKind.INSUFFICIENT_BALANCE: Scope.NEW_ORDER,
    FaultKind.ANSWER_LOST: Scope.ORDER_COMMAND,
    FaultKind.CLOCK_SKEW: Scope.SIGNED,
}
#: The kinds that answer a request in the exchange's place, in the order they are checked.
ANSWERING_KINDS = (
    FaultKind.RATE_LIMIT,
    FaultKind.BAN,
    FaultKind.SERVER_ERROR,
    FaultKind.LOOKUP_FAILING,
    FaultKind.INSUFFICIENT_BALANCE,
)
DEFAULT_SKEW_MS = 60_000

_LOOKUPS = {
    ("GET", "/api/v3/order"),
    ("GET", "/api/v3/openOrders"),
    ("GET", "/api/v3/allOrders"),
    ("GET", "/api/v3/myTrades"),
}
_NEW_ORDERS = {("POST", "/api/v3/order"), ("POST", "/api/v3/orderList/oco")}
_CANCELS = {("DELETE", "/api/v3/order"), ("DELETE", "/api/v3/openOrders")}


def request_scopes(method: str, path: str) -> frozenset[Scope]:
    """Give the scopes a REST request is in (none for what is not Binance's API)."""
    if not path.startswith("/api/"):
        return frozenset()
    key = (method.upper(), path.rstrip("/"))
    scopes = {Scope.API}
    if key in _LOOKUPS:
        scopes.add(Scope.LOOKUP)
    if key in _NEW_ORDERS:
        scopes.update((Scope.NEW_ORDER, Scope.ORDER_COMMAND))
    if key in _CANCELS:
        scopes.add(Scope.ORDER_COMMAND)
    return frozenset(scopes)


@dataclass
class Fault:
    """One injected fault and how much of it is left."""

    kind: FaultKind
    until: float | None = None
    remaining: int | None = None
    status: int = 0
    retry_after_s: int = 1
    latency_ms: float = 0.0
    skew_ms: int = 0
    hang_s: float = 0.0

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
        skew_ms: int | None = None,
        hang_s: float = 0.0,
    ) -> Fault:
        """Start a fault (replacing one of the same kind) and give it.

        Raises ValueError for a value out of range, naming it.
        """
        kind = FaultKind(kind)
        for name, value in (("duration_s", duration_s), ("count", count), ("hang_s", hang_s)):
            if value is not None and value < 0:
                raise ValueError(f"{name} must not be negative, got {value}")
        if status is not None and not 400 <= status <= 599:
            raise ValueError(f"status must be an HTTP error status (400-599), got {status}")
        if kind in SCOPE_OF and duration_s is None and count is None:
            count = 1
        default_status = {
            FaultKind.RATE_LIMIT: 429,
            FaultKind.BAN: 418,
            FaultKind.INSUFFICIENT_BALANCE: 400,
        }.get(kind, 503)
        fault = Fault(
            kind=kind,
            until=time.monotonic() + duration_s if duration_s is not None else None,
            remaining=count,
            status=status or default_status,
            retry_after_s=retry_after_s,
            latency_ms=latency_ms,
            skew_ms=DEFAULT_SKEW_MS if skew_ms is None else int(skew_ms),
            hang_s=hang_s,
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

    def take(self, kind: FaultKind) -> Fault | None:
        """Give the fault of this kind in force now, using up one of its count, if any."""
        fault = self.active(kind)
        if fault is not None and fault.remaining is not None:
            fault.remaining -= 1
        return fault

    def take_answer(self, scopes: frozenset[Scope]) -> Fault | None:
        """Give the fault that answers this request in the exchange's place, if any."""
        for kind in ANSWERING_KINDS:
            if SCOPE_OF[kind] in scopes:
                fault = self.take(kind)
                if fault is not None:
                    return fault
        return None

    def take_lost(self, scopes: frozenset[Scope]) -> Fault | None:
        """Give the answer_lost fault that swallows this request's answer, if any."""
        if Scope.ORDER_COMMAND not in scopes:
            return None
        return self.take(FaultKind.ANSWER_LOST)

    def clock_ms(self) -> int:
        """Give the server's wall clock in epoch ms (skewed while a clock_skew lasts)."""
        fault = self.active(FaultKind.CLOCK_SKEW)
        return int(time.time() * 1000) + (fault.skew_ms if fault is not None else 0)

    def signed_request_ms(self) -> int:
        """Give the clock a signed request's timestamp is checked against, using up one of a
        clock_skew's count."""
        fault = self.take(FaultKind.CLOCK_SKEW)
        return int(time.time() * 1000) + (fault.skew_ms if fault is not None else 0)

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
        described: list[dict[str, object]] = []
        for f in list(self._faults.values()):
            if f.expired(now):
                continue
            entry: dict[str, object] = {
                "kind": f.kind.value,
                "seconds_left": None if f.until is None else max(0.0, f.until - now),
                "remaining": f.remaining,
                "status": f.status,
            }
            if f.kind is FaultKind.CLOCK_SKEW:
                entry["skew_ms"] = f.skew_ms
            if f.hang_s:
                entry["hang_s"] = f.hang_s
            described.append(entry)
        return described
