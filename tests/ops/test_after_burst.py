"""The ops service's work waits until a bar's orders are sent: on a live engine (the local
exchange through the unmodified ccxt clients, a market stepped by the test, paper orders) no
order is counted before it goes to the broker; every one is counted, logged and alerted after
the burst, and what came just before a stop is delivered by the stop. `AfterBurst` alone:
events handed on in order, with the time each came, after the loop's step; a record handed
on late has the time its event came."""

from __future__ import annotations

import asyncio
import io
import json
import logging
import time
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from alert_receiver import Receiver
from local_market import STEP_MS, open_market
from prometheus_client.parser import text_string_to_metric_families
from shipped import ROOT

from workbench.broker.models import Order
from workbench.broker.paper import PaperBroker
from workbench.candles import Candle
from workbench.live.engine import LiveEngine
from workbench.live.events import CandleClosed, EngineEvent, StateChanged, StrategyState
from workbench.ops.deferred import AfterBurst
from workbench.ops.eventlog import EventLog
from workbench.ops.logs import setup_logging, stop_logging
from workbench.ops.service import OpsService
from workbench.settings import Settings
from workbench.store import Store

SPECS = sorted((ROOT / "data" / "strategies").glob("*.json"))
KEY = ("local", "ETH/BTC", "5m")


async def taken(engine: LiveEngine, closed_ms: int, timeout_s: float = 30.0) -> None:
    """Wait until every strategy took the bar `closed_ms` and no order is in hand."""
    deadline = time.monotonic() + timeout_s
    while any(
        (live.runner.last_close_ms or 0) < closed_ms or live.lock.locked()
        for live in engine.strategies.values()
    ):
        assert time.monotonic() < deadline, f"the engine never took the bar of {closed_ms}"
        await asyncio.sleep(0.002)


def pending(ops: OpsService) -> float:
    """Orders the metrics counted as stored, every purpose (parsed by prometheus-client, as
    a scrape reads them but without handing on what is kept)."""
    text = ops.metrics.exposition().decode()
    return sum(
        sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == "workbench_orders_total" and sample.labels["state"] == "pending"
    )


async def test_orders_are_counted_after_they_are_sent_and_none_is_lost_on_stop(
    eth: pd.DataFrame, tmp_path: Path, receiver: Receiver, restore_root: None
) -> None:
    log_file = tmp_path / "ops.jsonl"
    settings = Settings(
        db=str(tmp_path / "burst.duckdb"), alert_urls=[receiver.url], log_file=log_file,
        log_format="json",
    )  # fmt: skip
    setup_logging(settings, io.StringIO(), exchange="local")
    candles = eth.iloc[2500:3200]
    async for _server, clock, clients in open_market(candles):
        clock.advance(300 * STEP_MS)  # past the strategies' warm-up
        with Store.open(settings.db) as store:
            broker = PaperBroker()
            engine = LiveEngine(store, clients, broker, history_bars=200)
            ops = await OpsService(engine, store, settings, role="live", tick_s=0.05).start()
            # At each order's submission: how many orders the metrics had counted then.
            counted: list[float] = []
            submit = broker.submit

            async def watched(
                order: Order, ops: OpsService = ops, submit: Any = submit, at: Any = counted
            ) -> object:
                at.append(pending(ops))
                return await submit(order)

            broker.submit = watched  # type: ignore[method-assign]
            for i, spec in enumerate(SPECS):
                await engine.add_strategy(spec, allocation=1.0, strategy_id=f"s{i}")
            await engine.start()
            deadline = time.monotonic() + 30
            while any(feed.forming is None for feed in engine.feeds.values()):
                assert time.monotonic() < deadline, "the stream never spoke"
                clock.advance(1)  # until the stream speaks
                await asyncio.sleep(0.005)
            for _ in range(300):
                clock.advance(STEP_MS)
                now = clock.now_ms()
                await taken(engine, now - now % STEP_MS - STEP_MS)
                if len(counted) >= 4:
                    break
            sent = len(counted)
            assert sent >= 4, "the strategies placed too few orders to tell"
            # The k-th order (from 1) went out before any ops work of its burst was done: the
            # metrics had counted only orders of bars before.
            assert all(seen < k for k, seen in enumerate(counted, 1)), counted
            await asyncio.sleep(0)  # after the burst: every order counted, no scrape asked
            assert pending(ops) == sent

            # Just before a stop, with no turn of the loop: a manual order and a halt.
            manual = await engine.place_order("s0", "buy", 0.01)
            assert manual is not None
            await engine.halt("the test stops trading", by="tester")
            await ops.stop()
            assert pending(ops) == sent + 1
            await engine.stop()
    stop_logging()  # the writer thread wrote every record
    records = [json.loads(line) for line in log_file.read_text().splitlines()]
    stored = [r for r in records if r.get("event") == "order" and r["state"] == "pending"]
    assert len(stored) == sent + 1
    assert stored[-1]["client_order_id"] == manual.client_order_id
    assert stored[-1]["purpose"] == "manual" and stored[-1]["strategy_id"] == "s0"
    titles = receiver.titles()
    assert any("kill switch" in title for title in titles), titles


async def test_events_are_handed_on_in_order_with_their_time_after_the_step() -> None:
    got: list[tuple[EngineEvent, float]] = []
    after = AfterBurst([lambda event, at: got.append((event, at))])
    after.bind(asyncio.get_running_loop())
    events = [CandleClosed(KEY, Candle(i * STEP_MS, 1, 1, 1, 1, 1), 1.0) for i in range(3)]
    came = []
    for event in events:
        came.append(time.perf_counter())
        after(event)
    assert got == [] and after.waiting == 3  # nothing done in the step that emitted them
    await asyncio.sleep(0)
    assert [e for e, _ in got] == events
    # Each with the time it came (taken just after `came`), in order.
    assert all(
        c <= at <= later
        for c, (_, at), later in zip(came, got, [*came[1:], time.perf_counter()], strict=True)
    )
    assert after.waiting == 0


def test_a_failing_listener_loses_no_event_for_the_others() -> None:
    got: list[EngineEvent] = []

    def broken(event: EngineEvent, at: float) -> None:
        raise RuntimeError("a bug")

    after = AfterBurst([broken, lambda event, at: got.append(event)])  # no loop: on flush
    events = [CandleClosed(KEY, Candle(i * STEP_MS, 1, 1, 1, 1, 1), 1.0) for i in range(2)]
    for event in events:
        after(event)
    assert after.flush() == 2 and got == events


def test_an_event_handed_on_late_is_logged_at_the_time_it_came(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="workbench.live.events")
    came = time.perf_counter() - 3.0  # handed on three seconds after it came
    EventLog()(StateChanged("s1", StrategyState.RUNNING), came)
    record = caplog.records[-1]
    assert time.time() - record.created == pytest.approx(3.0, abs=0.5)
    assert (record.event, record.strategy_id, record.state) == ("state", "s1", "running")
