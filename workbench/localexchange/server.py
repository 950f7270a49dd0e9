"""The local exchange server: a Binance-protocol subset on 127.0.0.1, started in-process.

    async with LocalExchange(history, speed=600) as server:
        async with connect("local", port=server.port) as ex:
            await ex.rest.fetch_ohlcv("ETH/BTC", "5m")

Besides Binance's endpoints it serves a small control API under ``/_local`` (state, faults),
so a server started by ``workbench exchange serve`` can be steered from another process.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import replace
from types import TracebackType
from typing import Any

import pandas as pd
from aiohttp import web

from workbench.fills import FeeAsset, FillModel
from workbench.localexchange import rest_market, rest_trading, websocket
from workbench.localexchange.auth import KeyRing
from workbench.localexchange.clock import Clock, ReplayClock
from workbench.localexchange.commission import BNB, DEFAULT_BNB_BALANCE
from workbench.localexchange.engine import Engine
from workbench.localexchange.errors import ExchangeRejection
from workbench.localexchange.fault_http import fault_middleware
from workbench.localexchange.faults import Fault, FaultKind
from workbench.localexchange.replay import INTERVAL_MS
from workbench.venue.client import LOCAL_API_KEY, LOCAL_API_SECRET

log = logging.getLogger(__name__)

#: Balances of a fresh account when none are given: enough for every shipped market.
DEFAULT_BALANCES: dict[str, float] = {"BTC": 1.0, "USDT": 10_000.0, "ETH": 10.0}
DEFAULT_WARMUP_BARS = 288
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def fee_asset_of(value: FeeAsset | str) -> FeeAsset:
    """Give the fee asset a name stands for, or raise ValueError naming the choices."""
    try:
        return FeeAsset(value)
    except ValueError:
        choices = ", ".join(a.value for a in FeeAsset)
        raise ValueError(f"fee_asset must be one of {choices}, got {value!r}") from None


def default_start_ms(history: Mapping[str, pd.DataFrame], warmup_bars: int, tf_ms: int) -> int:
    """Give the default replay start: the earliest first bar plus a warm-up of history."""
    firsts = [int(pd.DatetimeIndex(df.index).min().value // 1_000_000) for df in history.values()]
    return min(firsts) + warmup_bars * tf_ms


def to_ms(value: int | str | pd.Timestamp) -> int:
    """Give epoch milliseconds of a time (an int is already in ms; strings are UTC)."""
    if isinstance(value, int):
        return value
    stamp = pd.Timestamp(value)
    if stamp.tzinfo is None:
        stamp = stamp.tz_localize("UTC")
    return int(stamp.value // 1_000_000)


class LocalExchange:
    """A running (or ready to run) local exchange."""

    def __init__(
        self,
        history: Mapping[str, pd.DataFrame],
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        speed: float = 60.0,
        start: int | str | pd.Timestamp | None = None,
        clock: Clock | None = None,
        timeframe: str = "5m",
        fill_model: FillModel | None = None,
        balances: Mapping[str, float] | None = None,
        api_key: str = LOCAL_API_KEY,
        api_secret: str = LOCAL_API_SECRET,
        tick_s: float = 0.05,
        warmup_bars: int = DEFAULT_WARMUP_BARS,
        max_volume_fraction: float | None = None,
        fee_asset: FeeAsset | str | None = None,
    ) -> None:
        """``max_volume_fraction``: opt-in liquidity limit; a resting order then fills at most
        that fraction of the volume traded meanwhile, so it fills partially (see `matching`).
        ``fee_asset`` (quote, received or bnb; default the fill model's, itself
        `workbench.fills.DEFAULT_FEE_ASSET`): what commissions are taken in (see `commission`);
        with bnb a fresh account also holds BNB and a BNB/<quote> market is served."""
        model = fill_model or FillModel()
        if fee_asset is not None:
            model = replace(model, fee_asset=fee_asset_of(fee_asset))
        if balances is None:
            balances = dict(DEFAULT_BALANCES)
            if model.fee_asset is FeeAsset.BNB:
                balances[BNB] = DEFAULT_BNB_BALANCE
        if timeframe not in INTERVAL_MS:
            raise ValueError(f"unsupported base timeframe {timeframe!r}")
        tf_ms = INTERVAL_MS[timeframe]
        if clock is None:
            start_ms = to_ms(start) if start is not None else None
            if start_ms is None:
                start_ms = default_start_ms(history, warmup_bars, tf_ms)
            clock = ReplayClock(start_ms, speed)
        self.host = host
        self.port = port
        self.tick_s = tick_s
        self.api_key = api_key
        self.api_secret = api_secret
        self.engine = Engine(
            history,
            clock=clock,
            timeframe_ms=tf_ms,
            fill_model=model,
            accounts={api_key: dict(balances)},
            keyring=KeyRing({api_key: (api_secret, api_key)}),
            max_volume_fraction=max_volume_fraction,
        )
        self._runner: web.AppRunner | None = None
        self._ticker: asyncio.Task[None] | None = None

    # -- public API ----------------------------------------------------------------------
    @property
    def clock(self) -> Clock:
        """Give the replay clock."""
        return self.engine.clock

    @property
    def url(self) -> str:
        """Give the base HTTP URL (``http://127.0.0.1:PORT``)."""
        return f"http://{self.host}:{self.port}"

    @property
    def symbols(self) -> list[str]:
        """Give the unified symbols served."""
        return [r.symbol for r in self.engine.replays.values()]

    async def start(self) -> LocalExchange:
        """Bind the port (a free one when ``port=0``) and start replaying."""
        app = self.build_app()
        self._runner = web.AppRunner(
            app, access_log=None, handle_signals=False, shutdown_timeout=0.1
        )
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port, reuse_address=True)
        await site.start()
        server = site._server
        if self.port == 0 and server is not None:
            sockets = getattr(server, "sockets", None) or []
            self.port = sockets[0].getsockname()[1]
        self._ticker = asyncio.get_running_loop().create_task(self._tick_loop())
        log.info("local exchange on %s replaying %s", self.url, ", ".join(self.symbols))
        return self

    async def stop(self) -> None:
        """Close every connection and release the port."""
        ticker, self._ticker = self._ticker, None
        if ticker is not None:
            ticker.cancel()
            # The Ctrl-C that stopped a server (`workbench serve`, systemd's stop) may have
            # landed in the ticker, which then ended with it: raised again here, it cut the
            # engine's close short and left the store open (seen in tests/ops/test_deployed).
            ended_by_interrupt = (
                ticker.done()
                and not ticker.cancelled()
                and isinstance(ticker.exception(), KeyboardInterrupt)
            )
            if not ended_by_interrupt:
                with contextlib.suppress(asyncio.CancelledError):
                    await ticker
        await self.engine.hub.drop_all()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> LocalExchange:
        return await self.start()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    async def inject_fault(
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
        """Start a fault (`workbench.localexchange.faults`); dropping sockets happens at once."""
        faults = self.engine.faults
        fault = faults.inject(
            kind,
            duration_s=duration_s,
            count=count,
            status=status,
            retry_after_s=retry_after_s,
            latency_ms=latency_ms,
            skew_ms=skew_ms,
            hang_s=hang_s,
        )
        if fault.kind is FaultKind.DROP_WEBSOCKETS:
            await self.engine.hub.drop_all()
            if duration_s is None:
                faults.clear(FaultKind.DROP_WEBSOCKETS)
        return fault

    def clear_faults(self) -> None:
        """End every fault."""
        self.engine.faults.clear()

    # -- internals -----------------------------------------------------------------------
    def build_app(self) -> web.Application:
        """Give the aiohttp application (routes, middlewares, shared state)."""
        app = web.Application(
            middlewares=[fault_middleware(self.engine.faults), self._error_middleware]
        )
        app[rest_market.ENGINE] = self.engine
        app[rest_market.LISTEN_KEYS] = {}
        rest_market.add_routes(app)
        rest_trading.add_routes(app)
        websocket.add_routes(app)
        app.router.add_get("/_local/state", self._state)
        app.router.add_post("/_local/faults", self._post_fault)
        app.router.add_delete("/_local/faults", self._delete_faults)
        return app

    async def _tick_loop(self) -> None:
        while True:
            try:
                self.engine.step()
            except Exception:  # the heartbeat must survive a bad tick; the error is logged
                log.exception("local exchange tick failed")
            await asyncio.sleep(self.tick_s)

    @web.middleware
    async def _error_middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        try:
            return await handler(request)
        except ExchangeRejection as rejection:
            return web.json_response(rejection.body(), status=rejection.status)

    async def _state(self, request: web.Request) -> web.Response:
        now = self.engine.step()
        clock: Any = self.engine.clock
        return web.json_response(
            {
                "now_ms": now,
                "now": pd.Timestamp(now, unit="ms", tz="UTC").isoformat(),
                "speed": getattr(clock, "speed", None),
                "symbols": self.symbols,
                "connections": len(self.engine.hub.connections),
                "faults": self.engine.faults.describe(),
                "max_volume_fraction": self.engine.matcher.max_volume_fraction,
                "fee_asset": self.engine.fill_model.fee_asset.value,
            }
        )

    async def _post_fault(self, request: web.Request) -> web.Response:
        spec = await request.json()
        kinds = ", ".join(k.value for k in FaultKind)
        if not isinstance(spec, dict) or spec.get("kind") not in set(FaultKind):
            error = f"kind must be one of {kinds}"
            return web.json_response({"error": error}, status=400)
        try:
            await self.inject_fault(FaultKind(spec.pop("kind")), **spec)
        except (TypeError, ValueError) as error:
            return web.json_response({"error": str(error)}, status=400)
        return web.json_response({"faults": self.engine.faults.describe()})

    async def _delete_faults(self, request: web.Request) -> web.Response:
        self.clear_faults()
        return web.json_response({"faults": []})
