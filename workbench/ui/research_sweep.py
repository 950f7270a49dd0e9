"""Research views over many combinations: a two-parameter sweep as a clickable heatmap, and
walk-forward analysis over the same grid, both computed in a worker process."""

from __future__ import annotations

from typing import Any

import pandas as pd
import panel as pn
import param

from workbench.backtest.sweep import build_grid, parse_grid_arg
from workbench.backtest.walkforward import WalkForwardResult
from workbench.jobs.research import sweep_job, walk_forward_job
from workbench.portfolio.stats import STAT_COLUMNS
from workbench.settings import load_settings
from workbench.strategy import Spec
from workbench.ui.backtest_charts import heatmap_figure, walkforward_figure
from workbench.ui.formats import format_stat
from workbench.ui.jobs import Jobs
from workbench.ui.research_setup import ResearchSetup, axis_text
from workbench.ui.stat_tables import stat_table

METRICS = [c for c in STAT_COLUMNS if c not in ("max_drawdown_bars", "max_drawdown_days")]
CHUNK_SIZE = 32  # combinations per chunk: progress (and the Dask cluster's tasks) per chunk


def sweep_grid(
    spec: Spec,
    x: str,
    x_values: str,
    y: str,
    y_values: str,
    others: dict[str, Any],
    constraint: str = "",
) -> pd.DataFrame:
    """Give the grid of two swept axes (``lo:hi:step`` or ``a,b,c``), other params fixed."""
    axes = {name: [value] for name, value in others.items()}
    axes[x] = parse_grid_arg(spec, f"{x}={x_values}")[1]
    axes[y] = parse_grid_arg(spec, f"{y}={y_values}")[1]
    return build_grid(spec, axes, [constraint] if constraint.strip() else None)


class SweepView(param.Parameterized):
    """Sweep two parameters, draw a metric as a heatmap; a clicked cell shows its backtest."""

    x = param.Selector(default=None, objects=[], doc="parameter on the horizontal axis")
    x_values = param.String(default="", doc="lo:hi:step (inclusive) or a,b,c")
    y = param.Selector(default=None, objects=[], doc="parameter on the vertical axis")
    y_values = param.String(default="")
    metric = param.Selector(default="sharpe", objects=METRICS)
    constraint = param.String(default="", doc="e.g. fast < slow")
    table = param.DataFrame(default=None, doc="the latest sweep: parameters + statistics")
    selected = param.Integer(default=None, allow_None=True, doc="row of the clicked cell")

    def __init__(self, setup: ResearchSetup, jobs: Jobs, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.setup, self.jobs = setup, jobs
        self.run_button = pn.widgets.Button(label="Run sweep", color="primary")
        self.run_button.on_click(self._run)
        self.heatmap = pn.Column(sizing_mode="stretch_width")
        self.detail = pn.Column(sizing_mode="stretch_width")
        self._spec_changed()
        setup.param.watch(self._spec_changed, ["strategy"])

    def _spec_changed(self, _event: Any = None) -> None:
        spec = self.setup.spec()
        names = list(spec.params)
        self.param.x.objects = self.param.y.objects = names
        self.x = names[0] if names else None
        self.y = names[1] if len(names) > 1 else self.x
        self.x_values = axis_text(spec, self.x) if self.x else ""
        self.y_values = axis_text(spec, self.y) if self.y else ""
        slow_fast = {"fast", "slow"} <= set(names)
        self.constraint = "fast < slow" if slow_fast else ""
        self.table, self.selected = None, None
        self.heatmap[:], self.detail[:] = [], []

    @param.depends("x", watch=True)
    def _x_changed(self) -> None:
        if self.x:
            self.x_values = axis_text(self.setup.spec(), self.x)

    @param.depends("y", watch=True)
    def _y_changed(self) -> None:
        if self.y:
            self.y_values = axis_text(self.setup.spec(), self.y)

    def grid(self) -> pd.DataFrame:
        """Give the combinations to sweep: the two axes, the other parameters from the setup."""
        spec = self.setup.spec()
        others = {k: v for k, v in self.setup.param_values().items() if k not in (self.x, self.y)}
        return sweep_grid(
            spec, self.x, self.x_values, self.y, self.y_values, others, self.constraint
        )

    async def run(self) -> pd.DataFrame | None:
        """Give the sweep's table (one row per combination), computed in a worker process."""
        try:
            grid, spec = self.grid(), self.setup.spec()
        except ValueError as exc:  # a bad axis or constraint, named by the error
            self.jobs._show(f"Cannot sweep: {exc}", "danger")
            return None
        cluster = load_settings().research_cluster

        def inputs() -> tuple[Any, ...]:
            return spec.raw, self.setup.candles(), grid, self.setup.settings(), CHUNK_SIZE, cluster

        table = await self.jobs.run(f"sweep of {len(grid)} combinations", sweep_job, inputs)
        if table is not None:
            self.table, self.selected = table, None
            self._draw()
        return table

    async def _run(self, _event: Any = None) -> None:
        await self.run()

    def _draw(self) -> None:
        fig = heatmap_figure(self.table, self.x, self.y, self.metric)
        cells = fig.select_one({"name": "cells"}).data_source
        cells.selected.on_change("indices", self._clicked)
        best = self.table[self.metric].idxmax()
        best_row = self.table.loc[best]
        summary = ", ".join(f"{k}={best_row[k]}" for k in self.setup.spec().params)
        self.heatmap[:] = [
            pn.pane.Bokeh(fig, sizing_mode="stretch_width"),
            pn.pane.Markdown(
                f"Best {self.metric}: **{format_stat(self.metric, best_row[self.metric])}** at "
                f"{summary}. Click a cell for its equity and trades."
            ),
        ]

    def _clicked(self, _attr: str, _old: list[int], new: list[int]) -> None:
        if new:
            pn.state.execute(lambda: self.show(int(new[0])))  # cells are drawn in table order

    async def show(self, row: int) -> None:
        """Show the backtest of the sweep's row ``row`` (what clicking its cell does)."""
        from workbench.ui.research import backtest_in_worker

        self.selected = row
        values = self.table.iloc[row][list(self.setup.spec().params)].to_dict()
        done = await backtest_in_worker(self.setup, self.jobs, values, f"backtest of cell {row}")
        if done is None:
            return
        result, panel = done
        title = ", ".join(f"{k}={v}" for k, v in result.params.items())
        self.detail[:] = [pn.pane.Markdown(f"### Combination {row}: {title}"), panel]

    @param.depends("metric", watch=True)
    def _metric_changed(self) -> None:
        if self.table is not None:
            self._draw()

    def __panel__(self) -> Any:
        return pn.Column(
            pn.Row(
                pn.widgets.Select.from_param(self.param.x, label="X parameter", width=140),
                pn.widgets.TextInput.from_param(self.param.x_values, label="X values", width=140),
                pn.widgets.Select.from_param(self.param.y, label="Y parameter", width=140),
                pn.widgets.TextInput.from_param(self.param.y_values, label="Y values", width=140),
                pn.widgets.Select.from_param(self.param.metric, label="Metric", width=140),
                pn.widgets.TextInput.from_param(
                    self.param.constraint, label="Constraint", width=160
                ),
            ),
            self.run_button,
            self.heatmap,
            self.detail,
            sizing_mode="stretch_width",
        )


class WalkForwardView(param.Parameterized):
    """Walk-forward over the sweep's grid: optimize on train windows, trade the next test."""

    train_days = param.Number(default=5.0, bounds=(0.1, None))
    test_days = param.Number(default=3.0, bounds=(0.1, None))
    anchored = param.Boolean(default=False, doc="train from the first bar every time")
    result = param.Parameter(default=None, doc="the latest WalkForwardResult")

    def __init__(self, setup: ResearchSetup, jobs: Jobs, sweep_view: SweepView, **kw: Any) -> None:
        super().__init__(**kw)
        self.setup, self.jobs, self.sweep_view = setup, jobs, sweep_view
        self.run_button = pn.widgets.Button(label="Run walk-forward", color="primary")
        self.run_button.on_click(self._run)
        self.body = pn.Column(
            pn.pane.Markdown("Uses the **Sweep** tab's grid and metric."),
            sizing_mode="stretch_width",
        )

    async def run(self) -> WalkForwardResult | None:
        """Give the walk-forward result, computed in a worker process, and show it."""
        try:
            grid, spec = self.sweep_view.grid(), self.setup.spec()
        except ValueError as exc:
            self.jobs._show(f"Cannot walk forward: {exc}", "danger")
            return None
        metric, anchored = self.sweep_view.metric, self.anchored
        train, test = pd.Timedelta(days=self.train_days), pd.Timedelta(days=self.test_days)
        cash = float(self.setup.cash)

        def inputs() -> tuple[Any, ...]:
            settings = self.setup.settings()
            return spec.raw, self.setup.candles(), grid, train, test, anchored, metric, settings

        result = await self.jobs.run("walk-forward", walk_forward_job, inputs)
        if result is not None:
            self.result = result
            summary = pd.DataFrame(
                {"value": [format_stat(k, v) for k, v in result.summary.items()]},
                index=list(result.summary),
            )
            self.body[:] = [
                pn.pane.Bokeh(walkforward_figure(result, cash), sizing_mode="stretch_width"),
                pn.Row(
                    pn.widgets.Tabulator(summary, disabled=True, width=320),
                    stat_table(result.windows, sizing_mode="stretch_width"),
                    sizing_mode="stretch_width",
                ),
            ]
        return result

    async def _run(self, _event: Any = None) -> None:
        await self.run()

    def __panel__(self) -> Any:
        return pn.Column(
            pn.Row(
                pn.widgets.FloatInput.from_param(
                    self.param.train_days, label="Train (days)", width=140
                ),
                pn.widgets.FloatInput.from_param(
                    self.param.test_days, label="Test (days)", width=140
                ),
                pn.widgets.Checkbox.from_param(self.param.anchored, label="Anchored"),
            ),
            self.run_button,
            self.body,
            sizing_mode="stretch_width",
        )
