"""A restart never trades stale signals: bars missed while down warm the strategy and place no
order; an exit that fell meanwhile is taken late on the first fresh bar; indicators end where
a never-stopped run's are. On the real broker (CcxtBroker) against the local exchange."""

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
from workbench.broker.models import OrderPurpose
from workbench.broker.paper import PaperBroker
from workbench.fills import FillModel
from workbench.live.engine import LiveEngine
from workbench.live.runner import candles_of
from workbench.localexchange import load_csv_history
from workbench.store import Store
from workbench.strategy import IncrementalStrategy, load_spec
from workbench.strategy.vectorized import evaluate

BARS = 420
DOWN_BARS = 150  # far more than a bar: everything in between is stale


def spec() -> dict[str, Any]:
    """sma_cross, faster, half the cash per entry, exits by signal only."""
    raw = json.loads((ROOT / "data" / "strategies" / "sma_cross.json").read_text())
    raw["params"]["fast"]["default"] = 5
    raw["params"]["slow"]["default"] = 20
    raw["risk"] = {"sizing": {"method": "fixed_fraction", "fraction": 0.5}}
    return raw


@pytest.fixture(scope="module")
def candles() -> pd.DataFrame:
    return load_csv_history(CANDLE_DIR, ["ETH/BTC"])["ETH/BTC"].iloc[:BARS]


@pytest.fixture
async def market(candles: pd.DataFrame) -> AsyncIterator[Market]:
    async for opened in open_market(candles):
        yield opened


def real(store: Store, market: Market) -> LiveEngine:
    _, _, clients = market
    return LiveEngine(store, clients, CcxtBroker(clients, sweep_s=0.5, poll_s=0.2))


async def run_until_holding(clock: Any, engine: LiveEngine, sid: str, after_ms: int) -> int:
    """Step until the strategy holds a position past `after_ms`; give the last closed bar."""
    runner = engine.strategies[sid].runner
    for _ in range(3 * BARS):
        await step(clock, engine)
        held = not runner.portfolio.is_flat(runner.symbol)
        if held and (runner.last_close_ms or 0) > after_ms:
            return runner.last_close_ms or 0
    raise AssertionError("the strategy never held a position")


async def test_a_long_outage_places_nothing_for_missed_bars_and_exits_late(
    market: Market, candles: pd.DataFrame, tmp_path: Path
) -> None:
    _, clock, clients = market
    db = tmp_path / "restart.duckdb"
    with Store.open(db) as store:
        first = real(store, market)
        sid = await first.add_strategy(spec(), allocation=0.8, strategy_id="r")
        await first.start()
        stopped_at = await run_until_holding(clock, first, sid, bar_ms(candles, 100))
        await first.stop()
    down_from = clock.now_ms() - clock.now_ms() % STEP_MS  # the bar forming when it stopped
    # Down for many bars; the market goes on.
    clock.advance(DOWN_BARS * STEP_MS)
    back_at = clock.now_ms() - clock.now_ms() % STEP_MS  # the bar forming at the restart
    placed_before = {o["clientOrderId"] for o in await clients.rest.fetch_orders("ETH/BTC")}
    with Store.open(db) as store:
        second = real(store, market)
        await second.add_strategy(spec(), allocation=0.8, strategy_id="r")
        # Nothing went out while catching up: only fresh bars trade.
        assert {o["clientOrderId"] for o in await clients.rest.fetch_orders("ETH/BTC")} == (
            placed_before
        )
        await second.start()
        await run_to(clock, second, bar_ms(candles, BARS - 1) + 1)
        await second.stop()
        runner = second.strategies[sid].runner
        orders = store.trading.orders(sid)
        events = store.trading.events(sid)
        seed_from = store.trading.seed_from_ms(sid)
        marks = store.trading.equity(sid)
    exchange_orders = await clients.rest.fetch_orders("ETH/BTC", limit=1000)

    # No order belongs to a missed bar, and every order went out within its own bar.
    missed = [o for o in orders if down_from < o.created_ms < back_at]
    assert missed == [], [(o.purpose, o.created_ms) for o in missed]
    ours = {o.client_order_id: o for o in orders}
    for raw in exchange_orders:
        placed_in = ours[raw["clientOrderId"]].created_ms
        assert placed_in <= raw["timestamp"] < placed_in + STEP_MS, raw["clientOrderId"]

    # The position the strategy would no longer hold was closed on the first fresh bar,
    # logged as a late exit naming the bar its exit signal fell on.
    signals = evaluate(load_spec(spec()), candles)
    exits = signals.exits.iloc[:, 0]
    first_exit = exits[exits.index.as_unit("ms").asi8 > stopped_at].idxmax()
    assert exits[first_exit] and first_exit.value // 1_000_000 < back_at, "an exit fell while down"
    [late] = [o for o in orders if o.purpose is OrderPurpose.LATE_EXIT]
    assert late.created_ms == back_at and late.state == "filled"
    assert late.reason is not None and str(first_exit.value // 1_000_000 + STEP_MS) in late.reason
    assert (events["kind"] == "late_exit").sum() == 1

    # Indicators equal a never-stopped run's over the same bars.
    oracle = IncrementalStrategy(load_spec(spec()))
    seen = candles[candles.index.as_unit("ms").asi8 >= seed_from].iloc[: BARS - 1]
    for candle in candles_of(seen):
        expected = oracle.update(candle)
    assert runner.last_signal is not None
    assert runner.last_signal.values == expected.values
    # Every bar has its equity mark: none was skipped while catching up.
    assert len(marks) == BARS - 1


async def test_paper_restarts_follow_the_same_rule_unless_told_to_replay(
    market: Market, candles: pd.DataFrame, tmp_path: Path
) -> None:
    _, clock, clients = market
    model = FillModel()
    outcomes = {}
    for replay_missed in (False, True):
        db = tmp_path / f"paper-{replay_missed}.duckdb"
        start = clock.now_ms()
        with Store.open(db) as store:
            first = LiveEngine(store, clients, PaperBroker(model), fill_model=model)
            sid = await first.add_strategy(spec(), allocation=1.0, strategy_id="p")
            await first.start()
            await run_to(clock, first, start + 40 * STEP_MS, settle_s=0.1)
            await first.stop()
        down_from = clock.now_ms() - clock.now_ms() % STEP_MS
        clock.advance(60 * STEP_MS)
        back_at = clock.now_ms() - clock.now_ms() % STEP_MS
        with Store.open(db) as store:
            second = LiveEngine(
                store, clients, PaperBroker(model), fill_model=model, replay_missed=replay_missed
            )
            await second.add_strategy(spec(), allocation=1.0, strategy_id="p")
            await second.start()
            await run_to(clock, second, back_at + 3 * STEP_MS, settle_s=0.1)
            await second.stop()
            outcomes[replay_missed] = [
                o for o in store.trading.orders(sid) if down_from < o.created_ms < back_at
            ]
    assert outcomes[False] == [], "paper never trades a missed bar by default"
    assert outcomes[True], "--replay-missed trades them as if never down"


async def test_candles_stored_past_a_strategy_never_make_it_skip_bars(
    market: Market, candles: pd.DataFrame, tmp_path: Path
) -> None:
    _, clock, clients = market
    model = FillModel()
    db = tmp_path / "ahead.duckdb"
    with Store.open(db) as store:
        # As `make demo` does: the whole shipped file is imported, bars after "now" included
        # (and a `data download` beside the engine stores bars it has not acted on yet).
        store.candles.write("local", "ETH/BTC", "5m", candles)
        first = LiveEngine(store, clients, PaperBroker(model), fill_model=model)
        sid = await first.add_strategy(spec(), allocation=1.0, strategy_id="a")
        await first.start()
        await run_to(clock, first, bar_ms(candles, 60) + 1, settle_s=0.1)
        await first.stop()
    clock.advance(100 * STEP_MS)
    with Store.open(db) as store:
        second = LiveEngine(store, clients, PaperBroker(model), fill_model=model)
        await second.add_strategy(spec(), allocation=1.0, strategy_id="a")
        await second.start()
        await run_to(clock, second, bar_ms(candles, 200) + 1, settle_s=0.1)
        await second.stop()
        marks = store.trading.equity(sid)
    # Every bar from the first to the last has its mark: none was skipped by the restart.
    ts = pd.to_datetime(marks["ts"], utc=True)
    assert ts.iloc[-1] == candles.index[199]
    assert (ts.diff().dropna() == pd.Timedelta(minutes=5)).all()


async def test_a_trade_whose_row_a_killed_process_never_stored_is_stored_at_the_restart(
    market: Market, candles: pd.DataFrame, tmp_path: Path
) -> None:
    # A trade's row follows its fill and waits to be journaled with the next order's row
    # (DuckDB) or queued for a commit (PostgreSQL): a killed process can leave the fill
    # stored and the trade not. The fills are the record: the restart books the trade from
    # them, and stores it.
    _, clock, _ = market
    db = tmp_path / "trips.duckdb"
    with Store.open(db) as store:
        first = real(store, market)
        sid = await first.add_strategy(spec(), allocation=0.8, strategy_id="t")
        await first.start()
        start = clock.now_ms()
        for _ in range(3 * BARS):
            await step(clock, first)
            if len(first.strategies[sid].runner.portfolio.round_trips) >= 2:
                break
        await run_to(clock, first, clock.now_ms() + STEP_MS, settle_s=0.3)
        await first.stop()
        assert clock.now_ms() > start
        trips = store.trading.round_trips(sid)
        assert len(trips) >= 2
        store.trading.db.execute(
            "DELETE FROM round_trips WHERE strategy_id = ? AND trade_no = ?",
            [sid, int(trips["trade_no"].max())],
        )
    with Store.open(db) as store:
        second = real(store, market)
        await second.add_strategy(spec(), allocation=0.8, strategy_id="t")
        pd.testing.assert_frame_equal(store.trading.round_trips(sid), trips)
        await second.stop()
