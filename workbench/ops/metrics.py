"""Prometheus metrics of one engine, with prometheus-client, on a registry of its own.

Two halves. `EngineMetrics` is a listener of the engine's events, handed them after the burst
with the time each came (`workbench.ops.deferred`): it counts candles, orders by state and
purpose, rejections and refusals by reason, errors by kind, and observes the
bar-handling and close → order latencies; each event costs a few dictionary lookups and
counter increments, nothing else (a labelled child is looked up once per label values:
prometheus-client's `labels()` checks its arguments and takes a lock on every call, which
cost more than the increment itself). The scrape-time half (`EngineCollector`) reads what the
engine holds when /metrics is asked (feed lag and reconnects, equity, drawdown and position
per strategy, strategies by state, open orders), so nothing is computed per bar for it.

Close → order latency: from a closed bar's arrival at the engine (`CandleClosed` minus its
`latency_ms`) to each order decided on that bar first being stored (the time its
`OrderChanged` came, stored just before it goes to the broker), as
`benchmarks/bench_live.py` measures it.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterator
from typing import Any, Generic, TypeVar

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.metrics import MetricWrapperBase
from prometheus_client.registry import Collector

from workbench.broker.models import OrderState
from workbench.live.events import (
    CandleClosed,
    CandleForming,
    EngineEvent,
    FillBooked,
    Notice,
    NoticeKind,
    OrderChanged,
    OrderRefused,
    StateChanged,
    StrategyState,
    TaskFailed,
)
from workbench.ops.snapshot import EngineView
from workbench.timeframes import timeframe_ms

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
# Seconds: bar handling is milliseconds; the loop's lag is from 1 ms to seconds.
LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5)
LOOP_BUCKETS = (0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)

_REJECTION_KINDS = (
    ("insufficient_funds", re.compile(r"insufficient", re.I)),
    ("auth", re.compile(r"api-key|signature|permission|-2015|-1022|-2014|authenticat", re.I)),
    ("rate_limit", re.compile(r"rate limit|too many|-1003|429|418", re.I)),
    ("filter", re.compile(r"filter|lot|notional|min|precision|-1013", re.I)),
    ("invalid_order", re.compile(r"invalid|-2010|-1121|bad", re.I)),
    ("paper", re.compile(r"paper", re.I)),
)
_PROBLEM_KINDS = (
    ("feed", re.compile(r"^(feed|backfill) ", re.I)),
    ("order_unknown", re.compile(r"^outcome of ", re.I)),
    ("account", re.compile(r"refuses this account", re.I)),
    ("exit", re.compile(r"^exit ", re.I)),
)


M = TypeVar("M", bound=MetricWrapperBase)


class Children(Generic[M]):
    """A labelled metric's children, each looked up in prometheus-client once: `of(*values)`
    gives the child of those label values (enums are welcome: a StrEnum is its value)."""

    def __init__(self, metric: M) -> None:
        self.metric = metric
        self._children: dict[tuple[str, ...], M] = {}

    def of(self, *values: str) -> M:
        child = self._children.get(values)
        if child is None:
            child = self._children[values] = self.metric.labels(*values)
        return child


def rejection_kind(reason: str | None) -> str:
    """Give a bounded label for an exchange's rejection message."""
    for kind, pattern in _REJECTION_KINDS:
        if reason and pattern.search(reason):
            return kind
    return "other"


def error_kind(event: EngineEvent) -> str | None:
    """Give the kind of error an event reports, or None for an event that is none."""
    match event:
        case TaskFailed():
            return "task"
        case StateChanged(state=StrategyState.ERROR):
            return "strategy"
        case Notice(kind=NoticeKind.ERROR):
            return "booking"
        case Notice(kind=NoticeKind.EXIT_FAILED):
            return "exit_failed"
        case Notice(kind=NoticeKind.DEGRADED, detail=detail):
            for kind, pattern in _PROBLEM_KINDS:
                if pattern.search(detail):
                    return kind
            return "degraded"
    return None


class EngineMetrics:
    """Counters and histograms fed by engine events; call it as a listener."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        r = self.registry
        self.candles = Counter(
            "workbench_candles",
            "Closed candles processed",
            ["symbol", "timeframe", "fresh"],
            registry=r,
        )
        self.bar_seconds = Histogram(
            "workbench_bar_handling_seconds",
            "A closed bar's handling: arrival to every strategy on its market having acted",
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.close_to_order = Histogram(
            "workbench_close_to_order_seconds",
            "Bar arrival to its orders sent, for bars that placed orders",
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.loop_lag = Histogram(
            "workbench_loop_lag_seconds",
            "How late the event loop ran a timer",
            buckets=LOOP_BUCKETS,
            registry=r,
        )
        self.orders = Counter(
            "workbench_orders",
            "Orders reaching a state, by purpose",
            ["state", "purpose"],
            registry=r,
        )
        self.rejections = Counter(
            "workbench_order_rejections",
            "Orders the exchange or broker rejected, by reason",
            ["reason", "purpose"],
            registry=r,
        )
        self.refusals = Counter(
            "workbench_order_refusals",
            "Intents the risk limits or market rules refused",
            ["rule", "purpose"],
            registry=r,
        )
        self.errors = Counter(
            "workbench_errors",
            "Errors by kind (tasks, strategies, feeds, orders, exits)",
            ["kind"],
            registry=r,
        )
        self.alerts = Counter(
            "workbench_alerts",
            "Alerts raised, by rule and level, and what became of them",
            ["rule", "level", "outcome"],
            registry=r,
        )
        self.up = Gauge("workbench_up", "1 while the engine runs", registry=r)
        self._candles = Children(self.candles)
        self._orders = Children(self.orders)
        self._rejections = Children(self.rejections)
        self._refusals = Children(self.refusals)
        self._errors = Children(self.errors)
        self._seen: dict[str, OrderState] = {}
        # Per symbol: the last closed bar (open ms, arrival s), and orders stored before the
        # event of the bar they were decided on came (they are placed during its handling).
        self._closes: dict[str, tuple[int, float]] = {}
        self._early: dict[str, list[tuple[int, float]]] = {}
        self._steps: dict[str, int] = {}

    def __call__(self, event: EngineEvent, at: float | None = None) -> None:
        """Count an event that came at `at` (perf_counter seconds; None: now)."""
        match event:
            case CandleForming() | FillBooked():
                return  # most events of a bar: nothing counted
            case CandleClosed(key=key, candle=candle, latency_ms=latency_ms, fresh=fresh):
                symbol = key[1]
                self._candles.of(symbol, key[2], "true" if fresh else "false").inc()
                seconds = latency_ms / 1000
                self.bar_seconds.observe(seconds)
                arrived = (time.perf_counter() if at is None else at) - seconds
                if symbol not in self._steps:
                    self._steps[symbol] = timeframe_ms(key[2])
                self._closes[symbol] = (candle.ts_ms, arrived)
                early = self._early.pop(symbol, None)
                for bar, at in early or ():
                    if bar == candle.ts_ms:
                        self.close_to_order.observe(max(0.0, at - arrived))
            case OrderChanged(order=o):
                state, cid = o.state, o.client_order_id
                seen = self._seen.get(cid)
                if seen is state:
                    return
                if seen is None and state is OrderState.PENDING:
                    self._new_order(o, time.perf_counter() if at is None else at)
                self._orders.of(state, o.purpose).inc()
                if state is OrderState.REJECTED:
                    self._rejections.of(rejection_kind(o.reason), o.purpose).inc()
                if state.is_final:
                    self._seen.pop(cid, None)
                else:
                    self._seen[cid] = state
            case OrderRefused(intent=i, refusal=r):
                self._refusals.of(r.rule, i.purpose).inc()
            case _:
                kind = error_kind(event)
                if kind is not None:
                    self._errors.of(kind).inc()

    def _new_order(self, order: Any, now: float) -> None:
        """Time an order stored at `now` from the close of the bar it was decided on: the bar
        before the open it is placed at (signals), or the bar it was placed at (a stop found on
        its path, placed while that bar is handled, before the bar's event)."""
        last = self._closes.get(order.symbol)
        if last is not None and order.created_ms == last[0] + self._steps.get(order.symbol, -1):
            self.close_to_order.observe(now - last[1])
        elif last is None or order.created_ms > last[0]:
            early = self._early.setdefault(order.symbol, [])
            early.append((order.created_ms, now))
            del early[:-64]

    def attach(self, view: Callable[[], EngineView | None]) -> None:
        """Add the scrape-time metrics of the engine `view()` reads (None: not started)."""
        self.registry.register(EngineCollector(view))

    def exposition(self) -> bytes:
        """Give the registry in Prometheus's text format."""
        return generate_latest(self.registry)


class EngineCollector(Collector):
    """Gauges read from the engine when scraped."""

    def __init__(self, view: Callable[[], EngineView | None]) -> None:
        self.view = view

    def describe(self) -> list[Metric]:
        return []  # values come only at collect time

    def collect(self) -> Iterator[Metric]:
        view = self.view()
        if view is None:
            return
        lag = GaugeMetricFamily(
            "workbench_feed_lag_bars",
            "Closed bars a feed has not delivered yet",
            labels=["symbol", "timeframe"],
        )
        up = GaugeMetricFamily(
            "workbench_feed_up", "1 when a feed is connected", labels=["symbol", "timeframe"]
        )
        reconnects = CounterMetricFamily(
            "workbench_feed_reconnects",
            "Feed reconnects after an error",
            labels=["symbol", "timeframe"],
        )
        for f in view.feeds:
            labels = [f.symbol, f.timeframe]
            if f.lag_bars is not None:
                lag.add_metric(labels, f.lag_bars)
            up.add_metric(labels, 1.0 if f.up else 0.0)
            reconnects.add_metric(labels, f.reconnects)
        equity = GaugeMetricFamily(
            "workbench_strategy_equity", "Equity per strategy (quote)", labels=["strategy_id"]
        )
        dd = GaugeMetricFamily(
            "workbench_strategy_drawdown_ratio",
            "Drawdown from the equity peak (fraction)",
            labels=["strategy_id"],
        )
        position = GaugeMetricFamily(
            "workbench_strategy_position",
            "Position per strategy (base amount)",
            labels=["strategy_id", "symbol"],
        )
        orders = GaugeMetricFamily(
            "workbench_strategy_open_orders", "Open orders per strategy", labels=["strategy_id"]
        )
        states = GaugeMetricFamily(
            "workbench_strategies", "Strategies by shown state", labels=["state"]
        )
        count = dict.fromkeys((str(s) for s in StrategyState), 0)
        for s in view.strategies:
            equity.add_metric([s.strategy_id], s.equity)
            dd.add_metric([s.strategy_id], s.drawdown)
            position.add_metric([s.strategy_id, s.symbol], s.position)
            orders.add_metric([s.strategy_id], s.open_orders)
            count[str(s.state)] += 1
        for state, n in count.items():
            states.add_metric([state], n)
        open_positions = GaugeMetricFamily(
            "workbench_open_positions", "Strategies holding a position"
        )
        open_positions.add_metric([], sum(1 for s in view.strategies if s.position != 0))
        halted = GaugeMetricFamily("workbench_halted", "1 while the account's kill switch is on")
        halted.add_metric([], 1.0 if view.halted else 0.0)
        yield from (lag, up, reconnects, equity, dd, position, orders, states, open_positions)
        yield halted


def scrape_value(text: str, name: str, labels: dict[str, str] | None = None) -> Any:
    """Give one sample's value from a text exposition, parsed by prometheus-client (tests and
    `workbench status`); None when absent."""
    from prometheus_client.parser import text_string_to_metric_families

    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and all(
                sample.labels.get(k) == v for k, v in (labels or {}).items()
            ):
                return sample.value
    return None
