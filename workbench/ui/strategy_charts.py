"""Bokeh charts of a strategy's evaluation: indicators over price, oscillators below, and the
bars where entry and exit rules fire. Used by the notebooks and the research app.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from bokeh.layouts import column
from bokeh.palettes import Category10_10

from workbench.strategy import Signals
from workbench.ui.backtest_charts import ENTRY, EXIT, _naive
from workbench.ui.charts import candle_source, linked_pane, price_figure


def is_overlay(values: pd.Series, close: pd.Series) -> bool:
    """Give whether an indicator lives on the price scale (moving averages, bands)."""
    med, ref = float(np.nanmedian(values)), float(np.nanmedian(close))
    return bool(np.isfinite(med) and ref > 0 and 0.5 < med / ref < 2.0)


def signal_series(signals: Signals, combination: int = 0) -> dict[str, pd.Series]:
    """Give one combination's indicator outputs, one series per output name."""
    row = signals.params.iloc[combination] if len(signals.params.columns) else None
    out: dict[str, pd.Series] = {}
    for name, frame in signals.indicators.items():
        if frame.shape[1] == 1 or row is None:
            out[name] = frame.iloc[:, 0]
            continue
        names = list(frame.columns.names)
        key = tuple(row[n] for n in names)
        out[name] = frame[key[0] if len(key) == 1 else key].squeeze()
    return out


def signals_chart(
    candles: pd.DataFrame,
    signals: Signals,
    bar_ms: float,
    combination: int = 0,
    title: str = "",
    hide: tuple[str, ...] = (),
) -> Any:
    """Give price with overlay indicators and entry/exit markers, and a pane per oscillator."""
    price = price_figure(candle_source(candles, bar_ms), title, 360)
    ts = _naive(candles.index)
    series = {k: v for k, v in signal_series(signals, combination).items() if k not in hide}
    colors = iter(Category10_10 * 5)
    oscillators: dict[str, pd.Series] = {}
    for name, values in series.items():
        if is_overlay(values, candles["close"]):
            price.line(ts, values.to_numpy(dtype=float), color=next(colors), legend_label=name)
        else:
            oscillators[name] = values
    entries = signals.entries.iloc[:, combination].to_numpy(dtype=bool)
    exits = signals.exits.iloc[:, combination].to_numpy(dtype=bool)
    low, high = candles["low"].to_numpy(), candles["high"].to_numpy()
    price.scatter(
        ts[entries],
        low[entries] * 0.998,
        marker="triangle",
        size=9,
        color=ENTRY,
        legend_label="entry signal",
    )
    price.scatter(
        ts[exits],
        high[exits] * 1.002,
        marker="inverted_triangle",
        size=9,
        color=EXIT,
        legend_label="exit signal",
    )
    price.legend.location = "top_left"
    price.legend.click_policy = "hide"
    panes = [price]
    groups: dict[str, list[str]] = {}
    for name in oscillators:
        groups.setdefault(name.split(".")[0], []).append(name)
    for group, names in groups.items():
        fig = linked_pane(group, price.x_range, 140)
        for name in names:
            fig.line(
                ts, oscillators[name].to_numpy(dtype=float), color=next(colors), legend_label=name
            )
        fig.legend.location = "top_left"
        panes.append(fig)
    return column(*panes, sizing_mode="stretch_width")
