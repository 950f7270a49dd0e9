"""Overhead of operations on the live path: metrics, structured (JSON) logging of every engine
event and alert rules, on bar close → order submitted p99 with 50 strategies on 10 markets.

Run: .venv/bin/python benchmarks/bench_ops.py [--bars 200] [--rounds 5] [--debug] [--in-line]
The same run (benchmarks/bench_live.py's: the local exchange on 127.0.0.1, a hand-stepped
replay clock, a DuckDB file) goes without the ops service twice (the second is the noise
floor: the same code measured again) and with it, in turns, `--rounds` times each (the order
of the sides turns each round). With ops: the ops service as `live run` has it (Prometheus
counters and histograms per event, JSON records of every event written to a log file by the
writer thread, the alert rules, the loop-lag probe, /ready's probes idle), at the default
INFO level (orders, fills, states, notices logged); with `--debug` also at DEBUG (every
closed bar logged as well). Figures: each side's median over the rounds and its ratio to
"without", and the percentiles of every order of every round pooled (a run has ~150 orders,
so one run's p99 is its second-slowest order).

The ops service's one engine listener only keeps each event (in line, on the loop); the
metrics, event records and alert rules get them after the burst, in a loop callback
(`workbench.ops.deferred`). Both are timed, and counted inside an order's close -> order wait
wherever they fall in it. "first close -> order" is from the first market's close of that bar
(the other markets' handling before this one's included): work deferred to between two
markets' closes would show there.

Then the listeners alone, per event kind, with no loop and no exchange: the in-line keeping,
each listener's cost when handed the events (on the loop, after the burst), and the logging
writer thread's share (rendering and writing each record) measured by draining its queue.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import statistics
import tempfile
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import numpy as np
from bench_live import run

from workbench.broker.models import Fill, Order, OrderState, OrderType
from workbench.candles import Candle
from workbench.fills import Side
from workbench.live.engine import LiveEngine
from workbench.live.events import (
    CandleClosed,
    CandleForming,
    EngineEvent,
    FillBooked,
    OrderChanged,
)
from workbench.ops.alerts import AlertRules
from workbench.ops.deferred import AfterBurst, TimedListener
from workbench.ops.eventlog import EventLog
from workbench.ops.logs import live_context, setup_logging, stop_logging
from workbench.ops.metrics import EngineMetrics
from workbench.ops.service import OpsService
from workbench.settings import Settings
from workbench.store import Store

#: time spent in the ops service's listeners, per level: (seconds, events, closed bars)
SPENT: dict[str, list[float]] = {}
#: per level, each listener call's (end, seconds), perf_counter: the time the listeners took
#: inside each order's wait from its bar's close to its submission
CALLS: dict[str, list[tuple[float, float]]] = {}
#: per level, (listener, event kind) -> [seconds, calls]: where the listeners' time goes
KINDS: dict[str, dict[tuple[str, str], list[float]]] = {}
WITHOUT, AGAIN = "without", "without again"
IN_LINE = "in line"


def timed(listener: Callable[[EngineEvent], None], level: str) -> Callable[[EngineEvent], None]:
    """Time the engine listener, in line with each event."""
    spent = SPENT.setdefault(level, [0.0, 0.0, 0.0])
    calls = CALLS.setdefault(level, [])

    def call(event: EngineEvent) -> None:
        began = time.perf_counter()
        listener(event)
        ended = time.perf_counter()
        spent[0] += ended - began
        spent[1] += 1
        spent[2] += isinstance(event, CandleClosed)
        calls.append((ended, ended - began))

    return call


def timed_later(flush: Callable[[], int], level: str) -> Callable[[], int]:
    """Time the hand-on after the burst (a loop callback, or a scrape's or the stop's)."""
    spent = SPENT.setdefault(level, [0.0, 0.0, 0.0])
    calls = CALLS.setdefault(level, [])

    def call() -> int:
        began = time.perf_counter()
        handed = flush()
        ended = time.perf_counter()
        spent[0] += ended - began
        calls.append((ended, ended - began))
        return handed

    return call


async def with_ops(engine: LiveEngine, store: Store, log_file: Path, side: str) -> object:
    """Attach the ops service at the side's log level; on an "in line" side its three
    listeners are called in line with each event, as they were before `AfterBurst`."""
    level, _, how = side.partition(" ")
    settings = Settings(log_file=log_file, log_format="json", log_level=level)
    setup_logging(settings, io.StringIO(), exchange="local")
    ops = await OpsService(engine, store, settings, role="bench").start()
    # Its engine listener timed in line, its hand-on after the burst timed where the loop
    # runs it; and each of the three listeners it hands events to, by event kind.
    after = ops.after
    engine.unsubscribe(after)
    if how == IN_LINE:

        def all_three(event: EngineEvent) -> None:
            at = time.perf_counter()
            for listener in after.listeners:
                listener(event, at)

        engine.subscribe(timed(all_three, side))
    else:
        engine.subscribe(timed(after, side))
    after.flush = timed_later(after.flush, side)  # type: ignore[method-assign]
    kinds = KINDS.setdefault(side, {})

    def by_kind(name: str, listener: TimedListener) -> TimedListener:
        def call(event: EngineEvent, at: float) -> None:
            began = time.perf_counter()
            listener(event, at)
            spent = kinds.setdefault((name, type(event).__name__), [0.0, 0.0])
            spent[0] += time.perf_counter() - began
            spent[1] += 1

        return call

    names = ("metrics", "event log", "alerts")
    after.listeners = [
        by_kind(n, listener) for n, listener in zip(names, after.listeners, strict=True)
    ]

    async def detach() -> None:
        await ops.stop()
        stop_logging()

    return detach


def side_by_side(bars: int, rounds: int, levels: list[str]) -> None:
    sides = [WITHOUT, AGAIN, *levels]
    results: dict[str, list[dict[str, float]]] = {side: [] for side in sides}
    pooled: dict[str, list[float]] = {side: [] for side in sides}
    shares: dict[str, list[tuple[float, float]]] = {side: [] for side in levels}
    lines: dict[str, int] = {}
    with tempfile.TemporaryDirectory() as folder:
        for n in range(rounds):
            for side in sides[n % len(sides) :] + sides[: n % len(sides)]:
                if side in (WITHOUT, AGAIN):
                    results[side].append(asyncio.run(run(50, 10, bars, samples=pooled[side])))
                    continue
                log_file = Path(folder) / f"{side}.jsonl"

                def attach(e: LiveEngine, s: Store, f: Path = log_file, at: str = side) -> object:
                    return with_ops(e, s, f, at)

                windows: list[tuple[float, float]] = []
                figures = run(50, 10, bars, attach=attach, samples=pooled[side], windows=windows)  # type: ignore[arg-type]
                results[side].append(asyncio.run(figures))
                shares[side] += in_windows(CALLS.pop(side, []), windows)
                lines[side] = sum(1 for _ in log_file.open())
                log_file.unlink()

    def median(side: str, key: str) -> float:
        return statistics.median(r[key] for r in results[side])

    print(
        f"50 strategies, 10 markets, {bars} bars, {rounds} rounds each side "
        f"(medians of the rounds); ~{median(WITHOUT, 'orders'):.0f} orders a run"
    )
    for key, what in (
        ("order_p99_ms", "close -> order p99"),
        ("order_p50_ms", "close -> order p50"),
        ("burst_p99_ms", "first close -> order p99"),
        ("burst_p50_ms", "first close -> order p50"),
        ("p99_ms", "closed bar handled p99"),
        ("p50_ms", "closed bar handled p50"),
    ):
        base = median(WITHOUT, key)
        shown = [f"{what:<24} without ops {base:8.2f} ms"]
        for side in sides[1:]:
            name = "again" if side == AGAIN else f"ops {side}"
            value = median(side, key)
            shown.append(f"{name} {value:8.2f} ms (x{value / base:.3f})")
        print(", ".join(shown))
    for q in (50, 90, 99):
        base = float(np.percentile(pooled[WITHOUT], q))
        shown = [f"close -> order p{q} of all {len(pooled[WITHOUT])} orders: without {base:.2f} ms"]
        for side in sides[1:]:
            name = "again" if side == AGAIN else f"ops {side}"
            value = float(np.percentile(pooled[side], q))
            shown.append(f"{name} {value:.2f} ms (x{value / base:.3f})")
        print(", ".join(shown))
    print(", ".join(f"{side}: {n} JSON log lines a run" for side, n in lines.items()))
    for level, found in shares.items():
        inside = np.array([s for s, _ in found]) * 1000
        waits = np.array([w for _, w in found]) * 1000
        slow = waits >= np.percentile(waits, 99)
        print(
            f"ops listeners at {level} inside each order's close -> order wait: median "
            f"{np.median(inside):.3f} ms ({np.median(inside / waits):.2%} of the wait), p99 "
            f"{np.percentile(inside, 99):.3f} ms; in the slowest 1 % of waits "
            f"{inside[slow].mean():.3f} ms of {waits[slow].mean():.1f} ms "
            f"({inside[slow].sum() / waits[slow].sum():.2%})"
        )
    for level, (seconds, events, closed) in SPENT.items():
        print(
            f"ops listeners at {level}: {seconds / events * 1e6:.1f} us per event, "
            f"{seconds / closed * 1e6:.0f} us per closed market bar ({events / closed:.1f} "
            "events per bar), on the loop (kept in line, handed on after the burst); by "
            "listener and event kind (share, us per call):"
        )
        ranked = sorted(KINDS[level].items(), key=lambda item: -item[1][0])
        print(
            "  "
            + ", ".join(
                f"{name} {kind} {took / seconds:.0%} ({took / calls * 1e6:.1f})"
                for (name, kind), (took, calls) in ranked[:8]
            )
        )


def in_windows(
    calls: list[tuple[float, float]], windows: list[tuple[float, float]]
) -> list[tuple[float, float]]:
    """Give each order's (listener seconds inside its wait, its wait in seconds)."""
    ends = np.array([end for end, _ in calls])
    total = np.concatenate([[0.0], np.cumsum([took for _, took in calls])])
    found = []
    for arrived, submitted in windows:
        first, last = np.searchsorted(ends, [arrived, submitted], side="right")
        found.append((float(total[last] - total[first]), submitted - arrived))
    return found


def sample_events() -> dict[str, list[EngineEvent]]:
    """One of each event a bar brings: forming updates, the close, an order's life, a fill."""
    key = ("local", "ETH/BTC", "5m")
    candle = Candle(1_700_000_000_000, 1.0, 1.1, 0.9, 1.05, 10.0)
    cid = "wb-" + "0" * 28
    placed = candle.ts_ms + 300_000
    order = Order(cid, "s7", "ETH/BTC", Side.BUY, OrderType.MARKET, 0.1, created_ms=placed)
    filled = replace(order, state=OrderState.FILLED, filled=0.1, average_price=1.0)
    fill = Fill("f1", cid, "s7", "ETH/BTC", Side.BUY, 0.1, 1.0, 1e-4, placed, fee_currency="ETH")
    return {
        "CandleForming": [CandleForming(key, candle)],
        "CandleClosed": [CandleClosed(key, candle, 1.5, True)],
        "OrderChanged": [OrderChanged(order), OrderChanged(filled)],
        "FillBooked": [FillBooked(fill)],
    }


def listeners_alone(count: int, levels: list[str]) -> None:
    """Per-event cost of each listener, with the JSON console and the log file as `live run`
    writes them; `count` events of each kind."""
    rules = AlertRules()
    for i in range(50):
        live_context.know_strategy(f"s{i}")
    print(f"listeners alone, us per event ({count} of each kind; log: JSON console + file)")
    for level in levels:
        with tempfile.TemporaryDirectory() as folder:
            settings = Settings(
                log_file=Path(folder) / "x.jsonl", log_format="json", log_level=level
            )
            for name, events in sample_events().items():
                setup_logging(settings, io.StringIO(), exchange="local")
                metrics, event_log = EngineMetrics(), EventLog()
                kept = AfterBurst(())
                shown = []
                began = time.perf_counter()
                at = time.perf_counter()
                for label, listener in (
                    ("kept in line", lambda e, _at, k=kept: k(e)),
                    ("after: metrics", metrics),
                    ("alert rules", lambda e, _at: rules.on_event(e, time.monotonic())),
                    ("event log", event_log),
                ):
                    t0 = time.perf_counter()
                    for _ in range(count):
                        for event in events:
                            listener(event, at)
                    shown.append(
                        f"{label} {(time.perf_counter() - t0) / count / len(events) * 1e6:5.1f}"
                    )
                loop_s = time.perf_counter() - began
                stop_logging()  # the writer thread renders and writes what is queued
                writer_s = time.perf_counter() - began - loop_s
                per = count * len(events)
                print(
                    f"  {level:<5} {name:<13} " + ", ".join(shown)
                    + f"; all {loop_s / per * 1e6:5.1f} on the loop"
                    f" + {writer_s / per * 1e6:5.1f} left for the writer thread"
                )  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--bars", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--debug", action="store_true", help="also measure at DEBUG")
    parser.add_argument("--events", type=int, default=20_000, help="of each kind, alone")
    parser.add_argument(
        "--in-line",
        action="store_true",
        help="also the ops listeners called in line with each event (as before AfterBurst)",
    )
    args = parser.parse_args()
    levels = ["INFO", "DEBUG"] if args.debug else ["INFO"]
    sides = [*levels, *(f"{level} {IN_LINE}" for level in levels)] if args.in_line else levels
    if args.rounds:
        side_by_side(args.bars, args.rounds, sides)
    listeners_alone(args.events, levels)


if __name__ == "__main__":
    main()
