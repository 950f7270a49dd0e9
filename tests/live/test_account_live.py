"""The account's limits and its kill switch on the real broker (CcxtBroker) against the local
exchange: three strategies on two symbols, through the unmodified ccxt / ccxt.pro clients."""

from __future__ import annotations

import json
import math
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from local_market import STEP_MS, bar_ms, step
from shipped import CANDLE_DIR, ROOT

from workbench.broker.ccxt_broker import CcxtBroker
from workbench.broker.models import OrderPurpose, OrderState
from workbench.fills import FillModel
from workbench.live.engine import LiveEngine
from workbench.live.events import EngineEvent, HaltChanged
from workbench.localexchange import LocalExchange, ManualClock, load_csv_history
from workbench.risk.account import AccountLimits
from workbench.settings import Settings
from workbench.store import Store
from workbench.venue import connect
from workbench.venue.client import ExchangeClients
from workbench.venue.rules import market_rules

BARS = 260
SYMBOLS = ("ETH/BTC", "LTC/BTC")
# Two strategies on ETH/BTC (different speeds), one on LTC/BTC.
STRATEGIES = {
    "eth-fast": ("ETH/BTC", 5, 20),
    "eth-slow": ("ETH/BTC", 10, 30),
    "ltc": ("LTC/BTC", 5, 20),
}
Market = tuple[LocalExchange, ManualClock, ExchangeClients]


def spec(symbol: str, fast: int, slow: int, **risk: Any) -> dict[str, Any]:
    raw = json.loads((ROOT / "data" / "strategies" / "sma_cross.json").read_text())
    raw["market"]["symbol"] = symbol
    raw["params"]["fast"]["default"] = fast
    raw["params"]["slow"]["default"] = slow
    raw["risk"] = {"sizing": {"method": "fixed_fraction", "fraction": 0.9}, **risk}
    return raw


@pytest.fixture(scope="module")
def candles() -> dict[str, pd.DataFrame]:
    both = load_csv_history(CANDLE_DIR, list(SYMBOLS))
    common = both["ETH/BTC"].index.intersection(both["LTC/BTC"].index)[:BARS]
    return {symbol: both[symbol].loc[common] for symbol in SYMBOLS}


@pytest.fixture
async def market(candles: dict[str, pd.DataFrame]) -> AsyncIterator[Market]:
    first = candles["ETH/BTC"].index[0]
    clock = ManualClock(int(first.value // 1_000_000) + 1)
    # An account that holds only BTC: every ETH and LTC on it is the strategies'.
    async with LocalExchange(
        dict(candles), clock=clock, tick_s=0.002, balances={"BTC": 1.0}
    ) as server:
        clients = connect("local", settings=Settings(), port=server.port)
        await clients.load_markets()
        yield server, clock, clients
        await clients.close()


def engine_on(store: Store, clients: ExchangeClients, **options: Any) -> LiveEngine:
    broker = CcxtBroker(clients, sweep_s=0.5, poll_s=0.2)
    return LiveEngine(store, clients, broker, fill_model=FillModel(), **options)


async def add_all(engine: LiveEngine, **risk: Any) -> None:
    for sid, (symbol, fast, slow) in STRATEGIES.items():
        await engine.add_strategy(spec(symbol, fast, slow, **risk), allocation=0.3, strategy_id=sid)


def holding(engine: LiveEngine) -> set[str]:
    return {
        sid
        for sid, live in engine.strategies.items()
        if not live.runner.portfolio.is_flat(live.runner.symbol)
    }


async def exchange_orders(clients: ExchangeClients) -> list[dict[str, Any]]:
    found = []
    for symbol in SYMBOLS:
        found += await clients.rest.fetch_orders(symbol, limit=1000)
    return found


async def test_open_positions_over_the_account_are_capped_and_refusals_name_the_others(
    market: Market, candles: dict[str, pd.DataFrame], tmp_path: Path
) -> None:
    _, clock, clients = market
    with Store.open(tmp_path / "account.duckdb") as store:
        engine = engine_on(store, clients, account_limits=AccountLimits(max_open_positions=2))
        await add_all(engine)
        await engine.start()
        most = 0
        end = bar_ms(candles["ETH/BTC"], BARS - 1)
        while clock.now_ms() < end:
            await step(clock, engine)
            most = max(most, len(holding(engine)))
        await engine.stop()
        refused = pd.concat([store.trading.refusals(sid) for sid in STRATEGIES])
        entered = {
            o.client_order_id
            for sid in STRATEGIES
            for o in store.trading.orders(sid)
            if o.purpose is OrderPurpose.ENTRY and o.filled > 0
        }
    assert most == 2, "two positions at most, and the cap was reached"
    capped = refused[refused["rule"] == "max_open_positions"]
    assert len(capped) > 0, "an entry past the cap was refused and stored"
    for row in capped.itertuples():
        detail = json.loads(row.detail) if isinstance(row.detail, str) else row.detail
        assert detail["open_positions"] == 2 and detail["limit"] == 2
        assert detail["scope"] == "account" and detail["quote"] == "BTC"
        # The two strategies holding then are named with their share; not the one refused.
        assert len(detail["others"]) == 2 and row.strategy_id not in detail["others"]
        assert all(share > 0 for share in detail["others"].values())
    # The exchange filled exactly the entries the store has filled: none slipped past.
    placed = await exchange_orders(clients)
    assert entered and {o["clientOrderId"] for o in placed if o["filled"] > 0} >= entered


async def test_halt_cancels_entries_keeps_protection_flattens_and_survives_a_restart(
    market: Market, candles: dict[str, pd.DataFrame], tmp_path: Path
) -> None:
    _, clock, clients = market
    db = tmp_path / "halt.duckdb"
    told: list[EngineEvent] = []
    with Store.open(db) as store:
        engine = engine_on(store, clients)
        engine.subscribe(told.append)
        await add_all(engine, stop_loss=0.2)
        await engine.start()
        for _ in range(3 * BARS):
            await step(clock, engine)
            if len(holding(engine)) >= 2:
                break
        held = holding(engine)
        assert len(held) >= 2, "two strategies hold positions, their stops resting"
        # A manual limit entry rests on the exchange, far under the market.
        flat = next(sid for sid in STRATEGIES if sid not in held)
        price = engine.strategies[flat].runner.last_price or 0.0
        resting = await engine.place_order(
            flat, "buy", 0.01 / price, order_type="limit", price=price / 2
        )
        assert resting is not None and resting.state is OrderState.OPEN

        before = {o.client_order_id for sid in STRATEGIES for o in store.trading.orders(sid)}
        # Halt without flatten: the resting entry is cancelled, protection stays.
        await engine.halt("exchange incident", by="ops")
        legs = {sid: engine.strategies[sid].orders.open_legs() for sid in held}
        raw = {o["clientOrderId"]: o for o in await exchange_orders(clients)}
        assert raw[resting.client_order_id]["status"] == "canceled"
        for sid, open_legs in legs.items():
            assert open_legs, f"{sid} keeps its stop"
            for leg in open_legs:
                assert raw[leg.client_order_id]["status"] == "open"
        # Entries are refused while halted, by hand too.
        assert await engine.place_order(flat, "buy", 0.01 / price) is None
        for _ in range(3 * 5):
            await step(clock, engine)
        await engine.stop()
        refused = pd.concat([store.trading.refusals(sid) for sid in STRATEGIES])
        entries_after = [
            o
            for sid in STRATEGIES
            for o in store.trading.orders(sid)
            if o.purpose.opens and o.client_order_id not in before
        ]
    assert entries_after == [], "no entry went out while halted"
    assert (refused["rule"] == "halted").any()
    assert [type(e) for e in told if isinstance(e, HaltChanged)] == [HaltChanged]

    # A restart keeps the halt; flatten then closes every position through the exchange.
    with Store.open(db) as store:
        again = engine_on(store, clients)
        await add_all(again, stop_loss=0.2)
        assert again.halted is not None and again.halted.reason == "exchange incident"
        assert holding(again), "positions to flatten"
        await again.start()
        await again.halt("flatten it all", by="ops", flatten=True)
        for _ in range(30):
            await step(clock, again)
            if not holding(again):
                break
        assert holding(again) == set(), "every position closed"
        for sid in STRATEGIES:
            assert again.strategies[sid].orders.open_legs() == []
        balance = await clients.rest.fetch_balance()
        for symbol in SYMBOLS:
            base = symbol.split("/")[0]
            left = (balance.get(base) or {}).get("total") or 0.0
            assert left < market_rules(clients.rest, symbol).amount_step, f"{base} left: {left}"
        flattens = [
            o
            for sid in STRATEGIES
            for o in store.trading.orders(sid)
            if o.purpose is OrderPurpose.FLATTEN
        ]
        assert flattens and all(o.state is OrderState.FILLED for o in flattens)
        # Resume: entries may go out again (the next cross enters).
        await again.end_halt(by="ops")
        resumed_at = clock.now_ms()
        for _ in range(3 * BARS):
            await step(clock, again)
            if holding(again):
                break
        await again.stop()
        halts = store.risk.halts("local")
        entries = [
            o
            for sid in STRATEGIES
            for o in store.trading.orders(sid)
            if o.purpose is OrderPurpose.ENTRY and o.created_ms >= resumed_at
        ]
    assert entries, "entries go out again after the resume"
    assert halts["halted"].tolist() == [False, True, True]
    assert halts["by_user"].tolist() == ["ops", "ops", "ops"]


async def test_the_volatility_target_scales_entries_by_past_bars_only(
    market: Market, candles: dict[str, pd.DataFrame], tmp_path: Path
) -> None:
    _, clock, clients = market
    eth = candles["ETH/BTC"]
    lookback = 16  # under the slow SMA: every entry comes after enough bars
    returns = np.diff(np.log(eth["close"].to_numpy()))
    annual = math.sqrt(365 * 86400 / 300)
    typical = float(np.std(returns[:120], ddof=1)) * annual
    limits = AccountLimits(volatility_target=0.4 * typical, volatility_lookback=lookback)
    with Store.open(tmp_path / "vol.duckdb") as store:
        engine = engine_on(store, clients, account_limits=limits)
        symbol, fast, slow = STRATEGIES["eth-fast"]
        await engine.add_strategy(spec(symbol, fast, slow), allocation=0.3, strategy_id="v")
        await engine.start()
        for _ in range(3 * BARS):
            await step(clock, engine)
            if any(o.purpose is OrderPurpose.ENTRY for o in store.trading.orders("v")):
                break
        await step(clock, engine)
        await engine.stop()
        [entry] = [o for o in store.trading.orders("v") if o.purpose is OrderPurpose.ENTRY]
    # The oracle: the std of the `lookback` returns of the bars closed before the entry's bar.
    closed = eth[eth.index < pd.Timestamp(entry.created_ms, unit="ms", tz="UTC")]["close"]
    past = np.diff(np.log(closed.to_numpy()))[-lookback:]
    realized = float(np.std(past, ddof=1)) * annual
    scale = min(1.0, limits.volatility_target / realized)
    assert scale < 1.0, "the market moved more than the target"
    assert entry.reason is not None and "volatility target" in entry.reason
    shown = float(entry.reason.split(": x")[1].split(" ")[0])
    assert shown == pytest.approx(scale, rel=1e-5)
    assert entry.state is OrderState.FILLED


async def test_flat_strategies_capital_is_shared_again_by_inverse_volatility(
    market: Market, candles: dict[str, pd.DataFrame], tmp_path: Path
) -> None:
    _, clock, clients = market
    lookback, every_ms = 24, 12 * STEP_MS  # an hour of 5-minute bars
    limits = AccountLimits(volatility_lookback=lookback, rebalance_every_ms=every_ms)
    db = tmp_path / "rebalance.duckdb"
    never = {"entry": {"gt": ["close", 1_000_000]}, "exit": {"lt": ["close", 0]}}
    with Store.open(db) as store:
        engine = engine_on(store, clients, account_limits=limits)
        for sid, symbol in (("eth", "ETH/BTC"), ("ltc", "LTC/BTC")):
            await engine.add_strategy(
                {**spec(symbol, 5, 20), **never}, allocation=0.3, strategy_id=sid
            )
        await engine.start()
        end = bar_ms(candles["ETH/BTC"], 80)
        while clock.now_ms() < end:
            await step(clock, engine)
        await engine.stop()
        cash = {sid: live.runner.portfolio.cash for sid, live in engine.strategies.items()}
        rows = store.trading.strategies().set_index("strategy_id")["allocation"]
        moved = store.trading.events("eth")
    moves = moved[moved["kind"] == "capital"]["detail"].tolist()
    assert len(moves) >= 3, "a rebalance each hour once the volatility is measured"
    last_ms = int(moves[-1].rsplit(" ", 1)[1].rstrip(")"))

    # The oracle: 1 / each market's std of the `lookback` returns up to its last close then
    # (that bar's, or the bar before where the other market's feed delivered first).
    def inverse(symbol: str, upto_ms: int) -> float:
        frame = candles[symbol]
        closes = frame[frame.index <= pd.Timestamp(upto_ms, unit="ms", tz="UTC")]["close"]
        return 1.0 / float(np.std(np.diff(np.log(closes.to_numpy()))[-lookback:], ddof=1))

    assert sum(cash.values()) == pytest.approx(0.6, rel=1e-12), "no capital made or lost"
    shares = [
        0.6 * e / (e + ltc)
        for e in (inverse("ETH/BTC", last_ms), inverse("ETH/BTC", last_ms - STEP_MS))
        for ltc in (inverse("LTC/BTC", last_ms), inverse("LTC/BTC", last_ms - STEP_MS))
    ]
    assert any(cash["eth"] == pytest.approx(share, rel=1e-9) for share in shares), shares
    for sid in cash:
        assert rows[sid] == pytest.approx(cash[sid], rel=1e-12), "stored: a restart keeps it"
    # Each rebalance came on the first bar of an hour.
    for detail in moves:
        at = int(detail.rsplit(" ", 1)[1].rstrip(")"))
        assert at // every_ms > (at - STEP_MS) // every_ms, at


async def test_entries_still_working_count_against_the_account_limits(
    market: Market, candles: dict[str, pd.DataFrame], tmp_path: Path
) -> None:
    # An entry sent and not filled yet (a resting limit; a market order at a paper close,
    # filled at the next open; a real venue's fill on its way) is a position about to be:
    # counted as none, every strategy of a bar could enter past the account's caps at once.
    _, clock, clients = market
    with Store.open(tmp_path / "working.duckdb") as store:
        limits = AccountLimits(max_open_positions=1)
        engine = engine_on(store, clients, account_limits=limits)
        await add_all(engine)
        await engine.start()
        for _ in range(6):
            await step(clock, engine)
        assert not holding(engine), "every strategy flat: the slow averages are not ready"
        price = engine.strategies["ltc"].runner.last_price
        eth = engine.strategies["eth-fast"].runner.last_price
        assert price and eth
        # 0.02 BTC's worth each, at half the price: 0.01 BTC (over the market's minimums).
        eth_amount, ltc_amount = 0.02 / eth, 0.02 / price
        # A buy far under the market rests on the exchange.
        resting = await engine.place_order("eth-fast", "buy", eth_amount, order_type="limit",
                                           price=eth * 0.5)  # fmt: skip
        assert resting is not None and resting.state is OrderState.OPEN
        refused = await engine.place_order(
            "ltc", "buy", ltc_amount, order_type="limit", price=price * 0.5
        )
        assert refused is None, "the resting entry holds the one open position allowed"
        [row] = store.trading.refusals("ltc").itertuples()
        detail = json.loads(row.detail) if isinstance(row.detail, str) else row.detail
        assert row.rule == "max_open_positions" and detail["open_positions"] == 1
        assert detail["others"] == {"eth-fast": pytest.approx(0.01, rel=1e-3)}  # lot-rounded
        # Cancelled, it holds nothing: the next entry goes through.
        await engine.cancel_order(resting.client_order_id)
        again = await engine.place_order(
            "ltc", "buy", ltc_amount, order_type="limit", price=price * 0.5
        )
        assert again is not None and again.state is OrderState.OPEN

        # The same on one symbol's cap: two resting buys of 60 % of it each.
        await engine.cancel_order(again.client_order_id)
        cap = 0.01 / 0.6
        engine.set_account_limits(AccountLimits(max_symbol_position=cap), by="test")
        first = await engine.place_order("eth-fast", "buy", eth_amount, order_type="limit",
                                         price=eth * 0.5)  # fmt: skip
        assert first is not None
        second = await engine.place_order("eth-slow", "buy", eth_amount, order_type="limit",
                                          price=eth * 0.5)  # fmt: skip
        assert second is None, "the first buy's 60 % and this one's pass the symbol's cap"
        assert list(store.trading.refusals("eth-slow")["rule"]) == ["max_symbol_position"]
        await engine.stop()
