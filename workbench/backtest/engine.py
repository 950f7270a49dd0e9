"""The backtest: a strategy spec over candles, executed and accounted with vectorbt's rules.

``simulate`` runs any number of parameter combinations on one or more symbols in one compiled
pass (`workbench.backtest.run_nb`: vectorbt's ``from_signals`` arithmetic, operation for
operation, without importing vectorbt); ``backtest`` runs one combination and gives a
`BacktestResult` with stats, trades and the equity curve. ``Simulation.portfolio`` gives the
same run as a vectorbt Portfolio (`workbench.backtest.reference`), which the tests hold equal.

Conventions (see also `workbench.backtest.plan` and `workbench.risk.sizing`):

* Fills: a signal on bar t's close fills at bar t+1's open, at the fill model's market price
  (slippage against the taker), fees ``fee_rate * notional`` in the fill model's fee asset
  (`workbench.fills`; in vectorbt's terms `workbench.backtest.ledger.fee_rates`).
* Gaps: ONE rule. The series is the bars that exist: missing bars are never filled or
  interpolated, indicators run over the bars present, and a signal on the last bar before a gap
  fills at the open of the first bar after it (a protective level the gap jumped through fires
  at that open). With several symbols the run uses the bars every symbol has (the
  intersection of their timestamps).
* Many symbols: ``shared_cash=True`` puts all symbols of a combination on one cash pool
  (``cash``); ``False`` gives each symbol ``cash / n_symbols`` of its own.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from workbench.backtest.errors import BacktestError
from workbench.backtest.fused import KeptRun, run_kept, stats_table
from workbench.backtest.plan import REASON_NAMES
from workbench.backtest.stats_nb import EXPOSURE
from workbench.backtest.trades_nb import (
    R_CLOSED,
    R_COMB,
    R_ENTRY_FEES,
    R_ENTRY_PRICE,
    R_ENTRY_ROW,
    R_EXIT_FEES,
    R_EXIT_PRICE,
    R_EXIT_ROW,
    R_PNL,
    R_REASON,
    R_RETURN,
    R_SHORT,
    R_SIZE,
    R_SYM,
)
from workbench.fills import DEFAULT_FEE_ASSET, FeeAsset, FillModel
from workbench.lots import LotRules
from workbench.strategy.fields import check_candles
from workbench.strategy.model import Spec
from workbench.strategy.params import normalize_params
from workbench.strategy.vectorized import rule_flags

CandlesLike = pd.DataFrame | Mapping[str, pd.DataFrame]


def align_candles(candles: CandlesLike, default_symbol: str) -> dict[str, pd.DataFrame]:
    """Give candles per symbol, restricted to the timestamps every symbol has."""
    frames = {default_symbol: candles} if isinstance(candles, pd.DataFrame) else dict(candles)
    if not frames:
        raise BacktestError("no candles given")
    common = None
    for frame in frames.values():
        common = frame.index if common is None else common.intersection(frame.index)
    assert common is not None
    if len(common) < 2:
        raise BacktestError("the symbols share fewer than two bars")
    return {s: f.loc[common] if len(f) != len(common) else f for s, f in frames.items()}


@dataclass
class Simulation:
    """The outcome of one run over combinations x symbols: statistics, equity and trades."""

    grid: pd.DataFrame
    symbols: list[str]
    index: pd.DatetimeIndex
    run: KeptRun
    init_cash: float
    timeframe_seconds: int
    start_bar: int = 0  # bars before it only warm indicators up (walk-forward test windows)
    shared_cash: bool = False  # True when the symbols of a combination share one cash pool
    inputs: dict[str, Any] = field(default_factory=dict, repr=False)

    @property
    def n_symbols(self) -> int:
        return len(self.symbols)

    @property
    def phases(self) -> int:
        """Give the simulation rows per bar (2 with protective exits: open, rest of the bar)."""
        return self.run.phases

    @property
    def bars(self) -> pd.DatetimeIndex:
        """Give the bars the statistics cover (from ``start_bar`` on)."""
        return self.index[self.start_bar :]

    def equity(self) -> np.ndarray:
        """Give total equity at each covered bar's close, bars x combinations."""
        return self.run.equity.T

    def exposure(self) -> np.ndarray:
        """Give per combination the share of bars with a position open at some time."""
        return self.run.stats[:, EXPOSURE]

    def stats(self) -> pd.DataFrame:
        """Give the statistics, one row per combination (parameters first)."""
        return stats_table(self.grid.reset_index(drop=True), self.run.stats)

    def trades(self) -> pd.DataFrame:
        """Give every trade: combination, symbol, side, entry/exit time, price, size, P&L."""
        rec = self.run.records
        # By combination, symbol and time, as vectorbt orders its trade records.
        rec = rec[np.lexsort((rec[:, R_ENTRY_ROW], rec[:, R_SYM], rec[:, R_COMB]))]
        is_open = rec[:, R_CLOSED] == 0.0
        entry_bar = rec[:, R_ENTRY_ROW].astype(np.int64) // self.phases
        exit_bar = rec[:, R_EXIT_ROW].astype(np.int64) // self.phases
        return pd.DataFrame(
            {
                "combination": rec[:, R_COMB].astype(np.int64),
                "symbol": np.asarray(self.symbols, dtype=object)[rec[:, R_SYM].astype(np.int64)],
                "side": np.where(rec[:, R_SHORT] == 0.0, "long", "short"),
                "entry_time": self.index[entry_bar],
                "entry_price": rec[:, R_ENTRY_PRICE],
                "size": rec[:, R_SIZE],
                "exit_time": self.index[exit_bar].where(~is_open, pd.NaT),
                "exit_price": np.where(is_open, np.nan, rec[:, R_EXIT_PRICE]),
                "exit_reason": [
                    "open" if o else REASON_NAMES.get(int(r), "signal")
                    for o, r in zip(is_open, rec[:, R_REASON], strict=True)
                ],
                "fees": rec[:, R_ENTRY_FEES] + np.where(is_open, 0.0, rec[:, R_EXIT_FEES]),
                "pnl": rec[:, R_PNL],
                "return": rec[:, R_RETURN],
            }
        )

    @property
    def portfolio(self) -> Any:
        """Give the same run as a vectorbt Portfolio (imports vectorbt: seconds, once)."""
        from workbench.backtest.reference import vectorbt_simulate

        return vectorbt_simulate(**self.inputs).portfolio


def simulate(
    spec: Spec,
    candles: Mapping[str, pd.DataFrame],
    grid: pd.DataFrame,
    fill_model: FillModel,
    cash: float = 10_000.0,
    shared_cash: bool = True,
    start_bar: int = 0,
    lot_rules: Mapping[str, LotRules] | None = None,
) -> Simulation:
    """Run every combination of ``grid`` on every symbol of (aligned) ``candles``.

    Bars before ``start_bar`` only warm indicators up: no signal acts before it.
    ``lot_rules`` (by symbol) round entries down to the lot step and refuse those under the
    market's minimums, as the venue would (`workbench.lots`); None sizes freely.
    """
    symbols = list(candles)
    index = pd.DatetimeIndex(candles[symbols[0]].index)
    flags = np.zeros((len(symbols), len(grid), len(index)), dtype=np.uint8)
    every_param = normalize_params(spec, grid)
    for j, symbol in enumerate(symbols):
        check_candles(candles[symbol])
        flags[j] = rule_flags(spec, candles[symbol], every_param)
    run = run_kept(spec, candles, flags, fill_model, float(cash), shared_cash, start_bar, lot_rules)
    inputs = dict(
        spec=spec,
        candles=candles,
        grid=grid,
        fill_model=fill_model,
        cash=cash,
        shared_cash=shared_cash,
        start_bar=start_bar,
    )
    return Simulation(
        grid,
        symbols,
        index,
        run,
        float(cash),
        spec.market.timeframe_seconds,
        start_bar,
        shared_cash and len(symbols) > 1,
        inputs,
    )


@dataclass
class BacktestResult:
    """One backtest: its inputs, statistics, trades and equity curve."""

    spec: Spec
    params: dict[str, Any]
    symbols: list[str]
    stats: dict[str, Any]
    trades: pd.DataFrame
    equity: pd.Series
    cash: float
    fee_rate: float
    slippage: float
    shared_cash: bool
    simulation: Simulation | None = field(default=None, repr=False)
    fee_asset: FeeAsset = DEFAULT_FEE_ASSET

    @property
    def start(self) -> pd.Timestamp:
        return self.equity.index[0]

    @property
    def end(self) -> pd.Timestamp:
        return self.equity.index[-1]


def backtest(
    spec: Spec,
    candles: CandlesLike,
    params: Mapping[str, Any] | None = None,
    cash: float = 10_000.0,
    fees: float = 0.001,
    slippage: float = 0.0,
    shared_cash: bool = True,
    fee_asset: FeeAsset | str = DEFAULT_FEE_ASSET,
    lot_rules: LotRules | Mapping[str, LotRules] | None = None,
) -> BacktestResult:
    """Give the backtest of one parameter combination (spec defaults overridden by params).

    ``fee_asset`` says which asset pays the fees (`workbench.fills.FeeAsset`); ``lot_rules``
    are the market's order-size rules (one `LotRules`, or one per symbol), None to size freely
    (`Store.markets` has them for stored candles).
    """
    values = spec.resolve_params(dict(params or {}))
    grid = normalize_params(spec, pd.DataFrame([values]))
    frames = align_candles(candles, spec.market.symbol)
    fill_model = FillModel(float(fees), float(slippage), FeeAsset(fee_asset))
    if isinstance(lot_rules, LotRules):
        lot_rules = dict.fromkeys(frames, lot_rules)
    sim = simulate(spec, frames, grid, fill_model, float(cash), shared_cash, 0, lot_rules)
    table = sim.stats()
    stats = {c: _plain(table[c].iloc[0]) for c in table.columns if c not in values}
    trades = sim.trades().drop(columns="combination")
    equity = pd.Series(sim.equity()[:, 0], index=sim.bars, name="equity")
    return BacktestResult(
        spec,
        values,
        list(frames),
        stats,
        trades,
        equity,
        float(cash),
        fees,
        slippage,
        shared_cash,
        sim,
        fill_model.fee_asset,
    )


def _plain(value: Any) -> Any:
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.floating):
        return float(value)
    return value
