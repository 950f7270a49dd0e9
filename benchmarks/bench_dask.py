"""How a sweep scales on Dask: in-process vs one and two local worker processes, side by side.

Run: ``.venv/bin/python benchmarks/bench_dask.py [--quick] [--rounds N]``. The sweep is
bench_backtest's: data/strategies/sma_cross.json on a synthetic 5m random walk, 2,000
combinations x 100,000 bars (``--quick``: 200 x 20,000). Both clusters are started and warmed
(imports, compiled kernels) before timing; then the three ways take turns for ``--rounds``
rounds, so a neighbour's load hits them alike, and each figure is the median.

Figures: wall seconds and combinations per second of each way; the CPU seconds the work
took (this process for in-process, the workers' for Dask), which shows whether Dask adds
work or only waits; the speed-ups of two workers over one worker and over in-process; and
the machine's load average, since two workers can only be twice as fast on two idle cores.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_backtest import SPEC, bars, grid_axes


def cpu_seconds(client: object | None) -> float:
    """Give the CPU seconds used so far by this process, or by the client's workers."""
    if client is None:
        return time.process_time()
    return sum(client.run(time.process_time).values())  # type: ignore[attr-defined]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    from dask.distributed import Client, LocalCluster

    from workbench.backtest.sweep import SweepSettings, build_grid, sweep
    from workbench.strategy.loader import load_spec

    n_bars, combos = (20_000, 200) if args.quick else (100_000, 2_000)
    spec = load_spec(SPEC)
    candles = {"SYN/USDT": bars(n_bars)}
    grid = build_grid(spec, grid_axes(combos))
    settings = SweepSettings(cash=10_000.0, fee_rate=0.001)
    warm = ({"SYN/USDT": candles["SYN/USDT"].iloc[:500]}, grid.iloc[:8])

    ways: dict[str, tuple[str | None, object | None]] = {"in-process": (None, None)}
    clusters = []
    for n in (1, 2):
        cluster = LocalCluster(
            n_workers=n, threads_per_worker=1, processes=True, dashboard_address=None
        )
        clusters.append(cluster)
        ways[f"{n} worker{'s' if n > 1 else ''}"] = (cluster.scheduler_address, Client(cluster))
    for address, _ in ways.values():
        sweep(spec, warm[0], warm[1], settings, cluster=address)

    walls: dict[str, list[float]] = {name: [] for name in ways}
    cpus: dict[str, list[float]] = {name: [] for name in ways}
    reference = None
    for _ in range(args.rounds):
        for name, (address, client) in ways.items():
            cpu0, start = cpu_seconds(client), time.perf_counter()
            table = sweep(spec, candles, grid, settings, cluster=address)
            walls[name].append(time.perf_counter() - start)
            cpus[name].append(cpu_seconds(client) - cpu0)
            if reference is None:
                reference = table
            assert table.equals(reference), f"{name} gave other numbers"
    for _, client in ways.values():
        if client is not None:
            client.close()  # type: ignore[attr-defined]
    for cluster in clusters:
        cluster.close()

    wall = {name: statistics.median(v) for name, v in walls.items()}
    cpu = {name: statistics.median(v) for name, v in cpus.items()}
    print(
        f"sweep of {len(grid):,} combinations x {n_bars:,} bars, median of {args.rounds} "
        f"rounds; load average {' '.join(f'{x:.1f}' for x in os.getloadavg())} "
        f"on {os.cpu_count()} cores"
    )
    for name in ways:
        print(
            f"  {name:11s} {wall[name]:7.2f} s wall {len(grid) / wall[name]:8,.0f} combos/s "
            f"{cpu[name]:7.2f} s CPU ({1e6 * cpu[name] / len(grid):,.0f} us CPU/combo)"
        )
    print(
        f"  2 workers vs 1 worker x{wall['1 worker'] / wall['2 workers']:.2f}, "
        f"vs in-process x{wall['in-process'] / wall['2 workers']:.2f}"
    )


if __name__ == "__main__":
    main()
