"""The one place the workbench builds ccxt clients: `connect`.

For ``"local"`` both clients are ccxt's own Binance classes with their URLs pointed at the local
exchange, only spot markets loaded, and every option that would reach another host turned off.
For any other ccxt id they are that exchange's classes.

Keys go only where they belong. The settings' keys (``WORKBENCH_API_KEY``/``_SECRET``) are the
keys of the settings' exchange, so only that exchange's clients get them; the local exchange
always gets its own pair (`LOCAL_API_KEY`/`LOCAL_API_SECRET`, or the arguments), never a real
account's: it knows no other pair, and a real key has no business on a test server.
"""

from __future__ import annotations

from types import TracebackType
from typing import Any

import ccxt.async_support as ccxt_async
import ccxt.pro as ccxt_pro

from workbench.settings import Settings, load_settings
from workbench.venue.clock import MarketClock

LOCAL = "local"
#: The key pair every local exchange knows unless told otherwise (it guards nothing real).
LOCAL_API_KEY = "local-api-key"
LOCAL_API_SECRET = "local-api-secret"


class ExchangeClients:
    """A ccxt REST client and a ccxt.pro streaming client of one exchange; close with `close`
    or use as an async context manager."""

    def __init__(self, name: str, rest: ccxt_async.Exchange, pro: ccxt_pro.Exchange) -> None:
        self.name = name
        self.rest = rest
        self.pro = pro

    async def load_markets(self) -> dict[str, Any]:
        """Load markets once and share them between both clients."""
        markets = await self.rest.load_markets()
        self.pro.set_markets(self.rest.markets, self.rest.currencies)
        return markets

    async def close(self) -> None:
        """Close both clients (their HTTP sessions and sockets)."""
        try:
            await self.pro.close()
        finally:
            await self.rest.close()

    async def __aenter__(self) -> ExchangeClients:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()


def local_config(host: str, port: int, api_key: str, secret: str) -> dict[str, Any]:
    """Give the ccxt Binance config that talks only to a local exchange at host:port."""
    return {
        "apiKey": api_key,
        "secret": secret,
        # The local server is the rate limiter (and injects 429s on demand).
        "enableRateLimit": False,
        # Plain HTTP to 127.0.0.1: no TLS shutdown to wait for when closing.
        "timeout_on_exit": 0,
        "options": {
            "fetchMarkets": {"types": ["spot"]},
            "fetchCurrencies": False,
            "fetchMargins": False,
            "defaultType": "spot",
            "warnOnFetchOpenOrdersWithoutSymbol": False,
            "adjustForTimeDifference": False,
        },
    }


def point_at_local(client: Any, host: str, port: int) -> None:
    """Point a ccxt Binance client's REST and WebSocket URLs at a local exchange."""
    http = f"http://{host}:{port}/api/v3"
    ws = f"ws://{host}:{port}"
    api = dict(client.urls["api"])
    api["public"] = http
    api["private"] = http
    if "ws" in api:
        ws_urls = dict(api["ws"])
        ws_urls["spot"] = f"{ws}/ws"
        ws_api = dict(ws_urls.get("ws-api", {}))
        ws_api["spot"] = f"{ws}/ws-api/v3"
        ws_urls["ws-api"] = ws_api
        api["ws"] = ws_urls
    client.urls["api"] = api
    client.has["fetchCurrencies"] = False


def connect(
    name: str | None = None,
    *,
    settings: Settings | None = None,
    host: str | None = None,
    port: int | None = None,
    api_key: str | None = None,
    secret: str | None = None,
    sandbox: bool | None = None,
    options: dict[str, Any] | None = None,
) -> ExchangeClients:
    """Give configured ccxt REST and ccxt.pro clients for ``name`` (default: settings).

    ``"local"`` talks to the local exchange at ``host:port`` (default: settings'
    ``local_host``/``local_port``) with the given keys, else the local exchange's own pair;
    never with the settings' keys. Any other name is a ccxt exchange id, with the given keys,
    else the settings' keys when ``name`` is the settings' exchange, and its testnet when
    ``sandbox`` (or settings.sandbox).
    """
    settings = settings or load_settings()
    name = name or settings.exchange
    if name == LOCAL:
        host = host or settings.local_host
        port = port or settings.local_port
        config = local_config(host, port, api_key or LOCAL_API_KEY, secret or LOCAL_API_SECRET)
        if options:
            config["options"].update(options)
        rest = ccxt_async.binance(config)
        pro = ccxt_pro.binance(config)
        for client in (rest, pro):
            point_at_local(client, host, port)
        return ExchangeClients(LOCAL, rest, pro)
    if not hasattr(ccxt_async, name) or not hasattr(ccxt_pro, name):
        raise ValueError(f"unknown exchange {name!r}: not a ccxt (and ccxt.pro) exchange id")
    key, sec = api_key, secret
    if name == settings.exchange and not (key or sec):
        key = settings.api_key.get_secret_value() if settings.api_key else None
        sec = settings.api_secret.get_secret_value() if settings.api_secret else None
    config = {"enableRateLimit": True, "options": dict(options or {})}
    if key and sec:
        config.update({"apiKey": key, "secret": sec})
    rest = getattr(ccxt_async, name)(config)
    pro = getattr(ccxt_pro, name)(config)
    if sandbox if sandbox is not None else settings.sandbox:
        rest.set_sandbox_mode(True)
        pro.set_sandbox_mode(True)
    return ExchangeClients(name, rest, pro)


async def market_now_ms(client: Any) -> int:
    """Give the exchange's market time: the replay clock for the local exchange, else its time.

    A bar is closed once this clock has passed its end; the forming bar is never stored.
    """
    return await MarketClock(client).sync()
