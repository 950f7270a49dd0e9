"""CcxtBroker follows resting orders: stops, OCO lists and partial fills, streamed or polled.

Everything goes through the unmodified ccxt / ccxt.pro clients to the local exchange; the
replay clock is stepped by the test.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pandas as pd
import pytest
from local_market import Market, open_market
from shipped import CANDLE_DIR

from workbench.broker.base import ExchangeStops, Execution
from workbench.broker.ccxt_broker import CcxtBroker
from workbench.broker.models import Order, OrderPurpose, OrderState, OrderType
from workbench.fills import Side
from workbench.localexchange import ManualClock, load_csv_history
from workbench.localexchange.faults import FaultKind
from workbench.store import Store

STEP_MS = 300_000


@pytest.fixture(scope="module")
def candles() -> pd.DataFrame:
    return load_csv_history(CANDLE_DIR, ["ETH/BTC"])["ETH/BTC"].iloc[:300]


@pytest.fixture
async def market(candles: pd.DataFrame) -> AsyncIterator[Market]:
    async for opened in open_market(candles):
        yield opened


@pytest.fixture
async def thin(candles: pd.DataFrame) -> AsyncIterator[Market]:
    """A market where a resting order gets at most 0.2% of the volume traded."""
    async for opened in open_market(candles, max_volume_fraction=0.002):
        yield opened


class Booked:
    """The engine's side of `run`: each reported fill stored once, by its id."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.executions: list[Execution] = []
        self.stored: list[str] = []

    async def __call__(self, execution: Execution) -> None:
        self.executions.append(execution)
        for fill in execution.fills:
            if fill.fill_id not in self.stored:
                self.store.trading.save_fill(fill)
                self.stored.append(fill.fill_id)

    def states(self, cid: str) -> list[OrderState]:
        return [e.order.state for e in self.executions if e.order.client_order_id == cid]

    def last(self, cid: str) -> OrderState | None:
        states = self.states(cid)
        return states[-1] if states else None


async def step_until(clock: ManualClock, done: Callable[[], bool], bars: int = 250) -> None:
    """Move replay time a third of a bar at a time until `done()` (or fail)."""
    for _ in range(bars * 3):
        if done():
            return
        clock.advance(STEP_MS // 3)
        await asyncio.sleep(0.01)
    for _ in range(100):  # the last update may still be on its way
        if done():
            return
        await asyncio.sleep(0.02)
    raise AssertionError("the condition never came true")


def order(cid: str, side: Side, amount: float, kind: OrderType, **prices: float) -> Order:
    purpose = {
        OrderType.STOP_LOSS: OrderPurpose.STOP_LOSS,
        OrderType.STOP_LOSS_LIMIT: OrderPurpose.STOP_LOSS,
        OrderType.TAKE_PROFIT: OrderPurpose.TAKE_PROFIT,
        OrderType.TAKE_PROFIT_LIMIT: OrderPurpose.TAKE_PROFIT,
    }.get(kind, OrderPurpose.MANUAL)
    return Order(cid, "s", "ETH/BTC", side, kind, amount, purpose=purpose, **prices)  # type: ignore[arg-type]


async def test_a_partially_filled_limit_is_followed_on_the_stream_and_each_trade_stored_once(
    thin: Market, tmp_path: Path
) -> None:
    _, clock, clients = thin
    broker = CcxtBroker(clients, sweep_s=60.0, poll_s=60.0)
    with Store.open(tmp_path / "f.duckdb") as store:
        booked = Booked(store)
        follower = asyncio.create_task(broker.run(booked))
        await asyncio.sleep(0.3)  # the user data subscription
        price = (await clients.rest.fetch_ticker("ETH/BTC"))["last"]
        limit = float(clients.rest.price_to_precision("ETH/BTC", price * 0.999))
        placed = await broker.submit(order("wb-part", Side.BUY, 6.0, OrderType.LIMIT, price=limit))
        assert placed.order.state is OrderState.OPEN and broker.followed
        await step_until(clock, lambda: OrderState.FILLED in booked.states("wb-part"))
        follower.cancel()
    trades = await clients.rest.fetch_my_trades(
        "ETH/BTC", params={"orderId": placed.order.exchange_order_id}
    )
    assert len(trades) >= 3, "the liquidity limit splits the order"
    assert OrderState.PARTIALLY_FILLED in booked.states("wb-part")
    # Every exchange trade stored exactly once, though updates repeat earlier trades.
    assert sorted(booked.stored) == sorted(str(t["id"]) for t in trades)
    assert sum(len(e.fills) for e in booked.executions) > len(trades)
    assert sum(t["amount"] for t in trades) == pytest.approx(6.0)
    # The stream did the work: no sweep found anything.
    assert broker.stats.stream_updates >= len(trades) and broker.stats.sweeps == 0
    assert broker.followed == []


async def test_a_stop_loss_rests_then_fires_at_its_level_and_is_reported(
    market: Market, candles: pd.DataFrame, tmp_path: Path
) -> None:
    _, clock, clients = market
    broker = CcxtBroker(clients, sweep_s=60.0)
    price = (await clients.rest.fetch_ticker("ETH/BTC"))["last"]
    stop = float(clients.rest.price_to_precision("ETH/BTC", price * 0.99))
    with Store.open(tmp_path / "s.duckdb") as store:
        booked = Booked(store)
        follower = asyncio.create_task(broker.run(booked))
        await asyncio.sleep(0.3)
        placed = await broker.submit(
            order("wb-stop", Side.SELL, 2.0, OrderType.STOP_LOSS, stop_price=stop)
        )
        assert placed.order.state is OrderState.OPEN and placed.fills == []
        exchange_side = await clients.rest.fetch_order(placed.order.exchange_order_id, "ETH/BTC")
        assert exchange_side["info"]["type"] == "STOP_LOSS"
        await step_until(clock, lambda: OrderState.FILLED in booked.states("wb-stop"))
        follower.cancel()
    [fill] = booked.executions[-1].fills
    # The fill model's stop: at the level, or at the open of a bar that gapped through it.
    bar = candles[candles.index <= pd.Timestamp(fill.ts_ms, unit="ms", tz="UTC")].iloc[-1]
    assert fill.price == pytest.approx(stop) or fill.price == pytest.approx(bar["open"])
    assert fill.price <= stop and fill.amount == 2.0
    # Placed at the first bar's open: it fires in the first bar that reaches the level.
    assert bar.name == candles[candles["low"] <= stop].index[0]


async def test_an_oco_rests_as_two_legs_and_the_other_expires_when_one_fires(
    market: Market, candles: pd.DataFrame, tmp_path: Path
) -> None:
    _, clock, clients = market
    broker = CcxtBroker(clients, sweep_s=60.0)
    assert broker.exchange_stops("ETH/BTC") is ExchangeStops.OCO
    price = (await clients.rest.fetch_ticker("ETH/BTC"))["last"]
    levels = [float(clients.rest.price_to_precision("ETH/BTC", price * k)) for k in (0.99, 1.01)]
    stop = order("wb-sl", Side.SELL, 3.0, OrderType.STOP_LOSS, stop_price=levels[0])
    target = order("wb-tp", Side.SELL, 3.0, OrderType.TAKE_PROFIT, stop_price=levels[1])
    with Store.open(tmp_path / "o.duckdb") as store:
        booked = Booked(store)
        follower = asyncio.create_task(broker.run(booked))
        await asyncio.sleep(0.3)
        legs = await broker.submit_oco((stop, target))
        assert [e.order.state for e in legs] == [OrderState.OPEN, OrderState.OPEN]
        listed = await clients.rest.fetch_open_orders("ETH/BTC")
        assert len({o["info"]["orderListId"] for o in listed}) == 1 and len(listed) == 2
        balance = await clients.rest.fetch_balance()
        assert balance["ETH"]["used"] == pytest.approx(3.0)
        await step_until(
            clock,
            lambda: (
                {booked.last("wb-sl"), booked.last("wb-tp")}
                == {OrderState.FILLED, OrderState.EXPIRED}
            ),
        )
        follower.cancel()
    fired = "wb-sl" if booked.last("wb-sl") is OrderState.FILLED else "wb-tp"
    [fill] = [f for e in booked.executions for f in e.fills]
    assert fill.client_order_id == fired and fill.amount == 3.0
    # Oracle from the bars: the level that fired was reached before the other one.
    seen = candles[candles.index <= pd.Timestamp(fill.ts_ms, unit="ms", tz="UTC")]
    before = seen.iloc[:-1]
    if fired == "wb-tp":
        assert seen["high"].iloc[-1] >= target.stop_price and fill.price >= target.stop_price
        assert (before["low"] > stop.stop_price).all()
    else:
        assert seen["low"].iloc[-1] <= stop.stop_price and fill.price <= stop.stop_price
        assert (before["high"] < target.stop_price).all()
    assert broker.followed == []


async def test_when_the_stream_is_refused_the_broker_polls_and_still_reports_the_fill(
    market: Market, tmp_path: Path
) -> None:
    server, clock, clients = market
    await server.inject_fault(FaultKind.DROP_WEBSOCKETS, duration_s=30.0)
    broker = CcxtBroker(clients, sweep_s=60.0, poll_s=0.1, backoff_s=0.05)
    price = (await clients.rest.fetch_ticker("ETH/BTC"))["last"]
    stop = float(clients.rest.price_to_precision("ETH/BTC", price * 0.99))
    with Store.open(tmp_path / "p.duckdb") as store:
        booked = Booked(store)
        placed = await broker.submit(
            order("wb-poll", Side.SELL, 1.0, OrderType.STOP_LOSS, stop_price=stop)
        )
        follower = asyncio.create_task(broker.run(booked))
        await step_until(clock, lambda: OrderState.FILLED in booked.states("wb-poll"))
        assert broker.stats.stream_errors >= 1 and broker.stats.sweeps >= 1
        assert not broker.streaming
        # The stream comes back: updates flow on it again.
        server.clear_faults()
        again = await broker.submit(
            order("wb-back", Side.BUY, 1.0, OrderType.LIMIT, price=stop * 0.97)
        )
        await asyncio.sleep(1.0)
        await broker.cancel(again.order)
        await step_until(clock, lambda: broker.streaming, bars=5)
        follower.cancel()
    trades = await clients.rest.fetch_my_trades(
        "ETH/BTC", params={"orderId": placed.order.exchange_order_id}
    )
    assert booked.stored == [str(t["id"]) for t in trades]


async def test_an_oco_retried_after_timeouts_exists_once(market: Market) -> None:
    server, _, clients = market
    broker = CcxtBroker(clients, backoff_s=0.3)
    price = (await clients.rest.fetch_ticker("ETH/BTC"))["last"]
    stop = order("wb-slow-sl", Side.SELL, 1.0, OrderType.STOP_LOSS, stop_price=price * 0.98)
    target = order("wb-slow-tp", Side.SELL, 1.0, OrderType.TAKE_PROFIT, stop_price=price * 1.02)
    clients.rest.timeout = 300  # ms: every request times out while the exchange is slow
    await server.inject_fault(FaultKind.LATENCY, latency_ms=600, duration_s=1.0)
    legs = await broker.submit_oco((stop, target))
    server.clear_faults()
    clients.rest.timeout = 10_000
    await asyncio.sleep(0.7)
    assert [e.order.state for e in legs] == [OrderState.OPEN, OrderState.OPEN]
    placed = await clients.rest.fetch_orders("ETH/BTC")
    assert sorted(o["clientOrderId"] for o in placed) == ["wb-slow-sl", "wb-slow-tp"]
