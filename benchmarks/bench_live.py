"""Live engine figures: candle-close-to-order latency, memory per strategy, candles per second,
and how fast CcxtBroker learns that a resting order filled (user data stream vs polling).

Run: .venv/bin/python benchmarks/bench_live.py [--bars 300]
The 50-strategy run goes once on a DuckDB file and once on a throwaway PostgreSQL server
(durable defaults), side by side.
The engine runs against the local exchange on 127.0.0.1 (in a process of its own) with a
hand-stepped replay clock; strategies are the shipped examples on 1 or 10 markets.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import resource
import tempfile
import time
from collections.abc import Awaitable, Callable
from contextlib import AbstractAsyncContextManager
from pathlib import Path

import numpy as np
from exchange_process import SharedClock, exchange_process

from workbench.broker.base import Execution
from workbench.broker.ccxt_broker import CcxtBroker
from workbench.broker.models import Order, OrderState, OrderType
from workbench.broker.paper import PaperBroker
from workbench.fills import FillModel, Side
from workbench.live.engine import LiveEngine
from workbench.live.events import CandleClosed
from workbench.live.replay import replay
from workbench.localexchange import LOCAL_API_KEY, LocalExchange, ManualClock, load_csv_history
from workbench.localexchange.faults import FaultKind
from workbench.settings import Settings
from workbench.store import Store
from workbench.store.local_postgres import LocalPostgres
from workbench.strategy import load_spec
from workbench.venue import connect

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


async def run(
    strategies: int,
    markets: int,
    bars: int,
    db: str | None = None,
    load: Callable[[Store], AbstractAsyncContextManager[object]] | None = None,
    attach: Callable[[LiveEngine, Store], Awaitable[Callable[[], Awaitable[None]]]] | None = None,
    samples: list[float] | None = None,
    windows: list[tuple[float, float]] | None = None,
    *,
    flood: bool = False,
    mixed: bool = False,
) -> dict[str, float]:
    """Give the figures of `strategies` on `markets` over `bars` bars; with `load`, entered
    on the engine's store just before the engine starts and left after it stops (work the
    engine's process does meanwhile: `bench_research_load.py`); `attach(engine, store)` may
    add listeners (`bench_ops.py`) and gives what stops them; `samples` gets each order's
    close -> order wait (ms), for percentiles over several runs, and `windows` its bar's
    arrival and its submission (perf_counter seconds).

    The replay closes one bar of every market at once and waits until every strategy has
    taken it and the engine's background writes are done, as a market does between closes;
    with `flood` it steps half a bar every 2 ms whether the engine keeps up or not (its
    throughput: candles/s, the queue included). The local exchange runs in a process of its
    own (`exchange_process`), as a venue is another machine.

    Strategy i trades market i % markets with spec i % 10: with 10 markets, each market's
    strategies are copies of one spec, which decide alike, so every bar with an order is a
    burst of one order per strategy of the market, one after the other (the worst case).
    With `mixed`, each market's strategies run different specs (spec (i + i // markets) % 10),
    as a portfolio of rules would."""
    symbols = MARKETS[:markets]
    history = load_csv_history(ROOT / "data" / "candles", symbols)
    history = {s: f.iloc[: bars + 1] for s, f in history.items()}
    first = int(history[symbols[0]].index[0].value // 1_000_000)
    clock = SharedClock(first + 1)
    latencies: list[float] = []
    async with exchange_process(ROOT / "data" / "candles", symbols, bars, clock) as port:
        clients = connect("local", settings=Settings(), port=port)
        await clients.load_markets()
        with (
            tempfile.TemporaryDirectory() as folder,
            Store.open(db or Path(folder) / "b.duckdb") as store,
        ):
            broker = PaperBroker()
            engine = LiveEngine(store, clients, broker, fill_model=FillModel())
            # When each bar's close reached the engine (per market), and when each order
            # decided on it went to the broker.
            closes: dict[tuple[str, int], float] = {}
            submits: list[tuple[str, int, float]] = []

            def on_event(event: object) -> None:
                if isinstance(event, CandleClosed):
                    latencies.append(event.latency_ms)
                    arrived = time.perf_counter() - event.latency_ms / 1000
                    closes[(event.key[1], event.candle.ts_ms)] = arrived

            submit = broker.submit

            async def timed_submit(order: Order) -> Execution:
                # Decided on the bar before the open it is placed at, or (a stop found on
                # the bar's path) on the bar just closed.
                bar = (
                    order.created_ms if order.stop_price is not None else order.created_ms - STEP_MS
                )
                submits.append((order.symbol, bar, time.perf_counter()))
                return await submit(order)

            broker.submit = timed_submit  # type: ignore[method-assign]
            engine.subscribe(on_event)
            detach = await attach(engine, store) if attach is not None else None
            before = rss_mb()
            for i in range(strategies):
                which = (i + i // markets) if mixed else i
                spec = load_spec(SPECS[which % len(SPECS)])
                await engine.add_strategy(
                    spec, allocation=1.0, symbol=symbols[i % markets], strategy_id=f"s{i}"
                )
            added_mb = rss_mb() - before
            extra = load(store) if load is not None else contextlib.nullcontext()
            await extra.__aenter__()
            await engine.start()
            while any(feed.forming is None for feed in engine.feeds.values()):
                clock.advance(1)  # until every feed's stream is subscribed and speaks
                await asyncio.sleep(0.005)
            started = time.perf_counter()
            end = first + bars * STEP_MS
            busy = 0.0
            while clock.now_ms() < end:
                if flood:
                    clock.advance(STEP_MS // 2)
                    await asyncio.sleep(0.002)
                    continue
                # As the market goes: every market's bar closes at once, then nothing
                # happens until the next close (the engine is given the time it takes).
                clock.advance(STEP_MS)
                closed = clock.now_ms() - clock.now_ms() % STEP_MS - STEP_MS
                stepped = time.perf_counter()
                await _taken(engine, closed)
                busy += time.perf_counter() - stepped
                await _idle(engine, store)
            last = end - 2 * STEP_MS
            await _taken(engine, last)
            seconds = (time.perf_counter() - started) if flood else busy
            if detach is not None:
                await detach()
            await engine.stop()
            await extra.__aexit__(None, None, None)
        await clients.close()
    lat = np.array(latencies)
    # An order's wait from its bar's close to the broker (orders of bars the engine closed):
    # from its own market's close reaching the engine, and from the first market's close of
    # that bar (the wait behind the other markets' closes included).
    first_close: dict[int, float] = {}
    for (_sym, bar), arrived in closes.items():
        first_close[bar] = min(arrived, first_close.get(bar, arrived))
    taken = [(sym, bar, t) for sym, bar, t in submits if (sym, bar) in closes]
    waits = np.array([(t - closes[(sym, bar)]) * 1000 for sym, bar, t in taken])
    bursts = np.array([(t - first_close[bar]) * 1000 for _sym, bar, t in taken])
    if samples is not None:
        samples.extend(float(w) for w in waits)
    if windows is not None:
        windows.extend((closes[(sym, bar)], t) for sym, bar, t in taken)
    return {
        "strategies": strategies,
        "markets": markets,
        "orders": len(waits),
        "order_p50_ms": float(np.percentile(waits, 50)) if len(waits) else float("nan"),
        "order_p99_ms": float(np.percentile(waits, 99)) if len(waits) else float("nan"),
        "burst_p50_ms": float(np.percentile(bursts, 50)) if len(bursts) else float("nan"),
        "burst_p99_ms": float(np.percentile(bursts, 99)) if len(bursts) else float("nan"),
        "p50_ms": float(np.percentile(lat, 50)),
        "p99_ms": float(np.percentile(lat, 99)),
        "per_strategy_us": float(np.percentile(lat, 50)) * 1000 / (strategies / markets),
        "candles_per_s": len(lat) / seconds,
        "strategy_candles_per_s": len(lat) * strategies / markets / seconds,
        "rss_added_mb_per_strategy": added_mb / strategies,
    }


async def _idle(engine: LiveEngine, store: Store) -> None:
    """Do what the engine's background work does in the minutes between two closes before
    the next one: the bars and marks it buffered stored, every journaled write applied.
    Stepped back to back, that work (milliseconds of DuckDB commits on other threads) fell
    on the next close, which a market five minutes apart never does."""
    engine.flush()
    await asyncio.to_thread(store.trading.writes.drain)


async def _taken(engine: LiveEngine, closed_ms: int) -> None:
    """Wait until every strategy has taken the bar `closed_ms` and no order is in hand."""
    deadline = time.monotonic() + 60
    while any(
        live.runner.last_close_ms is None
        or live.runner.last_close_ms < closed_ms
        or live.lock.locked()
        for live in engine.strategies.values()
    ):
        if time.monotonic() > deadline:
            raise TimeoutError(f"the engine never took the bar of {closed_ms}")
        await asyncio.sleep(0.001)


async def follow_latency(orders: int, stream: bool) -> dict[str, float]:
    """Give the time from the clock step that fills a resting limit to the broker's report."""
    history = load_csv_history(ROOT / "data" / "candles", ["ETH/BTC"])
    clock = ManualClock(int(history["ETH/BTC"].index[3000].value // 1_000_000) + 1)
    latencies: list[float] = []
    async with LocalExchange(history, clock=clock, tick_s=0.002) as server:
        clients = connect("local", settings=Settings(), port=server.port)
        await clients.load_markets()
        if not stream:
            await server.inject_fault(FaultKind.DROP_WEBSOCKETS, duration_s=3600)
        broker = CcxtBroker(clients, poll_s=0.2, sweep_s=5.0, backoff_s=0.2)
        filled: dict[str, float] = {}

        async def report(execution: Execution) -> None:
            if execution.order.state is OrderState.FILLED:
                filled.setdefault(execution.order.client_order_id, time.perf_counter())

        follower = asyncio.create_task(broker.run(report))
        await asyncio.sleep(0.5)
        frame = history["ETH/BTC"]
        opens = frame.index.as_unit("ms").asi8
        for n in range(orders):
            price = (await clients.rest.fetch_ticker("ETH/BTC"))["last"]
            # A limit the next bars are known to reach (the lowest low ahead), not already hit.
            ahead = frame[opens > clock.now_ms()].iloc[:3]
            limit = float(ahead["low"].min())
            if limit >= price:
                clock.advance(STEP_MS)
                continue
            cid = f"bench-{n}"
            await broker.submit(Order(cid, "b", "ETH/BTC", Side.BUY, OrderType.LIMIT, 0.1, limit))
            while True:
                stepped = time.perf_counter()
                clock.advance(STEP_MS // 30)
                server.engine.step()  # match at once (the server's tick would within 2 ms)
                if not server.engine.matcher.find(
                    LOCAL_API_KEY, "ETHBTC", None, cid
                ).status.is_open:
                    break
                await asyncio.sleep(0.002)
            while cid not in filled:
                await asyncio.sleep(0.0005)
            latencies.append((filled[cid] - stepped) * 1000)
        follower.cancel()
        await clients.close()
    lat = np.array(latencies)
    return {"p50_ms": float(np.percentile(lat, 50)), "p99_ms": float(np.percentile(lat, 99))}


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
    with LocalPostgres(durable=True) as server:
        runs = [(1, 1, "duckdb", None, False), (50, 10, "duckdb", None, False)]
        runs += [(50, 10, "duckdb", None, True)]
        runs += [(50, 10, "postgres", server.create_database("bench_live"), False)]
        results = [
            (backend, mixed, asyncio.run(run(n, m, args.bars, db, mixed=mixed)))
            for n, m, backend, db, mixed in runs
        ]
    for backend, mixed, r in results:
        kind = "different specs" if mixed else "one spec"
        print(
            f"{backend:<8} {r['strategies']:>3} strategies on {r['markets']:>2} markets ({kind} "
            f"per market), all closing at once: close -> order submitted p50 "
            f"{r['order_p50_ms']:.2f} ms, p99 {r['order_p99_ms']:.2f} ms from its market's "
            f"close reaching the engine; p50 "
            f"{r['burst_p50_ms']:.2f} ms, p99 {r['burst_p99_ms']:.2f} ms from the bar's first "
            f"close ({r['orders']} orders); closed bar handled p50 {r['p50_ms']:.2f} ms, p99 "
            f"{r['p99_ms']:.2f} ms per market ({r['per_strategy_us']:.0f} us per strategy); "
            f"~{r['rss_added_mb_per_strategy']:.2f} MB per strategy"
        )
    flood = asyncio.run(run(50, 10, args.bars, flood=True))
    print(
        f"duckdb    50 strategies on 10 markets, flooded (half a bar every 2 ms, queue "
        f"included): {flood['candles_per_s']:.0f} market candles/s, "
        f"{flood['strategy_candles_per_s']:.0f} strategy-candles/s; close -> order p50 "
        f"{flood['order_p50_ms']:.2f} ms, p99 {flood['order_p99_ms']:.2f} ms"
    )
    for stream in (True, False):
        f = asyncio.run(follow_latency(20, stream))
        how = "watch_orders stream" if stream else "REST polling (stream refused, poll_s 0.2)"
        print(
            f"resting order filled -> reported by CcxtBroker via {how}: "
            f"p50 {f['p50_ms']:.1f} ms, p99 {f['p99_ms']:.1f} ms"
        )


if __name__ == "__main__":
    main()
