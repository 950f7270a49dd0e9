"""The live market view of one strategy: streaming candles, volume, its indicators, signal
markers and fills over price, oscillator, equity and drawdown panes on one time axis.

Everything draws from a few `ColumnDataSource`s that take new rows with `stream(...,
rollover=N)` (bounded history) and the forming candle's changes with `patch` on the last row:
no figure is rebuilt per tick. Times are epoch milliseconds (floats), which Bokeh's datetime
axes take as they are.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd
import panel as pn
import param
from bokeh.layouts import column
from bokeh.models import ColumnDataSource, NumeralTickFormatter
from bokeh.palettes import Category10_10

from workbench.candles import Candle
from workbench.strategy import IncrementalStrategy
from workbench.timeframes import timeframe_ms
from workbench.ui.backtest_charts import ENTRY, EXIT
from workbench.ui.charts import DOWN, UP, linked_pane, price_figure, volume_figure
from workbench.ui.shared import Closed, Key, LiveService
from workbench.ui.strategy_charts import is_overlay

BARS = 300  # candles kept on the chart
MARKS = 200  # signal markers and fills kept


def column_name(indicator: str) -> str:
    """Give the source column of an indicator output (`bb.upper` → `v_bb_upper`)."""
    return "v_" + indicator.replace(".", "_")


def candle_row(candle: Candle, bar_ms: float, values: dict[str, float], names: list[str]) -> dict:
    """Give one row of the candle source: prices, colour, width and indicator values."""
    row = {
        "ts": float(candle.ts_ms),
        "open": candle.open,
        "high": candle.high,
        "low": candle.low,
        "close": candle.close,
        "volume": candle.volume,
        "color": UP if candle.close >= candle.open else DOWN,
        "width": bar_ms * 0.7,
    }
    for name in names:
        value = values.get(name, math.nan)
        row[column_name(name)] = math.nan if value is None else float(value)
    return row


def merge_rows(last_ts: float, rows: list[dict]) -> tuple[dict | None, list[dict]]:
    """Give the row replacing the source's last one (same bar) and the rows to append."""
    patch: dict | None = None
    new: list[dict] = []
    for row in rows:
        tail = new[-1]["ts"] if new else last_ts
        if new and row["ts"] == tail:
            new[-1] = row
        elif not new and row["ts"] == last_ts:
            patch = row
        elif row["ts"] > tail:
            new.append(row)
    return patch, new


def as_columns(rows: list[dict], names: list[str]) -> dict[str, list]:
    return {name: [r[name] for r in rows] for name in names}


class MarketView(param.Parameterized):
    """One strategy's market, streaming; pick the strategy with `strategy`."""

    strategy = param.Selector(default=None, objects=[], doc="strategy shown")
    bars_streamed = param.Integer(default=0, doc="closed candles added since shown")

    def __init__(self, service: LiveService, **params: Any) -> None:
        super().__init__(**params)
        self.service = service
        # One Bokeh column for the whole page's life; another strategy's charts replace its
        # children (a Bokeh change, sent in order with the streams into their sources), not
        # the pane's object (a Panel change, sent by Panel's own dispatch, which a stream sent
        # by Bokeh's could overtake: "reference ... isn't known" in the browser).
        self.charts = column(sizing_mode="stretch_width")
        self.pane = pn.pane.Bokeh(self.charts, sizing_mode="stretch_width", min_height=700)
        self.status = pn.pane.Markdown("", name="bars")
        self._built_to_ms = -math.inf  # the last closed candle the charts were built with
        self._stale = False  # another strategy picked: rebuilt at the next push
        ids = list(service.engine.strategies)
        self.param.strategy.objects = ids
        if self.strategy is None and ids:
            self.strategy = ids[0]
            self._build()

    def refresh_strategies(self) -> None:
        self.param.strategy.objects = list(self.service.engine.strategies)

    @param.depends("strategy", watch=True)
    def _picked(self) -> None:
        # Rebuilt in the next push, with the streaming that follows it: the new charts and
        # the first rows streamed into their sources reach the browser in that order.
        self._stale = True

    def _build(self) -> None:
        self._stale = False
        if self.strategy is None:
            return
        engine = self.service.engine
        live = engine.strategies[self.strategy]
        runner = live.runner
        self.key: Key = live.feed_key
        self.bar_ms = float(timeframe_ms(runner.timeframe))
        feed = engine.feeds[self.key]
        end_ms = feed.last_closed_ms or runner.last_close_ms or 0
        self._built_to_ms = float(end_ms)
        history = self._history(end_ms, runner.warmup_bars)
        rows, names, marks = self._evaluate(history)
        if feed.forming is not None and feed.forming.ts_ms > end_ms:
            rows.append(candle_row(feed.forming, self.bar_ms, {}, names))
        self.names = names
        self.columns = list(candle_row(Candle(0, 0, 0, 0, 0, 0), 1, {}, names))
        self.source = ColumnDataSource(as_columns(rows, self.columns))
        self.marks = ColumnDataSource(marks)
        self.fills = ColumnDataSource(self._fills(rows[0]["ts"] if rows else 0))
        self.equity = ColumnDataSource(self._equity(rows[0]["ts"] if rows else 0))
        self.peak = max(self.equity.data["equity"], default=runner.initial_cash)
        self.bars_streamed = 0
        self.charts.children = self._figures(history["close"] if len(history) else None)
        self._show_status()

    def _history(self, end_ms: int, warmup: int) -> pd.DataFrame:
        exchange, symbol, timeframe = self.key
        start = pd.Timestamp(end_ms - (BARS + warmup) * self.bar_ms, unit="ms", tz="UTC")
        end = pd.Timestamp(end_ms + 1, unit="ms", tz="UTC")
        return self.service.store.candles.read(exchange, symbol, timeframe, start=start, end=end)

    def _evaluate(self, history: pd.DataFrame) -> tuple[list[dict], list[str], dict[str, list]]:
        """Give the last BARS rows with the strategy's indicators, and its signal markers."""
        runner = self.service.engine.strategies[self.strategy].runner
        strategy = IncrementalStrategy(runner.spec, runner.params)
        events = []
        for row in history.itertuples():
            ts_ms = int(row.Index.value // 1_000_000)
            candle = Candle(ts_ms, row.open, row.high, row.low, row.close, row.volume)
            events.append((candle, strategy.update(candle)))
        names = list(events[-1][1].values) if events else []
        events = events[-BARS:]
        rows = [candle_row(c, self.bar_ms, e.values, names) for c, e in events]
        marks: dict[str, list] = {"ts": [], "y": [], "color": [], "marker": []}
        for candle, event in events:
            for mark in signal_marks(candle, event.entry or event.short_entry, event.exit):
                for k, v in mark.items():
                    marks[k].append(v)
        return rows, names, marks

    def _fills(self, since_ms: float) -> dict[str, list]:
        fills = self.service.store.trading.fills(self.strategy)
        return fill_columns([f for f in fills if f.ts_ms >= since_ms])

    def _equity(self, since_ms: float) -> dict[str, list]:
        frame = self.service.store.trading.equity(self.strategy)
        ms = pd.DatetimeIndex(frame["ts"]).as_unit("ms").asi8.astype(float)
        keep = ms >= since_ms
        equity = frame["equity"].to_numpy(dtype=float)[keep]
        peak = np.maximum.accumulate(equity) if len(equity) else equity
        return {
            "ts": list(ms[keep]),
            "equity": list(equity),
            "drawdown": list(equity / peak - 1.0) if len(equity) else [],
        }

    def _figures(self, close: pd.Series | None) -> list[Any]:
        price = price_figure(self.source, f"{self.strategy} · {self.key[1]} {self.key[2]}", 340)
        colors = iter(Category10_10 * 5)
        oscillators: dict[str, list[str]] = {}
        for name in self.names:
            values = pd.Series(self.source.data[column_name(name)], dtype=float)
            if close is not None and values.notna().any() and is_overlay(values, close):
                price.line(
                    "ts",
                    column_name(name),
                    source=self.source,
                    color=next(colors),
                    legend_label=name,
                )
            else:
                oscillators.setdefault(name.split(".")[0], []).append(name)
        price.scatter(
            "ts",
            "y",
            marker="marker",
            color="color",
            size=10,
            source=self.marks,
            legend_label="signals",
        )
        price.scatter(
            "ts",
            "price",
            marker="marker",
            color="color",
            size=12,
            line_color="black",
            source=self.fills,
            legend_label="fills",
        )
        price.legend.location = "top_left"
        price.legend.click_policy = "hide"
        panes = [price, volume_figure(self.source, price.x_range, 100)]
        for group, names in oscillators.items():
            fig = _pane(group, price.x_range, 110)
            for name in names:
                fig.line(
                    "ts",
                    column_name(name),
                    source=self.source,
                    color=next(colors),
                    legend_label=name,
                )
            fig.legend.location = "top_left"
            panes.append(fig)
        equity = _pane("equity", price.x_range, 130)
        equity.line("ts", "equity", source=self.equity, color="#1f77b4", line_width=2)
        drawdown = _pane("drawdown", price.x_range, 100)
        drawdown.varea("ts", 0, "drawdown", source=self.equity, color=EXIT, alpha=0.4)
        drawdown.yaxis.formatter = NumeralTickFormatter(format="0.0%")
        panes += [equity, drawdown]
        return panes

    # -- streaming ---------------------------------------------------------------------
    def push(self, closed: list[Closed], forming: dict[Key, Candle], fills: list[Any]) -> None:
        """Add what happened since the last push (called with the document lock held); first
        draw the charts of a strategy picked since."""
        if self._stale:
            self._build()
        if self.strategy is None:
            return
        rows, marks, equity = [], [], []
        for event in closed:
            if event.key != self.key or event.candle.ts_ms <= self._built_to_ms:
                continue  # another market's, or drawn from the store by the build
            said = event.strategies.get(self.strategy, {})
            rows.append(candle_row(event.candle, self.bar_ms, said.get("values", {}), self.names))
            marks += signal_marks(event.candle, said.get("entry", False), said.get("exit", False))
            if "equity" in said:
                self.peak = max(self.peak, said["equity"])
                drawdown = said["equity"] / self.peak - 1.0 if self.peak else 0.0
                equity.append((float(event.candle.ts_ms), said["equity"], drawdown))
        if self.key in forming:
            rows.append(candle_row(forming[self.key], self.bar_ms, {}, self.names))
        data = self.source.data
        last_ts = data["ts"][-1] if len(data["ts"]) else -math.inf
        patch, new = merge_rows(last_ts, rows)
        if patch is not None:
            index = len(data["ts"]) - 1
            self.source.patch({k: [(index, v)] for k, v in patch.items()})
        if new:
            self.source.stream(as_columns(new, self.columns), rollover=BARS)
        self.bars_streamed += sum(
            1 for e in closed if e.key == self.key and e.candle.ts_ms > self._built_to_ms
        )
        if marks:
            self.marks.stream({k: [m[k] for m in marks] for k in marks[0]}, rollover=MARKS)
        mine = [f for f in fills if f.strategy_id == self.strategy]
        if mine:
            self.fills.stream(fill_columns(mine), rollover=MARKS)
        if equity:
            self.equity.stream(
                {k: [e[i] for e in equity] for i, k in enumerate(("ts", "equity", "drawdown"))},
                rollover=BARS,
            )
        if closed:
            self._prune(self.source.data["ts"][0] if len(self.source.data["ts"]) else 0.0)
            self._show_status()

    def _prune(self, since_ms: float) -> None:
        """Drop markers and fills older than the first candle kept (a rare, small reset)."""
        for source in (self.marks, self.fills):
            ts = source.data["ts"]
            if len(ts) and ts[0] < since_ms:
                keep = [i for i, t in enumerate(ts) if t >= since_ms]
                source.data = {k: [list(v)[i] for i in keep] for k, v in source.data.items()}

    def _show_status(self) -> None:
        data = self.source.data
        last = (
            pd.Timestamp(data["ts"][-1], unit="ms").strftime("%Y-%m-%d %H:%M")
            if len(data["ts"])
            else "none"
        )
        self.status.object = (
            f"bars: {len(data['ts'])} · bars streamed: {self.bars_streamed} · last bar: {last}"
        )

    def __panel__(self) -> Any:
        return pn.Column(
            pn.Row(
                pn.widgets.Select.from_param(self.param.strategy, name="Strategy", width=320),
                self.status,
            ),
            self.pane,
            sizing_mode="stretch_width",
        )


def signal_marks(candle: Candle, entry: bool, exit_: bool) -> list[dict]:
    """Give the markers of a bar's entry and exit signals."""
    marks = []
    if entry:
        marks.append(
            {
                "ts": float(candle.ts_ms),
                "y": candle.low * 0.998,
                "color": ENTRY,
                "marker": "triangle",
            }
        )
    if exit_:
        marks.append(
            {
                "ts": float(candle.ts_ms),
                "y": candle.high * 1.002,
                "color": EXIT,
                "marker": "inverted_triangle",
            }
        )
    return marks


def fill_columns(fills: list[Any]) -> dict[str, list]:
    """Give the source columns of fills: time, price, a marker by side."""
    return {
        "ts": [float(f.ts_ms) for f in fills],
        "price": [f.price for f in fills],
        "color": [ENTRY if str(f.side) == "buy" else EXIT for f in fills],
        "marker": ["circle" for _ in fills],
        "side": [str(f.side) for f in fills],
    }


def _pane(name: str, x_range: Any, height: int) -> Any:
    fig = linked_pane(name, x_range, height)
    fig.yaxis.axis_label = name
    return fig
