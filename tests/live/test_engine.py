"""The live engine end to end: local exchange → ccxt.pro → feed → strategy → paper broker →
portfolio → DuckDB, compared with `backtest` over the same candles.

The exchange's clock is stepped by the test, from the first bar of a cut of a shipped file,
so the engine sees every bar from the start, as the backtest does.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
from collections.abc import AsyncIterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from local_market import open_market
from shipped import CANDLE_DIR, ROOT

from workbench.backtest.engine import backtest
from workbench.broker.paper import PaperBroker
from workbench.fills import FillModel
from workbench.live.engine import LiveEngine
from workbench.live.runner import StrategyState
from workbench.localexchange import ManualClock, load_csv_history
from workbench.risk.limits import RiskLimits
from workbench.store import Store
from workbench.strategy import load_spec

STEP_MS = 300_000
BARS = 400
FILL_MODEL = FillModel(fee_rate=0.001, slippage=0.0005)


@pytest.fixture(scope="module")
def candles() -> pd.DataFrame:
    return load_csv_history(CANDLE_DIR, ["ETH/BTC"])["ETH/BTC"].iloc[:BARS]


async def step_until(
    clock: ManualClock, end_ms: int, engine: LiveEngine, ids: list[str] | None = None
) -> None:
    """Move replay time a third of a bar at a time, letting the engine keep up: the market
    waits until the strategies have handled the newest closed bar and placed its orders
    (a bar takes a few milliseconds here, and on PostgreSQL the engine's commits leave the
    loop free, so the market would otherwise run ahead of the engine)."""
    while clock.now_ms() < end_ms:
        clock.advance(STEP_MS // 3)
        await asyncio.sleep(0.002)
        closed = clock.now_ms() - clock.now_ms() % STEP_MS - STEP_MS  # the newest closed bar
        for _ in range(300):
            behind = [
                live
                for sid, live in engine.strategies.items()
                if (ids is None or sid in ids)
                and live.runner.state is not StrategyState.ERROR
                and ((live.runner.last_close_ms or 0) < closed or live.lock.locked())
            ]
            if not behind:
                break
            await asyncio.sleep(0.001)
    # The last bar of the data never closes: the one before it is the last the engine sees.
    last_closed = end_ms - 1 - STEP_MS
    runners = [live.runner for sid, live in engine.strategies.items() if ids is None or sid in ids]
    for _ in range(500):
        if all(r.last_close_ms is not None and r.last_close_ms >= last_closed for r in runners):
            return
        await asyncio.sleep(0.02)
    raise TimeoutError(f"engine stuck at {[r.last_close_ms for r in runners]}")


@pytest.fixture
async def running(
    candles: pd.DataFrame, tmp_path: Path, request: pytest.FixtureRequest
) -> AsyncIterator[tuple[LiveEngine, ManualClock, Store]]:
    """An engine on a DuckDB file, or on PostgreSQL where a test asks (indirect param)."""
    backend = getattr(request, "param", "duckdb")
    db = request.getfixturevalue("pg_url") if backend == "postgres" else tmp_path / "live.duckdb"
    async for _server, clock, clients in open_market(candles):
        with Store.open(db) as store:
            engine = LiveEngine(store, clients, PaperBroker(FILL_MODEL), fill_model=FILL_MODEL)
            yield engine, clock, store
            await engine.stop()


def assert_trades_like_the_backtest(store: Store, sid: str, name: str, seen: pd.DataFrame) -> None:
    spec = load_spec(ROOT / "data" / "strategies" / f"{name}.json")
    tested = backtest(
        spec, seen, cash=10_000.0, fees=FILL_MODEL.fee_rate, slippage=FILL_MODEL.slippage
    )
    closed = tested.trades[tested.trades["exit_reason"] != "open"].reset_index(drop=True)
    trips = store.trading.round_trips(sid)
    assert len(closed) >= 2, "the window must hold trades to compare"
    assert len(trips) == len(closed), name
    assert list(pd.to_datetime(trips["entry_time"], utc=True)) == list(closed["entry_time"])
    assert list(pd.to_datetime(trips["exit_time"], utc=True)) == list(closed["exit_time"])
    assert list(trips["direction"]) == list(closed["side"])
    np.testing.assert_allclose(trips["amount"], closed["size"], rtol=1e-9)
    np.testing.assert_allclose(trips["entry_price"], closed["entry_price"], rtol=1e-9)
    np.testing.assert_allclose(trips["exit_price"], closed["exit_price"], rtol=1e-9)
    equity = store.trading.equity(sid)
    np.testing.assert_allclose(equity["equity"].to_numpy(), tested.equity.to_numpy(), rtol=1e-9)
    # Every order is final and every fill belongs to a stored order.
    orders = {o.client_order_id: o for o in store.trading.orders(sid)}
    assert all(o.state.is_final for o in orders.values())
    assert {f.client_order_id for f in store.trading.fills(sid)} <= set(orders)


@pytest.mark.parametrize("running", ["duckdb", "postgres"], indirect=True)
async def test_strategies_on_one_feed_trade_like_the_backtest_and_pausing_is_stored(
    running: tuple[LiveEngine, ManualClock, Store], candles: pd.DataFrame
) -> None:
    engine, clock, store = running
    names = ["sma_cross", "ema_cross_rsi", "bollinger_reversion"]
    ids = {}
    for name in names:
        spec = load_spec(ROOT / "data" / "strategies" / f"{name}.json")
        ids[name] = await engine.add_strategy(spec, allocation=10_000.0)
    paused = await engine.add_strategy(
        load_spec(ROOT / "data" / "strategies" / "sma_cross.json"),
        allocation=10_000.0,
        strategy_id="sma-paused",
    )
    engine.set_state(paused, StrategyState.PAUSED)
    assert len(engine.feeds) == 1, "strategies on one market share one feed"
    await engine.start()
    await step_until(clock, int(candles.index[-1].value // 1_000_000) + 1, engine)
    await engine.stop()

    # The engine saw bars 0..BARS-2 closed (the last bar never closes: the data ends).
    seen = candles.iloc[: BARS - 1]
    stored = store.candles.read("local", "ETH/BTC", "5m")
    pd.testing.assert_frame_equal(
        stored, seen, check_freq=False, check_index_type=False, rtol=1e-12
    )
    for name, sid in ids.items():
        assert_trades_like_the_backtest(store, sid, name, seen)
    # Paused: indicators kept up to date, no order placed, the state stored.
    runner = engine.strategies[paused].runner
    assert runner.last_close_ms == int(seen.index[-1].value // 1_000_000)
    assert store.trading.orders(paused) == []
    row = store.trading.strategies().set_index("strategy_id").loc[paused]
    assert row["state"] == "paused"
    assert "paused" in set(store.trading.events(paused)["detail"])


async def test_a_failing_strategy_is_isolated_and_metrics_match_the_backtest(
    running: tuple[LiveEngine, ManualClock, Store], candles: pd.DataFrame
) -> None:
    engine, clock, store = running
    spec = load_spec(ROOT / "data" / "strategies" / "sma_cross.json")
    healthy = await engine.add_strategy(spec, allocation=10_000.0, strategy_id="healthy")
    broken = await engine.add_strategy(spec, allocation=10_000.0, strategy_id="broken")
    runner = engine.strategies[broken].runner
    original = runner.trader.on_close
    calls = 0

    def fail_on_the_100th_bar(*args: object) -> object:
        nonlocal calls
        calls += 1
        if calls == 100:
            raise ZeroDivisionError("a bug in a strategy")
        return original(*args)

    runner.trader.on_close = fail_on_the_100th_bar  # type: ignore[method-assign]
    await engine.start()
    await step_until(clock, int(candles.index[-1].value // 1_000_000) + 1, engine, [healthy])
    await engine.stop()

    row = store.trading.strategies().set_index("strategy_id").loc[broken]
    assert row["state"] == "error"
    assert "ZeroDivisionError: a bug in a strategy" in row["error"]
    assert "Traceback" in row["error"]
    seen = candles.iloc[: BARS - 1]
    # In error it still takes every bar (its stops stay watched) but opens nothing new.
    failed_at = int(candles.index[99].value // 1_000_000)
    assert engine.strategies[broken].runner.last_close_ms == int(seen.index[-1].value // 1_000_000)
    assert not [
        o for o in store.trading.orders(broken) if o.purpose.opens and o.created_ms > failed_at
    ]
    assert_trades_like_the_backtest(store, healthy, "sma_cross", seen)
    metrics = engine.metrics().set_index("strategy_id").loc[healthy]
    tested = backtest(
        spec, seen, cash=10_000.0, fees=FILL_MODEL.fee_rate, slippage=FILL_MODEL.slippage
    ).stats
    for name in ("total_return", "max_drawdown", "sharpe", "win_rate", "trades"):
        assert metrics[name] == pytest.approx(tested[name], rel=1e-9), name
    # The snapshot the live views read: frozen values, equal to the backtest's and the store's.
    snap = engine.snapshot()
    assert not snap.running and snap.halt is None and snap.exchange == engine.exchange
    by_id = {s.strategy_id: s for s in snap.strategies}
    assert list(by_id) == [healthy, broken]
    assert by_id[broken].state is StrategyState.ERROR
    mine = by_id[healthy]
    assert mine.state is not StrategyState.ERROR and mine.problem is None
    assert mine.equity == pytest.approx(tested["final_equity"], rel=1e-9)
    assert mine.total_return == pytest.approx(tested["total_return"], rel=1e-9)
    assert mine.trades == len(store.trading.round_trips(healthy))
    assert mine.last_close_ms == int(seen.index[-1].value // 1_000_000)
    with pytest.raises(dataclasses.FrozenInstanceError):
        mine.equity = 0.0  # type: ignore[misc]


async def test_refused_orders_are_stored_with_the_rule_and_the_numbers(
    candles: pd.DataFrame, tmp_path: Path
) -> None:
    limits = RiskLimits(max_position_fraction=0.05)
    async for _server, clock, clients in open_market(candles):
        with Store.open(tmp_path / "risk.duckdb") as store:
            engine = LiveEngine(
                store, clients, PaperBroker(FILL_MODEL), fill_model=FILL_MODEL, limits=limits
            )
            spec = load_spec(ROOT / "data" / "strategies" / "sma_cross.json")
            sid = await engine.add_strategy(spec, allocation=10_000.0)
            await engine.start()
            await step_until(clock, int(candles.index[150].value // 1_000_000) + 1, engine)
            await engine.stop()
            refused = store.trading.refusals(sid)
            orders = store.trading.orders(sid)
    assert len(refused) >= 1 and orders == []
    assert set(refused["rule"]) == {"position_limit"}
    detail = json.loads(refused["detail"].iloc[0])
    assert detail["order_notional"] > detail["allowed"] == pytest.approx(0.05 * detail["equity"])


async def test_a_manual_limit_order_rests_fills_on_a_later_bar_and_can_be_cancelled(
    running: tuple[LiveEngine, ManualClock, Store], candles: pd.DataFrame
) -> None:
    engine, clock, store = running
    spec = load_spec(ROOT / "data" / "strategies" / "sma_cross.json")
    sid = await engine.add_strategy(spec, allocation=10_000.0, state=StrategyState.PAUSED)
    await engine.start()
    await step_until(clock, int(candles.index[20].value // 1_000_000) + 1, engine)
    placed_bar = candles.index[20]  # forming now
    later = candles.iloc[21:60]
    # A buy limit below every price until bar 40 and reached after: it rests, then fills.
    level = float(candles["low"].iloc[20:40].min()) * 0.9999
    reached = later[later["low"] <= level]
    assert not reached.empty, "the window must reach the level"
    resting = await engine.place_order(sid, "buy", 1.5, order_type="limit", price=level)
    assert resting is not None and resting.state == "open" and resting.purpose == "manual"
    assert store.trading.fills(sid) == []
    # One far below the market, to cancel.
    far = await engine.place_order(sid, "buy", 1.0, order_type="limit", price=level / 2)
    assert far is not None and far.state == "open"
    canceled = await engine.cancel_order(far.client_order_id)
    assert canceled.state == "canceled"

    await step_until(clock, int(candles.index[60].value // 1_000_000) + 1, engine)
    fills = [f for f in store.trading.fills(sid) if f.purpose == "manual"]
    assert [(f.client_order_id, f.amount, f.price) for f in fills] == [
        (resting.client_order_id, 1.5, level)
    ]
    # Filled on the first bar after the one it was placed in that reached the level.
    assert pd.Timestamp(fills[0].ts_ms, unit="ms", tz="UTC") == reached.index[0] > placed_bar
    # The manual fill is in the strategy's book (which then manages it by its spec's rules).
    runner = engine.strategies[sid].runner
    net = sum(f.base_delta for f in store.trading.fills(sid))
    assert runner.portfolio.position("ETH/BTC").amount == pytest.approx(net)
    # Bought net of the fee taken in the ETH received (the default, as Binance does).
    assert runner.portfolio.round_trips or net == pytest.approx(1.5 * (1 - FILL_MODEL.fee_rate))
    assert store.trading.order(far.client_order_id).state == "canceled"
    assert store.trading.orders(sid, open_only=True) == []


async def test_a_manual_order_meets_the_risk_limits_and_bad_ones_are_explained(
    candles: pd.DataFrame, tmp_path: Path
) -> None:
    limits = RiskLimits(max_position_fraction=0.05)
    async for _server, clock, clients in open_market(candles):
        with Store.open(tmp_path / "manual.duckdb") as store:
            engine = LiveEngine(
                store, clients, PaperBroker(FILL_MODEL), fill_model=FILL_MODEL, limits=limits
            )
            spec = load_spec(ROOT / "data" / "strategies" / "sma_cross.json")
            sid = await engine.add_strategy(spec, allocation=10.0, state=StrategyState.PAUSED)
            await engine.start()
            await step_until(clock, int(candles.index[10].value // 1_000_000) + 1, engine)
            # 100 ETH is far more than 5 % of 10 BTC: refused and stored with the rule.
            assert await engine.place_order(sid, "buy", 100.0) is None
            with pytest.raises(ValueError, match="needs a price"):
                await engine.place_order(sid, "buy", 1.0, order_type="limit")
            with pytest.raises(ValueError, match="amount must be > 0"):
                await engine.place_order(sid, "sell", 0.0)
            # Under the market's minimum notional: the exchange would refuse it, so it is not
            # sent (stored as refused by the market's rules).
            assert await engine.place_order(sid, "buy", 0.0001) is None
            # Within the limit: filled at the next price the feed shows, not the bar's open.
            placed = await engine.place_order(sid, "buy", 0.01)
            assert placed is not None and placed.state == "open"
            await step_until(clock, int(candles.index[11].value // 1_000_000) + 1, engine)
            done = store.trading.order(placed.client_order_id)
            [fill] = store.trading.fills(sid)
            await engine.stop()
            refused = store.trading.refusals(sid)
    assert list(refused["rule"]) == ["position_limit", "market_rules"]
    assert list(refused["purpose"]) == ["manual", "manual"]
    assert done is not None and done.state == "filled"
    # The price it filled at was seen after it was placed (bar 10 was forming then).
    placed_bar = candles.iloc[10]
    assert fill.price != placed_bar["open"] or placed_bar["open"] == placed_bar["close"]
    assert candles["low"].iloc[10:12].min() <= fill.price <= candles["high"].iloc[10:12].max()
