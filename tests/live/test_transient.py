"""A transient broker error never stops protection: the strategy shows `degraded` with the
reason, keeps evaluating bars, looks the order up again, and runs on when it is settled. On
the real broker (CcxtBroker) against the local exchange."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from local_market import Market, bar_ms, open_market, step
from shipped import CANDLE_DIR, ROOT

from workbench.broker.ccxt_broker import CcxtBroker
from workbench.broker.models import OrderPurpose, OrderState
from workbench.live.engine import LiveEngine
from workbench.live.events import EngineEvent, OrderChanged, StateChanged, StrategyState
from workbench.localexchange import load_csv_history
from workbench.localexchange.faults import FaultKind
from workbench.store import Store


@pytest.fixture(scope="module")
def candles() -> pd.DataFrame:
    return load_csv_history(CANDLE_DIR, ["ETH/BTC"])["ETH/BTC"].iloc[:300]


def spec() -> dict[str, Any]:
    raw = json.loads((ROOT / "data" / "strategies" / "sma_cross.json").read_text())
    raw["params"]["fast"]["default"] = 5
    raw["params"]["slow"]["default"] = 20
    raw["risk"] = {"sizing": {"method": "fixed_fraction", "fraction": 0.5}, "stop_loss": 0.02}
    return raw


@pytest.fixture
async def market(candles: pd.DataFrame) -> AsyncIterator[Market]:
    async for opened in open_market(candles):
        yield opened


async def test_an_order_whose_outcome_is_unknown_degrades_and_is_settled_never_errors(
    market: Market, candles: pd.DataFrame, tmp_path: Path
) -> None:
    events: list[EngineEvent] = []
    server, clock, clients = market
    # Few quick retries: the placement and its lookups give up fast.
    broker = CcxtBroker(clients, retries=1, backoff_s=0.05, sweep_s=0.5, poll_s=0.2)
    struck: list[str] = []

    def strike_first_entry(event: EngineEvent) -> None:
        events.append(event)
        if isinstance(event, OrderChanged) and not struck:
            order = event.order
            if order.purpose is OrderPurpose.ENTRY and order.state is OrderState.PENDING:
                # The exchange fails every request for a while, as the entry goes out.
                struck.append(order.client_order_id)
                server.engine.faults.inject(FaultKind.SERVER_ERROR, duration_s=1.5)

    with Store.open(tmp_path / "t.duckdb") as store:
        engine = LiveEngine(store, clients, broker, housekeeping_s=0.1)
        engine.subscribe(strike_first_entry)
        sid = await engine.add_strategy(spec(), allocation=0.8, strategy_id="t")
        await engine.start()
        runner = engine.strategies[sid].runner
        while not struck and clock.now_ms() < bar_ms(candles, 280):
            await step(clock, engine)
        assert struck, "an entry went out"
        degraded_at = runner.last_close_ms
        # While degraded it keeps taking bars; then the order is settled.
        for _ in range(3 * 60):
            await step(clock, engine)
            if (
                engine.strategies[sid].state is StrategyState.RUNNING
                and (runner.last_close_ms or 0) > (degraded_at or 0) + 10 * 300_000
            ):
                break
        while clock.now_ms() < bar_ms(candles, 299):
            await step(clock, engine)
        await engine.stop()
        [unknown] = [o for o in store.trading.orders(sid) if o.client_order_id == struck[0]]
        orders = store.trading.orders(sid)
        row = store.trading.strategies().set_index("strategy_id").loc[sid]
    on_exchange = {o["clientOrderId"] for o in await clients.rest.fetch_orders("ETH/BTC")}
    shown = [e.state for e in events if isinstance(e, StateChanged)]
    assert StrategyState.DEGRADED in shown and StrategyState.ERROR not in shown
    assert shown[-1] is StrategyState.RUNNING and row["state"] == "running"
    assert row["health"] is None or pd.isna(row["health"])
    # The 5xx came before the exchange took it: it never arrived, and it is never sent late.
    assert unknown.state is OrderState.EXPIRED and struck[0] not in on_exchange
    assert runner.last_close_ms is not None and runner.last_close_ms > (degraded_at or 0)
    # Trading went on once settled: later entries filled.
    later = [
        o for o in orders if o.purpose is OrderPurpose.ENTRY and o.created_ms > unknown.created_ms
    ]
    assert any(o.state is OrderState.FILLED for o in later)


async def test_an_entry_whose_answer_was_lost_is_found_filled_booked_and_protected(
    market: Market, candles: pd.DataFrame, tmp_path: Path
) -> None:
    server, clock, clients = market
    events: list[EngineEvent] = []
    broker = CcxtBroker(clients, retries=1, backoff_s=0.05, sweep_s=0.5, poll_s=0.2)
    struck: list[str] = []

    def lose_the_first_entry_answer(event: EngineEvent) -> None:
        events.append(event)
        if isinstance(event, OrderChanged) and not struck:
            order = event.order
            if order.purpose is OrderPurpose.ENTRY and order.state is OrderState.PENDING:
                # Taken and filled by the exchange, its answer lost, and lookups failing
                # for a while: the outcome is unknown.
                struck.append(order.client_order_id)
                server.engine.faults.inject(FaultKind.ANSWER_LOST, count=1)
                server.engine.faults.inject(FaultKind.LOOKUP_FAILING, duration_s=1.5)

    with Store.open(tmp_path / "lost.duckdb") as store:
        engine = LiveEngine(store, clients, broker, housekeeping_s=0.1)
        engine.subscribe(lose_the_first_entry_answer)
        sid = await engine.add_strategy(spec(), allocation=0.8, strategy_id="lost")
        await engine.start()
        live = engine.strategies[sid]
        while not struck and clock.now_ms() < bar_ms(candles, 280):
            await step(clock, engine)
        assert struck, "an entry went out"
        for _ in range(3 * 40):
            await step(clock, engine)
            entry = live.orders.order(struck[0])
            if entry is not None and entry.state.is_final and live.state is StrategyState.RUNNING:
                break
        entry = live.orders.order(struck[0])
        legs = live.orders.open_legs()
        position = live.runner.portfolio.position("ETH/BTC").amount
        await engine.stop()
    server.clear_faults()
    on_exchange = [
        o for o in await clients.rest.fetch_orders("ETH/BTC") if o["clientOrderId"] == struck[0]
    ]
    shown = [e.state for e in events if isinstance(e, StateChanged)]
    assert StrategyState.DEGRADED in shown and StrategyState.ERROR not in shown
    # Found filled on the exchange: booked once, and its protection placed.
    assert entry is not None and entry.state is OrderState.FILLED
    assert len(on_exchange) == 1 and on_exchange[0]["status"] == "closed"
    assert position > 0 and legs, "the position was protected once its fill was known"


async def test_a_refused_exit_is_tried_again_until_flat_and_the_failure_is_told(
    market: Market, candles: pd.DataFrame, tmp_path: Path
) -> None:
    server, clock, clients = market
    broker = CcxtBroker(clients, use_exchange_stops=False, sweep_s=0.5, poll_s=0.2)
    refused: list[str] = []

    def refuse_the_first_exit_twice(event: EngineEvent) -> None:
        if isinstance(event, OrderChanged) and not refused:
            order = event.order
            if order.purpose.closes and order.state is OrderState.PENDING:
                refused.append(order.client_order_id)
                server.engine.faults.inject(FaultKind.INSUFFICIENT_BALANCE, count=2)

    with Store.open(tmp_path / "exit.duckdb") as store:
        engine = LiveEngine(store, clients, broker, housekeeping_s=0.1)
        engine.subscribe(refuse_the_first_exit_twice)
        sid = await engine.add_strategy(spec(), allocation=0.8, strategy_id="exit")
        await engine.start()
        runner = engine.strategies[sid].runner
        while not refused and clock.now_ms() < bar_ms(candles, 280):
            await step(clock, engine)
        assert refused, "an exit went out"
        # Tried again with backoff (0.5 s, then 1 s) while the market goes on.
        deadline = asyncio.get_running_loop().time() + 15
        while not runner.portfolio.is_flat(runner.symbol):
            assert asyncio.get_running_loop().time() < deadline, "never flat"
            await step(clock, engine)
            await asyncio.sleep(0.05)
        orders = [o for o in store.trading.orders(sid) if o.purpose.closes]
        events = store.trading.events(sid)
        await engine.stop()
    assert runner.portfolio.is_flat(runner.symbol), "the exit went through in the end"
    rejected = [o for o in orders if o.state is OrderState.REJECTED]
    assert len(rejected) == 2 and len({o.client_order_id for o in rejected}) == 2
    assert any(o.state is OrderState.FILLED for o in orders)
    assert (events["kind"] == "exit_failed").sum() == 2
