"""The ops service on a live engine end to end: the local exchange replaying at 600x (a 5m
bar every half second) through the unmodified ccxt clients, /health, /ready and /metrics over
HTTP, metrics behind the token once proxied, clock skew failing readiness. A stalled feed on
a market stepped by the test: test_feed_lag.py."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pandas as pd
import pytest
from alert_receiver import Receiver
from shipped import ROOT

from workbench.broker.paper import PaperBroker
from workbench.live.engine import LiveEngine
from workbench.live.events import CandleClosed, EngineEvent
from workbench.localexchange import LocalExchange
from workbench.localexchange.faults import FaultKind
from workbench.ops.http import OpsHttpServer
from workbench.ops.metrics import scrape_value
from workbench.ops.service import OpsService
from workbench.settings import Settings
from workbench.store import Store
from workbench.venue import connect

SPECS = ROOT / "data" / "strategies"
TOKEN = "metrics-token-for-the-test"


class Running:
    def __init__(self, server: LocalExchange, engine: LiveEngine, ops: OpsService, url: str):
        self.server, self.engine, self.ops, self.url = server, engine, ops, url
        self.closed: list[CandleClosed] = []

    async def get(self, path: str, **headers: str) -> tuple[int, Any]:
        async with (
            aiohttp.ClientSession() as http,
            http.get(self.url + path, headers=headers) as answer,
        ):
            body = await (answer.json() if "json" in answer.content_type else answer.text())
            return answer.status, body

    async def until(self, path: str, status: int, timeout_s: float = 15.0) -> Any:
        for _ in range(int(timeout_s / 0.1)):
            got, body = await self.get(path)
            if got == status:
                return body
            await asyncio.sleep(0.1)
        raise AssertionError(f"{path} never answered {status}: {body}")


@pytest.fixture
async def running(eth: pd.DataFrame, tmp_path: Path, receiver: Receiver) -> AsyncIterator[Running]:
    settings = Settings(
        db=str(tmp_path / "ops.duckdb"), alert_urls=[receiver.url], alert_stale_bars=3,
        ready_max_feed_lag_bars=2, metrics_token=TOKEN,
    )  # fmt: skip
    start = int(eth.index[3000].value // 1_000_000) + 1
    async with LocalExchange({"ETH/BTC": eth}, speed=600, start=start, tick_s=0.005) as server:
        clients = connect("local", settings=Settings(), port=server.port)
        await clients.load_markets()
        with Store.open(settings.db) as store:
            engine = LiveEngine(store, clients, PaperBroker(), history_bars=200)
            ops = await OpsService(engine, store, settings, role="live", tick_s=0.1).start()
            http = await OpsHttpServer(lambda: ops, port=0, token=TOKEN).start()
            found = Running(server, engine, ops, http.url)

            def seen(event: EngineEvent) -> None:
                if isinstance(event, CandleClosed):
                    found.closed.append(event)

            engine.subscribe(seen)
            for name in ("sma_cross", "ema_cross_rsi"):
                await engine.add_strategy(SPECS / f"{name}.json", allocation=1.0, strategy_id=name)
            await engine.start()
            try:
                yield found
            finally:
                await http.stop()
                await ops.stop()
                await engine.stop()
        await clients.close()


async def test_health_ready_and_metrics_tell_what_the_engine_holds(running: Running) -> None:
    for _ in range(100):
        if len([e for e in running.closed if e.fresh]) >= 4:
            break
        await asyncio.sleep(0.1)
    status, health = await running.get("/health")
    assert status == 200 and health["status"] == "alive"
    ready = await running.until("/ready", 200)
    assert ready["ready"] is True
    assert {name for name, c in ready["checks"].items() if c["ok"]} == {
        "engine", "database", "exchange", "loop", "feeds",
    }  # fmt: skip
    assert ready["strategies"] == {"running": 2}
    assert ready["feeds"][0]["symbol"] == "ETH/BTC" and ready["feeds"][0]["lag_bars"] <= 2
    assert "sma_cross" not in str(ready)  # public: no strategy ids
    await running.engine.stop()  # the book stands still while we compare
    closed = len([e for e in running.closed if e.fresh])
    status, text = await running.get("/metrics")
    assert status == 200
    fresh = scrape_value(text, "workbench_candles_total", {"symbol": "ETH/BTC", "fresh": "true"})
    assert fresh == closed >= 4
    bars = scrape_value(text, "workbench_bar_handling_seconds_count")
    assert bars == len(running.closed)
    for sid, live in running.engine.strategies.items():
        equity = scrape_value(text, "workbench_strategy_equity", {"strategy_id": sid})
        assert equity == pytest.approx(live.runner.equity(), rel=1e-12)
        position = scrape_value(text, "workbench_strategy_position", {"strategy_id": sid})
        assert position == live.runner.portfolio.position("ETH/BTC").amount
    assert scrape_value(text, "workbench_strategies", {"state": "running"}) == 2
    assert scrape_value(text, "workbench_loop_lag_seconds_count") > 0


async def test_metrics_need_the_token_once_a_proxy_forwards(running: Running) -> None:
    status, _ = await running.get("/metrics", **{"X-Forwarded-For": "203.0.113.9"})
    assert status == 401
    status, _ = await running.get(
        "/metrics", **{"X-Forwarded-For": "203.0.113.9", "Authorization": "Bearer wrong"}
    )
    assert status == 401
    status, text = await running.get(
        "/metrics", **{"X-Forwarded-For": "203.0.113.9", "Authorization": f"Bearer {TOKEN}"}
    )
    assert status == 200 and "workbench_up 1.0" in text


async def test_clock_skew_makes_the_engine_not_ready(running: Running) -> None:
    await running.until("/ready", 200)
    await running.server.inject_fault(FaultKind.CLOCK_SKEW, duration_s=30)
    await asyncio.sleep(1.1)  # past the cached answer
    ready = await running.until("/ready", 503)
    assert ready["checks"]["exchange"]["ok"] is False
    assert "clock skew" in ready["checks"]["exchange"]["detail"]
    running.server.clear_faults()
    await running.until("/ready", 200)


async def test_a_failing_database_is_named_on_ready_without_its_error_text(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    db = tmp_path / "private-folder" / "gone.duckdb"
    db.parent.mkdir()
    store = Store.open(db)
    store.close()  # every write now fails, with the file's path in the error
    probe = await OpsService(None, store, Settings(db=str(db)))._probe_database()
    # /ready is public: the kind of error only, never its text (paths, SQL, hosts)
    assert not probe.ok and re.fullmatch(r"write failed: \w+", probe.detail), probe.detail
    assert "readiness: the database write failed" in caplog.text  # the text is in the log
