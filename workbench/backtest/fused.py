"""The fused simulation's driver: rules, plan, fills, ledger and statistics in one compiled pass.

A sweep keeps one row of statistics per combination (15 numbers), so nothing of size
``(bars, combinations)`` is built:

1. indicators are computed once per distinct value of the parameters they depend on
   (`workbench.strategy.vectorized.compute_indicators`);
2. for a block of combinations small enough to stay in the CPU cache, the rules run as one
   compiled kernel (`workbench.strategy.rules_jit`), one byte of signal flags per
   combination x symbol x bar;
3. `workbench.backtest.run_nb` walks each combination's bars once: the planner of
   `workbench.backtest.plan`, vectorbt's order arithmetic (`workbench.backtest.ledger`),
   equity as vectorbt values it, and the statistics of `workbench.portfolio.stats`
   accumulated on the way (`workbench.backtest.stats_nb`).

`run_kept` is the same pass for a backtest: it keeps the equity curve and the trades too.
Conventions (fills, gaps, sizing, shared or separate cash) are those of
`workbench.backtest.engine`; rows equal vectorbt's (tests/backtest/test_fused.py).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd

from workbench.backtest.ledger import fee_rates
from workbench.backtest.run_nb import run_nb as _run
from workbench.backtest.stats_nb import INT_STATS, N_STATS, RUN_COLUMNS
from workbench.backtest.trades_nb import N_FIELDS
from workbench.fills import FeeIn, FillModel, Side
from workbench.lots import LotRules
from workbench.portfolio.stats import SECONDS_PER_YEAR, periods_per_year
from workbench.risk.sizing import entry_sizes
from workbench.strategy.fields import check_candles
from workbench.strategy.model import Spec
from workbench.strategy.params import normalize_params
from workbench.strategy.rules_jit import compile_rules, rule_inputs
from workbench.strategy.vectorized import compute_indicators, price_fields

BLOCK_BYTES = 1 << 20  # signal flags of one block of combinations: ~1 MB, within the L2 cache


@dataclass
class RunInputs:
    """What the compiled run needs besides the signal flags, for aligned candles."""

    prices: np.ndarray  # (4, symbols, bars): open, high, low, close
    sizes: np.ndarray  # (3, symbols, bars): long, short, ATR stop distance
    scalars: tuple  # the run's settings, in run_nb's argument order
    index: pd.DatetimeIndex
    phases: int


def run_inputs(
    spec: Spec,
    candles: Mapping[str, pd.DataFrame],
    fill_model: FillModel,
    cash: float,
    shared_cash: bool,
    start_bar: int,
    lot_rules: Mapping[str, LotRules] | None = None,
) -> RunInputs:
    """Give prices, entry sizes and settings of a run over aligned ``candles``.

    ``lot_rules`` are the markets' order-size rules by symbol (None or a missing symbol:
    any size, idealized).
    """
    symbols = list(candles)
    index = pd.DatetimeIndex(candles[symbols[0]].index)
    n, s = len(index), len(symbols)
    risk = spec.risk
    tf_s = spec.market.timeframe_seconds
    prices = np.empty((4, s, n))
    sizes = np.empty((3, s, n))
    as_fraction = True
    for j, symbol in enumerate(symbols):
        frame = candles[symbol]
        for row, name in enumerate(("open", "high", "low", "close")):
            prices[row, j] = frame[name].to_numpy(dtype=np.float64)
        size = entry_sizes(risk, frame, tf_s, fill_model.on_pair())
        sizes[0, j], sizes[1, j], sizes[2, j] = size.long, size.short, size.atr_stop
        as_fraction = size.as_fraction
    levels = [np.nan if v is None else float(v) for v in (risk.stop_loss, risk.take_profit)]
    trailing = np.nan if risk.trailing_stop is None else float(risk.trailing_stop)
    has_stops = not np.isnan([*levels, trailing]).all()
    phases = 2 if (has_stops or not np.isnan(sizes[2]).all()) else 1
    bars = index[start_bar:]
    years = ((bars[-1] - bars[0]).total_seconds() + tf_s) / SECONDS_PER_YEAR
    rules = [(lot_rules or {}).get(symbol, LotRules()) for symbol in symbols]
    booked = fill_model.on_pair()
    bought_share = 1.0
    if booked.fee_in(Side.BUY) is FeeIn.BASE:
        bought_share = 1.0 - booked.effective_rate
    scalars = (
        levels[0],
        levels[1],
        trailing,
        *fee_rates(fill_model),
        float(fill_model.slippage),
        bool(as_fraction),
        int(phases),
        bool(shared_cash),
        float(cash),
        int(start_bar),
        float(periods_per_year(tf_s)),
        float(years),
        int(tf_s),
        np.array([r.amount_step for r in rules], dtype=np.float64),
        np.array([r.min_amount for r in rules], dtype=np.float64),
        np.array([r.min_notional for r in rules], dtype=np.float64),
        float(bought_share),
    )
    return RunInputs(prices, sizes, scalars, index, phases)


def _run_block(
    inputs: RunInputs,
    flags: np.ndarray,
    out: np.ndarray,
    keep: bool = False,
    equity: np.ndarray | None = None,
    held: np.ndarray | None = None,
    records: np.ndarray | None = None,
    n_records: np.ndarray | None = None,
) -> None:
    p, z = inputs.prices, inputs.sizes
    _run(
        p[0],
        p[1],
        p[2],
        p[3],
        flags,
        z[0],
        z[1],
        z[2],
        *inputs.scalars,
        out,
        keep,
        np.empty((1, 1)) if equity is None else equity,
        np.empty((1, 1), dtype=np.bool_) if held is None else held,
        np.empty((1, N_FIELDS)) if records is None else records,
        np.zeros(1, dtype=np.int64) if n_records is None else n_records,
    )


def sweep_stats(
    spec: Spec,
    candles: Mapping[str, pd.DataFrame],
    grid: pd.DataFrame,
    fill_model: FillModel,
    cash: float = 10_000.0,
    shared_cash: bool = True,
    start_bar: int = 0,
    lot_rules: Mapping[str, LotRules] | None = None,
) -> np.ndarray:
    """Give the statistics of every combination of ``grid``, (combinations, RUN_COLUMNS).

    ``candles`` are aligned (the same bars for every symbol); ``grid`` has one column per spec
    parameter. Bars before ``start_bar`` only warm indicators up.
    """
    grid = normalize_params(spec, grid)  # every spec parameter, typed, in spec order
    inputs = run_inputs(spec, candles, fill_model, cash, shared_cash, start_bar, lot_rules)
    n, k, s = len(inputs.index), len(grid), len(candles)
    rules = compile_rules(spec)
    operands = []
    for frame in candles.values():
        check_candles(frame)
        computed = compute_indicators(spec, frame, grid)
        operands.append(rule_inputs(spec, price_fields(frame), computed, grid))
    out = np.empty((k, N_STATS))
    block = max(1, min(k, BLOCK_BYTES // max(n * s, 1)))
    flags = np.empty((s, block, n), dtype=np.uint8)
    for a in range(0, k, block):
        b = min(a + block, k)
        for j, ops in enumerate(operands):
            codes = np.ascontiguousarray(ops.codes[:, a:b])
            rules(ops.series, codes, np.ascontiguousarray(ops.params[a:b]), flags[j, : b - a])
        _run_block(inputs, flags[:, : b - a], out[a:b])
    return out


@dataclass
class KeptRun:
    """A run that kept its equity curve, held bars and trades (`trades_nb` records)."""

    stats: np.ndarray  # (combinations, N_STATS)
    equity: np.ndarray  # (combinations, covered bars)
    held: np.ndarray  # (combinations, covered bars) bool
    records: np.ndarray  # (trades, N_FIELDS)
    phases: int


def run_kept(
    spec: Spec,
    candles: Mapping[str, pd.DataFrame],
    signal_flags: np.ndarray,
    fill_model: FillModel,
    cash: float,
    shared_cash: bool,
    start_bar: int,
    lot_rules: Mapping[str, LotRules] | None = None,
) -> KeptRun:
    """Run the combinations whose signal bits are ``signal_flags`` (symbols, combinations,
    bars) and keep everything a backtest shows."""
    inputs = run_inputs(spec, candles, fill_model, cash, shared_cash, start_bar, lot_rules)
    s, k, n = signal_flags.shape
    covered = n - start_bar
    out = np.empty((k, N_STATS))
    equity = np.empty((k, covered))
    held = np.zeros((k, covered), dtype=np.bool_)
    # At most one trade per symbol and bar, plus the one left open.
    records = np.empty((k * s * (n + 1), N_FIELDS))
    n_records = np.zeros(1, dtype=np.int64)
    _run_block(inputs, signal_flags, out, True, equity, held, records, n_records)
    return KeptRun(out, equity, held, records[: n_records[0]], inputs.phases)


def stats_table(grid: pd.DataFrame, stats: np.ndarray) -> pd.DataFrame:
    """Give parameters and statistics as one frame, as ``Simulation.stats`` lays it out.

    ``stats`` is (combinations, RUN_COLUMNS); a transposed view of a (RUN_COLUMNS,
    combinations) array is taken column by column without a copy.
    """
    columns: dict[str, np.ndarray] = {c: grid[c].to_numpy() for c in grid.columns}
    for j, name in enumerate(RUN_COLUMNS):
        col = stats[:, j]
        columns[name] = col.astype(np.int64) if name in INT_STATS else col
    return pd.DataFrame(columns, copy=False)
