"""Order planning: when a position opens and closes, at which price, and why.

These kernels apply the shared fill model (`workbench.fills`) to signals: ``plan_orders_nb``
to whole signal arrays so that vectorbt only has to execute and account for the orders (one
backtest), and its step functions ``open_step_nb``/``rest_step_nb`` bar by bar inside the fused
sweep (`workbench.backtest.fused`), so both follow one set of rules:

* A signal computed on bar t's close acts at bar t+1's OPEN (no look-ahead). Entries are taken
  only when flat; an entry and an exit (or a long and a short entry) on the same bar cancel
  each other; an opposite entry while in a position is ignored (no reversal in one bar).
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
from numba import njit

REASON_NONE = 0
REASON_SIGNAL = 1
REASON_STOP_LOSS = 2
REASON_TAKE_PROFIT = 3
REASON_TRAILING_STOP = 4
REASON_NAMES = {1: "signal", 2: "stop_loss", 3: "take_profit", 4: "trailing_stop"}


@njit(cache=True)
def _leg_exit(
    side: int, start: float, end: float, sl: float, tp: float, trail: float, peak: float
) -> tuple[int, float]:
    """Give (reason, trigger price) of the first protective level hit on one monotonic leg."""
    hi = max(start, end)
    lo = min(start, end)
    best_reason = REASON_NONE
    best_price = np.nan
    best_dist = np.inf
    for k in range(3):
        if k == 0:
            level = sl
        elif k == 1:
            level = tp
        else:
            if np.isnan(trail):
                continue
            level = peak * (1.0 - trail) if side > 0 else peak * (1.0 + trail)
        if np.isnan(level):
            continue
        # A long's stop-loss/trailing fires on a fall, its take-profit on a rise; a short mirrors.
        on_rise = (k == 1) if side > 0 else (k != 1)
        fired = np.nan
        if on_rise:
            if start >= level:
                fired = start
            elif hi >= level:
                fired = level
        else:
            if start <= level:
                fired = start
            elif lo <= level:
                fired = level
        if not np.isnan(fired):
            dist = abs(fired - start)
            if dist < best_dist:
                best_dist = dist
                best_price = fired
                best_reason = REASON_STOP_LOSS + k
    return best_reason, best_price


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
            why, _ = _leg_exit(int(side), o, o, sl, tp, trailing_stop, state[row, 3])
        wants_out = (side > 0 and long_exit) or (side < 0 and short_exit)
        if why == REASON_NONE and not first_bar and wants_out:
            why = REASON_SIGNAL
        if why != REASON_NONE:
            state[row, 0] = 0.0
            return (ORDER_LONG_EXIT if side > 0 else ORDER_SHORT_EXIT), why, np.nan
        state[row, 3] = max(state[row, 3], o) if side > 0 else min(state[row, 3], o)
        return ORDER_NONE, REASON_NONE, np.nan
    if first_bar:
        return ORDER_NONE, REASON_NONE, np.nan
    go_long = long_entry and not long_exit
    go_short = short_entry and not short_exit
    if go_long and go_short:
        go_long = False
        go_short = False
    new_side = 0
    order = ORDER_NONE
    size = np.nan
    fill = np.nan
    if go_long and not np.isnan(size_long) and size_long > 0:
        new_side = 1
        fill = o * (1.0 + slippage)
        order = ORDER_LONG_ENTRY
        size = size_long
    elif go_short and not np.isnan(size_short) and size_short > 0:
        new_side = -1
        fill = o * (1.0 - slippage)
        order = ORDER_SHORT_ENTRY
        size = size_short
    if new_side == 0:
        return ORDER_NONE, REASON_NONE, np.nan
    sl = fill * (1.0 - new_side * stop_loss) if not np.isnan(stop_loss) else np.nan
    if not np.isnan(atr_stop):
        atr_level = fill - new_side * atr_stop
        if np.isnan(sl):
            sl = atr_level
        elif new_side > 0:
            sl = max(sl, atr_level)
        else:
            sl = min(sl, atr_level)
    state[row, 0] = float(new_side)
    state[row, 1] = sl
    state[row, 2] = fill * (1.0 + new_side * take_profit) if not np.isnan(take_profit) else np.nan
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
    if cl >= o:
        p1, p2 = lo, h
    else:
        p1, p2 = h, lo
    start = o
    for leg in range(3):
        end = p1 if leg == 0 else (p2 if leg == 1 else cl)
        why, at = _leg_exit(
            int(side), start, end, state[row, 1], state[row, 2], trailing_stop, state[row, 3]
        )
        if why != REASON_NONE:
            state[row, 0] = 0.0
            return (ORDER_LONG_EXIT if side > 0 else ORDER_SHORT_EXIT), why, at
        state[row, 3] = max(state[row, 3], end) if side > 0 else min(state[row, 3], end)
        start = end
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
