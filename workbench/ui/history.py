"""History view: pick a stored series and a timeframe, see its candles and coverage."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd
import panel as pn
import param

from workbench.store import Store
from workbench.timeframes import timeframe_ms
from workbench.ui.charts import candle_chart

TIMEFRAMES = ["5m", "15m", "1h", "4h", "1d"]


class HistoryView(param.Parameterized):
    """Stored candles of one series, resampled on demand, beside the coverage table."""

    series = param.Selector(default=None, objects=[], doc="exchange · symbol · timeframe")
    timeframe = param.Selector(default="1h", objects=TIMEFRAMES)

    def __init__(self, db: str | Path, **params: Any) -> None:
        self._db = str(db)  # a DuckDB path or a PostgreSQL URL
        with Store.open(self._db, read_only=True) as store:
            self._coverage = store.candles.coverage()
        labels = [" · ".join(key) for key in self._series()]
        super().__init__(**params)
        self.param.series.objects = labels
        if labels and self.series is None:
            self.series = labels[0]

    def _series(self) -> list[tuple[str, str, str]]:
        return list(self._coverage[["exchange", "symbol", "timeframe"]].itertuples(index=False))

    def candles(self) -> pd.DataFrame:
        """Give the chosen series at the chosen timeframe."""
        exchange, symbol, base = self.series.split(" · ")
        with Store.open(self._db, read_only=True) as store:
            if timeframe_ms(self.timeframe) <= timeframe_ms(base):
                return store.candles.read(exchange, symbol, base)
            return store.candles.resample(exchange, symbol, base, self.timeframe)

    @param.depends("series", "timeframe")
    def chart(self) -> Any:
        if self.series is None:
            return pn.pane.Markdown("No candles stored yet: run `workbench data import`.")
        candles = self.candles()
        step = max(timeframe_ms(self.timeframe), timeframe_ms(self.series.split(" · ")[2]))
        title = f"{self.series.replace(' · ', ' ')} at {self.timeframe}"
        return pn.pane.Bokeh(candle_chart(candles, step, title), sizing_mode="stretch_width")

    def __panel__(self) -> Any:
        table = self._coverage.assign(
            first=self._coverage["first"].dt.strftime("%Y-%m-%d %H:%M"),
            last=self._coverage["last"].dt.strftime("%Y-%m-%d %H:%M"),
        )
        return pn.Column(
            pn.Row(
                pn.widgets.Select.from_param(self.param.series, name="Series"),
                pn.widgets.RadioButtonGroup.from_param(self.param.timeframe),
            ),
            self.chart,
            pn.pane.Markdown("### Coverage"),
            pn.widgets.Tabulator(table, disabled=True, show_index=False, name="coverage"),
            sizing_mode="stretch_width",
        )
