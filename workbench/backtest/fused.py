"""The sweep's fused simulation: plan, execute and account in one numba pass per combination.

`workbench.backtest.engine.simulate` builds a vectorbt Portfolio (orders, trades, equity for
every row x column): right for one backtest, whose trades and equity curve are wanted, and
far too heavy for a sweep that keeps one row of statistics per combination. Here:

1. indicators are computed once per distinct value of the parameters they depend on
   (`workbench.strategy.vectorized.compute_indicators`);
2. the rules run as one compiled kernel over the chunk (`workbench.strategy.rules_jit`),
   one byte of signal flags per combination x symbol x bar;
3. `sweep_nb` walks each combination's bars once: the planner of `workbench.backtest.plan`
   (the same step functions as ``plan_orders_nb``), vectorbt's order arithmetic
   (`workbench.backtest.ledger`), equity as vectorbt values it, and the statistics of
   `workbench.portfolio.stats` (`workbench.backtest.stats_nb`).

Conventions are those of ``simulate`` (fills, gaps, sizing, shared or separate cash); a row
equals ``simulate(...).stats()`` of the same combination (tests/backtest/test_fused.py).
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd
from numba import njit

from workbench import fills, fills_nb
from workbench.backtest import ledger, stats_nb
from workbench.backtest import plan as planner
from workbench.backtest.ledger import (
    BOTH,
    LONG_ONLY,
    SHORT_ONLY,
    add_nb,
    buy_nb,
    fee_rates,
    is_close_nb,
    sell_nb,
    trade_pnl_nb,
)
from workbench.backtest.plan import (
    ORDER_LONG_ENTRY,
    ORDER_LONG_EXIT,
    ORDER_NONE,
    ORDER_SHORT_ENTRY,
    PLAN_STATE_SIZE,
    open_step_nb,
    rest_step_nb,
)
from workbench.backtest.sizing import entry_sizes
from workbench.backtest.stats_nb import (
    EXPOSURE,
    FEES,
    INT_STATS,
    N_STATS,
    equity_stats_nb,
    pairwise_sum_nb,
    trade_stats_nb,
)
from workbench.fills import FillModel
from workbench.kernel_cache import drop_stale
from workbench.portfolio.stats import SECONDS_PER_YEAR, STAT_COLUMNS, periods_per_year
from workbench.strategy.fields import OHLCV, check_candles, derived_fields
from workbench.strategy.model import Spec
from workbench.strategy.params import normalize_params
from workbench.strategy.rules_jit import (
    LONG_ENTRY,
    LONG_EXIT,
    SHORT_ENTRY,
    SHORT_EXIT,
    compile_rules,
    rule_inputs,
)
from workbench.strategy.vectorized import compute_indicators

# Trade bookkeeping per symbol (vectorbt's exit trades): in a trade, short, size, gross, fees.
_T_OPEN, _T_SHORT, _T_SIZE, _T_GROSS, _T_FEES = 0, 1, 2, 3, 4


@njit(cache=True)
def _execute(
    order: int,
    size: float,
    price: float,
    buy_fee: float,
    sell_fee: float,
    slippage: float,
    as_fraction: bool,
    cash: float,
    free: float,
    position: float,
    debt: float,
) -> tuple[bool, float, float, float, float, float, float, float]:
    """Give vectorbt's fill of one planned order (see `ledger`); unfilled when it ignores it.

    Buys pay ``buy_fee``, sells ``sell_fee`` (`ledger.fee_rates`).
    """
    percent = size if as_fraction else np.nan
    amount = np.inf if as_fraction else size
    if order == ORDER_LONG_ENTRY:
        if position != 0:
            return False, cash, free, position, debt, 0.0, 0.0, 0.0
        ok, c, p, d, f, q, px, fee = buy_nb(
            cash, position, debt, free, amount, price, BOTH, buy_fee, slippage, percent
        )
        return ok, c, f, p, d, q, px, fee
    if order == ORDER_SHORT_ENTRY:
        if position != 0:
            return False, cash, free, position, debt, 0.0, 0.0, 0.0
        ok, c, p, d, f, q, px, fee = sell_nb(
            cash, position, debt, free, amount, price, BOTH, sell_fee, slippage, percent
        )
        return ok, c, f, p, d, q, px, fee
    if order == ORDER_LONG_EXIT:
        if position <= 0:
            return False, cash, free, position, debt, 0.0, 0.0, 0.0
        ok, c, p, d, f, q, px, fee = sell_nb(
            cash, position, debt, free, position, price, LONG_ONLY, sell_fee, slippage, np.nan
        )
        return ok, c, f, p, d, q, px, fee
    if position >= 0:
        return False, cash, free, position, debt, 0.0, 0.0, 0.0
    ok, c, p, d, f, q, px, fee = buy_nb(
        cash, position, debt, free, -position, price, SHORT_ONLY, buy_fee, slippage, np.nan
    )
    return ok, c, f, p, d, q, px, fee


@njit(cache=True, nogil=True)
def sweep_nb(
    open_: np.ndarray,
    high: np.ndarray,
    low: np.ndarray,
    close: np.ndarray,
    flags: np.ndarray,
    size_long: np.ndarray,
    size_short: np.ndarray,
    atr_stop: np.ndarray,
    stop_loss: float,
    take_profit: float,
    trailing_stop: float,
    buy_fee: float,
    sell_fee: float,
    slippage: float,
    as_fraction: bool,
    phases: int,
    shared_cash: bool,
    cash: float,
    start_bar: int,
    ppy: float,
    years: float,
    timeframe_seconds: int,
    out: np.ndarray,
) -> None:
    """Write one row of statistics per combination into ``out`` (combinations, N_STATS).

    Price and size arrays are (symbols, bars); ``flags`` (symbols, combinations, bars) are the
    rule kernel's signal bits of each bar's CLOSE. Within a bar the symbols act in order, as
    vectorbt's columns of one group do.
    """
    n_sym, n_comb, n_bars = flags.shape
    grouped = shared_cash or n_sym == 1
    n_groups = 1 if grouped else n_sym
    start_cash = cash if grouped else cash / n_sym
    covered = n_bars - start_bar
    plan = np.zeros((n_sym, PLAN_STATE_SIZE))
    trade = np.zeros((n_sym, 5))
    position = np.zeros(n_sym)
    debt = np.zeros(n_sym)
    assets = np.zeros(n_sym)  # the position as vectorbt's assets() rebuilds it from orders
    sim_cash = np.zeros(n_groups)  # the balance orders are sized against
    free = np.zeros(n_groups)
    booked = np.zeros(n_groups)  # the balance as vectorbt's cash() rebuilds it from flows
    flow = np.zeros(n_groups)
    fees = np.zeros(n_sym)
    pnl = np.empty((n_sym, n_bars))
    n_trades = np.zeros(n_sym, dtype=np.int64)
    equity = np.empty(covered)
    scratch = np.empty(2 * covered)
    entry_bits = LONG_ENTRY | SHORT_ENTRY
    quiet = n_sym == 1 and phases == 1
    for comb in range(n_comb):
        plan[:, :] = 0.0
        trade[:, :] = 0.0
        position[:] = 0.0
        debt[:] = 0.0
        assets[:] = 0.0
        sim_cash[:] = start_cash
        free[:] = start_cash
        booked[:] = start_cash
        fees[:] = 0.0
        n_trades[:] = 0
        held_bars = 0
        n_open = 0  # symbols the planner holds a position in
        n_held = 0  # symbols with assets (vectorbt's position) other than zero
        i = 0
        while i < n_bars:
            if quiet:
                # One symbol, no protective exits: between signals nothing happens to a bar but
                # its valuation, so run through those bars in a tight loop.
                i, held_quiet = _fast_forward(
                    flags, comb, i, start_bar, plan[0, 0], n_held, close, assets, booked, equity
                )
                held_bars += held_quiet
                if i >= n_bars:
                    break
            held = False
            for phase in range(phases):
                if phase == 1 and n_open == 0:
                    break
                moved = False
                for s in range(n_sym):
                    if phase == 0:
                        bits = flags[s, comb, i - 1] if i > 0 else 0
                        if plan[s, 0] == 0 and (i < start_bar or (bits & entry_bits) == 0):
                            continue  # flat, nothing to enter: nothing happens
                        may_enter = i >= start_bar
                        order, _, amount = open_step_nb(
                            plan,
                            s,
                            open_[s, i],
                            i == 0,
                            may_enter and (bits & LONG_ENTRY) != 0,
                            (bits & LONG_EXIT) != 0,
                            may_enter and (bits & SHORT_ENTRY) != 0,
                            (bits & SHORT_EXIT) != 0,
                            size_long[s, i],
                            size_short[s, i],
                            atr_stop[s, i],
                            stop_loss,
                            take_profit,
                            trailing_stop,
                            slippage,
                        )
                        price = open_[s, i]
                    else:
                        if plan[s, 0] == 0:
                            continue
                        order, _, price = rest_step_nb(
                            plan, s, open_[s, i], high[s, i], low[s, i], close[s, i], trailing_stop
                        )
                        amount = np.nan
                    if order == ORDER_NONE:
                        continue
                    n_open += 1 if (order in (ORDER_LONG_ENTRY, ORDER_SHORT_ENTRY)) else -1
                    g = 0 if grouped else s
                    ok, c, f, pos, d, qty, fill, fee = _execute(
                        order,
                        amount,
                        price,
                        buy_fee,
                        sell_fee,
                        slippage,
                        as_fraction,
                        sim_cash[g],
                        free[g],
                        position[s],
                        debt[s],
                    )
                    if not ok:
                        continue
                    if not moved:
                        flow[:] = 0.0
                        moved = True
                    bought = order == ORDER_LONG_ENTRY or (
                        order != ORDER_SHORT_ENTRY and order != ORDER_LONG_EXIT
                    )
                    sim_cash[g], free[g], position[s], debt[s] = c, f, pos, d
                    signed = qty if bought else -qty
                    was_held = assets[s] != 0
                    assets[s] = add_nb(assets[s], add_nb(0.0, signed))
                    n_held += int(assets[s] != 0) - int(was_held)
                    flow[g] = flow[g] + add_nb(0.0, -signed * fill - fee)
                    fees[s] += fee
                    _book_trade(trade, s, bought, qty, fill, fee, pnl, n_trades)
                if moved:
                    for g in range(n_groups):
                        booked[g] = add_nb(booked[g], flow[g])
                held = held or n_held > 0
            if i < start_bar:
                i += 1
                continue
            if held:
                held_bars += 1
            if grouped:
                value = 0.0
                if n_held > 0:  # else every term is +0.0
                    for s in range(n_sym):
                        value += close[s, i] * assets[s]
                value = booked[0] + value
            else:
                value = 0.0
                for s in range(n_sym):
                    value += booked[s] + close[s, i] * assets[s]
            equity[i - start_bar] = value
            i += 1
        row = out[comb]
        equity_stats_nb(equity, scratch, cash, ppy, years, timeframe_seconds, row)
        trade_stats_nb(pnl, n_trades, row)
        row[FEES] = pairwise_sum_nb(fees, 0, n_sym)
        row[EXPOSURE] = held_bars / covered


@njit(cache=True)
def _fast_forward(
    flags: np.ndarray,
    comb: int,
    i: int,
    start_bar: int,
    side: float,
    n_held: int,
    close: np.ndarray,
    assets: np.ndarray,
    booked: np.ndarray,
    equity: np.ndarray,
) -> tuple[int, int]:
    """Value the bars from i on until one whose previous close signals something that matters.

    For one symbol without protective exits (one row per bar): flat, only an entry signal
    matters; long (short), only a long (short) exit. Gives (the first bar that needs the full
    step, how many of the bars passed held a position). Equity is vectorbt's value, as in the
    full step: cash + (0.0 + close * assets).
    """
    if side == 0 and n_held == 0:
        wake = LONG_ENTRY | SHORT_ENTRY
    elif side > 0:
        wake = LONG_EXIT
    elif side < 0:
        wake = SHORT_EXIT
    else:
        return i, 0  # flat planner but a position left over: take the full step
    n_bars = flags.shape[2]
    cash = booked[0]
    units = assets[0]
    held = 0
    while i < n_bars:
        if i > 0 and (flags[0, comb, i - 1] & wake) != 0 and (side != 0 or i >= start_bar):
            break
        if i >= start_bar:
            if n_held > 0:
                held += 1
                equity[i - start_bar] = cash + (0.0 + close[0, i] * units)
            else:
                equity[i - start_bar] = cash + 0.0
        i += 1
    return i, held


@njit(cache=True)
def _book_trade(
    trade: np.ndarray,
    s: int,
    bought: bool,
    qty: float,
    fill: float,
    fee: float,
    pnl: np.ndarray,
    n_trades: np.ndarray,
) -> None:
    """Record an order in symbol s's exit-trade bookkeeping (vectorbt's get_exit_trades_nb)."""
    if trade[s, _T_OPEN] == 0.0:
        trade[s, _T_OPEN] = 1.0
        trade[s, _T_SHORT] = 0.0 if bought else 1.0
        trade[s, _T_SIZE] = 0.0
        trade[s, _T_GROSS] = 0.0
        trade[s, _T_FEES] = 0.0
    short = trade[s, _T_SHORT] == 1.0
    if bought != short:
        trade[s, _T_SIZE] += qty
        trade[s, _T_GROSS] += qty * fill
        trade[s, _T_FEES] += fee
        return
    size_sum = trade[s, _T_SIZE]
    closes_all = is_close_nb(qty, size_sum)
    exit_size = size_sum if closes_all else qty
    entry_price = trade[s, _T_GROSS] / size_sum
    entry_fees = exit_size / size_sum * trade[s, _T_FEES]
    pnl[s, n_trades[s]] = trade_pnl_nb(exit_size, entry_price, entry_fees, fill, fee, short)
    n_trades[s] += 1
    if closes_all:
        trade[s, _T_OPEN] = 0.0
    else:
        # A partial exit (a short covered with too little cash): the rest stays open.
        fraction = (size_sum - qty) / size_sum
        trade[s, _T_SIZE] *= fraction
        trade[s, _T_GROSS] *= fraction
        trade[s, _T_FEES] *= fraction


def price_fields(candles: pd.DataFrame) -> dict[str, np.ndarray]:
    """Give the price fields a rule may read, each a (1, bars) float64 array."""
    out = {c: np.ascontiguousarray(candles[c].to_numpy(dtype=np.float64))[None, :] for c in OHLCV}
    out.update(derived_fields(out["open"], out["high"], out["low"], out["close"]))
    return out


def sweep_stats(
    spec: Spec,
    candles: Mapping[str, pd.DataFrame],
    grid: pd.DataFrame,
    fill_model: FillModel,
    cash: float = 10_000.0,
    shared_cash: bool = True,
    start_bar: int = 0,
) -> np.ndarray:
    """Give the statistics of every combination of ``grid``, (combinations, STAT_COLUMNS).

    ``candles`` are aligned (the same bars for every symbol); ``grid`` has one column per spec
    parameter. Bars before ``start_bar`` only warm indicators up.
    """
    grid = normalize_params(spec, grid)  # every spec parameter, typed, in spec order
    symbols = list(candles)
    index = pd.DatetimeIndex(candles[symbols[0]].index)
    n, k, s = len(index), len(grid), len(symbols)
    risk = spec.risk
    tf_s = spec.market.timeframe_seconds
    rules = compile_rules(spec)
    flags = np.empty((s, k, n), dtype=np.uint8)
    prices = np.empty((4, s, n))
    sizes = np.empty((3, s, n))
    as_fraction = True
    for j, symbol in enumerate(symbols):
        frame = candles[symbol]
        check_candles(frame)
        fields = price_fields(frame)
        computed = compute_indicators(spec, frame, grid)
        inputs = rule_inputs(spec, fields, computed, grid)
        rules(inputs.series, inputs.codes, inputs.params, flags[j])
        del computed, inputs
        for row, name in enumerate(("open", "high", "low", "close")):
            prices[row, j] = fields[name][0]
        size = entry_sizes(risk, frame, tf_s, fill_model.on_pair())
        sizes[0, j], sizes[1, j], sizes[2, j] = size.long, size.short, size.atr_stop
        as_fraction = size.as_fraction
    levels = [np.nan if v is None else float(v) for v in (risk.stop_loss, risk.take_profit)]
    trailing = np.nan if risk.trailing_stop is None else float(risk.trailing_stop)
    has_stops = not np.isnan([*levels, trailing]).all()
    phases = 2 if (has_stops or not np.isnan(sizes[2]).all()) else 1
    bars = index[start_bar:]
    years = ((bars[-1] - bars[0]).total_seconds() + tf_s) / SECONDS_PER_YEAR
    out = np.empty((k, N_STATS))
    sweep_nb(
        prices[0],
        prices[1],
        prices[2],
        prices[3],
        flags,
        sizes[0],
        sizes[1],
        sizes[2],
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
        out,
    )
    return out


def stats_table(grid: pd.DataFrame, stats: np.ndarray) -> pd.DataFrame:
    """Give parameters and statistics as one frame, as ``Simulation.stats`` lays it out.

    ``stats`` is (combinations, STAT_COLUMNS); a transposed view of a (STAT_COLUMNS,
    combinations) array is taken column by column without a copy.
    """
    columns: dict[str, np.ndarray] = {c: grid[c].to_numpy() for c in grid.columns}
    for j, name in enumerate(STAT_COLUMNS):
        col = stats[:, j]
        columns[name] = col.astype(np.int64) if name in INT_STATS else col
    return pd.DataFrame(columns, copy=False)


# Cached kernels older than a module they call are compiled anew (see kernel_cache).
drop_stale(
    (sweep_nb, _execute, _book_trade, _fast_forward),
    (ledger, planner, stats_nb, fills_nb, fills),
)
