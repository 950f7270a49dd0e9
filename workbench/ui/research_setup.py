"""What a research session works on: a spec, its data and costs."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pandas as pd
import panel as pn
import param

from workbench.backtest.sweep import SweepSettings
from workbench.fills import DEFAULT_FEE_ASSET, FeeAsset
from workbench.lots import LotRules
from workbench.store import Store
from workbench.strategy import Spec, load_spec
from workbench.timeframes import timeframe_ms

REPO_STRATEGIES = Path(__file__).resolve().parents[2] / "data" / "strategies"
TIMEFRAMES = ["1m", "5m", "15m", "30m", "1h", "4h", "1d"]

WIDGET_WIDTH = 250


def strategy_files(folder: Path = REPO_STRATEGIES) -> dict[str, Path]:
    """Give the spec files of a folder by name."""
    return {p.stem: p for p in sorted(Path(folder).glob("*.json"))}


def axis_text(spec: Spec, name: str, max_values: int = 8) -> str:
    """Give a sweep axis ``lo:hi:step`` from a parameter's range, thinned to ``max_values``."""
    p = spec.params[name]
    if p.low is None or p.high is None or p.step is None:
        return f"{p.default}"
    step = p.step
    count = (p.high - p.low) / step + 1
    if count > max_values:
        step = math.ceil((p.high - p.low) / (max_values - 1) / p.step) * p.step
    return f"{p.low}:{p.high}:{round(step, 12)}"


class ResearchSetup(param.Parameterized):
    """The strategy, its data (a stored series at a timeframe), parameter values and costs."""

    strategy = param.Selector(default=None, objects=[], doc="spec file in data/strategies")
    series = param.Selector(default=None, objects=[], doc="exchange · symbol · stored timeframe")
    timeframe = param.Selector(default="5m", objects=TIMEFRAMES)
    cash = param.Number(default=10_000.0, bounds=(1.0, None), doc="initial cash (quote)")
    fee_rate = param.Number(default=0.001, bounds=(0.0, 0.05), step=0.0001)
    fee_asset = param.Selector(
        default=DEFAULT_FEE_ASSET.value,
        objects=[a.value for a in FeeAsset],
        doc="asset the fee is paid in (received: the asset bought, Binance's default)",
    )
    slippage = param.Number(default=0.0, bounds=(0.0, 0.05), step=0.0001)
    market_rules = param.Boolean(
        default=True, doc="round orders to the market's lot step, refuse those under its minimums"
    )
    params = param.Parameter(default=None, doc="the spec's param.Parameterized values")

    def __init__(self, db: str | Path, strategies: Path = REPO_STRATEGIES, **kwargs: Any) -> None:
        self.db = str(db)  # a DuckDB path or a PostgreSQL URL
        self.files = strategy_files(strategies)
        with Store.open(self.db, read_only=True) as store:
            coverage = store.candles.coverage()
        self._series = {
            " · ".join(k): k
            for k in coverage[["exchange", "symbol", "timeframe"]].itertuples(index=False)
        }
        self._candles: dict[tuple[str, str], pd.DataFrame] = {}
        super().__init__(**kwargs)
        self.param.strategy.objects = list(self.files)
        self.param.series.objects = list(self._series)
        if self.strategy is None and self.files:
            self.strategy = (
                "ema_cross_rsi" if "ema_cross_rsi" in self.files else next(iter(self.files))
            )
        self._strategy_changed()

    @param.depends("strategy", watch=True)
    def _strategy_changed(self) -> None:
        raw = load_spec(self.files[self.strategy])
        self._raw_spec = raw
        self.params = raw.param_class()()
        wanted = [k for k, v in self._series.items() if v[1] == raw.market.symbol]
        if wanted:
            self.series = wanted[0]
        elif self.series is None and self._series:
            self.series = next(iter(self._series))
        self.timeframe = raw.market.timeframe

    @property
    def exchange(self) -> str:
        return self._series[self.series][0]

    @property
    def symbol(self) -> str:
        return self._series[self.series][1]

    def spec(self) -> Spec:
        """Give the chosen spec, its market set to the chosen symbol and timeframe."""
        raw = self._raw_spec
        if (raw.market.symbol, raw.market.timeframe) == (self.symbol, self.timeframe):
            return raw
        market = {"symbol": self.symbol, "timeframe": self.timeframe}
        return load_spec({**raw.raw, "market": market})

    def param_values(self) -> dict[str, Any]:
        """Give the parameter values set in the widgets."""
        return {name: getattr(self.params, name) for name in self._raw_spec.params}

    def settings(self) -> SweepSettings:
        return SweepSettings(
            float(self.cash),
            float(self.fee_rate),
            float(self.slippage),
            fee_asset=FeeAsset(self.fee_asset),
            lot_rules=self.lot_rules(),
        )

    def lot_rules(self) -> dict[str, LotRules] | None:
        """Give the chosen market's stored rules (None when off or none are stored)."""
        if not self.market_rules:
            return None
        with Store.open(self.db, read_only=True) as store:
            rules = store.markets.get(self.exchange, self.symbol)
        return None if rules is None else {self.symbol: rules}

    def candles(self) -> pd.DataFrame:
        """Give the chosen series at the chosen timeframe (read once, then cached)."""
        key = (self.series, self.timeframe)
        if key not in self._candles:
            exchange, symbol, base = self._series[self.series]
            with Store.open(self.db, read_only=True) as store:
                if timeframe_ms(self.timeframe) <= timeframe_ms(base):
                    frame = store.candles.read(exchange, symbol, base)
                else:
                    frame = store.candles.resample(exchange, symbol, base, self.timeframe)
            self._candles[key] = frame
        return self._candles[key]

    def bar_ms(self) -> float:
        base = self._series[self.series][2]
        return float(max(timeframe_ms(self.timeframe), timeframe_ms(base)))

    def widgets(self) -> pn.Column:
        """Give the setup's widgets: data, costs, and one widget per strategy parameter."""
        w = {"width": WIDGET_WIDTH}
        return pn.Column(
            pn.widgets.Select.from_param(self.param.strategy, label="Strategy", **w),
            pn.widgets.Select.from_param(self.param.series, label="Data", **w),
            pn.widgets.Select.from_param(self.param.timeframe, label="Timeframe", **w),
            pn.pane.Markdown("**Parameters**", margin=(10, 10, 0, 10)),
            self._param_widgets,
            pn.pane.Markdown("**Costs**", margin=(10, 10, 0, 10)),
            pn.widgets.FloatInput.from_param(self.param.cash, label="Cash", **w),
            pn.widgets.FloatInput.from_param(self.param.fee_rate, label="Fee rate", **w),
            pn.widgets.Select.from_param(self.param.fee_asset, label="Fees paid in", **w),
            pn.widgets.Checkbox.from_param(self.param.market_rules, label="Market's lot rules"),
            pn.widgets.FloatInput.from_param(self.param.slippage, label="Slippage", **w),
        )

    @param.depends("params")
    def _param_widgets(self) -> Any:
        return pn.Param(
            self.params,
            show_name=False,
            widgets={
                name: {
                    "type": pn.widgets.IntInput if p.type is int else pn.widgets.FloatInput,
                    "width": WIDGET_WIDTH,
                }
                for name, p in self._raw_spec.params.items()
            },
            margin=0,
        )
