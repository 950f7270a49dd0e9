"""How injected faults reach REST clients: the answers a failing exchange gives, and the ones
it never gives (`workbench.localexchange.faults` says which fault hits which request)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

from aiohttp import web

from workbench.localexchange.errors import INSUFFICIENT_BALANCE
from workbench.localexchange.faults import Fault, FaultKind, Faults, request_scopes

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
Middleware = Callable[[web.Request, Handler], Awaitable[web.StreamResponse]]

RATE_LIMIT_BODY = (
    "Too much request weight used; current limit is 6000 request weight per 1 MINUTE. "
    "Please use WebSocket Streams for live updates to avoid polling the API."
)
#: How often a held request checks whether its client has given up.
HOLD_POLL_S = 0.02


def fault_middleware(faults: Faults) -> Middleware:
    """Give the aiohttp middleware that lets ``faults`` hit Binance's REST requests."""

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        scopes = request_scopes(request.method, request.path)
        if not scopes:
            return await handler(request)
        delay = faults.latency_s()
        if delay:
            await asyncio.sleep(delay)
        fault = faults.take_answer(scopes)
        if fault is not None:
            return await _answer(request, fault)
        lost = faults.take_lost(scopes)
        response = await handler(request)
        if lost is not None:
            # The command is done and booked; its answer goes nowhere.
            await _silence(request, lost.hang_s)
        return response

    return middleware


async def _answer(request: web.Request, fault: Fault) -> web.StreamResponse:
    """Give the answer a fault sends instead of the exchange's."""
    headers = {"Retry-After": str(fault.retry_after_s)}
    if fault.kind is FaultKind.RATE_LIMIT:
        body = {"code": -1003, "msg": RATE_LIMIT_BODY}
        return web.json_response(body, status=fault.status, headers=headers)
    if fault.kind is FaultKind.BAN:
        until = int(time.time() * 1000) + fault.retry_after_s * 1000
        msg = (
            f"Way too much request weight used; IP banned until {until}. "
            "Please use WebSocket Streams for live updates to avoid bans."
        )
        return web.json_response({"code": -1003, "msg": msg}, status=fault.status, headers=headers)
    if fault.kind is FaultKind.INSUFFICIENT_BALANCE:
        body = {"code": -2010, "msg": INSUFFICIENT_BALANCE}
        return web.json_response(body, status=fault.status)
    if fault.kind is FaultKind.LOOKUP_FAILING and fault.hang_s:
        await _silence(request, fault.hang_s)
    return web.Response(status=fault.status, text="Service Unavailable", headers=headers)


async def _silence(request: web.Request, hang_s: float) -> None:
    """Say nothing for ``hang_s`` (or until the client gives up), then close the connection.

    aiohttp then writes the answer to a closed transport, which sends nothing.
    """
    deadline = time.monotonic() + hang_s
    while time.monotonic() < deadline and not _gone(request):
        await asyncio.sleep(HOLD_POLL_S)
    if request.protocol is not None:
        request.protocol.force_close()


def _gone(request: web.Request) -> bool:
    transport = request.transport
    return transport is None or transport.is_closing()
