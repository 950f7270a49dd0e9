"""Store figures on both backends side by side: import of 1 million candles, one symbol-month
read, SQL resample 1m→1h, and the latency of an order + fill write (the engine's path).

Run: .venv/bin/python benchmarks/bench_store.py [--rows N] [--postgres URL]
DuckDB is a file in a temporary folder; PostgreSQL is a throwaway server of Debian's binaries
with its durable defaults (fsync and synchronous commit on), or the empty database at URL.
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from workbench.broker.models import Fill, Order, OrderState, OrderType
from workbench.data import import_file
from workbench.fills import Side
from workbench.store import Store
from workbench.store.local_postgres import LocalPostgres


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


def seconds(action: Callable[[], Any]) -> float:
    started = time.perf_counter()
    action()
    return time.perf_counter() - started


def order_fill_latency_ms(store: Store, count: int) -> np.ndarray:
    """Give per-order times of the engine's writes: order row, fill, order's new state."""
    took = []
    for n in range(count):
        order = Order(f"bench-{n}", "bench", "BENCH/USDT", Side.BUY, OrderType.MARKET, 1.0,
                      created_ms=n, updated_ms=n)  # fmt: skip
        started = time.perf_counter()
        store.trading.save_order(order, "bench")
        store.trading.save_fill(
            Fill(
                f"f-{n}",
                order.client_order_id,
                "bench",
                "BENCH/USDT",
                Side.BUY,
                1.0,
                100.0,
                0.1,
                n,
                "entry",
            )
        )
        filled = replace(order, state=OrderState.FILLED, filled=1.0)
        store.trading.save_order(filled, "bench")
        took.append((time.perf_counter() - started) * 1000)
    return np.array(took)


def _order_and_fill(n: int) -> tuple[Order, Fill, Order]:
    order = Order(f"engine-{n}", "bench", "BENCH/USDT", Side.BUY, OrderType.MARKET, 1.0,
                  created_ms=n, updated_ms=n)  # fmt: skip
    fill = Fill(f"ef-{n}", order.client_order_id, "bench", "BENCH/USDT", Side.BUY, 1.0, 100.0,
                0.1, n, "entry")  # fmt: skip
    return order, fill, replace(order, state=OrderState.FILLED, filled=1.0)


async def engine_order_fill_ms(store: Store, count: int) -> tuple[np.ndarray, np.ndarray]:
    """Give per-order times of the live engine's writes as it makes them (the store's engine
    writes on a running loop; the order's and the fill's commits awaited, as the order manager
    awaits them), and of the part of each that held the loop (the store calls themselves)."""
    store.use_engine_writes()
    writes = store.trading.writes
    took, held = [], []
    for n in range(count):
        order, fill, filled = _order_and_fill(n)
        started = time.perf_counter()
        store.trading.save_order(order, "bench")
        blocked = time.perf_counter() - started
        await writes.durable()  # the row before the order is sent
        mark = time.perf_counter()
        store.trading.save_fill(fill)
        blocked += time.perf_counter() - mark
        await writes.durable()  # the fill before it is booked
        mark = time.perf_counter()
        store.trading.save_order(filled, "bench")
        blocked += time.perf_counter() - mark
        took.append((time.perf_counter() - started) * 1000)
        held.append(blocked * 1000)
    await writes.durable()
    await writes.detach()
    return np.array(took), np.array(held)


def measure(target: str, candles: pd.DataFrame, csv: Path, orders: int) -> dict[str, float]:
    rows = len(candles)
    out: dict[str, float] = {}
    with Store.open(target) as store:
        out["import rows/s"] = rows / seconds(lambda: import_file(store, csv, exchange="bench"))
        out["re-import rows/s"] = rows / seconds(lambda: import_file(store, csv, exchange="bench"))
        out["write frame rows/s"] = rows / seconds(
            lambda: store.candles.write("frame", "BENCH/USDT", "1m", candles)
        )
        month = candles.index[0] + pd.Timedelta(days=30)
        reads = 20
        out["symbol-month read ms"] = (
            1000
            / reads
            * seconds(
                lambda: [
                    store.candles.read("bench", "BENCH/USDT", "1m", candles.index[0], month)
                    for _ in range(reads)
                ]
            )
        )
        out["resample 1m->1h ms"] = (
            1000
            / 3
            * seconds(
                lambda: [
                    store.candles.resample("bench", "BENCH/USDT", "1m", "1h") for _ in range(3)
                ]
            )
        )
        latency = order_fill_latency_ms(store, orders)
        out["order+fill p50 ms"] = float(np.percentile(latency, 50))
        out["order+fill p99 ms"] = float(np.percentile(latency, 99))
        took, held = asyncio.run(engine_order_fill_ms(store, orders))
        out["engine order+fill p50 ms"] = float(np.percentile(took, 50))
        out["engine order+fill p99 ms"] = float(np.percentile(took, 99))
        out["  of it holding the loop p50 ms"] = float(np.percentile(held, 50))
        out["  of it holding the loop p99 ms"] = float(np.percentile(held, 99))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--orders", type=int, default=2000)
    parser.add_argument("--postgres", help="an empty PostgreSQL database (default: a local one)")
    args = parser.parse_args()
    candles = random_walk(args.rows)
    with tempfile.TemporaryDirectory() as folder:
        csv = Path(folder) / "BENCH_USDT-1m.csv.gz"
        candles.rename_axis("time").reset_index().to_csv(csv, index=False)
        figures = {"duckdb": measure(str(Path(folder) / "bench.duckdb"), candles, csv, args.orders)}
        if args.postgres:
            figures["postgres"] = measure(args.postgres, candles, csv, args.orders)
        else:
            with LocalPostgres(durable=True) as server:
                url = server.create_database("bench")
                figures["postgres"] = measure(url, candles, csv, args.orders)
    table = pd.DataFrame(figures)
    table["postgres/duckdb"] = table["postgres"] / table["duckdb"]
    print(f"{args.rows:,} one-minute candles, {args.orders:,} orders")
    print(table.to_string(float_format=lambda v: f"{v:,.2f}"))


if __name__ == "__main__":
    main()
