"""Signed REST endpoints of the local exchange: account, orders, OCO lists, trades, listen keys."""

from __future__ import annotations

import secrets
from typing import Any
from urllib.parse import parse_qsl

from aiohttp import web

from workbench.fills import Side
from workbench.localexchange.errors import ExchangeRejection, mandatory
from workbench.localexchange.formats import account_json, order_json, trade_json
from workbench.localexchange.matching import OrderRequest
from workbench.localexchange.orders import OrderType
from workbench.localexchange.rest_market import LISTEN_KEYS, engine_of, int_param

MAX_TRADES = 1000


async def signed(request: web.Request) -> tuple[str, dict[str, str]]:
    """Check a signed request and give its account and its parameters (query + body)."""
    engine = engine_of(request)
    raw_body = await request.text() if request.can_read_body else ""
    params = dict(request.query)
    params.update(dict(parse_qsl(raw_body, keep_blank_values=True)))
    account = engine.keyring.verify_rest(
        request.headers.get("X-MBX-APIKEY"),
        request.query_string,
        raw_body,
        params,
        engine.faults.signed_request_ms(),
    )
    return account, params


def _float(params: dict[str, str], name: str) -> float | None:
    raw = params.get(name)
    if raw in (None, ""):
        return None
    try:
        value = float(raw)
    except ValueError:
        raise ExchangeRejection(-1100, f"Illegal characters found in parameter '{name}'.") from None
    if value <= 0:
        raise ExchangeRejection(-1100, f"Illegal characters found in parameter '{name}'.")
    return value


def parse_order(params: dict[str, str]) -> OrderRequest:
    """Give the order a POST /api/v3/order asks for, or reject it as Binance would."""
    for name in ("symbol", "side", "type"):
        if not params.get(name):
            raise mandatory(name)
    try:
        side = Side(params["side"].lower())
    except ValueError:
        raise ExchangeRejection(-1117, "Invalid side.") from None
    try:
        order_type = OrderType(params["type"].upper())
    except ValueError:
        raise ExchangeRejection(-1116, "Invalid orderType.") from None
    quantity = _float(params, "quantity")
    quote_quantity = _float(params, "quoteOrderQty")
    price = _float(params, "price")
    stop_price = _float(params, "stopPrice")
    tif = params.get("timeInForce", "")
    if order_type is OrderType.MARKET:
        if quantity is None and quote_quantity is None:
            raise mandatory("quantity")
        price = None
        tif = ""
    else:
        if quantity is None:
            raise mandatory("quantity")
        if order_type.has_limit_price and price is None:
            raise mandatory("price")
        if order_type.stop_kind is not None and stop_price is None:
            raise mandatory("stopPrice")
        if order_type in (OrderType.LIMIT, OrderType.STOP_LOSS_LIMIT, OrderType.TAKE_PROFIT_LIMIT):
            if not tif:
                raise mandatory("timeInForce")
            if tif not in ("GTC", "IOC", "FOK"):
                raise ExchangeRejection(-1115, "Invalid timeInForce.")
        elif order_type is OrderType.LIMIT_MAKER:
            tif = "GTC"
        else:
            tif = ""
            price = None
    client_id = params.get("newClientOrderId") or "local" + secrets.token_hex(8)
    return OrderRequest(
        symbol=params["symbol"],
        side=side,
        type=order_type,
        quantity=quantity,
        quote_quantity=quote_quantity,
        price=price,
        stop_price=stop_price,
        time_in_force=tif or "GTC",
        client_order_id=client_id,
    )


def _order_ref(params: dict[str, str]) -> tuple[int | None, str | None]:
    order_id = int_param(params, "orderId")
    client_id = params.get("origClientOrderId") or None
    if order_id is None and client_id is None:
        raise ExchangeRejection(
            -1102, "Param 'origClientOrderId' or 'orderId' must be sent, but both were empty/null!"
        )
    return order_id, client_id


async def account(request: web.Request) -> web.Response:
    """GET /api/v3/account."""
    engine = engine_of(request)
    now = engine.step()
    name, _ = await signed(request)
    account = engine.matcher.accounts[name]
    return web.json_response(account_json(account, now, engine.fill_model.fee_rate))


async def new_order(request: web.Request) -> web.Response:
    """POST /api/v3/order."""
    engine = engine_of(request)
    now = engine.step()
    name, params = await signed(request)
    order_request = parse_order(params)
    engine.rules(order_request.symbol)
    order = engine.matcher.place(name, order_request, now)
    response_type = params.get("newOrderRespType", "FULL").upper()
    if response_type == "ACK":
        body: dict[str, Any] = {
            "symbol": order.symbol,
            "orderId": order.order_id,
            "orderListId": -1,
            "clientOrderId": order.client_order_id,
            "transactTime": order.created_ms,
        }
    else:
        body = order_json(order, full=True)
        if response_type == "RESULT":
            body.pop("fills", None)
    return web.json_response(body)


OCO_LEG_TYPES = (
    OrderType.LIMIT_MAKER,
    OrderType.STOP_LOSS,
    OrderType.STOP_LOSS_LIMIT,
    OrderType.TAKE_PROFIT,
    OrderType.TAKE_PROFIT_LIMIT,
)


def parse_oco(params: dict[str, str]) -> tuple[OrderRequest, OrderRequest]:
    """Give the two legs a POST /api/v3/orderList/oco asks for (above, below)."""
    for name in ("symbol", "side", "quantity", "aboveType", "belowType"):
        if not params.get(name):
            raise mandatory(name)
    legs = []
    for where in ("above", "below"):
        leg = {
            "symbol": params["symbol"],
            "side": params["side"],
            "quantity": params["quantity"],
            "type": params[f"{where}Type"],
        }
        for key, name in (
            ("price", "Price"),
            ("stopPrice", "StopPrice"),
            ("timeInForce", "TimeInForce"),
            ("newClientOrderId", "ClientOrderId"),
        ):
            if params.get(where + name):
                leg[key] = params[where + name]
        parsed = parse_order(leg)
        if parsed.type not in OCO_LEG_TYPES:
            raise ExchangeRejection(-1116, "Invalid orderType.")
        legs.append(parsed)
    return legs[0], legs[1]


async def new_oco(request: web.Request) -> web.Response:
    """POST /api/v3/orderList/oco: two legs that lock once; one fills, the other expires."""
    engine = engine_of(request)
    now = engine.step()
    name, params = await signed(request)
    legs = parse_oco(params)
    engine.rules(legs[0].symbol)
    list_client_id = params.get("listClientOrderId") or "local" + secrets.token_hex(8)
    list_id, orders = engine.matcher.place_oco(name, legs, list_client_id, now)
    reports = []
    for order in orders:
        report = order_json(order, full=True)
        report.pop("fills", None)
        reports.append(report)
    return web.json_response(
        {
            "orderListId": list_id,
            "contingencyType": "OCO",
            "listStatusType": "EXEC_STARTED",
            "listOrderStatus": "EXECUTING",
            "listClientOrderId": list_client_id,
            "transactionTime": now,
            "symbol": orders[0].symbol,
            "orders": [
                {"symbol": o.symbol, "orderId": o.order_id, "clientOrderId": o.client_order_id}
                for o in orders
            ],
            "orderReports": reports,
        }
    )


async def test_order(request: web.Request) -> web.Response:
    """POST /api/v3/order/test: validate only."""
    engine = engine_of(request)
    engine.step()
    await signed(request)
    return web.json_response({})


async def get_order(request: web.Request) -> web.Response:
    """GET /api/v3/order."""
    engine = engine_of(request)
    engine.step()
    name, params = await signed(request)
    rules = engine.rules(params.get("symbol"))
    order = engine.matcher.find(name, rules.id, *_order_ref(params))
    return web.json_response(order_json(order))


async def cancel_order(request: web.Request) -> web.Response:
    """DELETE /api/v3/order."""
    engine = engine_of(request)
    now = engine.step()
    name, params = await signed(request)
    rules = engine.rules(params.get("symbol"))
    order_id, client_id = _order_ref(params)
    order = engine.matcher.cancel(name, rules.id, order_id, client_id, now)
    body = order_json(order)
    body["origClientOrderId"] = order.client_order_id
    body["transactTime"] = now
    return web.json_response(body)


async def open_orders(request: web.Request) -> web.Response:
    """GET /api/v3/openOrders (all symbols when none is given)."""
    engine = engine_of(request)
    engine.step()
    name, params = await signed(request)
    symbol = engine.rules(params["symbol"]).id if params.get("symbol") else None
    return web.json_response([order_json(o) for o in engine.matcher.open_orders(name, symbol)])


async def cancel_open_orders(request: web.Request) -> web.Response:
    """DELETE /api/v3/openOrders: cancel every working order of a symbol (-2011 when there is
    none, as Binance answers)."""
    engine = engine_of(request)
    now = engine.step()
    name, params = await signed(request)
    rules = engine.rules(params.get("symbol"))
    if not engine.matcher.open_orders(name, rules.id):
        raise ExchangeRejection(-2011, "Unknown order sent.")
    canceled = []
    for order in engine.matcher.open_orders(name, rules.id):
        if order.status.is_open:  # an OCO sibling goes with the first leg cancelled
            canceled.append(engine.matcher.cancel(name, rules.id, order.order_id, None, now))
        else:
            canceled.append(order)
    return web.json_response([order_json(o) for o in canceled])


async def all_orders(request: web.Request) -> web.Response:
    """GET /api/v3/allOrders."""
    engine = engine_of(request)
    engine.step()
    name, params = await signed(request)
    rules = engine.rules(params.get("symbol"))
    start = int_param(params, "startTime")
    end = int_param(params, "endTime")
    limit = int_param(params, "limit", 500) or 500
    orders = [
        o
        for o in engine.matcher.orders.values()
        if o.account == name
        and o.symbol == rules.id
        and (start is None or o.created_ms >= start)
        and (end is None or o.created_ms <= end)
    ]
    return web.json_response([order_json(o) for o in orders[:limit]])


async def my_trades(request: web.Request) -> web.Response:
    """GET /api/v3/myTrades."""
    engine = engine_of(request)
    engine.step()
    name, params = await signed(request)
    rules = engine.rules(params.get("symbol"))
    start = int_param(params, "startTime")
    end = int_param(params, "endTime")
    from_id = int_param(params, "fromId")
    order_id = int_param(params, "orderId")
    limit = min(int_param(params, "limit", 500) or 500, MAX_TRADES)
    trades = [
        t
        for t in engine.matcher.trades
        if t.symbol == rules.id
        and engine.matcher.orders[t.order_id].account == name
        and (start is None or t.time_ms >= start)
        and (end is None or t.time_ms <= end)
        and (from_id is None or t.trade_id >= from_id)
        and (order_id is None or t.order_id == order_id)
    ]
    return web.json_response([trade_json(t) for t in trades[:limit]])


async def listen_key(request: web.Request) -> web.Response:
    """POST/PUT/DELETE /api/v3/userDataStream: the legacy listen-key user stream."""
    engine = engine_of(request)
    name = engine.keyring.account_of_key(request.headers.get("X-MBX-APIKEY"))
    keys = request.app[LISTEN_KEYS]
    if request.method == "POST":
        key = next((k for k, v in keys.items() if v == name), None) or secrets.token_hex(32)
        keys[key] = name
        return web.json_response({"listenKey": key})
    raw_body = await request.text() if request.can_read_body else ""
    params = dict(request.query)
    params.update(dict(parse_qsl(raw_body)))
    key = params.get("listenKey", "")
    if keys.get(key) != name:
        raise ExchangeRejection(-1125, "This listenKey does not exist.")
    if request.method == "DELETE":
        del keys[key]
    return web.json_response({})


def add_routes(app: web.Application) -> None:
    """Register the signed endpoints on an app."""
    app.router.add_get("/api/v3/account", account)
    app.router.add_post("/api/v3/order", new_order)
    app.router.add_post("/api/v3/order/test", test_order)
    app.router.add_post("/api/v3/orderList/oco", new_oco)
    app.router.add_get("/api/v3/order", get_order)
    app.router.add_delete("/api/v3/order", cancel_order)
    app.router.add_get("/api/v3/openOrders", open_orders)
    app.router.add_delete("/api/v3/openOrders", cancel_open_orders)
    app.router.add_get("/api/v3/allOrders", all_orders)
    app.router.add_get("/api/v3/myTrades", my_trades)
    for method in ("POST", "PUT", "DELETE"):
        app.router.add_route(method, "/api/v3/userDataStream", listen_key)
