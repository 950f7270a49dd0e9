"""The engine with CcxtBroker on the local exchange: exchange-side stops, restarts, balances,
the drawdown guard. Everything goes through the unmodified ccxt / ccxt.pro clients."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from local_market import STEP_MS, Market, bar_ms, open_market, run_to, step
from shipped import CANDLE_DIR, ROOT

from workbench.broker.ccxt_broker import CcxtBroker
from workbench.broker.models import PROTECTIVE, Order, OrderState, OrderType
from workbench.fills import FeeIn, FillModel, Side, StopKind
from workbench.live.engine import LiveEngine
from workbench.localexchange import ManualClock, load_csv_history
from workbench.risk.limits import RiskLimits
from workbench.store import Store
from workbench.venue.client import ExchangeClients
from workbench.venue.rules import market_rules

BARS = 300


def spec(**risk: Any) -> dict[str, Any]:
    """Give sma_cross (faster) with the given risk block."""
    raw = json.loads((ROOT / "data" / "strategies" / "sma_cross.json").read_text())
    raw["params"]["fast"]["default"] = 5
    raw["params"]["slow"]["default"] = 20
    raw["risk"] = {"sizing": {"method": "fixed_fraction", "fraction": 0.5}, **risk}
    return raw


@pytest.fixture(scope="module")
def candles() -> pd.DataFrame:
    return load_csv_history(CANDLE_DIR, ["ETH/BTC"])["ETH/BTC"].iloc[:BARS]


@pytest.fixture
async def market(candles: pd.DataFrame) -> AsyncIterator[Market]:
    async for opened in open_market(candles):
        yield opened


@pytest.fixture
async def no_eth(candles: pd.DataFrame) -> AsyncIterator[Market]:
    """An account that holds only BTC: every ETH on it is the strategies'."""
    async for opened in open_market(candles, balances={"BTC": 1.0}):
        yield opened


def engine_on(store: Store, clients: ExchangeClients, **options: Any) -> LiveEngine:
    broker = CcxtBroker(clients, sweep_s=0.5, poll_s=0.2)
    return LiveEngine(store, clients, broker, fill_model=FillModel(), **options)


async def assert_books_agree(clients: ExchangeClients, store: Store, sid: str) -> None:
    """Every exchange order and trade is in the store once, and nothing else is."""
    placed = await clients.rest.fetch_orders("ETH/BTC", limit=1000)
    orders = {o.client_order_id: o for o in store.trading.orders(sid)}
    sent = {cid for cid, o in orders.items() if o.exchange_order_id is not None}
    assert sorted(o["clientOrderId"] for o in placed) == sorted(sent)
    for raw in placed:
        ours = orders[raw["clientOrderId"]]
        assert ours.filled == pytest.approx(raw["filled"]), raw["clientOrderId"]
        assert ours.state.is_final == (raw["status"] != "open"), raw["clientOrderId"]
    trades = await clients.rest.fetch_my_trades("ETH/BTC", limit=1000)
    fills = [f for f in store.trading.fills(sid) if f.purpose != "reconcile"]
    assert sorted(f.fill_id for f in fills) == sorted(str(t["id"]) for t in trades)


async def test_stops_rest_on_the_exchange_as_oco_and_the_books_agree(
    market: Market, candles: pd.DataFrame, tmp_path: Path
) -> None:
    _, clock, clients = market
    before = await clients.rest.fetch_balance()
    with Store.open(tmp_path / "oco.duckdb") as store:
        engine = engine_on(store, clients)
        sid = await engine.add_strategy(
            spec(stop_loss=0.006, take_profit=0.006), allocation=0.8, strategy_id="oco"
        )
        await engine.start()
        await run_to(clock, engine, bar_ms(candles, BARS - 1) + 1)
        await engine.stop()
        orders = store.trading.orders(sid)
        fills = store.trading.fills(sid)
        runner = engine.strategies[sid].runner
        await assert_books_agree(clients, store, sid)
        events = store.trading.events(sid)
    legs = [o for o in orders if o.type.is_stop]
    exits = [o for o in legs if o.state is OrderState.FILLED]
    assert len(exits) >= 2, "some positions ended on an exchange-side stop"
    assert {o.purpose for o in legs} == PROTECTIVE
    # One leg of a pair filled: its sibling ended without a fill (the exchange expired it).
    for done in exits:
        [sibling] = [
            o for o in legs if o.created_ms == done.created_ms and o.purpose != done.purpose
        ]
        assert sibling.state in (OrderState.EXPIRED, OrderState.CANCELED) and sibling.filled == 0
    # A level is watched client-side only when the exchange refused it (the price had
    # already crossed it by the time the entry's fill was known).
    refused = events[events["kind"] == "protection"]
    watched = [o for o in orders if o.type is OrderType.MARKET and o.purpose in PROTECTIVE]
    assert len(watched) <= len(refused)
    assert len([o for o in legs if o.state is OrderState.REJECTED]) == 2 * len(refused)
    # Signal exits cancelled the resting legs first (else the exchange refuses the sell).
    signal_exits = [o for o in orders if o.purpose == "exit" and o.state is OrderState.FILLED]
    canceled = [o for o in legs if o.state is OrderState.CANCELED]
    assert len(canceled) >= 2 * len(signal_exits)
    after = await clients.rest.fetch_balance()
    # Fees as Binance takes them: a buy's base comes in net of its fee, a sell pays in quote.
    eth = sum(f.base_delta for f in fills)
    btc = sum(-f.notional if f.side is Side.BUY else f.notional for f in fills)
    assert after["ETH"]["total"] - before["ETH"]["total"] == pytest.approx(eth, abs=1e-8)
    fees = sum(f.fee for f in fills if f.fee_in is FeeIn.QUOTE)
    assert after["BTC"]["total"] - before["BTC"]["total"] == pytest.approx(btc - fees, abs=1e-8)
    assert runner.portfolio.position("ETH/BTC").amount == pytest.approx(eth, abs=1e-8)
    # What lot-rounded exits leave is dust: under a lot, counted as flat.
    assert runner.portfolio.is_flat("ETH/BTC") or runner.portfolio.position("ETH/BTC").amount > 0


def by_id(orders: list[Order]) -> dict[str, Order]:
    return {o.client_order_id: o for o in orders}


async def run_until_legs_rest(
    clock: ManualClock, clients: ExchangeClients, db: Path, raw: dict[str, Any], legs: int = 2
) -> tuple[float, set[str]]:
    """Run an engine until a position is protected by two resting legs; stop it there.

    Give the position and the legs' client order ids."""
    with Store.open(db) as store:
        engine = engine_on(store, clients)
        sid = await engine.add_strategy(raw, allocation=0.8, strategy_id="legs")
        await engine.start()
        for _ in range(3 * BARS):
            await step(clock, engine)
            if (
                len([o for o in store.trading.orders(sid, open_only=True) if o.type.is_stop])
                == legs
            ):
                break
        await engine.stop()
        position = engine.strategies[sid].runner.portfolio.position("ETH/BTC").amount
        # The manager's working orders (kept apart from its history) are the store's open ones.
        working = engine.strategies[sid].orders.open_orders()
        assert by_id(working) == by_id(store.trading.orders(sid, open_only=True))
    resting = {o["clientOrderId"] for o in await clients.rest.fetch_open_orders("ETH/BTC")}
    assert position > 0 and len(resting) == legs
    return position, resting


async def test_a_restart_with_resting_legs_follows_them_and_places_nothing_again(
    market: Market, candles: pd.DataFrame, tmp_path: Path
) -> None:
    _, clock, clients = market
    raw = spec(stop_loss=0.01, take_profit=0.01)
    db = tmp_path / "restart.duckdb"
    position, resting = await run_until_legs_rest(clock, clients, db, raw)
    placed_before = len(await clients.rest.fetch_orders("ETH/BTC", limit=1000))
    with Store.open(db) as store:
        engine = engine_on(store, clients)
        sid = await engine.add_strategy(raw, allocation=0.8, strategy_id="legs")
        live = engine.strategies[sid]
        assert live.runner.portfolio.position("ETH/BTC").amount == pytest.approx(position)
        assert live.runner.trader.exchange_side == {StopKind.STOP_LOSS, StopKind.TAKE_PROFIT}
        assert isinstance(engine.broker, CcxtBroker)
        assert {o.client_order_id for o in engine.broker.followed} == resting
        assert {o.client_order_id for o in live.orders.open_orders()} == resting
        assert len(await clients.rest.fetch_orders("ETH/BTC", limit=1000)) == placed_before
        await engine.start()
        await run_to(clock, engine, bar_ms(candles, BARS - 1) + 1)
        await engine.stop()
        await assert_books_agree(clients, store, sid)
        legs = by_id(store.trading.orders(sid))
        assert by_id(live.orders.open_orders()) == by_id(store.trading.orders(sid, open_only=True))
    # The legs resting at the restart ended, and the engine knows how.
    assert all(legs[cid].state.is_final for cid in resting)


async def test_a_leg_that_fired_while_the_engine_was_down_is_booked_at_restart(
    market: Market, tmp_path: Path
) -> None:
    _, clock, clients = market
    raw = spec(stop_loss=0.01, take_profit=0.01)
    db = tmp_path / "down.duckdb"
    position, resting = await run_until_legs_rest(clock, clients, db, raw)
    while await clients.rest.fetch_open_orders("ETH/BTC"):  # the market moves on meanwhile
        clock.advance(STEP_MS // 3)
    placed_before = len(await clients.rest.fetch_orders("ETH/BTC", limit=1000))
    with Store.open(db) as store:
        engine = engine_on(store, clients)
        sid = await engine.add_strategy(raw, allocation=0.8, strategy_id="legs")
        legs = [o for o in store.trading.orders(sid) if o.client_order_id in resting]
        events = store.trading.events(sid)
        await assert_books_agree(clients, store, sid)
    runner = engine.strategies[sid].runner
    assert runner.portfolio.is_flat("ETH/BTC"), "flat but for the dust a lot-rounded exit leaves"
    assert runner.trader.exchange_side == frozenset()
    assert {o.state for o in legs} == {OrderState.FILLED, OrderState.EXPIRED}
    [fired] = [o for o in legs if o.state is OrderState.FILLED]
    assert fired.filled == pytest.approx(position)
    assert (events["kind"] == "reconcile").sum() == 2
    assert len(await clients.rest.fetch_orders("ETH/BTC", limit=1000)) == placed_before


async def test_the_drawdown_guard_flattens_through_the_exchange_and_holds_off_entries(
    market: Market, candles: pd.DataFrame, tmp_path: Path
) -> None:
    _, clock, clients = market
    step = market_rules(clients.rest, "ETH/BTC").amount_step
    cooldown_ms = 20 * STEP_MS
    limits = RiskLimits(
        max_drawdown_fraction=0.01, flatten_on_drawdown=True, drawdown_cooldown_ms=cooldown_ms
    )
    with Store.open(tmp_path / "guard.duckdb") as store:
        engine = engine_on(store, clients, limits=limits)
        # A wide stop-loss rests on the exchange: the flatten must cancel it first.
        sid = await engine.add_strategy(spec(stop_loss=0.05), allocation=0.8, strategy_id="dd")
        await engine.start()
        await run_to(clock, engine, bar_ms(candles, BARS - 1) + 1)
        await engine.stop()
        halts = list(engine.strategies[sid].risk.state.halts)
        orders = store.trading.orders(sid)
        fills = store.trading.fills(sid)
        refused = store.trading.refusals(sid)
        events = store.trading.events(sid)
        await assert_books_agree(clients, store, sid)
    assert halts, "the guard tripped"
    assert (events["kind"] == "risk").sum() == len(halts)
    flattens = [o for o in orders if o.purpose == "flatten"]
    assert flattens, "a position was open when the guard tripped"
    for flatten in flattens:
        assert flatten.created_ms in halts and flatten.state is OrderState.FILLED
        # The resting stop of that position was cancelled before the sell went out.
        entry_ms = max(
            f.ts_ms for f in fills if f.purpose == "entry" and f.ts_ms < flatten.updated_ms
        )
        [leg] = [o for o in orders if o.type.is_stop and o.created_ms == entry_ms]
        assert leg.state is OrderState.CANCELED and leg.filled == 0
        # Flat right after it: the flatten sold the whole position (to the lot step).
        held = sum(f.base_delta for f in fills if f.ts_ms <= flatten.updated_ms)
        assert 0 <= held < step
    # While halted every entry is refused by the guard, and none is placed.
    entries = [o.created_ms for o in orders if o.purpose == "entry"]
    refused_ms = [int(ts.value // 1_000_000) for ts in pd.to_datetime(refused["ts"], utc=True)]
    assert set(refused["rule"]) == {"drawdown_guard"} and refused_ms
    for ts in refused_ms:
        assert any(h <= ts < h + cooldown_ms for h in halts)
    for h in halts:
        assert not [e for e in entries if h <= e < h + cooldown_ms]
    # And the cool-down ends: entries resume after it.
    assert [e for e in entries if e >= halts[0] + cooldown_ms]


async def test_a_balance_the_exchange_no_longer_has_is_written_off_and_logged_never_traded(
    no_eth: Market, tmp_path: Path
) -> None:
    _, clock, clients = no_eth
    raw = spec(stop_loss=0.05)
    db = tmp_path / "balance.duckdb"
    position, [leg] = await run_until_legs_rest(clock, clients, db, raw, legs=1)
    # Someone else cancels the workbench's stop and sells 40% of the ETH by hand.
    await clients.rest.cancel_order(None, "ETH/BTC", {"origClientOrderId": leg})
    sold = float(clients.rest.amount_to_precision("ETH/BTC", position * 0.4))
    await clients.rest.create_order("ETH/BTC", "market", "sell", sold)
    have = (await clients.rest.fetch_balance())["ETH"]["total"]
    assert have == pytest.approx(position - sold)
    placed_before = {o["clientOrderId"] for o in await clients.rest.fetch_orders("ETH/BTC")}
    with Store.open(db) as store:
        engine = engine_on(store, clients)
        sid = await engine.add_strategy(raw, allocation=0.8, strategy_id="legs")
        fills = store.trading.fills(sid)
        events = store.trading.events(sid)
        orders = {o.client_order_id: o for o in store.trading.orders(sid)}
    runner = engine.strategies[sid].runner
    # The store adopted the exchange's balance: one write-off at price 0, logged.
    assert runner.portfolio.position("ETH/BTC").amount == pytest.approx(have, abs=1e-9)
    [write_off] = [f for f in fills if f.purpose == "reconcile"]
    assert write_off.amount == pytest.approx(sold) and write_off.price == 0.0
    assert write_off.side is Side.SELL and write_off.fee == 0.0
    assert orders[write_off.client_order_id].exchange_order_id is None
    balance_events = events[events["detail"].str.startswith("balance ETH")]
    assert len(balance_events) == 1 and (balance_events["kind"] == "reconcile").all()
    assert orders[leg].state is OrderState.CANCELED
    # No order fixed the balance; the only new one protects what is left.
    placed = await clients.rest.fetch_orders("ETH/BTC")
    new = [o for o in placed if o["clientOrderId"] not in placed_before]
    assert [(o["info"]["type"], o["status"]) for o in new] == [("STOP_LOSS", "open")]
    # For what is left, rounded down to the lot step (never more than the account holds).
    step = market_rules(clients.rest, "ETH/BTC").amount_step
    assert have - step < new[0]["amount"] <= have
    # A second start finds nothing to correct.
    with Store.open(db) as store:
        engine = engine_on(store, clients)
        await engine.add_strategy(raw, allocation=0.8, strategy_id="legs")
        again = store.trading.events(sid)
    assert (again["detail"].str.startswith("balance ETH")).sum() == 1
    assert len(await clients.rest.fetch_orders("ETH/BTC")) == len(placed)
