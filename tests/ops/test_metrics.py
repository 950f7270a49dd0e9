"""EngineMetrics from events, scraped with prometheus-client's own text parser."""

from __future__ import annotations

import time

from prometheus_client.parser import text_string_to_metric_families

from workbench.broker.models import Order, OrderIntent, OrderPurpose, OrderState, OrderType
from workbench.candles import Candle
from workbench.fills import Side
from workbench.live.events import (
    CandleClosed,
    Notice,
    NoticeKind,
    OrderChanged,
    OrderRefused,
    StateChanged,
    StrategyState,
    TaskFailed,
)
from workbench.ops.metrics import EngineMetrics, rejection_kind, scrape_value
from workbench.ops.snapshot import drawdown, lag_bars
from workbench.risk.limits import Refusal

STEP = 300_000
KEY = ("local", "ETH/BTC", "5m")


def candle(ts_ms: int) -> Candle:
    return Candle(ts_ms, 1.0, 1.0, 1.0, 1.0, 1.0)


def order(cid: str, created_ms: int, state: OrderState = OrderState.PENDING, **kw: object) -> Order:
    return Order(
        cid,
        "s1",
        "ETH/BTC",
        Side.BUY,
        OrderType.MARKET,
        1.0,
        created_ms=created_ms,
        state=state,
        **kw,
    )  # type: ignore[arg-type]


def test_close_to_order_times_orders_from_the_close_of_their_bar() -> None:
    metrics = EngineMetrics()
    # A stop found on bar 0's path is placed while bar 0 is handled (before its event).
    metrics(OrderChanged(order("stop", 0, stop_price=0.9)))
    time.sleep(0.01)
    metrics(CandleClosed(KEY, candle(0), latency_ms=20.0))
    time.sleep(0.03)
    # The signal of bar 0 is placed at bar 1's open, after bar 0's event.
    metrics(OrderChanged(order("entry", STEP)))
    metrics(OrderChanged(order("entry", STEP, OrderState.OPEN)))  # not a new order
    metrics(OrderChanged(order("old", -5 * STEP)))  # decided on no bar we saw close
    text = metrics.exposition().decode()
    assert scrape_value(text, "workbench_close_to_order_seconds_count") == 2
    total = scrape_value(text, "workbench_close_to_order_seconds_sum")
    # stop: ~10 ms before the event, which came 20 ms after arrival: ~10 ms; entry: >= 50 ms.
    assert 0.05 < total < 1.0
    assert scrape_value(text, "workbench_bar_handling_seconds_sum") == 0.02
    assert scrape_value(text, "workbench_candles_total", {"fresh": "true"}) == 1


def test_orders_rejections_refusals_and_errors_by_label() -> None:
    metrics = EngineMetrics()
    metrics(OrderChanged(order("a", 0)))
    metrics(OrderChanged(order("a", 0)))  # the same state again: counted once
    metrics(
        OrderChanged(order("a", 0, OrderState.REJECTED, reason="Account has insufficient balance"))
    )
    intent = OrderIntent("s1", "ETH/BTC", Side.BUY, 1.0, purpose=OrderPurpose.ENTRY)
    metrics(OrderRefused(intent, Refusal("max_position", {"limit": 1})))
    metrics(TaskFailed("feed ETH/BTC 5m", "Traceback", 0.5))
    metrics(StateChanged("s1", StrategyState.ERROR, "boom"))
    metrics(Notice("s1", NoticeKind.DEGRADED, "feed ETH/BTC 5m down: NetworkError"))
    metrics(Notice("s1", NoticeKind.DEGRADED, "outcome of wb-1 unknown (timeout)"))
    metrics(Notice("s1", NoticeKind.RECOVERED, "settled"))
    families = {f.name: f for f in text_string_to_metric_families(metrics.exposition().decode())}
    orders = {
        (s.labels["state"], s.labels["purpose"]): s.value
        for s in families["workbench_orders"].samples
        if s.name.endswith("_total")
    }
    assert orders == {("pending", "entry"): 1.0, ("rejected", "entry"): 1.0}
    rejected = [
        s for s in families["workbench_order_rejections"].samples if s.name.endswith("_total")
    ]
    assert [(s.labels["reason"], s.value) for s in rejected] == [("insufficient_funds", 1.0)]
    refused = [s for s in families["workbench_order_refusals"].samples if s.name.endswith("_total")]
    assert [(s.labels["rule"], s.value) for s in refused] == [("max_position", 1.0)]
    errors = {
        s.labels["kind"]: s.value
        for s in families["workbench_errors"].samples
        if s.name.endswith("_total")
    }
    assert errors == {"task": 1.0, "strategy": 1.0, "feed": 1.0, "order_unknown": 1.0}


def test_rejection_kinds_are_bounded() -> None:
    assert rejection_kind('binance {"code":-2015,"msg":"Invalid API-key"}') == "auth"
    assert rejection_kind("Filter failure: LOT_SIZE") == "filter"
    assert rejection_kind("paper trading does not take oco orders") == "paper"
    assert rejection_kind(None) == rejection_kind("who knows") == "other"


def test_lag_and_drawdown_arithmetic() -> None:
    # At 10:07 the newest closed 5m bar opened at 10:00.
    now = 10 * 3600_000 + 7 * 60_000
    assert lag_bars(now, 10 * 3600_000, STEP) == 0
    assert lag_bars(now, 10 * 3600_000 - 3 * STEP, STEP) == 3
    assert lag_bars(now, 10 * 3600_000 + STEP, STEP) == 0  # ahead of our clock: current
    assert lag_bars(None, 0, STEP) is None and lag_bars(now, None, STEP) is None
    assert drawdown(0.9, 1.2) == 1 - 0.9 / 1.2
    assert drawdown(1.3, 1.2) == 0 and drawdown(1.0, 0.0) == 0
