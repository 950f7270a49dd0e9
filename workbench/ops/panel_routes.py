"""/health, /ready and /metrics on the dashboard's own server (same process, same port).

`workbench serve` and `workbench demo` pass `--plugins workbench.ops.panel_routes` to
`panel serve`, which adds `ROUTES` beside the apps. They are plain tornado handlers, outside
Bokeh's login: the access rules are those of `workbench.ops.http` (/health and /ready
public and secret-free, /metrics to this machine or with the metrics token). Behind a reverse
proxy, serve with `--use-xheaders` so a forwarded request is seen as the client's.
"""

from __future__ import annotations

import json

import tornado.web

from workbench.ops.http import METRICS_REFUSED, metrics_allowed
from workbench.ops.metrics import CONTENT_TYPE
from workbench.ops.service import current
from workbench.settings import load_settings


class _Handler(tornado.web.RequestHandler):
    def set_default_headers(self) -> None:
        self.set_header("Cache-Control", "no-store")

    def _json(self, body: object, status: int = 200) -> None:
        self.set_status(status)
        self.set_header("Content-Type", "application/json")
        self.finish(json.dumps(body))


class HealthHandler(_Handler):
    def get(self) -> None:
        ops = current()
        self._json(ops.health() if ops is not None else {"status": "starting"})


class ReadyHandler(_Handler):
    async def get(self) -> None:
        ops = current()
        if ops is None:
            self._json({"ready": False, "reason": "starting"}, 503)
            return
        readiness = await ops.readiness()
        self._json(readiness.as_json(), 200 if readiness.ready else 503)


class MetricsHandler(_Handler):
    def get(self) -> None:
        token = load_settings().metrics_token
        secret = token.get_secret_value() if token is not None else None
        if not metrics_allowed(self.request.remote_ip, dict(self.request.headers), secret):
            self.set_status(401)
            self.finish(METRICS_REFUSED)
            return
        ops = current()
        if ops is None:
            self.set_status(503)
            self.finish("starting\n")
            return
        self.set_header("Content-Type", CONTENT_TYPE)
        self.finish(ops.exposition())


ROUTES = [(r"/health", HealthHandler), (r"/ready", ReadyHandler), (r"/metrics", MetricsHandler)]
