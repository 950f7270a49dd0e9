"""Sweep throughput and memory of the fused sweep, against a plain Python loop.

Run: ``.venv/bin/python benchmarks/bench_backtest.py [--quick] [--skip-large]``. Each scenario runs
in its own process so its peak memory (max RSS) is its own. Bars are synthesized by a
random walk (5m), the strategy is data/strategies/sma_cross.json (fees 0.1 %).

The cost per combination x bar is given in wall time and, for one worker, in CPU time
(what holds when other processes share the cores). Figures: combinations per second of the
sweep (1 and 2 Dask workers) and of a plain per-combination Python bar loop on the same data,
their ratio, the cost per combination and per combination x bar; for the large sweeps (100k
and 1M combinations) the peak RSS, the RSS after each chunk (flat when the working set is
bounded) and how much the peak grows per combination from 100k to 1M (the result table
itself: 17 numbers per combination).
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
SPEC = ROOT / "data" / "strategies" / "sma_cross.json"


def bars(n: int, seed: int = 1) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    close = 100.0 * np.exp(np.cumsum(rng.normal(0, 0.002, n)))
    open_ = np.concatenate([[100.0], close[:-1]])
    spread = np.abs(rng.normal(0, 0.001, n)) * close
    index = pd.date_range("2020-01-01", periods=n, freq="5min", tz="UTC", name="ts")
    return pd.DataFrame(
        {
            "open": open_,
            "high": np.maximum(open_, close) + spread,
            "low": np.minimum(open_, close) - spread,
            "close": close,
            "volume": np.ones(n),
        },
        index=index,
    )


def grid_axes(combos: int) -> dict[str, list[int]]:
    n_fast = 50 if combos >= 2000 else 10
    n_slow = -(-combos // n_fast)
    return {"fast": list(range(5, 5 + n_fast)), "slow": list(range(60, 60 + 5 * n_slow, 5))}


def plain_loop(candles: pd.DataFrame, fast: int, slow: int, cash: float, fee: float) -> float:
    """One combination, bar by bar in Python: SMA cross, next-open fills, all-in sizing."""
    o, c = candles["open"].tolist(), candles["close"].tolist()
    quote, base, sum_f, sum_s = cash, 0.0, 0.0, 0.0
    prev_f = prev_s = None
    want = None
    for i in range(len(c)):
        if want == "buy" and base == 0.0:
            base = quote / (o[i] * (1 + fee))
            quote = 0.0
        elif want == "sell" and base > 0.0:
            quote, base = base * o[i] * (1 - fee), 0.0
        want = None
        sum_f += c[i] - (c[i - fast] if i >= fast else 0.0)
        sum_s += c[i] - (c[i - slow] if i >= slow else 0.0)
        f = sum_f / fast if i >= fast - 1 else None
        s = sum_s / slow if i >= slow - 1 else None
        if f is not None and s is not None and prev_f is not None and prev_s is not None:
            if f > s and prev_f <= prev_s:
                want = "buy"
            elif f < s and prev_f >= prev_s:
                want = "sell"
        prev_f, prev_s = f, s
    return quote + base * c[-1]


def current_rss_mb() -> float:
    """Give this process's resident memory now (not the peak), in MB."""
    with open("/proc/self/statm") as f:
        pages = int(f.read().split()[1])
    return pages * resource.getpagesize() / 2**20


def scenario(name: str, n_bars: int, combos: int, workers: int) -> dict:
    from workbench.backtest.sweep import SweepSettings, build_grid, sweep
    from workbench.strategy.loader import load_spec

    spec = load_spec(SPEC)
    candles = {"SYN/USDT": bars(n_bars)}
    settings = SweepSettings(cash=10_000.0, fee_rate=0.001)
    out: dict = {"scenario": name, "bars": n_bars, "workers": workers}
    if name == "plain":
        sample = [(5 + k, 60 + 5 * k) for k in range(min(combos, 5))]
        start = time.perf_counter()
        for fast, slow in sample:
            plain_loop(candles["SYN/USDT"], fast, slow, 10_000.0, 0.001)
        elapsed = time.perf_counter() - start
        out.update(combinations=len(sample), seconds=elapsed, per_s=len(sample) / elapsed)
    else:
        grid = build_grid(spec, grid_axes(combos))
        # Warm-up: compile (numba cache / Rust engine) before timing.
        sweep(spec, {"SYN/USDT": candles["SYN/USDT"].iloc[:500]}, grid.iloc[:2], settings)
        cluster = client = None
        address = None
        if workers > 1:
            from dask.distributed import Client, LocalCluster

            cluster = LocalCluster(n_workers=workers, threads_per_worker=1, dashboard_address=None)
            address = cluster.scheduler_address
            client = Client(cluster)
            # Warm the workers too: imports and compiled kernels before timing.
            sweep(
                spec,
                {"SYN/USDT": candles["SYN/USDT"].iloc[:500]},
                grid.iloc[:8],
                settings,
                cluster=address,
            )
        samples: list[float] = []
        start = time.perf_counter()
        cpu_start = time.process_time()
        table = sweep(
            spec,
            candles,
            grid,
            settings,
            cluster=address,
            memory_mb=256 if name == "large" else 1024,
            progress=lambda done, total: samples.append(current_rss_mb()),
        )
        elapsed = time.perf_counter() - start
        out["cpu_seconds"] = time.process_time() - cpu_start
        out.update(combinations=len(table), seconds=elapsed, per_s=len(table) / elapsed)
        out.update(chunks=len(samples), rss_min_mb=min(samples), rss_max_mb=max(samples))
        out["table_mb"] = table.memory_usage(index=False).sum() / 2**20
        if client is not None:
            rss = client.run(lambda: resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
            out["worker_peak_mb"] = max(rss.values()) / 1024
            client.close()
            cluster.close()
    out["peak_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return out


def run_child(*args: str) -> dict:
    cmd = [sys.executable, __file__, "--child", *args]
    done = subprocess.run(cmd, capture_output=True, text=True, check=True, cwd=ROOT)
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--skip-large", action="store_true")
    parser.add_argument("--child", nargs=4, metavar=("NAME", "BARS", "COMBOS", "WORKERS"))
    args = parser.parse_args()
    if args.child:
        name, n_bars, combos, workers = args.child
        print(json.dumps(scenario(name, int(n_bars), int(combos), int(workers))))
        return
    n_bars, combos = (20_000, 200) if args.quick else (100_000, 2_000)
    large_bars, large_combos = (500, 20_000) if args.quick else (1_000, 1_000_000)
    results = [
        run_child("sweep", str(n_bars), str(combos), "1"),
        run_child("sweep", str(n_bars), str(combos), "2"),
        run_child("plain", str(n_bars), str(combos), "1"),
    ]
    if not args.skip_large:
        results.append(run_child("large", str(large_bars), str(large_combos // 10), "1"))
        results.append(run_child("large", str(large_bars), str(large_combos), "1"))
    plain = results[2]["per_s"]
    for r in results:
        ratio = f"  x{r['per_s'] / plain:,.1f} vs plain loop" if r["scenario"] == "sweep" else ""
        extra = f", workers peak {r['worker_peak_mb']:.0f} MB" if "worker_peak_mb" in r else ""
        cell_ns = 1e9 / (r["per_s"] * r["bars"])
        if "cpu_seconds" in r and r["workers"] == 1:
            # This process's CPU time: the figure that holds when other work shares the cores.
            cpu_ns = 1e9 * r["cpu_seconds"] / (r["combinations"] * r["bars"])
            print(f"       {cpu_ns:.2f} ns/combo-bar of CPU time in one process")
        print(
            f"{r['scenario']:6s} bars={r['bars']:>7,} combos={r['combinations']:>9,} "
            f"workers={r['workers']} {r['seconds']:8.1f} s {r['per_s']:10,.1f} combos/s "
            f"({1e6 / r['per_s']:,.0f} us/combo, {cell_ns:.1f} ns/combo-bar) "
            f"peak {r['peak_mb']:.0f} MB{extra}{ratio}"
        )
        if "chunks" in r:
            print(
                f"       {r['chunks']} chunks, RSS after each chunk {r['rss_min_mb']:.0f}-"
                f"{r['rss_max_mb']:.0f} MB, result table {r['table_mb']:.0f} MB"
            )
    if not args.skip_large:
        small, big = results[-2], results[-1]
        grow = (big["peak_mb"] - small["peak_mb"]) * 2**20
        added = big["combinations"] - small["combinations"]
        print(
            f"bounded: {big['combinations']:,} vs {small['combinations']:,} combinations: "
            f"peak {big['peak_mb']:.0f} vs {small['peak_mb']:.0f} MB, "
            f"+{grow / added:,.0f} bytes per extra combination "
            f"(the result row is {17 * 8} bytes)"
        )


if __name__ == "__main__":
    main()
