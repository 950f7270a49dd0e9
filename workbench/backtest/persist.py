"""The IO edge of backtesting: candles from the store in, runs to the store out."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pandas as pd

from workbench.backtest.engine import BacktestResult
from workbench.backtest.errors import BacktestError
from workbench.candles import to_utc
from workbench.store import Store, StoreError
from workbench.store.runs import RunRecord
from workbench.strategy.model import Spec


def load_candles(
    store: Store,
    exchange: str,
    symbols: Sequence[str],
    timeframe: str,
    start: Any = None,
    end: Any = None,
) -> dict[str, pd.DataFrame]:
    """Give stored candles per symbol in [start, end); StoreError when a series is empty."""
    for name, value in (("start", start), ("end", end)):
        try:
            if value is not None:
                to_utc(value)
        except ValueError as exc:
            raise BacktestError(f"{name} {value!r} is not a time: {exc}") from exc
    out = {}
    for symbol in symbols:
        frame = store.candles.read(exchange, symbol, timeframe, start=start, end=end)
        if len(frame) < 2:
            raise StoreError(
                f"no {timeframe} candles for {symbol} on {exchange!r} in that range: "
                f"import or download them first (`workbench data ...`)"
            )
        out[symbol] = frame
    return out


def save_backtest(store: Store, result: BacktestResult, exchange: str) -> str:
    """Store a backtest with its trades and equity; give the run id."""
    spec = result.spec
    record = RunRecord(
        kind="backtest",
        spec_name=spec.name,
        spec_raw=spec.raw,
        params=result.params,
        exchange=exchange,
        symbols=result.symbols,
        timeframe=spec.market.timeframe,
        start=result.start,
        end=result.end,
        cash=result.cash,
        fee_rate=result.fee_rate,
        slippage=result.slippage,
        shared_cash=result.shared_cash,
        stats=result.stats,
        extra={"fee_asset": str(result.fee_asset)},
    )
    return store.runs.save(record, trades=result.trades, equity=result.equity)


def save_table(
    store: Store,
    kind: str,
    spec: Spec,
    table: pd.DataFrame,
    best: dict[str, Any],
    exchange: str,
    symbols: list[str],
    index: pd.DatetimeIndex,
    cash: float,
    fee_rate: float,
    slippage: float,
    shared_cash: bool,
    extra: dict[str, Any] | None = None,
    equity: pd.Series | None = None,
) -> str:
    """Store a sweep-like run (one row per combination) with the best row's stats."""
    names = list(spec.params)
    record = RunRecord(
        kind=kind,
        spec_name=spec.name,
        spec_raw=spec.raw,
        params={k: best[k] for k in names if k in best},
        exchange=exchange,
        symbols=symbols,
        timeframe=spec.market.timeframe,
        start=index[0],
        end=index[-1],
        cash=cash,
        fee_rate=fee_rate,
        slippage=slippage,
        shared_cash=shared_cash,
        stats={k: v for k, v in best.items() if k not in names},
        combinations=len(table),
        extra=extra or {},
    )
    return store.runs.save(record, sweep=table, param_names=names, equity=equity)
