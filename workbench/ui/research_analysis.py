"""Research views over one run: Monte Carlo on its trades, and the stored runs, compared."""

from __future__ import annotations

from typing import Any

import pandas as pd
import panel as pn
import param

from workbench.backtest.montecarlo import METHODS, MonteCarloResult
from workbench.jobs.research import monte_carlo_job
from workbench.store import Store
from workbench.ui.backtest_charts import (
    closed_trades,
    distribution_figure,
    equity_figure,
    fan_figure,
)
from workbench.ui.formats import format_stat, quote_of, run_quote
from workbench.ui.jobs import Jobs
from workbench.ui.research_setup import ResearchSetup
from workbench.ui.stat_tables import display_frame, stat_table

RUN_COLUMNS = ["run_id", "kind", "spec_name", "symbols", "timeframe", "total_return", "sharpe"]
RUN_COLUMNS += ["max_drawdown", "trades", "combinations", "created_at"]
RUN_NUMBERS = ["total_return", "sharpe", "max_drawdown", "trades", "combinations"]


def summary_table(summary: dict[str, Any], quote: str | None = None) -> pd.DataFrame:
    """Give a Monte Carlo summary flattened to (statistic, value) display rows (amounts in
    ``quote``)."""
    rows = []
    for key, value in summary.items():
        if isinstance(value, dict):
            rows += [(f"{key} {q}", format_stat(key, v, quote)) for q, v in value.items()]
        else:
            rows.append((key, format_stat(key, value, quote)))
    return pd.DataFrame(rows, columns=["statistic", "value"])


def runs_shown(runs: pd.DataFrame) -> pd.DataFrame:
    """Give stored runs (`RunStore.list_runs`) as display text, amounts in each run's quote."""
    quotes = [run_quote(str(s).split(", ")) for s in runs["symbols"]] if "symbols" in runs else None
    return display_frame(runs, quotes=quotes)


def compared_shown(table: pd.DataFrame) -> pd.DataFrame:
    """Give runs side by side (`RunStore.compare`: a column per run, a row per field or
    statistic) as display text, each row read by its name."""
    shown = {}
    for run_id, column in table.items():
        quote = run_quote(str(column.get("symbols") or "").split(", "))
        shown[run_id] = [format_stat(str(name), v, quote) for name, v in column.items()]
    return pd.DataFrame(shown, index=table.index)


class MonteCarloView(param.Parameterized):
    """Resample the latest backtest's closed trades: equity fan and drawdown distribution."""

    paths = param.Integer(default=2_000, bounds=(100, 50_000))
    method = param.Selector(default="shuffle", objects=list(METHODS))
    block = param.Integer(default=5, bounds=(1, None), doc="trades per block (method 'block')")
    seed = param.Integer(default=42)
    result = param.Parameter(default=None, doc="the latest MonteCarloResult")

    def __init__(self, setup: ResearchSetup, jobs: Jobs, backtest_view: Any, **kw: Any) -> None:
        super().__init__(**kw)
        self.setup, self.jobs, self.backtest_view = setup, jobs, backtest_view
        self.run_button = pn.widgets.Button(label="Run Monte Carlo", color="primary")
        self.run_button.on_click(self._run)
        self.body = pn.Column(
            pn.pane.Markdown("Resamples the trades of the latest **Backtest**."),
            sizing_mode="stretch_width",
        )

    async def run(self) -> MonteCarloResult | None:
        """Give the Monte Carlo result of the latest backtest's trades, computed in a worker
        process, and show it."""
        backtest = self.backtest_view.result
        if backtest is None:
            self.jobs._show("Run a backtest first: Monte Carlo resamples its trades.", "warning")
            return None
        pnl = closed_trades(backtest.trades)["pnl"].to_numpy(dtype=float)
        args = {"paths": self.paths, "method": self.method, "block": self.block, "seed": self.seed}

        done = await self.jobs.run(
            "Monte Carlo", monte_carlo_job, lambda: (pnl, backtest.cash, args)
        )
        if done is None:
            return None
        self.result, bands = done
        self.body[:] = [
            pn.pane.Bokeh(fan_figure(bands), sizing_mode="stretch_width"),
            pn.Row(
                pn.pane.Bokeh(
                    distribution_figure(self.result.max_drawdown, "max drawdown"),
                    sizing_mode="stretch_width",
                ),
                pn.widgets.Tabulator(
                    summary_table(self.result.summary, quote_of(self.setup.symbol)),
                    show_index=False,
                    disabled=True,
                    width=340,
                ),
                sizing_mode="stretch_width",
            ),
        ]
        return self.result

    async def _run(self, _event: Any = None) -> None:
        await self.run()

    def __panel__(self) -> Any:
        return pn.Column(
            pn.Row(
                pn.widgets.IntInput.from_param(self.param.paths, label="Paths", width=120),
                pn.widgets.Select.from_param(self.param.method, label="Method", width=120),
                pn.widgets.IntInput.from_param(self.param.block, label="Block", width=100),
                pn.widgets.IntInput.from_param(self.param.seed, label="Seed", width=100),
            ),
            self.run_button,
            self.body,
            sizing_mode="stretch_width",
        )


class RunsView(param.Parameterized):
    """Stored runs, newest first; select some and compare their stats and equity."""

    def __init__(self, setup: ResearchSetup, jobs: Jobs, **kw: Any) -> None:
        super().__init__(**kw)
        self.setup, self.jobs = setup, jobs
        self.table = stat_table(
            pd.DataFrame(),
            numbers=RUN_NUMBERS,
            selectable="checkbox",
            sizing_mode="stretch_width",
            height=300,
        )
        self.refresh_button = pn.widgets.Button(label="Refresh")
        self.compare_button = pn.widgets.Button(label="Compare selected", color="primary")
        self.refresh_button.on_click(lambda _e: self.refresh())
        self.compare_button.on_click(lambda _e: self.compare())
        self.comparison = pn.Column(sizing_mode="stretch_width")
        self.refresh()

    def refresh(self) -> pd.DataFrame:
        """Give (and show) the stored runs, newest first."""
        try:
            with Store.open(self.setup.db, read_only=True) as store:
                runs = store.runs.list_runs(limit=200)
        except Exception as exc:  # an older database without runs, or a locked file
            self.jobs._show(f"Cannot list runs: {exc}", "warning")
            runs = pd.DataFrame()
        first = [c for c in RUN_COLUMNS if c in runs.columns]
        runs = runs[first + [c for c in runs.columns if c not in first]]
        self.runs = runs
        self.table.value = runs_shown(runs)
        return runs

    def compare(self, run_ids: list[str] | None = None) -> pd.DataFrame | None:
        """Give runs side by side (the selected ones by default) and overlay their equity."""
        if run_ids is None:
            runs = self.runs
            run_ids = [runs.iloc[i]["run_id"] for i in self.table.selection] if len(runs) else []
        if not run_ids:
            self.jobs._show("Select runs in the table to compare them.", "warning")
            return None
        with Store.open(self.setup.db, read_only=True) as store:
            rs = store.runs
            table = rs.compare(run_ids)
            curves = {f"{rid} {rs.get(rid)['spec_name']}": rs.equity(rid) for rid in run_ids}
        curves = {k: v for k, v in curves.items() if len(v)}
        shown = compared_shown(table)
        self.comparison[:] = [
            pn.widgets.Tabulator(shown, disabled=True, sizing_mode="stretch_width"),
            *(
                [pn.pane.Bokeh(equity_figure(curves), sizing_mode="stretch_width")]
                if curves
                else []
            ),
        ]
        return table

    def __panel__(self) -> Any:
        return pn.Column(
            pn.Row(self.refresh_button, self.compare_button),
            self.table,
            self.comparison,
            sizing_mode="stretch_width",
        )
