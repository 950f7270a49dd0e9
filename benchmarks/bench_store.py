"""Store figures: import rate for 1 million candles, one symbol-month read, SQL resample 1m→1h.

Run: .venv/bin/python benchmarks/bench_store.py [--rows N]
Prints per-item costs and rates; the database lives in a temporary folder.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from workbench.data import import_file
from workbench.store import Store


def random_walk(rows: int, start: str = "2024-01-01", seed: int = 7) -> pd.DataFrame:
    """Give `rows` one-minute candles of a positive random walk."""
    rng = np.random.default_rng(seed)
    close = 100 * np.exp(np.cumsum(rng.normal(0, 1e-3, rows)))
    open_ = np.concatenate([[100.0], close[:-1]])
    spread = np.abs(rng.normal(0, 5e-4, rows)) * close
    index = pd.date_range(start, periods=rows, freq="1min", tz="UTC", name="ts")
    return pd.DataFrame(
        {
            "open": open_,
            "high": np.maximum(open_, close) + spread,
            "low": np.minimum(open_, close) - spread,
            "close": close,
            "volume": rng.uniform(1, 100, rows),
        },
        index=index,
    )


def timed(label: str, items: int, unit: str, action) -> float:
    started = time.perf_counter()
    action()
    seconds = time.perf_counter() - started
    print(f"{label:<44} {seconds:8.3f} s  {items / seconds:12,.0f} {unit}/s")
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=1_000_000)
    args = parser.parse_args()
    candles = random_walk(args.rows)
    with tempfile.TemporaryDirectory() as folder:
        csv = Path(folder) / "BENCH_USDT-1m.csv.gz"
        candles.rename_axis("time").reset_index().to_csv(csv, index=False)
        with Store.open(Path(folder) / "bench.duckdb") as store:
            timed(
                f"import {args.rows:,} candles from CSV.gz",
                args.rows,
                "rows",
                lambda: import_file(store, csv, exchange="bench"),
            )
            timed(
                "re-import the same file (no change)",
                args.rows,
                "rows",
                lambda: import_file(store, csv, exchange="bench"),
            )
            timed(
                f"write {args.rows:,} candles from a DataFrame",
                args.rows,
                "rows",
                lambda: store.candles.write("frame", "BENCH/USDT", "1m", candles),
            )
            month = candles.index[0] + pd.Timedelta(days=30)
            reads = 50
            seconds = timed(
                f"read one symbol-month x{reads}",
                reads,
                "reads",
                lambda: [
                    store.candles.read("bench", "BENCH/USDT", "1m", candles.index[0], month)
                    for _ in range(reads)
                ],
            )
            print(f"  -> {seconds / reads * 1000:.1f} ms per symbol-month (43,200 rows)")
            seconds = timed(
                f"SQL resample 1m->1h of {args.rows:,} rows x5",
                5 * args.rows,
                "rows",
                lambda: [
                    store.candles.resample("bench", "BENCH/USDT", "1m", "1h") for _ in range(5)
                ],
            )
            print(f"  -> {seconds / 5 * 1000:.1f} ms per resample")
            started = time.perf_counter()
            agg = {"open": "first", "high": "max", "low": "min", "close": "last", "volume": "sum"}
            for _ in range(5):
                candles.resample("1h").agg(agg).dropna()
            pandas_s = (time.perf_counter() - started) / 5
            print(
                f"  -> pandas resample of the same frame: {pandas_s * 1000:.1f} ms "
                f"(SQL/pandas = {seconds / 5 / pandas_s:.2f})"
            )


if __name__ == "__main__":
    main()
