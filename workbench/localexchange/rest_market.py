"""Public REST endpoints of the local exchange: markets, klines, tickers, order book, time."""

from __future__ import annotations

import json
import math
from typing import Any

from aiohttp import web

from workbench.localexchange.engine import Engine
from workbench.localexchange.errors import ExchangeRejection, bad_symbol
from workbench.localexchange.formats import kline_row
from workbench.localexchange.markets import fmt_exact, fmt_fixed
from workbench.localexchange.replay import INTERVAL_MS

MAX_KLINES = 1000
DEFAULT_KLINES = 500
BOOK_LEVELS = 20
ENGINE = web.AppKey("engine", Engine)
#: listen key → account name, for the legacy user-data stream
LISTEN_KEYS = web.AppKey("listen_keys", dict[str, str])


def engine_of(request: web.Request) -> Engine:
    """Give the engine of the app serving a request."""
    return request.app[ENGINE]


def int_param(params: Any, name: str, default: int | None = None) -> int | None:
    """Give an integer parameter, or reject it as malformed."""
    raw = params.get(name)
    if raw in (None, ""):
        return default
    try:
        return int(raw)
    except ValueError:
        raise ExchangeRejection(
            -1100,
            f"Illegal characters found in parameter '{name}'; legal range is '^[0-9]{{1,20}}$'.",
        ) from None


def symbols_param(request: web.Request) -> list[str] | None:
    """Give the market ids asked for by ``symbol`` or ``symbols`` (None: all)."""
    engine = engine_of(request)
    if "symbol" in request.query:
        return [engine.rules(request.query["symbol"]).id]
    if "symbols" in request.query:
        try:
            wanted = json.loads(request.query["symbols"])
        except json.JSONDecodeError:
            raise bad_symbol() from None
        return [engine.rules(s).id for s in wanted]
    return None


async def ping(request: web.Request) -> web.Response:
    """GET /api/v3/ping."""
    return web.json_response({})


async def server_time(request: web.Request) -> web.Response:
    """GET /api/v3/time: the wall clock (signatures use it; the replay time is in the data),
    skewed while a clock_skew fault lasts."""
    return web.json_response({"serverTime": engine_of(request).faults.clock_ms()})


async def exchange_info(request: web.Request) -> web.Response:
    """GET /api/v3/exchangeInfo."""
    engine = engine_of(request)
    wanted = symbols_param(request)
    markets = [m for mid, m in engine.markets.items() if wanted is None or mid in wanted]
    return web.json_response(
        {
            "timezone": "UTC",
            "serverTime": engine.faults.clock_ms(),
            "rateLimits": [
                {
                    "rateLimitType": "REQUEST_WEIGHT",
                    "interval": "MINUTE",
                    "intervalNum": 1,
                    "limit": 6000,
                },
                {"rateLimitType": "ORDERS", "interval": "SECOND", "intervalNum": 10, "limit": 100},
            ],
            "exchangeFilters": [],
            "symbols": [m.exchange_info_entry() for m in markets],
        }
    )


async def klines(request: web.Request) -> web.Response:
    """GET /api/v3/klines: candles up to the replay clock, the last one possibly forming."""
    engine = engine_of(request)
    now = engine.step()
    rules = engine.rules(request.query.get("symbol"))
    interval = request.query.get("interval", "")
    interval_ms = INTERVAL_MS.get(interval)
    if interval_ms is None or interval_ms % engine.timeframe_ms:
        raise ExchangeRejection(-1120, "Invalid interval.")
    limit = int_param(request.query, "limit", DEFAULT_KLINES) or DEFAULT_KLINES
    if not 1 <= limit <= MAX_KLINES:
        raise ExchangeRejection(-1100, "Illegal characters found in parameter 'limit'.")
    candles = engine.replays[rules.id].klines(
        interval_ms,
        now,
        start_ms=int_param(request.query, "startTime"),
        end_ms=int_param(request.query, "endTime"),
        limit=limit,
    )
    return web.json_response([kline_row(c) for c in candles])


def _ticker(engine: Engine, market: str, now: int) -> dict[str, Any] | None:
    replay = engine.replays[market]
    day = replay.day_stats(now)
    if day is None:
        return None
    change = day.close - day.open
    bid, ask = _best_prices(engine, market, day.close)
    return {
        "symbol": market,
        "priceChange": fmt_exact(change),
        "priceChangePercent": f"{100.0 * change / day.open:.3f}",
        "weightedAvgPrice": fmt_exact((day.high + day.low + day.close) / 3.0),
        "prevClosePrice": fmt_exact(day.open),
        "lastPrice": fmt_exact(day.close),
        "lastQty": "0",
        "bidPrice": fmt_exact(bid),
        "bidQty": "1",
        "askPrice": fmt_exact(ask),
        "askQty": "1",
        "openPrice": fmt_exact(day.open),
        "highPrice": fmt_exact(day.high),
        "lowPrice": fmt_exact(day.low),
        "volume": fmt_exact(day.volume),
        "quoteVolume": fmt_exact(day.volume * day.close),
        "openTime": day.open_ms,
        "closeTime": now,
        "firstId": -1,
        "lastId": -1,
        "count": 0,
    }


async def ticker_24hr(request: web.Request) -> web.Response:
    """GET /api/v3/ticker/24hr: one ticker (``symbol``) or a list."""
    engine = engine_of(request)
    now = engine.step()
    wanted = symbols_param(request)
    if "symbol" in request.query:
        assert wanted is not None
        ticker = _ticker(engine, wanted[0], now)
        if ticker is None:
            raise ExchangeRejection(-1121, "Invalid symbol.")
        return web.json_response(ticker)
    ids = wanted if wanted is not None else list(engine.markets)
    tickers = [t for mid in ids if (t := _ticker(engine, mid, now)) is not None]
    return web.json_response(tickers)


async def ticker_price(request: web.Request) -> web.Response:
    """GET /api/v3/ticker/price."""
    engine = engine_of(request)
    now = engine.step()
    wanted = symbols_param(request)
    ids = wanted if wanted is not None else list(engine.markets)
    rows = [
        {"symbol": mid, "price": fmt_exact(price)}
        for mid in ids
        if (price := engine.replays[mid].price_at(now)) is not None
    ]
    if "symbol" in request.query:
        if not rows:
            raise bad_symbol()
        return web.json_response(rows[0])
    return web.json_response(rows)


def _best_prices(engine: Engine, market: str, price: float) -> tuple[float, float]:
    tick = engine.markets[market].tick_size
    bid = math.floor(price / tick + 1e-9) * tick
    if bid >= price:
        bid -= tick
    return bid, bid + tick


async def depth(request: web.Request) -> web.Response:
    """GET /api/v3/depth: a small synthetic book around the replay price (no real depth)."""
    engine = engine_of(request)
    now = engine.step()
    rules = engine.rules(request.query.get("symbol"))
    levels = min(int_param(request.query, "limit", 100) or 100, BOOK_LEVELS)
    replay = engine.replays[rules.id]
    price = replay.price_at(now)
    bids: list[list[str]] = []
    asks: list[list[str]] = []
    if price is not None:
        bid, ask = _best_prices(engine, rules.id, price)
        bar = replay.index_at(now)
        size = max(rules.min_qty, float(replay.v[bar]) / 50.0)
        for k in range(levels):
            quantity = fmt_fixed(round(size * (1 + k) / rules.step_size) * rules.step_size)
            bids.append([fmt_exact(round(bid / rules.tick_size - k) * rules.tick_size), quantity])
            asks.append([fmt_exact(round(ask / rules.tick_size + k) * rules.tick_size), quantity])
    return web.json_response({"lastUpdateId": now, "bids": bids, "asks": asks})


def add_routes(app: web.Application) -> None:
    """Register the public endpoints on an app."""
    app.router.add_get("/api/v3/ping", ping)
    app.router.add_get("/api/v3/time", server_time)
    app.router.add_get("/api/v3/exchangeInfo", exchange_info)
    app.router.add_get("/api/v3/klines", klines)
    app.router.add_get("/api/v3/uiKlines", klines)
    app.router.add_get("/api/v3/ticker/24hr", ticker_24hr)
    app.router.add_get("/api/v3/ticker/price", ticker_price)
    app.router.add_get("/api/v3/depth", depth)
