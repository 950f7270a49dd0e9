"""What a research session works on: a spec, its data and costs, and a job runner that keeps
heavy computation off the server's event loop while showing progress."""

from __future__ import annotations

import asyncio
import math
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
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
# One worker: numba/vectorbt hold the GIL for long stretches; more threads would not help.
_EXECUTOR = ThreadPoolExecutor(max_workers=1, thread_name_prefix="research")

WIDGET_WIDTH = 250
Report = Callable[[int, int], None]


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


class Jobs(param.Parameterized):
    """Runs one job at a time in a worker thread, with a status line and a progress bar."""

    busy = param.Boolean(default=False)
    message = param.String(default="Ready.")

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.progress = pn.indicators.Progress(
            value=0, max=100, active=False, sizing_mode="stretch_width", height=18
        )
        self.status = pn.pane.Alert(self.message, alert_type="light", name="status", margin=(5, 5))

    async def run(self, label: str, work: Callable[[Report], Any]) -> Any:
        """Give ``work(report)``'s result, run in a worker thread; None if it failed or the
        runner was busy. ``report(done, total)`` may be called from the thread."""
        if self.busy:
            self._show(f"Busy: wait for the running job before starting {label}.", "warning")
            return None
        loop = asyncio.get_running_loop()

        def report(done: int, total: int) -> None:
            loop.call_soon_threadsafe(self._step, done, total)

        self.busy = True
        self.progress.value, self.progress.active = -1, True
        self._show(f"Running {label}…", "info")
        try:
            result = await loop.run_in_executor(_EXECUTOR, work, report)
        except Exception as exc:  # shown to the user, who can fix the input and retry
            self._show(f"{label} failed: {type(exc).__name__}: {exc}", "danger")
            return None
        finally:
            self.busy = False
            self.progress.active = False
        self.progress.value = 100
        self._show(f"{label} done.", "success")
        return result

    def _step(self, done: int, total: int) -> None:
        self.progress.value = int(100 * done / max(total, 1))

    def _show(self, text: str, kind: str) -> None:
        self.message = text
        self.status.object, self.status.alert_type = text, kind

    def view(self) -> pn.Column:
        return pn.Column(self.status, self.progress, sizing_mode="stretch_width")
