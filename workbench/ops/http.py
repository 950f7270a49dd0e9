"""/health, /ready and /metrics over HTTP: who may read what, and the headless server.

Access (the same on the dashboard's server and on `live run`'s):
- `/health` and `/ready` are public: they reveal no secret (no strategy ids, balances, keys
  or error texts; strategies by state and each feed's lag). A load balancer, a container
  runtime or systemd can probe them without credentials.
- `/metrics` names strategies and their equity: it is served to this machine (a loopback
  peer that no proxy forwarded: no X-Forwarded-For, X-Real-IP or Forwarded header), and to
  anyone else only with `Authorization: Bearer <WORKBENCH_METRICS_TOKEN>`. Without a token
  set, only this machine can scrape it.

`OpsHttpServer` serves them for a headless `workbench live run` on `--http-port` (127.0.0.1
by default); the dashboard's `panel serve` serves them through `workbench.ops.panel_routes`.
"""

from __future__ import annotations

import hmac
import ipaddress
from collections.abc import Callable, Mapping
from typing import Any

from aiohttp import web

from workbench.ops.metrics import CONTENT_TYPE

PROXY_HEADERS = ("x-forwarded-for", "x-real-ip", "forwarded")


def _loopback(address: str | None) -> bool:
    if not address:
        return False
    try:
        return ipaddress.ip_address(address.split("%", 1)[0]).is_loopback
    except ValueError:
        return False


def metrics_allowed(remote: str | None, headers: Mapping[str, str], token: str | None) -> bool:
    """Tell whether a request may read /metrics (see the module's access rules)."""
    lowered = {k.lower(): v for k, v in headers.items()}
    if _loopback(remote) and not any(h in lowered for h in PROXY_HEADERS):
        return True
    if not token:
        return False
    given = lowered.get("authorization", "")
    return hmac.compare_digest(given.encode(), f"Bearer {token}".encode())


METRICS_REFUSED = (
    "/metrics is served to this machine, or with Authorization: Bearer <WORKBENCH_METRICS_TOKEN>\n"
)


class OpsHttpServer:
    """A small aiohttp server with the three routes, on the engine's loop."""

    def __init__(
        self,
        service: Callable[[], Any],
        host: str = "127.0.0.1",
        port: int = 0,
        token: str | None = None,
    ) -> None:
        self.service = service  # gives the OpsService (None while it starts)
        self.host = host
        self.port = port
        self.token = token
        self._runner: web.AppRunner | None = None

    async def start(self) -> OpsHttpServer:
        app = web.Application()
        app.router.add_get("/health", self._health)
        app.router.add_get("/ready", self._ready)
        app.router.add_get("/metrics", self._metrics)
        self._runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port)
        await site.start()
        sockets = getattr(site._server, "sockets", None) or []
        self.port = int(sockets[0].getsockname()[1])
        return self

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    async def _health(self, request: web.Request) -> web.Response:
        ops = self.service()
        body = ops.health() if ops is not None else {"status": "starting"}
        return web.json_response(body)

    async def _ready(self, request: web.Request) -> web.Response:
        ops = self.service()
        if ops is None:
            return web.json_response({"ready": False, "reason": "starting"}, status=503)
        readiness = await ops.readiness()
        return web.json_response(readiness.as_json(), status=200 if readiness.ready else 503)

    async def _metrics(self, request: web.Request) -> web.Response:
        if not metrics_allowed(request.remote, request.headers, self.token):
            return web.Response(status=401, text=METRICS_REFUSED)
        ops = self.service()
        if ops is None:
            return web.Response(status=503, text="starting\n")
        return web.Response(body=ops.exposition(), headers={"Content-Type": CONTENT_TYPE})
