"""The research app: backtest a spec on stored data, sweep two parameters, walk forward, run
Monte Carlo on the trades, and list and compare stored runs (`panel serve apps/research.py`).

Every analysis runs in a worker process (`workbench.ui.jobs`), never in the server's process,
where the live engine may be trading; results come back to the page, and runs are stored by
this process, which owns the database."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from pathlib import Path
from typing import Any

import panel as pn
import param

from workbench.backtest.engine import BacktestResult, backtest
from workbench.backtest.persist import save_backtest
from workbench.jobs.research import backtest_job
from workbench.store import Store
from workbench.ui.backtest_charts import backtest_chart, stats_table
from workbench.ui.formats import quote_of
from workbench.ui.jobs import Jobs
from workbench.ui.layout import lazy_tabs
from workbench.ui.research_analysis import MonteCarloView, RunsView
from workbench.ui.research_setup import REPO_STRATEGIES, ResearchSetup
from workbench.ui.research_sweep import SweepView, WalkForwardView
from workbench.ui.stat_tables import colour_signed, stat_table

TRADE_COLUMNS = ["side", "entry_time", "entry_price", "size", "exit_time", "exit_price"]
TRADE_COLUMNS += ["exit_reason", "pnl", "return"]


def run_backtest(setup: ResearchSetup, params: dict[str, Any] | None = None) -> BacktestResult:
    """Give the backtest of the setup's spec, data and costs (its widget values by default),
    computed here (the app sends it to a worker: `backtest_in_worker`)."""
    return backtest(
        setup.spec(),
        setup.candles(),
        params if params is not None else setup.param_values(),
        cash=float(setup.cash),
        fees=float(setup.fee_rate),
        slippage=float(setup.slippage),
        fee_asset=setup.fee_asset,
        lot_rules=setup.lot_rules(),
    )


async def backtest_in_worker(
    setup: ResearchSetup, jobs: Jobs, params: dict[str, Any] | None = None, label: str = "backtest"
) -> tuple[BacktestResult, pn.Column] | None:
    """Give the backtest of the setup (``params`` or its widget values), computed in a worker
    process, and its result panel, drawn in a thread; None if it failed or was cancelled."""
    spec = setup.spec()
    values = params if params is not None else setup.param_values()

    def inputs() -> tuple[Any, ...]:
        return spec.raw, setup.candles(), values, setup.settings()

    result = await jobs.run(label, backtest_job, inputs)
    if result is None:
        return None
    result = replace(result, spec=spec)
    title = f"{spec.name} · {setup.symbol} {setup.timeframe} · " + ", ".join(
        f"{k}={v}" for k, v in result.params.items()
    )
    return result, await asyncio.to_thread(result_panel, setup, result, title)


def result_panel(setup: ResearchSetup, result: BacktestResult, title: str = "") -> pn.Column:
    """Give a result's charts (price with trades, equity, drawdown), stats and trades."""
    chart = backtest_chart(setup.candles(), result, setup.bar_ms(), title)
    quote = quote_of(setup.symbol)
    stats = colour_signed(
        pn.widgets.Tabulator(
            stats_table(result.stats, quote),
            show_index=False,
            disabled=True,
            widths={"stat": 150, "value": 140},
            height=560,
        )
    )
    return pn.Column(
        pn.Row(
            pn.pane.Bokeh(chart, sizing_mode="stretch_width"),
            pn.Column("### Statistics", stats, width=300),
            sizing_mode="stretch_width",
        ),
        "### Trades",
        stat_table(
            result.trades[TRADE_COLUMNS],
            quote,
            pagination="local",
            page_size=10,
            sizing_mode="stretch_width",
        ),
        sizing_mode="stretch_width",
    )


class BacktestView(param.Parameterized):
    """Run one backtest of the setup and show it; keep it for Monte Carlo and saving."""

    result = param.Parameter(default=None, doc="the latest BacktestResult")
    saved_run = param.String(default="", doc="id of the stored run of the latest result")

    def __init__(self, setup: ResearchSetup, jobs: Jobs, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.setup, self.jobs = setup, jobs
        self.run_button = pn.widgets.Button(label="Run backtest", color="primary")
        self.save_button = pn.widgets.Button(label="Save run", disabled=True)
        self.run_button.on_click(self._run)
        self.save_button.on_click(self._save)
        self.body = pn.Column(
            pn.pane.Markdown("Pick a strategy and data, then **Run backtest**."),
            sizing_mode="stretch_width",
        )

    async def run(self) -> BacktestResult | None:
        """Give the backtest of the current setup, computed in a worker process, and show it."""
        done = await backtest_in_worker(self.setup, self.jobs)
        if done is not None:
            self.result, panel = done
            self.body[:] = [panel]
            self.saved_run = ""
            self.save_button.disabled = False
        return None if done is None else done[0]

    async def _run(self, _event: Any = None) -> None:
        await self.run()

    async def _save(self, _event: Any = None) -> None:
        result, exchange = self.result, self.setup.exchange

        def work() -> str:
            with Store.open(self.setup.db) as store:
                return save_backtest(store, result, exchange)

        run_id = await self.jobs.run_here("saving the run", work)
        if run_id:
            self.saved_run = run_id
            self.save_button.disabled = True
            self.jobs._show(f"Saved as run {run_id}.", "success")

    def __panel__(self) -> Any:
        return pn.Column(
            pn.Row(self.run_button, self.save_button), self.body, sizing_mode="stretch_width"
        )


class ResearchApp(param.Parameterized):
    """Setup in the sidebar, one tab per analysis."""

    def __init__(self, db: str | Path, strategies: Path = REPO_STRATEGIES, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.setup = ResearchSetup(db, strategies)
        self.jobs = Jobs()
        self.backtest = BacktestView(self.setup, self.jobs)
        self.sweep = SweepView(self.setup, self.jobs)
        self.walk_forward = WalkForwardView(self.setup, self.jobs, self.sweep)
        self.monte_carlo = MonteCarloView(self.setup, self.jobs, self.backtest)
        self.runs = RunsView(self.setup, self.jobs)
        self.backtest.param.watch(lambda _e: self.runs.refresh(), ["saved_run"])

    def sidebar(self) -> list[Any]:
        return [self.setup.widgets()]

    def main(self) -> list[Any]:
        tabs = lazy_tabs(
            ("Backtest", self.backtest),
            ("Sweep", self.sweep),
            ("Walk-forward", self.walk_forward),
            ("Monte Carlo", self.monte_carlo),
            ("Runs", self.runs),
            sizing_mode="stretch_width",
        )
        return [self.jobs.view(), tabs]

    def template(self) -> pn.template.BootstrapTemplate:
        """Give the page (Bootstrap template: no external fonts, works offline)."""
        return pn.template.BootstrapTemplate(
            title="Workbench · Research",
            sidebar=self.sidebar(),
            main=self.main(),
            header_background="#1f2937",
            sidebar_width=300,
        )

    def __panel__(self) -> Any:
        return pn.Row(pn.Column(*self.sidebar(), width=300), pn.Column(*self.main()))
