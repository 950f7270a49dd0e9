"""The research app never computes in the process that trades: its jobs run in a worker
process while a live engine trades on the same event loop, come back to the page, and can be
cancelled."""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from pathlib import Path

import pandas as pd
import pytest
from pool_work import gone
from shipped import ROOT

from workbench.backtest.sweep import sweep
from workbench.live.events import CandleClosed
from workbench.live.session import Live
from workbench.settings import load_settings
from workbench.store import Store
from workbench.ui.research import ResearchApp
from workbench.ui.research_setup import axis_text

STRATEGIES = ROOT / "data" / "strategies"


@pytest.fixture
async def trading(tmp_path: Path) -> AsyncIterator[Live]:
    """A live engine trading two markets on this loop at 3000x, owning the database, as
    the dashboard's engine does in `panel serve`."""
    settings = load_settings(db=str(tmp_path / "workbench.duckdb"))
    async with Live(settings, paper=True, speed=3000, symbols=["ETH/BTC", "LTC/BTC"]) as live:
        for n, (name, symbol) in enumerate(
            [("sma_cross", "ETH/BTC"), ("ema_cross_rsi", "LTC/BTC")]
        ):
            await live.engine.add_strategy(
                STRATEGIES / f"{name}.json", allocation=0.5, symbol=symbol, strategy_id=f"s{n}"
            )
        await live.engine.start()
        yield live


@contextmanager
def loop_gaps(period_s: float = 0.01) -> Iterator[list[float]]:
    """Record the gaps between the runs of a periodic callback on the running loop."""
    loop = asyncio.get_running_loop()
    gaps: list[float] = []
    last = time.perf_counter()
    handle: asyncio.TimerHandle | None = None

    def tick() -> None:
        nonlocal last, handle
        now = time.perf_counter()
        gaps.append(now - last)
        last = now
        handle = loop.call_later(period_s, tick)

    handle = loop.call_later(period_s, tick)
    try:
        yield gaps
    finally:
        handle.cancel()
        gaps.append(time.perf_counter() - last)  # a hold-up at the very end counts too


def parent_of(pid: int) -> int:
    return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])


async def test_a_sweep_runs_in_a_worker_process_and_the_engine_loop_keeps_pace(
    trading: Live,
) -> None:
    app = ResearchApp(trading.settings.db)
    view = app.sweep
    spec = app.setup.spec()
    # The largest sweep the app offers: both axes over their whole ranges.
    view.x_values = axis_text(spec, view.x, max_values=10**6)
    view.y_values = axis_text(spec, view.y, max_values=10**6)
    closes: list[CandleClosed] = []
    trading.engine.subscribe(lambda e: closes.append(e) if isinstance(e, CandleClosed) else None)
    # The engine alone first: on a machine shared with other work its loop has gaps of its own.
    with loop_gaps() as idle:
        await asyncio.sleep(2.0)
    bound = max(1.0, 2 * max(idle))

    with loop_gaps() as gaps:
        table = await view.run()
    assert table is not None, app.jobs.message
    assert len(table) == len(view.grid()) > 1000
    # The engine went on trading meanwhile, its loop never held up for long: the sweep
    # computed on the loop holds it for its whole run (2 s here, more on a busy machine),
    # while the engine alone shows gaps of 0.1-0.3 s, up to 0.7 s when other work saturates
    # both cores (load average 8 on 2 cores), with or without a research job running.
    assert max(gaps) < bound, (sorted(gaps)[-5:], sorted(idle)[-3:])
    assert len(closes) > 10
    # It ran in a worker process, a child of this one.
    worker = app.jobs.worker_pid
    assert worker is not None and worker != os.getpid()
    assert parent_of(worker) == os.getpid()
    # What came back is the sweep itself.
    direct = sweep(
        spec, {spec.market.symbol: app.setup.candles()}, view.grid(), app.setup.settings()
    )
    pd.testing.assert_frame_equal(table, direct)


async def test_a_running_sweep_is_cancelled_from_the_page(trading: Live) -> None:
    app = ResearchApp(trading.settings.db)
    view = app.sweep
    view.x_values, view.y_values = "5:50:1", "20:200:1"  # some 8,000 combinations
    running = asyncio.create_task(view.run())
    while app.jobs.progress.value <= 0:
        await asyncio.sleep(0.02)
    worker = app.jobs._job.pid
    assert not app.jobs.cancel_button.disabled
    app.jobs.cancel_button.clicks += 1
    assert await running is None
    assert app.jobs.message == "sweep of 7830 combinations cancelled."
    assert view.table is None and not app.jobs.busy and app.jobs.cancel_button.disabled
    assert gone(worker), "the cancelled sweep's worker still runs"
    # The next job gets a fresh worker.
    view.x_values, view.y_values = "5,10", "30"
    assert len(await view.run()) == 2
    assert app.jobs.worker_pid not in (worker, os.getpid())


async def test_a_backtest_from_a_worker_is_stored_by_the_process_owning_the_file(
    trading: Live,
) -> None:
    app = ResearchApp(trading.settings.db)
    result = await app.backtest.run()
    assert result is not None and app.jobs.worker_pid != os.getpid()
    await app.backtest._save()
    run_id = app.backtest.saved_run
    assert run_id
    with Store.open(trading.settings.db, read_only=True) as store:  # borrows the owner's
        stored = store.runs.get(run_id)
        trades = store.runs.trades(run_id)
    assert stored["spec_name"] == result.spec.name
    assert len(trades) == len(result.trades)
