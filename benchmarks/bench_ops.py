"""Overhead of operations on the live path: metrics, structured (JSON) logging of every engine
event and alert rules, on bar close → order submitted p99 with 50 strategies on 10 markets.

Run: .venv/bin/python benchmarks/bench_ops.py [--bars 300] [--rounds 2]
The same run (benchmarks/bench_live.py's: the local exchange on 127.0.0.1, a hand-stepped
replay clock, a DuckDB file) goes with and without the ops service, alternating, `--rounds`
times each; the figures are the medians of each side and their ratio. With ops: the ops
service as `live run` has it (Prometheus counters and histograms per event, JSON records of
every event written to a log file by the writer thread, the alert rules, the loop-lag probe,
/ready's probes idle), at the default INFO level (orders, fills, states, notices logged), and
again at DEBUG (every closed bar logged as well).
"""

from __future__ import annotations

import argparse
import asyncio
import io
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from bench_live import run

from workbench.live.engine import LiveEngine
from workbench.live.events import CandleClosed, EngineEvent
from workbench.ops.logs import setup_logging, stop_logging
from workbench.ops.service import OpsService
from workbench.settings import Settings
from workbench.store import Store

#: time spent in the ops service's listeners, per level: (seconds, events, closed bars)
SPENT: dict[str, list[float]] = {}


def timed(listener: Callable[[EngineEvent], None], level: str) -> Callable[[EngineEvent], None]:
    spent = SPENT.setdefault(level, [0.0, 0.0, 0.0])

    def call(event: EngineEvent) -> None:
        began = time.perf_counter()
        listener(event)
        spent[0] += time.perf_counter() - began
        spent[1] += 1
        spent[2] += isinstance(event, CandleClosed)

    return call


async def with_ops(engine: LiveEngine, store: Store, log_file: Path, level: str) -> object:
    settings = Settings(log_file=log_file, log_format="json", log_level=level)
    setup_logging(settings, io.StringIO(), exchange="local")
    ops = await OpsService(engine, store, settings, role="bench").start()
    # The same three listeners, timed together: each event's cost to the loop, which calls
    # them in line.
    listeners = (ops.metrics, ops.event_log, ops.alerting.on_event)
    for listener in listeners:
        engine.unsubscribe(listener)

    def all_three(event: EngineEvent) -> None:
        for listener in listeners:
            listener(event)

    engine.subscribe(timed(all_three, level))

    async def detach() -> None:
        await ops.stop()
        stop_logging()

    return detach


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--bars", type=int, default=300)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    sides = ("without", "INFO", "DEBUG")
    results: dict[str, list[dict[str, float]]] = {side: [] for side in sides}
    lines: dict[str, int] = {}
    with tempfile.TemporaryDirectory() as folder:
        for _ in range(args.rounds):
            for side in sides:
                if side == "without":
                    results[side].append(asyncio.run(run(50, 10, args.bars)))
                    continue
                log_file = Path(folder) / f"{side}.jsonl"

                def attach(
                    e: LiveEngine, s: Store, f: Path = log_file, level: str = side
                ) -> object:
                    return with_ops(e, s, f, level)

                results[side].append(asyncio.run(run(50, 10, args.bars, attach=attach)))  # type: ignore[arg-type]
                lines[side] = sum(1 for _ in log_file.open())
                log_file.unlink()

    def median(side: str, key: str) -> float:
        return statistics.median(r[key] for r in results[side])

    print(
        f"50 strategies, 10 markets, {args.bars} bars, {args.rounds} rounds each side "
        f"(medians); ~{median('without', 'orders'):.0f} orders a run"
    )
    for key, what in (
        ("order_p99_ms", "close -> order p99"),
        ("order_p50_ms", "close -> order p50"),
        ("p99_ms", "closed bar handled p99"),
        ("p50_ms", "closed bar handled p50"),
    ):
        base = median("without", key)
        shown = [f"{what:<23} without ops {base:8.2f} ms"]
        for side in sides[1:]:
            ops = median(side, key)
            shown.append(f"ops+logs {side:<5} {ops:8.2f} ms (x{ops / base:.3f})")
        print(", ".join(shown))
    print(", ".join(f"{side}: {n} JSON log lines a run" for side, n in lines.items()))
    for level, (seconds, events, bars) in SPENT.items():
        print(
            f"ops listeners at {level}: {seconds / events * 1e6:.1f} us per event, "
            f"{seconds / bars * 1e6:.0f} us per closed market bar ({events / bars:.1f} events "
            "per bar), on the loop"
        )


if __name__ == "__main__":
    main()
