"""Order planning: when a position opens and closes, at which price, and why.

These kernels apply the shared fill model (`workbench.fills`) to signals: ``plan_orders_nb``
to whole signal arrays so that vectorbt only has to execute and account for the orders (one
backtest), and its step functions ``open_step_nb``/``rest_step_nb`` bar by bar inside the fused
sweep (`workbench.backtest.fused`), so both follow one set of rules:

* A signal computed on bar t's close acts at bar t+1's OPEN (no look-ahead). Entries are taken
  only when flat; an entry and an exit (or a long and a short entry) on the same bar cancel
  each other; an opposite entry while in a position is ignored (no reversal in one bar): one
  compiled rule, `workbench.signals_nb.open_action_nb`, which the live trader calls too.
* Protective exits (stop-loss, take-profit, trailing stop) are levels relative to the entry
  FILL price (slippage included); the trailing peak starts at that fill price. They are checked
  along the fill model's intrabar path (`fills.bar_path`): first at the opening tick (a gap
  fires at the open), then along each leg, the level nearest the leg's start winning; the peak
  moves after each leg. They are live from the entry bar itself (entry at the open, the rest of
  that bar's path can stop it out).
* With any protective exit configured each bar becomes TWO simulation rows: row 2i is the open
  (valued at the open, where entries and signal exits fill), row 2i+1 is the rest of the bar
  (valued at the close, where protective exits fill at their trigger price). Without stops one
  row per bar is enough.
"""

from __future__ import annotations

import numpy as np

from workbench import fills, fills_nb, signals_nb
from workbench.fills_nb import (
    REASON_NONE,
    REASON_SIGNAL,
    REASON_STOP_LOSS,
    REASON_TAKE_PROFIT,
    REASON_TRAILING_STOP,
    bar_path_nb,
    entry_levels_nb,
    walk_nb,
)
from workbench.kernel_cache import drop_stale, njit
from workbench.signals_nb import OPEN_EXIT, OPEN_LONG, OPEN_SHORT, open_action_nb

REASON_NAMES = {
    REASON_SIGNAL: "signal",
    REASON_STOP_LOSS: "stop_loss",
    REASON_TAKE_PROFIT: "take_profit",
    REASON_TRAILING_STOP: "trailing_stop",
}


# Planner state of one column, a float64 row of PLAN_STATE_SIZE: side (+1 long, -1 short,
# 0 flat), stop-loss level, take-profit level, trailing peak, entry fill price.
PLAN_STATE_SIZE = 5
ORDER_NONE = 0
ORDER_LONG_ENTRY = 1
ORDER_LONG_EXIT = 2
ORDER_SHORT_ENTRY = 3
ORDER_SHORT_EXIT = 4


@njit(cache=True, inline="always")
def open_step_nb(
    state: np.ndarray,
    row: int,
    o: float,
    first_bar: bool,
    long_entry: bool,
    long_exit: bool,
    short_entry: bool,
    short_exit: bool,
    size_long: float,
    size_short: float,
    atr_stop: float,
    stop_loss: float,
    take_profit: float,
    trailing_stop: float,
    slippage: float,
) -> tuple[int, int, float]:
    """Give (order, reason, entry size) at a bar's open; updates ``state[row]`` in place.

    The signals are those of the previous bar's close; ``first_bar`` is True at bar 0 (no
    previous close, so no entry).
    """
    side = state[row, 0]
    if side != 0:
        # The opening tick: a level the bar gapped through fires at the open.
        sl, tp = state[row, 1], state[row, 2]
        why = REASON_NONE
        if not (np.isnan(sl) and np.isnan(tp) and np.isnan(trailing_stop)):
            why, _, _ = walk_nb(int(side), (o,), False, sl, tp, trailing_stop, state[row, 3])
        if why == REASON_NONE and not first_bar:
            action = open_action_nb(int(side), long_entry, long_exit, short_entry, short_exit)
            if action == OPEN_EXIT:
                why = REASON_SIGNAL
        if why != REASON_NONE:
            state[row, 0] = 0.0
            return (ORDER_LONG_EXIT if side > 0 else ORDER_SHORT_EXIT), why, np.nan
        state[row, 3] = max(state[row, 3], o) if side > 0 else min(state[row, 3], o)
        return ORDER_NONE, REASON_NONE, np.nan
    if first_bar:
        return ORDER_NONE, REASON_NONE, np.nan
    action = open_action_nb(0, long_entry, long_exit, short_entry, short_exit)
    new_side = 0
    order = ORDER_NONE
    size = np.nan
    fill = np.nan
    if action == OPEN_LONG and not np.isnan(size_long) and size_long > 0:
        new_side = 1
        fill = o * (1.0 + slippage)
        order = ORDER_LONG_ENTRY
        size = size_long
    elif action == OPEN_SHORT and not np.isnan(size_short) and size_short > 0:
        new_side = -1
        fill = o * (1.0 - slippage)
        order = ORDER_SHORT_ENTRY
        size = size_short
    if new_side == 0:
        return ORDER_NONE, REASON_NONE, np.nan
    sl, tp = entry_levels_nb(new_side, fill, stop_loss, take_profit, atr_stop)
    state[row, 0] = float(new_side)
    state[row, 1] = sl
    state[row, 2] = tp
    state[row, 3] = fill
    state[row, 4] = fill
    return order, REASON_SIGNAL, size


@njit(cache=True, inline="always")
def rest_step_nb(
    state: np.ndarray, row: int, o: float, h: float, lo: float, cl: float, trailing_stop: float
) -> tuple[int, int, float]:
    """Give (order, reason, trigger price) of a protective exit along the rest of the bar.

    The rest of the bar is the fill model's path, leg by leg; updates ``state[row]`` in place.
    """
    side = state[row, 0]
    if side == 0:
        return ORDER_NONE, REASON_NONE, np.nan
    # The opening tick was open_step_nb's: walk the legs from the open on.
    why, at, peak = walk_nb(
        int(side),
        bar_path_nb(o, h, lo, cl),
        True,
        state[row, 1],
        state[row, 2],
        trailing_stop,
        state[row, 3],
    )
    if why != REASON_NONE:
        state[row, 0] = 0.0
        return (ORDER_LONG_EXIT if side > 0 else ORDER_SHORT_EXIT), why, at
    state[row, 3] = peak
    return ORDER_NONE, REASON_NONE, np.nan


@njit(cache=True)
def plan_orders_nb(
    open_: np.ndarray,
    high: np.ndarray,
    low: np.ndarray,
    close: np.ndarray,
    long_entry: np.ndarray,
    long_exit: np.ndarray,
    short_entry: np.ndarray,
    short_exit: np.ndarray,
    size_long: np.ndarray,
    size_short: np.ndarray,
    atr_stop: np.ndarray,
    stop_loss: float,
    take_profit: float,
    trailing_stop: float,
    slippage: float,
    phases: int,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Give per-row order signals, prices, sizes and exit reasons for every column.

    Price arrays are 1-D (bars); signal arrays are (bars, columns) and describe bar CLOSES.
    ``size_long``/``size_short`` are the size of an entry filled at each bar's open (NaN: no
    entry possible there); ``atr_stop`` is an extra stop distance in price (NaN: none).
    """
    n, c = long_entry.shape
    rows = n * phases
    le_out = np.zeros((rows, c), dtype=np.bool_)
    lx_out = np.zeros((rows, c), dtype=np.bool_)
    se_out = np.zeros((rows, c), dtype=np.bool_)
    sx_out = np.zeros((rows, c), dtype=np.bool_)
    price = np.empty((rows, c), dtype=np.float64)
    size = np.full((rows, c), np.nan, dtype=np.float64)
    reason = np.zeros((rows, c), dtype=np.int8)
    state = np.zeros((1, PLAN_STATE_SIZE))
    for col in range(c):
        state[0, :] = 0.0
        for i in range(n):
            o = open_[i]
            ra = i * phases
            rb = ra + phases - 1
            price[ra, col] = o
            if phases == 2:
                price[rb, col] = close[i]
            p = max(i - 1, 0)
            order, why, amount = open_step_nb(
                state,
                0,
                o,
                i == 0,
                long_entry[p, col],
                long_exit[p, col],
                short_entry[p, col],
                short_exit[p, col],
                size_long[i],
                size_short[i],
                atr_stop[i],
                stop_loss,
                take_profit,
                trailing_stop,
                slippage,
            )
            if order != ORDER_NONE:
                _mark(order, ra, col, le_out, lx_out, se_out, sx_out)
                reason[ra, col] = why
                size[ra, col] = amount
            if phases == 2:
                order, why, at = rest_step_nb(state, 0, o, high[i], low[i], close[i], trailing_stop)
                if order != ORDER_NONE:
                    _mark(order, rb, col, le_out, lx_out, se_out, sx_out)
                    price[rb, col] = at
                    reason[rb, col] = why
    return le_out, lx_out, se_out, sx_out, price, size, reason


@njit(cache=True)
def _mark(
    order: int,
    row: int,
    col: int,
    le_out: np.ndarray,
    lx_out: np.ndarray,
    se_out: np.ndarray,
    sx_out: np.ndarray,
) -> None:
    if order == ORDER_LONG_ENTRY:
        le_out[row, col] = True
    elif order == ORDER_LONG_EXIT:
        lx_out[row, col] = True
    elif order == ORDER_SHORT_ENTRY:
        se_out[row, col] = True
    else:
        sx_out[row, col] = True


# Cached kernels older than the exit rules they inline are compiled anew (see kernel_cache).
drop_stale((open_step_nb, rest_step_nb, plan_orders_nb, _mark), (fills_nb, fills, signals_nb))
