"""CcxtBroker against the local exchange: orders placed once, fills and balances agree."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pandas as pd
import pytest
from shipped import CANDLE_DIR, ROOT

from workbench.broker.base import OrderRejected
from workbench.broker.ccxt_broker import CcxtBroker
from workbench.broker.models import Order, OrderIntent, OrderState
from workbench.fills import FeeIn, FillModel, Side
from workbench.live.engine import LiveEngine
from workbench.localexchange import LocalExchange, ManualClock, load_csv_history
from workbench.localexchange.faults import FaultKind
from workbench.settings import Settings
from workbench.store import Store
from workbench.strategy import load_spec
from workbench.venue import connect
from workbench.venue.client import ExchangeClients

STEP_MS = 300_000


@pytest.fixture(scope="module")
def candles() -> pd.DataFrame:
    return load_csv_history(CANDLE_DIR, ["ETH/BTC"])["ETH/BTC"].iloc[:300]


@pytest.fixture
async def market(
    candles: pd.DataFrame,
) -> AsyncIterator[tuple[LocalExchange, ManualClock, ExchangeClients]]:
    clock = ManualClock(int(candles.index[0].value // 1_000_000) + 1)
    async with LocalExchange({"ETH/BTC": candles}, clock=clock, tick_s=0.002) as server:
        clients = connect("local", settings=Settings(), port=server.port)
        await clients.load_markets()
        yield server, clock, clients
        await clients.close()


def order(name: str, side: Side = Side.BUY, amount: float = 0.5) -> Order:
    """Give an entry of strategy `name` (the name makes its client id)."""
    intent = OrderIntent(name, "ETH/BTC", side, amount, bar_ts_ms=1)
    return Order.from_intent(intent, 1)


async def test_a_market_order_fills_once_with_our_client_id(
    market: tuple[LocalExchange, ManualClock, ExchangeClients],
) -> None:
    _, _, clients = market
    broker = CcxtBroker(clients)
    done = await broker.submit(order("a"))
    assert done.order.state is OrderState.FILLED and done.fills
    assert sum(f.amount for f in done.fills) == pytest.approx(0.5)
    # A retry of the same decision (as after a lost answer): the exchange refuses the
    # duplicate id and the broker finds the order placed the first time.
    again = await broker.submit(order("a"))
    assert again.order.exchange_order_id == done.order.exchange_order_id
    placed = await clients.rest.fetch_orders("ETH/BTC")
    assert [o["clientOrderId"] for o in placed] == [done.order.client_order_id]


async def test_timeouts_are_looked_up_and_retried_into_exactly_one_order(
    market: tuple[LocalExchange, ManualClock, ExchangeClients],
) -> None:
    server, _, clients = market
    clients.rest.timeout = 300  # ms: every request times out while the exchange is slow
    await server.inject_fault(FaultKind.LATENCY, latency_ms=600, duration_s=1.0)
    broker = CcxtBroker(clients, backoff_s=0.3)
    done = await broker.submit(order("slow"))
    server.clear_faults()
    clients.rest.timeout = 10_000
    await asyncio.sleep(0.7)
    placed = await clients.rest.fetch_orders("ETH/BTC")
    assert [o["clientOrderId"] for o in placed] == [done.order.client_order_id]
    assert done.order.state is OrderState.FILLED


async def test_refusals_come_back_as_order_rejected(
    market: tuple[LocalExchange, ManualClock, ExchangeClients],
) -> None:
    _, _, clients = market
    with pytest.raises(OrderRejected, match="insufficient balance"):
        await CcxtBroker(clients).submit(order("big", amount=1_000.0))


async def test_the_engine_trades_through_ccxt_and_the_books_agree_with_the_exchange(
    market: tuple[LocalExchange, ManualClock, ExchangeClients],
    candles: pd.DataFrame,
    tmp_path: Path,
) -> None:
    _, clock, clients = market
    before = await clients.rest.fetch_balance()
    with Store.open(tmp_path / "ccxt.duckdb") as store:
        engine = LiveEngine(store, clients, CcxtBroker(clients), fill_model=FillModel())
        sid = await engine.add_strategy(
            load_spec(ROOT / "data" / "strategies" / "sma_cross.json"), allocation=0.8
        )
        await engine.start()
        end = int(candles.index[-1].value // 1_000_000)
        while clock.now_ms() < end:
            clock.advance(STEP_MS // 3)
            await asyncio.sleep(0.004)
        await asyncio.sleep(0.5)
        await engine.stop()
        fills = store.trading.fills(sid)
        orders = store.trading.orders(sid)
        runner = engine.strategies[sid].runner
    after = await clients.rest.fetch_balance()
    assert len(fills) >= 4
    placed = await clients.rest.fetch_orders("ETH/BTC")
    assert sorted(o["clientOrderId"] for o in placed) == sorted(o.client_order_id for o in orders)
    # Fees as Binance takes them: the base bought comes in net of its fee.
    assert {f.fee_in for f in fills} == {FeeIn.BASE, FeeIn.QUOTE}
    eth = sum(f.base_delta for f in fills)
    btc = sum(-f.notional if f.side is Side.BUY else f.notional for f in fills)
    fees = sum(f.fee for f in fills if f.fee_in is FeeIn.QUOTE)
    assert after["ETH"]["total"] - before["ETH"]["total"] == pytest.approx(eth, abs=1e-8)
    assert after["BTC"]["total"] - before["BTC"]["total"] == pytest.approx(btc - fees, abs=1e-8)
    assert runner.portfolio.position("ETH/BTC").amount == pytest.approx(eth, abs=1e-8)


async def test_a_restart_reconciles_an_order_the_exchange_filled_after_the_store_lost_sight(
    market: tuple[LocalExchange, ManualClock, ExchangeClients], tmp_path: Path
) -> None:
    _, _, clients = market
    spec = load_spec(ROOT / "data" / "strategies" / "sma_cross.json")
    db = tmp_path / "reconcile.duckdb"
    with Store.open(db) as store:
        engine = LiveEngine(store, clients, CcxtBroker(clients))
        sid = await engine.add_strategy(spec, allocation=0.8, strategy_id="r")
        # The process stores the order, sends it, and dies before it hears back.
        sent = Order.from_intent(
            OrderIntent(sid, "ETH/BTC", Side.BUY, 1.0, purpose="entry", bar_ts_ms=123), 123
        )
        store.trading.save_order(sent, "local")
        await clients.rest.create_order(
            "ETH/BTC", "market", "buy", 1.0, None, {"clientOrderId": sent.client_order_id}
        )
    with Store.open(db) as store:
        engine = LiveEngine(store, clients, CcxtBroker(clients))
        await engine.add_strategy(spec, allocation=0.8, strategy_id="r")
        settled = store.trading.order(sent.client_order_id)
        fills = store.trading.fills("r")
        events = store.trading.events("r")
    assert settled is not None and settled.state is OrderState.FILLED
    assert [f.amount for f in fills] == [pytest.approx(1.0)]
    # The exchange took its fee in the ETH bought: the position is what the account holds.
    held = engine.strategies["r"].runner.portfolio.position("ETH/BTC").amount
    assert held == pytest.approx(fills[0].base_delta) == pytest.approx(0.999)
    assert "reconcile" in set(events["kind"])
    placed = await clients.rest.fetch_orders("ETH/BTC")
    assert [o["clientOrderId"] for o in placed] == [sent.client_order_id]
