"""WebSocket endpoints: market streams (``/ws``), the WebSocket API (``/ws-api/v3``) and
legacy listen-key user streams (``/ws/<listenKey>``)."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from aiohttp import WSMsgType, web

from workbench.localexchange.engine import Engine
from workbench.localexchange.errors import ExchangeRejection
from workbench.localexchange.replay import INTERVAL_MS
from workbench.localexchange.rest_market import LISTEN_KEYS, engine_of
from workbench.localexchange.streams import Connection

HEARTBEAT_S = 20.0


async def _open(request: web.Request) -> tuple[web.WebSocketResponse, Connection] | None:
    engine = engine_of(request)
    if engine.faults.refusing_websockets():
        return None
    ws = web.WebSocketResponse(heartbeat=HEARTBEAT_S)
    await ws.prepare(request)
    connection = Connection(ws=ws, faults=engine.faults)
    connection.start()
    engine.hub.connections.add(connection)
    return ws, connection


def _refused() -> web.Response:
    return web.Response(status=503, text="Service Unavailable")


async def _messages(ws: web.WebSocketResponse) -> Any:
    async for message in ws:
        if message.type != WSMsgType.TEXT:
            continue
        try:
            yield json.loads(message.data)
        except json.JSONDecodeError:
            yield None


async def market_stream(request: web.Request) -> web.StreamResponse:
    """``/ws`` and ``/ws/<n>``: SUBSCRIBE / UNSUBSCRIBE to ``<symbol>@kline_<interval>``;
    ``/ws/<listenKey>``: the user-data events of that key's account."""
    engine = engine_of(request)
    name = request.match_info.get("name", "")
    account = request.app[LISTEN_KEYS].get(name)
    opened = await _open(request)
    if opened is None:
        return _refused()
    ws, connection = opened
    if account is not None:
        connection.user[account] = None
    try:
        async for message in _messages(ws):
            engine.step()
            if not isinstance(message, dict) or "method" not in message:
                connection.send({"error": {"code": 3, "msg": "Invalid JSON"}, "id": None})
                continue
            request_id = message.get("id")
            method = message.get("method")
            params = message.get("params") or []
            if method == "LIST_SUBSCRIPTIONS":
                streams = [f"{m.lower()}@kline_{i}" for m, i in connection.klines]
                connection.send({"result": streams, "id": request_id})
                continue
            if method not in ("SUBSCRIBE", "UNSUBSCRIBE"):
                connection.send(
                    {
                        "error": {"code": 2, "msg": "Invalid request: unknown method"},
                        "id": request_id,
                    }
                )
                continue
            keys = [_kline_key(engine, p) for p in params]
            if any(k is None for k in keys):
                connection.send(
                    {
                        "error": {"code": 2, "msg": "Invalid request: invalid stream"},
                        "id": request_id,
                    }
                )
                continue
            for key in keys:
                assert key is not None
                if method == "SUBSCRIBE":
                    connection.klines.setdefault(key, engine.last_ms)
                else:
                    connection.klines.pop(key, None)
            connection.send({"result": None, "id": request_id})
    finally:
        engine.hub.connections.discard(connection)
        await connection.close()
    return ws


def _kline_key(engine: Engine, stream: object) -> tuple[str, str] | None:
    if not isinstance(stream, str) or "@kline_" not in stream:
        return None
    market, interval = stream.split("@kline_", 1)
    market = market.upper()
    interval_ms = INTERVAL_MS.get(interval)
    if market not in engine.markets or interval_ms is None or interval_ms % engine.timeframe_ms:
        return None
    return market, interval


async def ws_api(request: web.Request) -> web.StreamResponse:
    """``/ws-api/v3``: the WebSocket API subset ccxt.pro needs for user data streams."""
    engine = engine_of(request)
    opened = await _open(request)
    if opened is None:
        return _refused()
    ws, connection = opened
    next_subscription = 0
    try:
        async for message in _messages(ws):
            engine.step()
            if not isinstance(message, dict):
                connection.send(
                    {"id": None, "status": 400, "error": {"code": -1000, "msg": "Invalid JSON"}}
                )
                continue
            request_id = message.get("id")
            method = message.get("method")
            params = message.get("params") or {}
            delay = engine.faults.latency_s()
            if delay:
                await asyncio.sleep(delay)
            try:
                if method == "userDataStream.subscribe.signature":
                    account = engine.keyring.verify_ws(params, engine.faults.signed_request_ms())
                    connection.user[account] = next_subscription
                    result: Any = {"subscriptionId": next_subscription}
                    next_subscription += 1
                elif method == "userDataStream.unsubscribe":
                    wanted = params.get("subscriptionId")
                    connection.user = {
                        a: s for a, s in connection.user.items() if wanted not in (None, s)
                    }
                    result = {}
                elif method == "ping":
                    result = {}
                elif method == "time":
                    result = {"serverTime": engine.faults.clock_ms()}
                else:
                    raise ExchangeRejection(-1100, f"Unknown method '{method}'.")
            except ExchangeRejection as rejection:
                connection.send(
                    {"id": request_id, "status": rejection.status, "error": rejection.body()}
                )
                continue
            connection.send({"id": request_id, "status": 200, "result": result})
    finally:
        engine.hub.connections.discard(connection)
        await connection.close()
    return ws


def add_routes(app: web.Application) -> None:
    """Register the WebSocket endpoints on an app."""
    app.router.add_get("/ws", market_stream)
    app.router.add_get("/ws/{name}", market_stream)
    app.router.add_get("/ws-api/v3", ws_api)
