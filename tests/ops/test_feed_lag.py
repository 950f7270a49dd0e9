"""Feed lag by the market's own clock, on a live engine over the unmodified ccxt clients and
a local exchange whose clock the test steps: a replay as fast as the feed takes it, with
this machine busy for a while in the middle, shows lag 0 or 1 and raises nothing; a feed
whose data stops is stale after `alert_stale_bars` bar closes of market time, alerts once
(through apprise to a local receiver) and fails /ready until its data comes back. Also
here, on the same engine: a change of the account's risk limits alerts with who changed
what, before -> after; the daily summary goes out at its hour; a start after a run that
never stopped alerts."""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pytest
from alert_receiver import Receiver
from local_market import STEP_MS, open_market
from shipped import ROOT

from workbench.broker.paper import PaperBroker
from workbench.live.engine import LiveEngine
from workbench.live.feed import CandleFeed
from workbench.localexchange import LocalExchange, ManualClock
from workbench.localexchange.faults import FaultKind
from workbench.ops import service
from workbench.ops.metrics import scrape_value
from workbench.ops.service import OpsService
from workbench.ops.snapshot import view_of
from workbench.risk.account import AccountLimits
from workbench.settings import Settings
from workbench.store import Store

SPEC = ROOT / "data" / "strategies" / "sma_cross.json"
STALE_BARS = 3


@dataclass
class Market:
    server: LocalExchange
    clock: ManualClock
    engine: LiveEngine
    ops: OpsService
    receiver: Receiver
    wall: WallClock
    settings: Settings

    @property
    def feed(self) -> CandleFeed:
        return next(iter(self.engine.feeds.values()))

    def newest_closed_ms(self) -> int:
        now = self.clock.now_ms()
        return now - now % STEP_MS - STEP_MS

    async def until_current(self, timeout_s: float = 10.0) -> None:
        """Wait until the feed has delivered the newest bar the market's clock has closed."""
        deadline = time.monotonic() + timeout_s
        while (self.feed.last_closed_ms or 0) < self.newest_closed_ms():
            assert time.monotonic() < deadline, "the feed never caught up"
            await asyncio.sleep(0.002)

    async def streaming(self, timeout_s: float = 20.0) -> None:
        """Step the market until the feed hears its stream (it caught up by REST first)."""
        deadline = time.monotonic() + timeout_s
        while not self.feed.stats.updates:
            assert time.monotonic() < deadline, "the stream never spoke"
            self.clock.advance(STEP_MS // 3)
            await asyncio.sleep(0.02)
        await self.until_current()

    async def lag(self) -> float | None:
        """Give the feed's lag as the ops service sees it (it asks the market's time first)."""
        await self.engine.market_clock.sync()
        return view_of(self.engine).feeds[0].lag_bars

    async def delivered(self, count: int, timeout_s: float = 15.0) -> list[dict[str, object]]:
        """Wait, with the loop running (the ops ticks raise alerts on it), for `count` posts."""
        deadline = time.monotonic() + timeout_s
        while len(self.receiver.posts) < count:
            assert time.monotonic() < deadline, self.receiver.titles()
            await asyncio.sleep(0.05)
        return self.receiver.posts

    def scraped_lag(self) -> float | None:
        text = self.ops.metrics.exposition().decode()
        return scrape_value(text, "workbench_feed_lag_bars", {"symbol": "ETH/BTC"})


class WallClock:
    """The ops service's UTC wall clock (the daily summary's), moved by the test."""

    def __init__(self) -> None:
        self.offset = dt.timedelta()

    def __call__(self) -> dt.datetime:
        return dt.datetime.now(dt.UTC).replace(tzinfo=None) + self.offset


@pytest.fixture
async def market(
    eth: pd.DataFrame, tmp_path: Path, receiver: Receiver, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[Market]:
    settings = Settings(
        db=str(tmp_path / "lag.duckdb"), alert_urls=[receiver.url], alert_stale_bars=STALE_BARS,
        ready_max_feed_lag_bars=2, alert_summary_hour=0,
    )  # fmt: skip
    wall = WallClock()
    monkeypatch.setattr(service, "utcnow", wall)
    candles = eth.iloc[2500:3500]
    async for server, clock, clients in open_market(candles):
        clock.advance(300 * STEP_MS)  # past the strategy's warm-up
        with Store.open(settings.db) as store:
            engine = LiveEngine(store, clients, PaperBroker(), history_bars=200)
            ops = await OpsService(engine, store, settings, role="live", tick_s=0.05).start()
            await engine.add_strategy(SPEC, allocation=1.0, strategy_id="sma")
            await engine.start()
            found = Market(server, clock, engine, ops, receiver, wall, settings)
            try:
                await found.streaming()
                yield found
            finally:
                await ops.stop()
                await engine.stop()


async def test_a_fast_replay_on_a_busy_machine_is_never_stale(market: Market) -> None:
    lags: list[float | None] = []
    for step in range(3 * 40):  # 40 bars, each as fast as the feed takes it
        market.clock.advance(STEP_MS // 3)
        lags.append(await market.lag())
        if step == 60:
            time.sleep(0.6)  # the machine is busy: no market time passes meanwhile
            await asyncio.sleep(0.1)  # the ops ticks look at the feed now
        await market.until_current()
        lags.append(await market.lag())
    await asyncio.sleep(0.2)  # a few more ops ticks
    assert set(lags) <= {0.0, 1.0} and 0.0 in lags and 1.0 in lags, sorted(set(map(str, lags)))
    assert market.scraped_lag() in (0.0, 1.0)
    ready = await market.ops.readiness()
    assert ready.checks["feeds"].ok, ready.checks["feeds"]
    assert ready.feeds[0]["lag_bars"] in (0.0, 1.0)
    assert market.ops.alerting.sender.wait_idle(10)
    assert market.receiver.posts == [], market.receiver.titles()


async def test_a_feed_whose_data_stops_is_stale_after_n_bars_of_market_time(
    market: Market,
) -> None:
    await market.server.inject_fault(FaultKind.STALL_STREAMS, duration_s=120)
    for bars in range(1, STALE_BARS + 3):
        market.clock.advance(STEP_MS)
        await asyncio.sleep(0.2)  # ops ticks (every 0.05 s) ask the market's time and look
        assert market.scraped_lag() == bars  # one more bar close with nothing delivered
        assert await market.lag() == bars
        if bars < STALE_BARS:
            assert market.receiver.posts == [], market.receiver.titles()
    await market.delivered(1)
    ready = await market.ops.readiness()
    assert not ready.ready and not ready.checks["feeds"].ok
    assert "ETH/BTC 5m" in ready.checks["feeds"].detail
    market.server.clear_faults()  # the data comes back: the backlog, then current again
    await market.until_current()
    assert await market.lag() == 0
    await asyncio.sleep(0.3)
    stale = [p for p in market.receiver.posts if "stale" in str(p["title"])]
    assert len(market.receiver.posts) == len(stale) == 1, market.receiver.titles()
    assert "ETH/BTC 5m" in str(stale[0]["title"]) and stale[0]["type"] == "warning"
    assert f"{STALE_BARS:g} bars behind" in str(stale[0]["message"])
    history = market.ops.store.ops.alerts()
    assert list(history["rule"]) == ["feed_stale"] and list(history["status"]) == ["sent"]


async def test_a_change_of_risk_limits_alerts_with_who_and_before_after(market: Market) -> None:
    engine = market.engine
    engine.set_account_limits(
        AccountLimits(max_order_notional=0.5, max_open_positions=3), by="user:alice"
    )
    engine.set_account_limits(
        AccountLimits(max_order_notional=0.1, max_open_positions=3), by="cli:bob"
    )
    engine.set_account_limits(  # the same again: no change, nothing to say
        AccountLimits(max_order_notional=0.1, max_open_positions=3), by="cli:bob"
    )
    await market.delivered(2)
    assert market.ops.alerting.sender.wait_idle(10)
    first, second = market.receiver.posts
    assert "risk limits" in str(first["title"]) and "user:alice" in str(first["title"])
    assert first["type"] == second["type"] == "warning"
    assert set(str(first["message"]).splitlines()) == {
        "max_order_notional: none -> 0.5",
        "max_open_positions: none -> 3",
    }
    assert "cli:bob" in str(second["title"])
    assert str(second["message"]).splitlines() == ["max_order_notional: 0.5 -> 0.1"]
    history = market.ops.store.ops.alerts()
    assert list(history["rule"]) == ["limits_changed", "limits_changed"]


async def test_the_daily_summary_goes_out_at_its_hour(market: Market) -> None:
    await asyncio.sleep(0.2)
    assert market.receiver.posts == []  # not due yet
    now = market.wall()
    midnight = dt.datetime.combine(now.date() + dt.timedelta(days=1), dt.time())
    market.wall.offset += midnight - now + dt.timedelta(seconds=1)
    (post,) = await market.delivered(1)
    assert str(post["title"]).startswith(f"daily summary {now.date():%Y-%m-%d}")
    assert list(market.ops.store.ops.alerts()["rule"]) == ["daily_summary"]


async def test_a_start_after_a_run_that_never_stopped_alerts(market: Market) -> None:
    # The fixture's service is still running: to a second start on the same database and
    # host it is a run that never stopped cleanly (a crash, a kill, systemd restarting it).
    again = await OpsService(market.engine, market.ops.store, market.settings).start()
    try:
        await market.delivered(1)
    finally:
        await again.stop()
    (post,) = market.receiver.posts
    assert "restarted after an unclean stop" in str(post["title"])
    assert f"pid {os.getpid()}" in str(post["message"])
