"""Trading while research runs: close -> order latency of 10 strategies, idle and while the
research app sweeps and a notebook runs a heavy query through the read service.

Run: .venv/bin/python benchmarks/bench_research_load.py [--bars 2000] [--rounds 3]

The engine is `bench_live.py`'s (in-process, local exchange on 127.0.0.1, hand-stepped replay
clock as fast as the engine keeps up, 10 strategies on 10 markets). Its store holds the
shipped candles and serves reads, as the dashboard's does. Under load, for the whole replay:
the research app (in the engine's process, on its loop) runs the largest sweep it offers, the
shipped spec's two parameters over their whole ranges, again and again; and a notebook (a
separate process) sends a heavy query to the read service again and again. The figure that
matters is close -> order p99 under load against idle (target: at most 2x).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import statistics
import sys
import time
from collections.abc import AsyncIterator

from bench_live import run

from workbench.data.shipped import ensure_shipped
from workbench.jobs.research import research_pool
from workbench.store import Store
from workbench.store.sharing import ReadServer
from workbench.ui.research import ResearchApp
from workbench.ui.research_setup import axis_text

# A notebook's heavy query: every candle 100 times over, medians and deviations per symbol.
HEAVY_QUERY = (
    "SELECT c.symbol, r.i % 10 AS bucket, quantile_cont(c.close * (1 + r.i / 1e6), 0.5) AS med, "
    "stddev(c.volume * r.i) AS sd FROM candles c, range(100) r(i) GROUP BY ALL"
)
NOTEBOOK = """
import sys, time
from workbench.store.sharing import query_owner
while True:
    began = time.perf_counter()
    query_owner(sys.argv[2], db=sys.argv[1])
    print(time.perf_counter() - began, flush=True)
"""


class Load:
    """What runs beside the engine: the app's largest sweep, looped; a notebook's query."""

    def __init__(self, research: bool) -> None:
        self.research = research
        self.sweeps: list[float] = []
        self.queries: list[float] = []
        self.grid = 0

    @contextlib.asynccontextmanager
    async def __call__(self, store: Store) -> AsyncIterator[None]:
        ensure_shipped(store)  # before the read service locks the instance down
        reads = await ReadServer(store).start()
        assert store.path is not None
        if not self.research:
            try:
                yield
            finally:
                await reads.stop()
            return
        await research_pool().start().wait()  # a warm worker, as after the first job
        app = ResearchApp(store.path)
        view = app.sweep
        spec = app.setup.spec()
        view.x_values = axis_text(spec, view.x, max_values=10**6)
        view.y_values = axis_text(spec, view.y, max_values=10**6)
        stop = asyncio.Event()

        async def sweeps() -> None:
            while not stop.is_set():
                began = time.perf_counter()
                if await view.run() is None:
                    if stop.is_set():
                        return  # cancelled as the replay ended
                    raise RuntimeError(app.jobs.message)
                self.sweeps.append(time.perf_counter() - began)

        notebook = await asyncio.create_subprocess_exec(
            sys.executable,
            "-c",
            NOTEBOOK,
            str(store.path),
            HEAVY_QUERY,
            stdout=asyncio.subprocess.PIPE,
        )

        async def answers() -> None:
            assert notebook.stdout is not None
            async for line in notebook.stdout:
                self.queries.append(float(line))

        self.grid = len(view.grid())
        sweeping = asyncio.create_task(sweeps())
        reading = asyncio.create_task(answers())
        try:
            yield
        finally:
            stop.set()
            notebook.terminate()
            await notebook.wait()
            await reading
            app.jobs.cancel()
            await sweeping
            await reads.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--bars", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=3, help="idle/load pairs, alternated")
    args = parser.parse_args()
    rows = []
    for n in range(args.rounds):
        for research in (False, True):
            load = Load(research)
            figures = asyncio.run(run(10, 10, args.bars, load=load))
            rows.append((research, figures, load))
            what = "load" if research else "idle"
            extra = (
                f"; meanwhile {len(load.sweeps)} sweeps of {load.grid} combinations and "
                f"{len(load.queries)} heavy queries"
                if research
                else ""
            )
            print(
                f"round {n + 1} {what}: close -> order p50 {figures['order_p50_ms']:.2f} ms, "
                f"p99 {figures['order_p99_ms']:.2f} ms ({figures['orders']} orders){extra}",
                flush=True,
            )
    idle = [f["order_p99_ms"] for research, f, _ in rows if not research]
    busy = [f["order_p99_ms"] for research, f, _ in rows if research]
    # Each load run against the idle run just before it: the machine's own load drifts.
    ratios = [b / max(i, 1e-9) for i, b in zip(idle, busy, strict=True)]
    sweeps = [s for research, _, load in rows if research for s in load.sweeps]
    queries = [q for research, _, load in rows if research for q in load.queries]
    print(
        f"10 strategies, {args.bars} bars: close -> order p99 idle "
        f"{', '.join(f'{v:.1f}' for v in idle)} ms, under research load "
        f"{', '.join(f'{v:.1f}' for v in busy)} ms; load/idle per round "
        f"{', '.join(f'{r:.2f}x' for r in ratios)}, median {statistics.median(ratios):.2f}x "
        f"(target <= 2x); a sweep took {sum(sweeps) / max(len(sweeps), 1):.2f} s, a heavy "
        f"query {sum(queries) / max(len(queries), 1):.2f} s on average"
    )


if __name__ == "__main__":
    main()
