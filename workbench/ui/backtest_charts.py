"""Bokeh charts of backtests: trades on price, equity, drawdown, sweep heatmap, walk-forward and
Monte Carlo. Plain functions of results, shared by the research app and the notebooks.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
from bokeh.layouts import column
from bokeh.models import (
    BasicTicker,
    BoxAnnotation,
    ColorBar,
    ColumnDataSource,
    HoverTool,
    LinearColorMapper,
    Range1d,
    TapTool,
)
from bokeh.palettes import Category10_10, RdYlGn11
from bokeh.plotting import figure

from workbench.backtest.montecarlo import METHODS, _indices, trade_returns
from workbench.ui.charts import candle_source, price_figure
from workbench.ui.formats import format_stat, format_stats

ENTRY = "#1565c0"
EXIT = "#ff6f00"


def _naive(index: Any) -> np.ndarray:
    idx = pd.DatetimeIndex(index)
    return (idx.tz_convert(None) if idx.tz is not None else idx).to_numpy()


def stats_table(stats: dict[str, Any], quote: str | None = None) -> pd.DataFrame:
    """Give statistics as a two-column (stat, value) table of display text (amounts in
    ``quote``, the market's quote currency)."""
    shown = format_stats(stats, quote)
    return pd.DataFrame({"stat": list(shown), "value": list(shown.values())})


def closed_trades(trades: pd.DataFrame) -> pd.DataFrame:
    """Give only the trades that were closed (the ones statistics and Monte Carlo count)."""
    return trades[trades["exit_reason"] != "open"]


def trades_figure(
    candles: pd.DataFrame, trades: pd.DataFrame, bar_ms: float, title: str = "", height: int = 340
) -> Any:
    """Give a candlestick figure with entry (▲) and exit (▼) markers at their fill prices."""
    fig = price_figure(candle_source(candles, bar_ms), title, height)
    entries = ColumnDataSource(
        {
            "ts": _naive(trades["entry_time"]),
            "price": trades["entry_price"].to_numpy(dtype=float),
            "side": trades["side"].astype(str).to_numpy(),
            "size": trades["size"].to_numpy(dtype=float),
        }
    )
    done = closed_trades(trades)
    exits = ColumnDataSource(
        {
            "ts": _naive(done["exit_time"]),
            "price": done["exit_price"].to_numpy(dtype=float),
            "reason": done["exit_reason"].astype(str).to_numpy(),
            "pnl": done["pnl"].to_numpy(dtype=float),
        }
    )
    up = fig.scatter("ts", "price", marker="triangle", size=10, color=ENTRY, source=entries)
    down = fig.scatter("ts", "price", marker="inverted_triangle", size=10, color=EXIT, source=exits)
    fig.add_tools(
        HoverTool(
            renderers=[up],
            tooltips=[
                ("entry", "@ts{%F %H:%M}"),
                ("price", "@price{0.00000000}"),
                ("side", "@side"),
            ],
            formatters={"@ts": "datetime"},
        ),
        HoverTool(
            renderers=[down],
            tooltips=[("exit", "@ts{%F %H:%M}"), ("reason", "@reason"), ("P&L", "@pnl{0.00}")],
            formatters={"@ts": "datetime"},
        ),
    )
    return fig


def _line_figure(name: str, x_range: Any, height: int, label: str) -> Any:
    kwargs = {"x_range": x_range} if x_range is not None else {}
    fig = figure(
        x_axis_type="datetime",
        height=height,
        sizing_mode="stretch_width",
        tools="xpan,xwheel_zoom,box_zoom,reset,save",
        name=name,
        **kwargs,
    )
    fig.yaxis.axis_label = label
    return fig


def equity_figure(
    curves: pd.Series | dict[str, pd.Series], x_range: Any = None, height: int = 200
) -> Any:
    """Give equity curve(s) over time; a dict draws one labelled line per curve."""
    fig = _line_figure("equity", x_range, height, "equity")
    named = {"equity": curves} if isinstance(curves, pd.Series) else curves
    for (label, curve), color in zip(named.items(), Category10_10 * 10, strict=False):
        kwargs = {"legend_label": str(label)} if len(named) > 1 else {}
        fig.line(_naive(curve.index), curve.to_numpy(dtype=float), color=color, **kwargs)
    if len(named) > 1:
        fig.legend.location = "top_left"
        fig.legend.click_policy = "hide"
    return fig


def drawdown(equity: pd.Series, cash: float | None = None) -> pd.Series:
    """Give the fall from the running peak as a negative fraction (the initial cash is a peak)."""
    values = equity.to_numpy(dtype=float)
    peak = np.maximum.accumulate(np.concatenate([[cash if cash else values[0]], values]))[1:]
    return pd.Series(values / peak - 1.0, index=equity.index, name="drawdown")


def drawdown_figure(
    equity: pd.Series, x_range: Any = None, cash: float | None = None, height: int = 160
) -> Any:
    """Give the drawdown area under zero."""
    fig = _line_figure("drawdown", x_range, height, "drawdown")
    dd = drawdown(equity, cash)
    ts = _naive(dd.index)
    fig.varea(x=ts, y1=dd.to_numpy(), y2=np.zeros(len(dd)), fill_color="#e53935", alpha=0.4)
    fig.yaxis.formatter.use_scientific = False
    return fig


def backtest_chart(candles: pd.DataFrame, result: Any, bar_ms: float, title: str = "") -> Any:
    """Give price with trades, equity and drawdown panes sharing one time axis."""
    price = trades_figure(candles, result.trades, bar_ms, title)
    return column(
        price,
        equity_figure(result.equity, price.x_range),
        drawdown_figure(result.equity, price.x_range, result.cash),
        sizing_mode="stretch_width",
    )


def heatmap_source(table: pd.DataFrame, x: str, y: str, metric: str) -> ColumnDataSource:
    """Give the data of a sweep heatmap: one cell per (x, y) combination, row kept as ``row``."""
    values = table[metric].to_numpy(dtype=float)
    return ColumnDataSource(
        {
            "x": table[x].astype(str).to_numpy(),
            "y": table[y].astype(str).to_numpy(),
            "value": np.where(np.isfinite(values), values, np.nan),
            "label": [format_stat(metric, v) for v in values],
            "row": np.arange(len(table)),
        }
    )


def heatmap_figure(table: pd.DataFrame, x: str, y: str, metric: str, height: int = 380) -> Any:
    """Give a heatmap of ``metric`` over two swept parameters; cells are tappable.

    Tapping selects the cell in ``fig.select_one({"name": "cells"}).data_source`` whose
    ``row`` column is the row of ``table``.
    """
    source = heatmap_source(table, x, y, metric)
    xs = [str(v) for v in sorted(table[x].unique())]
    ys = [str(v) for v in sorted(table[y].unique())]
    finite = source.data["value"][np.isfinite(source.data["value"])]
    low, high = (float(finite.min()), float(finite.max())) if len(finite) else (0.0, 1.0)
    if low == high:
        low, high = low - 1.0, high + 1.0
    mapper = LinearColorMapper(
        palette=list(reversed(RdYlGn11)), low=low, high=high, nan_color="#ccc"
    )
    fig = figure(
        x_range=xs,
        y_range=ys,
        height=height,
        sizing_mode="stretch_width",
        tools="tap,hover,save",
        title=f"{metric} by {x} × {y} (click a cell)",
        tooltips=[(x, "@x"), (y, "@y"), (metric, "@label")],
        name="heatmap",
    )
    fig.rect(
        "x",
        "y",
        1,
        1,
        source=source,
        line_color="white",
        fill_color={"field": "value", "transform": mapper},
        name="cells",
    )
    fig.select_one(TapTool).mode = "replace"
    fig.add_layout(ColorBar(color_mapper=mapper, ticker=BasicTicker()), "right")
    fig.xaxis.axis_label, fig.yaxis.axis_label = x, y
    return fig


def walkforward_figure(result: Any, cash: float, height: int = 260) -> Any:
    """Give the stitched out-of-sample equity with each window's test span shaded, above a bar
    chart of in-sample vs out-of-sample total return per window."""
    eq = _line_figure("walkforward", None, height, "out-of-sample equity")
    eq.title.text = "Walk-forward: out-of-sample equity (shaded: test windows)"
    for i, row in result.windows.iterrows():
        start = pd.Timestamp(row["test_start"]).tz_convert(None)
        end = pd.Timestamp(row["test_end"]).tz_convert(None)
        eq.add_layout(
            BoxAnnotation(
                left=start, right=end, fill_alpha=0.08 if i % 2 else 0.16, fill_color="#1565c0"
            )
        )
    eq.line(
        _naive(result.oos_equity.index), result.oos_equity.to_numpy(dtype=float), color="#1565c0"
    )
    eq.line(
        _naive(result.oos_equity.index),
        np.full(len(result.oos_equity), cash),
        color="#999",
        line_dash="dashed",
    )
    windows = [str(w) for w in result.windows["window"]]
    bars = figure(
        height=height - 40,
        sizing_mode="stretch_width",
        tools="save,hover",
        title="Total return per window: in-sample (chosen params) vs out-of-sample",
        name="wf_bars",
        tooltips=[("return", "@top{0.0000}")],
    )
    offset = 0.18
    xs = np.arange(len(windows))
    bars.x_range = Range1d(-0.6, len(windows) - 0.4)
    bars.vbar(
        x=xs - offset,
        top=result.windows["is_total_return"].to_numpy(dtype=float),
        width=0.35,
        color="#90a4ae",
        legend_label="in-sample",
    )
    bars.vbar(
        x=xs + offset,
        top=result.windows["oos_total_return"].to_numpy(dtype=float),
        width=0.35,
        color="#1565c0",
        legend_label="out-of-sample",
    )
    bars.xaxis.ticker = list(range(len(windows)))
    bars.xaxis.axis_label = "window"
    bars.legend.location = "bottom_left"
    return column(eq, bars, sizing_mode="stretch_width")


def monte_carlo_bands(
    pnl: Sequence[float] | np.ndarray,
    cash: float,
    paths: int = 2_000,
    method: str = "shuffle",
    block: int = 5,
    seed: int = 42,
    percentiles: Sequence[float] = (5, 25, 50, 75, 95),
) -> pd.DataFrame:
    """Give equity percentiles after each trade over resampled paths (rows: trade 0..n).

    Draws the very paths ``monte_carlo`` draws with the same arguments, so the last row
    equals its final-equity percentiles.
    """
    if method not in METHODS:
        raise ValueError(f"unknown method {method!r}; choose from {METHODS}")
    returns = trade_returns(np.asarray(pnl, dtype=float), cash)
    rng = np.random.default_rng(seed)
    sampled = returns[_indices(rng, len(returns), paths, method, block)]
    equity = np.hstack([np.full((paths, 1), cash), cash * np.cumprod(1.0 + sampled, axis=1)])
    bands = np.percentile(equity, list(percentiles), axis=0).T
    frame = pd.DataFrame(bands, columns=[f"p{q:g}" for q in percentiles])
    frame.index.name = "trade"
    actual = cash + np.concatenate([[0.0], np.cumsum(np.asarray(pnl, dtype=float))])
    frame["actual"] = actual
    return frame


def fan_figure(bands: pd.DataFrame, height: int = 300) -> Any:
    """Give a fan chart: 5–95 and 25–75 percentile bands, the median and the actual order."""
    fig = figure(
        height=height,
        sizing_mode="stretch_width",
        tools="xpan,xwheel_zoom,reset,save",
        title="Monte Carlo: equity after each trade",
        name="fan",
    )
    x = bands.index.to_numpy()
    fig.varea(
        x=x,
        y1=bands["p5"],
        y2=bands["p95"],
        fill_color="#1565c0",
        fill_alpha=0.15,
        legend_label="5–95 %",
    )
    fig.varea(
        x=x,
        y1=bands["p25"],
        y2=bands["p75"],
        fill_color="#1565c0",
        fill_alpha=0.3,
        legend_label="25–75 %",
    )
    fig.line(x, bands["p50"], color="#1565c0", legend_label="median")
    fig.line(x, bands["actual"], color="#212121", line_dash="dashed", legend_label="actual order")
    fig.xaxis.axis_label, fig.yaxis.axis_label = "trade", "equity"
    fig.legend.location = "bottom_left"
    return fig


def distribution_figure(values: np.ndarray, label: str, bins: int = 40, height: int = 300) -> Any:
    """Give a histogram of a Monte Carlo distribution (max drawdown, final equity, ...)."""
    finite = np.asarray(values, dtype=float)
    finite = finite[np.isfinite(finite)]
    counts, edges = np.histogram(finite, bins=bins)
    fig = figure(
        height=height,
        sizing_mode="stretch_width",
        tools="save,hover",
        name=f"hist_{label}",
        title=f"Monte Carlo: {label} distribution",
        tooltips=[("count", "@top")],
    )
    fig.quad(
        top=counts,
        bottom=0,
        left=edges[:-1],
        right=edges[1:],
        fill_color="#ef5350",
        line_color="white",
    )
    for q, dash in ((50, "solid"), (95, "dashed")):
        if len(finite):
            v = float(np.percentile(finite, q))
            fig.line(
                [v, v], [0, counts.max()], color="#212121", line_dash=dash, legend_label=f"p{q}"
            )
    fig.xaxis.axis_label = label
    return fig
