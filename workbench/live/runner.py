"""One running strategy: its indicators, its position logic and its sub-portfolio. No IO.

States: RUNNING trades; PAUSED keeps indicators current and keeps protecting an open position
(stops, take-profit, signal exits) but opens nothing new; STOPPED takes no candles at all;
ERROR is a strategy that raised (the engine stores the traceback and goes on with the others).
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any

import pandas as pd

from workbench.broker.models import Fill, OrderIntent
from workbench.candles import Candle
from workbench.fills import FillModel
from workbench.live.trader import SignalTrader
from workbench.portfolio.accounting import Portfolio
from workbench.risk.sizing import EntrySizer
from workbench.strategy import IncrementalStrategy, SignalEvent, Spec
from workbench.timeframes import timeframe_seconds


class StrategyState(StrEnum):
    RUNNING = "running"
    PAUSED = "paused"
    STOPPED = "stopped"
    ERROR = "error"


class StrategyRunner:
    """Candles in, order intents out; fills booked into its own portfolio."""

    def __init__(
        self,
        strategy_id: str,
        spec: Spec,
        params: dict[str, Any] | None,
        cash: float,
        fill_model: FillModel,
        *,
        symbol: str | None = None,
        allow_short: bool | None = None,
    ) -> None:
        self.strategy_id = strategy_id
        self.spec = spec
        self.symbol = symbol or spec.market.symbol
        self.timeframe = spec.market.timeframe
        self.strategy = IncrementalStrategy(spec, params)
        self.params = dict(self.strategy.params)
        sizer = EntrySizer(spec.risk.sizing, fill_model, timeframe_seconds(self.timeframe))
        if allow_short is None:
            allow_short = spec.short_entry is not None
        self.trader = SignalTrader(
            strategy_id, self.symbol, spec.risk, fill_model, sizer, allow_short
        )
        self.portfolio = Portfolio(cash=cash)
        self.initial_cash = cash
        self.state = StrategyState.RUNNING
        self.last_signal: SignalEvent | None = None
        self.last_price: float | None = None
        self.last_close_ms: int | None = None

    @property
    def warmup_bars(self) -> int:
        return int(self.strategy.warmup_bars)

    def seed(self, history: pd.DataFrame) -> None:
        """Warm indicators and sizing up on stored history (no orders)."""
        for row in history.itertuples():
            candle = Candle(
                int(row.Index.value // 1_000_000),
                row.open,
                row.high,
                row.low,
                row.close,
                row.volume,
            )
            self.last_signal = self.strategy.update(candle)
            self.trader.sizer.update(candle)
            self.last_close_ms = candle.ts_ms
        self.trader.remember(self.last_signal)

    def on_open(self, ts_ms: int, price: float) -> list[OrderIntent]:
        """Give the orders for the first price of a new bar."""
        self.last_price = price
        if self.state in (StrategyState.STOPPED, StrategyState.ERROR):
            return []
        intents = self.trader.on_open(ts_ms, price, self.portfolio.cash)
        if self.state is StrategyState.PAUSED:
            intents = [i for i in intents if i.purpose != "entry"]
        return intents

    def on_close(self, candle: Candle) -> list[OrderIntent]:
        """Take a closed candle: update indicators, give protective exits it reached."""
        if self.state in (StrategyState.STOPPED, StrategyState.ERROR):
            return []
        self.last_signal = self.strategy.update(candle)
        self.last_price = candle.close
        self.last_close_ms = candle.ts_ms
        return self.trader.on_close(candle, self.last_signal)

    def flatten(self, ts_ms: int) -> list[OrderIntent]:
        """Give the order that closes the open position now (the drawdown guard's option)."""
        return self.trader.flatten(ts_ms)

    def on_fill(self, fill: Fill) -> None:
        self.portfolio.apply(fill)
        self.trader.on_fill(fill)

    def equity(self) -> float:
        marks = {self.symbol: self.last_price} if self.last_price is not None else {}
        return self.portfolio.equity(marks)
