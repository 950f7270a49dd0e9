"""The ops service (and, headless, its HTTP server) around a live run, in one place.

async with Live(settings) as live, operations(live, settings, http_port=9100) as ops:
    ...
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator
from typing import Any

from workbench.ops.http import OpsHttpServer
from workbench.ops.service import OpsService

log = logging.getLogger(__name__)


@contextlib.asynccontextmanager
async def operations(
    live: Any,
    settings: Any,
    *,
    role: str = "live",
    http_port: int | None = None,
    http_host: str = "127.0.0.1",
    **options: Any,
) -> AsyncIterator[OpsService]:
    """Run the ops service on a started `Live` (and its HTTP routes when `http_port` is set:
    0 picks a free port); stop both when the block ends."""
    ops = await OpsService(live.engine, live.store, settings, role=role, **options).start()
    server = None
    try:
        if http_port is not None:
            token = settings.metrics_token.get_secret_value() if settings.metrics_token else None
            server = await OpsHttpServer(lambda: ops, http_host, http_port, token).start()
            ops.http_url = server.url  # type: ignore[attr-defined]
            log.info("health, readiness and metrics on %s", server.url)
        yield ops
    finally:
        if server is not None:
            await server.stop()
        await ops.stop()
