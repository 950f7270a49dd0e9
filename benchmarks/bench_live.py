"""Live engine figures: candle-close-to-order latency, memory per strategy, candles per second.

Run: .venv/bin/python benchmarks/bench_live.py [--bars 300]
The engine runs in-process against the local exchange on 127.0.0.1 with a hand-stepped
replay clock; strategies are the shipped examples on 1 or 10 markets.
"""

from __future__ import annotations

import argparse
import asyncio
import resource
import tempfile
import time
from pathlib import Path

import numpy as np

from workbench.broker.paper import PaperBroker
from workbench.exchange import LocalExchange, ManualClock, connect, load_csv_history
from workbench.fills import FillModel
from workbench.live.engine import LiveEngine
from workbench.live.replay import replay
from workbench.settings import Settings
from workbench.store import Store
from workbench.strategy import load_spec

ROOT = Path(__file__).resolve().parents[1]
SPECS = sorted((ROOT / "data" / "strategies").glob("*.json"))
MARKETS = [
    "ETH/BTC",
    "LTC/BTC",
    "XLM/BTC",
    "NXT/BTC",
    "ADA/BTC",
    "XMR/BTC",
    "DASH/BTC",
    "ZEC/BTC",
    "ETC/BTC",
    "TRX/BTC",
]
STEP_MS = 300_000


def rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


async def run(strategies: int, markets: int, bars: int) -> dict[str, float]:
    symbols = MARKETS[:markets]
    history = load_csv_history(ROOT / "data" / "candles", symbols)
    history = {s: f.iloc[: bars + 1] for s, f in history.items()}
    first = int(history[symbols[0]].index[0].value // 1_000_000)
    clock = ManualClock(first + 1)
    latencies: list[float] = []
    async with LocalExchange(history, clock=clock, tick_s=0.002) as server:
        clients = connect("local", settings=Settings(), port=server.port)
        await clients.load_markets()
        with (
            tempfile.TemporaryDirectory() as folder,
            Store.open(Path(folder) / "b.duckdb") as store,
        ):
            engine = LiveEngine(store, clients, PaperBroker(), fill_model=FillModel())
            engine.subscribe(
                lambda k, d: latencies.append(d["latency_ms"]) if k == "closed" else None
            )
            before = rss_mb()
            for i in range(strategies):
                spec = load_spec(SPECS[i % len(SPECS)])
                await engine.add_strategy(
                    spec, allocation=1.0, symbol=symbols[i % markets], strategy_id=f"s{i}"
                )
            added_mb = rss_mb() - before
            await engine.start()
            started = time.perf_counter()
            end = first + bars * STEP_MS
            while clock.now_ms() < end:
                clock.advance(STEP_MS // 2)
                await asyncio.sleep(0.002)
            last = end - 2 * STEP_MS
            while any(
                live.runner.last_close_ms is None or live.runner.last_close_ms < last
                for live in engine.strategies.values()
            ):
                await asyncio.sleep(0.01)
            seconds = time.perf_counter() - started
            await engine.stop()
        await clients.close()
    lat = np.array(latencies)
    return {
        "strategies": strategies,
        "markets": markets,
        "p50_ms": float(np.percentile(lat, 50)),
        "p99_ms": float(np.percentile(lat, 99)),
        "per_strategy_us": float(np.percentile(lat, 50)) * 1000 / (strategies / markets),
        "candles_per_s": len(lat) / seconds,
        "strategy_candles_per_s": len(lat) * strategies / markets / seconds,
        "rss_added_mb_per_strategy": added_mb / strategies,
    }


def offline(bars: int) -> float:
    """Candles per second through runner + paper broker + portfolio, no IO."""
    candles = load_csv_history(ROOT / "data" / "candles", ["ETH/BTC"])["ETH/BTC"]
    spec = load_spec(SPECS[0])
    started = time.perf_counter()
    replay(spec, candles)
    return len(candles) / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--bars", type=int, default=300)
    args = parser.parse_args()
    print(
        f"offline replay (runner + paper broker + portfolio): {offline(args.bars):,.0f} candles/s"
    )
    for strategies, markets in ((1, 1), (50, 10)):
        r = asyncio.run(run(strategies, markets, args.bars))
        print(
            f"{r['strategies']:>3} strategies on {r['markets']:>2} markets: close->orders "
            f"p50 {r['p50_ms']:.2f} ms, p99 {r['p99_ms']:.2f} ms per closed candle "
            f"({r['per_strategy_us']:.0f} us per strategy); {r['candles_per_s']:.0f} market "
            f"candles/s, {r['strategy_candles_per_s']:.0f} strategy-candles/s; "
            f"~{r['rss_added_mb_per_strategy']:.2f} MB per strategy"
        )


if __name__ == "__main__":
    main()
