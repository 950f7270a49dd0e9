"""The compiled run: plan, execute and account in one numba pass per combination.

`run_nb` walks each combination's bars once: the planner of `workbench.backtest.plan`, the
order arithmetic of `workbench.backtest.ledger` (vectorbt's, operation for operation), equity
as vectorbt values it, the trade bookkeeping of `workbench.backtest.trades_nb`, and the
statistics of `workbench.backtest.stats_nb` accumulated bar by bar. A sweep keeps one row of
statistics per combination; a backtest (``keep``) also keeps the equity curve, the bars a
position was held and every trade.

Between signals nothing happens to a one-symbol run without protective exits but the
valuation of its bars: `_fast_forward` runs through those bars, in O(1) per stretch while flat.
"""

from __future__ import annotations

import numpy as np
from llvmlite import ir
from numba import types
from numba.core import cgutils
from numba.extending import intrinsic

from workbench import fills, fills_nb, signals_nb
from workbench.backtest import ledger, plan, stats_nb, trades_nb
from workbench.backtest.ledger import BOTH, LONG_ONLY, SHORT_ONLY, add_nb, buy_nb, sell_nb
from workbench.backtest.plan import (
    ORDER_LONG_ENTRY,
    ORDER_LONG_EXIT,
    ORDER_NONE,
    ORDER_SHORT_ENTRY,
    PLAN_STATE_SIZE,
    open_step_nb,
    rest_step_nb,
)
from workbench.backtest.stats_nb import (
    ACC_LONGEST,
    ACC_LOW,
    ACC_MAX_DD,
    ACC_N,
    ACC_PEAK,
    ACC_PREV,
    ACC_RUN,
    ACC_SIZE,
    EXPOSURE,
    FEES,
    REFUSED,
    acc_bar_nb,
    acc_finish_nb,
    acc_flat_nb,
    acc_held_nb,
    acc_start_nb,
    pairwise_sum_nb,
    trade_stats_nb,
)
from workbench.backtest.trades_nb import TRADE_STATE_SIZE, book_trade_nb, record_open_trades_nb
from workbench.kernel_cache import drop_stale, njit
from workbench.strategy.rules_jit import LONG_ENTRY, LONG_EXIT, SHORT_ENTRY, SHORT_EXIT


@njit(cache=True, inline="always")
def execute_nb(
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
def run_nb(
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
    lot_step: np.ndarray,
    min_amount: np.ndarray,
    min_notional: np.ndarray,
    bought_share: float,
    out: np.ndarray,
    keep: bool,
    equity_out: np.ndarray,
    held_out: np.ndarray,
    records: np.ndarray,
    n_records: np.ndarray,
) -> None:
    """Write one row of statistics per combination into ``out`` (combinations, N_STATS).

    Price and size arrays are (symbols, bars); ``flags`` (symbols, combinations, bars) are the
    signal bits of each bar's CLOSE. Within a bar the symbols act in order, as vectorbt's
    columns of one group do. With ``keep``, ``equity_out`` and ``held_out`` (combinations,
    covered bars) receive the equity at each close and whether a position was held in the bar,
    and ``records`` the trades (``n_records[0]`` of them; `trades_nb`); without, those arrays
    are not touched.

    ``lot_step``, ``min_amount`` and ``min_notional`` (per symbol, 0: none) are the market's
    rules (`workbench.lots`): an entry's order quantity is rounded down to the step, and an
    entry under a minimum is refused (no position; counted in REFUSED). ``bought_share`` is
    the part of a buy's quantity the position keeps (``1 - fee`` with the fee in the base
    received): vectorbt's sizes are what the position holds.
    """
    lots = (lot_step.max() > 0) or (min_amount.max() > 0) or (min_notional.max() > 0)
    n_sym, n_comb, n_bars = flags.shape
    grouped = shared_cash or n_sym == 1
    n_groups = 1 if grouped else n_sym
    start_cash = cash if grouped else cash / n_sym
    covered = n_bars - start_bar
    last_row = n_bars * phases - 1
    plan = np.zeros((n_sym, PLAN_STATE_SIZE))
    trade = np.zeros((n_sym, TRADE_STATE_SIZE))
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
    acc = np.empty(ACC_SIZE)
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
        refused = 0
        acc_start_nb(acc, cash)
        equity = equity_out[comb] if keep else equity_out[0]
        held_row = held_out[comb] if keep else held_out[0]
        held_bars = 0
        n_open = 0  # symbols the planner holds a position in
        n_held = 0  # symbols with assets (vectorbt's position) other than zero
        i = 0
        while i < n_bars:
            if quiet:
                i, held_quiet = _fast_forward(
                    flags,
                    comb,
                    i,
                    start_bar,
                    plan[0, 0],
                    n_held,
                    open_,
                    close,
                    assets[0],
                    booked[0],
                    acc,
                    keep,
                    equity,
                    held_row,
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
                        order, why, amount = open_step_nb(
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
                        order, why, price = rest_step_nb(
                            plan, s, open_[s, i], high[s, i], low[s, i], close[s, i], trailing_stop
                        )
                        amount = np.nan
                    if order == ORDER_NONE:
                        continue
                    n_open += 1 if (order in (ORDER_LONG_ENTRY, ORDER_SHORT_ENTRY)) else -1
                    g = 0 if grouped else s
                    ok, c, f, pos, d, qty, fill, fee = execute_nb(
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
                    entry = order in (ORDER_LONG_ENTRY, ORDER_SHORT_ENTRY)
                    if ok and entry and lots:
                        share = bought_share if order == ORDER_LONG_ENTRY else 1.0
                        quantity = qty / share
                        if lot_step[s] > 0:
                            quantity = np.floor(quantity / lot_step[s] + 1e-9) * lot_step[s]
                        if (
                            quantity <= 0
                            or quantity < min_amount[s]
                            or quantity * fill < min_notional[s]
                        ):
                            ok = False
                            refused += 1
                            plan[s, 0] = 0.0  # the venue refused it: no position
                            n_open -= 1
                        elif quantity * share != qty:
                            ok, c, f, pos, d, qty, fill, fee = execute_nb(
                                order,
                                quantity * share,
                                price,
                                buy_fee,
                                sell_fee,
                                slippage,
                                False,
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
                    book_trade_nb(
                        trade,
                        s,
                        bought,
                        qty,
                        fill,
                        fee,
                        pnl,
                        n_trades,
                        i * phases + phase,
                        why,
                        keep,
                        records,
                        n_records,
                        comb,
                    )
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
            acc_bar_nb(acc, value)
            if keep:
                equity[i - start_bar] = value
                held_row[i - start_bar] = held
            i += 1
        row = out[comb]
        acc_finish_nb(acc, cash, ppy, years, timeframe_seconds, row)
        trade_stats_nb(pnl, n_trades, row)
        row[FEES] = pairwise_sum_nb(fees, 0, n_sym)
        row[EXPOSURE] = held_bars / covered
        row[REFUSED] = refused
        if keep:
            record_open_trades_nb(trade, close, last_row, records, n_records, comb)


@intrinsic
def _prefetch(typingctx, array, row, col):
    """Ask the CPU to bring ``array[row, col]`` (a 2-D float64 array) into its caches.

    A hint only (LLVM's ``llvm.prefetch``, read, keep in all levels): nothing is read, no
    bound is checked and no value changes. The prices an order fills at lie where the run
    jumped to; fetched while the run still counts the bars before, they are there when asked.
    """
    if not isinstance(array, types.Array) or array.ndim != 2:
        return None

    def codegen(context, builder, signature, args):
        kind = signature.args[0]
        values = context.make_array(kind)(context, builder, args[0])
        at = cgutils.get_item_pointer(
            context, builder, kind, values, [args[1], args[2]], wraparound=False
        )
        i8p, i32 = ir.IntType(8).as_pointer(), ir.IntType(32)
        fnty = ir.FunctionType(ir.VoidType(), [i8p, i32, i32, i32])
        fn = cgutils.get_or_insert_function(builder.module, fnty, "llvm.prefetch.p0")
        builder.call(fn, [builder.bitcast(at, i8p), i32(0), i32(3), i32(1)])
        return context.get_dummy_value()

    return types.void(array, row, col), codegen


AHEAD = 64  # bars: how far ahead of a scan the prices are fetched (8 cache lines)


@njit(cache=True, inline="always")
def _next_signal(
    flags: np.ndarray,
    comb: int,
    first: int,
    wake: int,
    open_: np.ndarray,
    close: np.ndarray,
) -> int:
    """Give the first bar from ``first`` on whose bits (symbol 0, combination ``comb``) meet
    ``wake`` (the number of bars if none). Signals are rare: eight bars are tested at a time,
    and the prices of the bars ahead are fetched on the way (one cache line per eight bars),
    since the bar found will be filled at its next open and valued at its close.
    """
    m = first
    end = flags.shape[2]
    while m + 8 <= end:
        if m + AHEAD < end:
            _prefetch(open_, 0, m + AHEAD)
            _prefetch(close, 0, m + AHEAD)
        word = (
            flags[0, comb, m]
            | flags[0, comb, m + 1]
            | flags[0, comb, m + 2]
            | flags[0, comb, m + 3]
            | flags[0, comb, m + 4]
            | flags[0, comb, m + 5]
            | flags[0, comb, m + 6]
            | flags[0, comb, m + 7]
        )
        if (word & wake) != 0:
            break
        m += 8
    while m < end and (flags[0, comb, m] & wake) == 0:
        m += 1
    return m


@njit(cache=True, inline="always")
def _fast_forward(
    flags: np.ndarray,
    comb: int,
    i: int,
    start_bar: int,
    side: float,
    n_held: int,
    open_: np.ndarray,
    close: np.ndarray,
    units: float,
    cash: float,
    acc: np.ndarray,
    keep: bool,
    equity: np.ndarray,
    held_row: np.ndarray,
) -> tuple[int, int]:
    """Value the bars from i on until one whose previous close signals something that matters.

    For a one-symbol run without protective exits (one row per bar): flat, only an entry
    signal (from the first covered bar on) matters; long (short), only a long (short) exit. Gives
    (the first bar that needs the full step, how many of the bars passed held a position).
    Equity is vectorbt's value, as in the full step: cash + (0.0 + close * assets); a flat
    stretch is taken into the statistics at once (`acc_flat_nb`).
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
    # Bar j acts on the bits of bar j - 1: find the first such j > 0 from i on.
    first = max(i - 1, 0)
    if side == 0:
        first = max(first, start_bar - 1)
    stop = min(_next_signal(flags, comb, first, wake, open_, close) + 1, n_bars)
    if stop < n_bars:
        # The bar the next order fills at: fetched while the stretch before it is counted.
        _prefetch(open_, 0, stop)
        _prefetch(close, 0, stop)
    lo = max(i, start_bar)
    if stop <= lo:
        return stop, 0
    count = stop - lo
    if n_held == 0:
        flat = cash + 0.0
        if keep:
            equity[lo - start_bar : stop - start_bar] = flat
            held_row[lo - start_bar : stop - start_bar] = False
        if flat == 0.0:  # ruined: each bar returns 0 / 0, as numpy has it
            for _ in range(count):
                acc_bar_nb(acc, flat)
            return stop, 0
        if acc[ACC_PREV] != flat:
            # The first flat bar returns against a different equity: a full step, then the
            # rest at once.
            acc_bar_nb(acc, flat)
            count -= 1
        (
            acc[ACC_N],
            acc[ACC_PEAK],
            acc[ACC_LOW],
            acc[ACC_MAX_DD],
            acc[ACC_RUN],
            acc[ACC_LONGEST],
        ) = acc_flat_nb(
            count,
            acc[ACC_PREV],
            acc[ACC_N],
            acc[ACC_PEAK],
            acc[ACC_LOW],
            acc[ACC_MAX_DD],
            acc[ACC_RUN],
            acc[ACC_LONGEST],
        )
        return stop, 0
    # Held: every bar is valued and taken into the statistics.
    acc_held_nb(acc, close[0], lo, stop, cash, units)
    if keep:
        for j in range(lo, stop):
            equity[j - start_bar] = cash + (0.0 + close[0, j] * units)
            held_row[j - start_bar] = True
    return stop, count


# Cached kernels older than a module they inline are compiled anew (see kernel_cache).
drop_stale(
    (run_nb, execute_nb, _fast_forward),
    (ledger, plan, stats_nb, trades_nb, fills_nb, fills, signals_nb),
)
