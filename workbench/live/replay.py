"""Run the live path (runner + paper broker + portfolio) over stored candles, without IO.

The same objects the engine drives from streaming candles, driven here from a DataFrame:
each bar's open reaches the strategy first (orders placed on the previous close fill there),
then the closed bar. Tests compare this with the vectorbt backtest; notebooks use it to see
what live trading would have done.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pandas as pd

from workbench.broker.models import Order
from workbench.broker.paper import PaperBroker
from workbench.candles import Candle
from workbench.fills import FillModel
from workbench.live.runner import StrategyRunner
from workbench.portfolio.accounting import RoundTrip
from workbench.strategy import Spec


@dataclass
class ReplayResult:
    """The round trips and the per-bar equity of a replayed strategy."""

    runner: StrategyRunner
    round_trips: list[RoundTrip]
    equity: pd.Series

    def trades(self) -> pd.DataFrame:
        rows = [vars(t) | {"return": t.return_fraction} for t in self.round_trips]
        frame = pd.DataFrame(rows)
        for column in ("entry_ms", "exit_ms"):
            if column in frame:
                frame[column.replace("_ms", "_time")] = pd.to_datetime(
                    frame[column], unit="ms", utc=True
                )
        return frame


def replay(
    spec: Spec,
    candles: pd.DataFrame,
    params: dict[str, Any] | None = None,
    cash: float = 10_000.0,
    fill_model: FillModel | None = None,
) -> ReplayResult:
    """Feed candles one by one through a strategy runner trading on a paper broker."""
    fill_model = fill_model or FillModel()
    runner = StrategyRunner("replay", spec, params, cash, fill_model)
    broker = PaperBroker(fill_model)
    symbol = runner.symbol
    equity = []

    def book(executions: list[Any]) -> None:
        for execution in executions:
            for fill in execution.fills:
                runner.on_fill(fill)

    def place(intents: list[Any], now_ms: int) -> None:
        book([broker.execute(Order.from_intent(intent, now_ms)) for intent in intents])

    for row in candles.itertuples():
        ts_ms = int(row.Index.value // 1_000_000)
        place(runner.on_open(ts_ms, row.open), ts_ms)
        book(broker.on_price(symbol, row.open, ts_ms))  # the open fills what was placed at it
        candle = Candle(ts_ms, row.open, row.high, row.low, row.close, row.volume)
        book(broker.on_price(symbol, row.close, ts_ms))
        place(runner.on_close(candle), ts_ms)
        equity.append(runner.equity())
    return ReplayResult(
        runner, list(runner.portfolio.round_trips), pd.Series(equity, index=candles.index)
    )
