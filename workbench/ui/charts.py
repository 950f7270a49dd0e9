"""Bokeh charts of candles: price and volume panes sharing one time axis.

The same functions serve the apps and the notebooks. Each chart draws from a
`ColumnDataSource`, so a live view streams new bars into it (`source.stream(...)`, with a
rollover for bounded history) instead of redrawing.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from bokeh.layouts import column
from bokeh.models import ColumnDataSource, CrosshairTool, HoverTool, Range1d
from bokeh.plotting import figure

UP = "#26a69a"
DOWN = "#ef5350"


def candle_columns(candles: pd.DataFrame, bar_ms: float) -> dict[str, Any]:
    """Give the data columns of a candle source: times, prices, colours, bar width."""
    rising = (candles["close"] >= candles["open"]).to_numpy()
    return {
        "ts": candles.index.tz_convert(None).to_numpy(),
        "open": candles["open"].to_numpy(),
        "high": candles["high"].to_numpy(),
        "low": candles["low"].to_numpy(),
        "close": candles["close"].to_numpy(),
        "volume": candles["volume"].to_numpy(),
        "color": np.where(rising, UP, DOWN),
        "width": np.full(len(candles), bar_ms * 0.7),
    }


def candle_source(candles: pd.DataFrame, bar_ms: float) -> ColumnDataSource:
    """Give a data source for the candle charts."""
    return ColumnDataSource(candle_columns(candles, bar_ms))


def price_figure(source: ColumnDataSource, title: str = "", height: int = 380) -> Any:
    """Give a candlestick figure drawn from a candle source."""
    fig = figure(
        x_axis_type="datetime",
        height=height,
        sizing_mode="stretch_width",
        title=title,
        tools="xpan,xwheel_zoom,box_zoom,reset,save",
        active_scroll="xwheel_zoom",
        name="price",
    )
    fig.segment("ts", "high", "ts", "low", color="color", source=source)
    bars = fig.vbar(
        "ts", "width", "open", "close", fill_color="color", line_color="color", source=source
    )
    fig.add_tools(
        HoverTool(
            renderers=[bars],
            tooltips=[
                ("time", "@ts{%F %H:%M}"),
                ("open", "@open{0.00000000}"),
                ("high", "@high{0.00000000}"),
                ("low", "@low{0.00000000}"),
                ("close", "@close{0.00000000}"),
                ("volume", "@volume{0,0}"),
            ],
            formatters={"@ts": "datetime"},
        ),
        CrosshairTool(),
    )
    fig.yaxis.axis_label = "price"
    return fig


def linked_pane(name: str, x_range: Range1d, height: int) -> Any:
    """Give an empty pane that pans and zooms with the price figure (same time axis)."""
    return figure(
        x_axis_type="datetime",
        height=height,
        sizing_mode="stretch_width",
        x_range=x_range,
        tools="xpan,xwheel_zoom,reset",
        name=name,
    )


def volume_figure(source: ColumnDataSource, x_range: Range1d, height: int = 140) -> Any:
    """Give a volume bar figure on the same time axis as the price figure."""
    fig = linked_pane("volume", x_range, height)
    fig.vbar(
        "ts", "width", 0, "volume", fill_color="color", line_color=None, alpha=0.6, source=source
    )
    fig.yaxis.axis_label = "volume"
    return fig


def candle_chart(candles: pd.DataFrame, bar_ms: float, title: str = "") -> Any:
    """Give price and volume panes linked on time, for a notebook or an app."""
    source = candle_source(candles, bar_ms)
    price = price_figure(source, title)
    return column(price, volume_figure(source, price.x_range), sizing_mode="stretch_width")
