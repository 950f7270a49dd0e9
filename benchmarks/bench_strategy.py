"""Strategy evaluation figures: incremental µs per candle, vectorized grid seconds and memory.

Run: .venv/bin/python benchmarks/bench_strategy.py [--bars 100000] [--combos 2000]
"""

from __future__ import annotations

import argparse
import resource
import time
import tracemalloc

import numpy as np
import pandas as pd

from workbench.strategy import IncrementalStrategy, evaluate, load_spec

FIVE_INDICATORS = {
    "name": "bench_five",
    "market": {"symbol": "ETH/BTC", "timeframe": "5m"},
    "params": {
        "fast": {"default": 12, "range": [5, 54, 1]},
        "slow": {"default": 60, "range": [60, 200, 20]},
        "rsi_max": {"default": 70, "range": [60, 80, 5]},
    },
    "indicators": {
        "ema_fast": {"kind": "ema", "period": "$fast"},
        "ema_slow": {"kind": "ema", "period": "$slow"},
        "rsi": {"kind": "rsi", "period": 14},
        "bb": {"kind": "bbands", "period": 20, "mult": 2.0},
        "atr": {"kind": "atr", "period": 14},
    },
    "entry": {
        "all": [
            {"crosses_above": ["ema_fast", "ema_slow"]},
            {"lt": ["rsi", "$rsi_max"]},
            {"lt": ["close", "bb.upper"]},
        ]
    },
    "exit": {
        "any": [
            {"crosses_below": ["ema_fast", "ema_slow"]},
            {"lt": ["close", {"sub": ["ema_slow", {"mul": [3, "atr"]}]}]},
        ]
    },
    "risk": {"stop_loss": 0.02},
}


def synthetic_candles(bars: int, seed: int = 1) -> pd.DataFrame:
    """Give a random-walk 5m candle frame with ``bars`` rows."""
    rng = np.random.default_rng(seed)
    close = 0.08 * np.exp(np.cumsum(rng.normal(0, 0.002, bars)))
    open_ = np.concatenate([[close[0]], close[:-1]])
    high = np.maximum(open_, close) * (1 + np.abs(rng.normal(0, 0.001, bars)))
    low = np.minimum(open_, close) * (1 - np.abs(rng.normal(0, 0.001, bars)))
    index = pd.date_range("2022-01-01", periods=bars, freq="5min", tz="UTC", name="ts")
    volume = rng.exponential(100.0, bars)
    return pd.DataFrame(
        {"open": open_, "high": high, "low": low, "close": close, "volume": volume}, index=index
    )


def bench_incremental(candles: pd.DataFrame) -> None:
    spec = load_spec(FIVE_INDICATORS)
    rows = [
        {"ts": ts, **r} for ts, r in zip(candles.index, candles.to_dict("records"), strict=True)
    ]
    live = IncrementalStrategy(spec)
    live.seed(candles.iloc[:1000])
    start = time.perf_counter()
    for row in rows[1000:]:
        live.update(row)
    per_update = (time.perf_counter() - start) / (len(rows) - 1000) * 1e6
    live = IncrementalStrategy(spec)
    start = time.perf_counter()
    live.seed(candles)
    per_seed = (time.perf_counter() - start) / len(candles) * 1e6
    print(
        f"incremental, 5 indicators: update() {per_update:.1f} µs/candle, "
        f"seed() {per_seed:.1f} µs/candle  ({len(candles):,} candles)"
    )


def bench_vectorized(candles: pd.DataFrame, combos: int) -> None:
    spec = load_spec(FIVE_INDICATORS)
    grid = spec.param_grid()  # 50 fast x 8 slow x 5 rsi_max = 2,000
    grid = grid.iloc[:combos].reset_index(drop=True) if combos < len(grid) else grid
    evaluate(spec, candles.iloc[:500], grid.iloc[:4])  # load the numba kernels
    tracemalloc.start()
    start = time.perf_counter()
    signals = evaluate(spec, candles, grid)
    seconds = time.perf_counter() - start
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    out_mb = sum(f.to_numpy().nbytes for f in (signals.entries, signals.exits)) / 2**20
    print(
        f"vectorized: {len(grid):,} combinations x {len(candles):,} bars in {seconds:.2f} s; "
        f"peak traced memory {peak / 2**20:,.0f} MiB (signals themselves {out_mb:,.0f} MiB), "
        f"process max RSS {rss:,.0f} MiB; entries fired {int(signals.entries.to_numpy().sum()):,}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--bars", type=int, default=100_000)
    parser.add_argument("--combos", type=int, default=2_000)
    args = parser.parse_args()
    candles = synthetic_candles(args.bars)
    bench_incremental(candles.iloc[:20_000])
    bench_vectorized(candles, args.combos)


if __name__ == "__main__":
    main()
