"""Order planning: when a position opens and closes, at which price, and why.

This kernel applies the shared fill model (`workbench.fills`) to whole signal arrays so that
vectorbt only has to execute and account for the orders. Its rules:

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
    for col in range(c):
        side = 0
        sl = np.nan
        tp = np.nan
        peak = np.nan
        fill = np.nan
        for i in range(n):
            o = open_[i]
            ra = i * phases
            rb = ra + phases - 1
            price[ra, col] = o
            if phases == 2:
                price[rb, col] = close[i]
            if side != 0:
                # The opening tick: a level the bar gapped through fires at the open.
                why, _ = _leg_exit(side, o, o, sl, tp, trailing_stop, peak)
                wants_out = (side > 0 and long_exit[i - 1, col]) or (
                    side < 0 and short_exit[i - 1, col]
                )
                if why == REASON_NONE and i > 0 and wants_out:
                    why = REASON_SIGNAL
                if why != REASON_NONE:
                    if side > 0:
                        lx_out[ra, col] = True
                    else:
                        sx_out[ra, col] = True
                    reason[ra, col] = why
                    side = 0
                else:
                    peak = max(peak, o) if side > 0 else min(peak, o)
            elif i > 0:
                go_long = long_entry[i - 1, col] and not long_exit[i - 1, col]
                go_short = short_entry[i - 1, col] and not short_exit[i - 1, col]
                if go_long and go_short:
                    go_long = False
                    go_short = False
                if go_long and not np.isnan(size_long[i]) and size_long[i] > 0:
                    side = 1
                    fill = o * (1.0 + slippage)
                    le_out[ra, col] = True
                    size[ra, col] = size_long[i]
                elif go_short and not np.isnan(size_short[i]) and size_short[i] > 0:
                    side = -1
                    fill = o * (1.0 - slippage)
                    se_out[ra, col] = True
                    size[ra, col] = size_short[i]
                if side != 0:
                    reason[ra, col] = REASON_SIGNAL
                    sl = fill * (1.0 - side * stop_loss) if not np.isnan(stop_loss) else np.nan
                    if not np.isnan(atr_stop[i]):
                        atr_level = fill - side * atr_stop[i]
                        if np.isnan(sl):
                            sl = atr_level
                        elif side > 0:
                            sl = max(sl, atr_level)
                        else:
                            sl = min(sl, atr_level)
                    tp = fill * (1.0 + side * take_profit) if not np.isnan(take_profit) else np.nan
                    peak = fill
            if side != 0 and phases == 2:
                # The rest of the bar: the fill model's path, leg by leg.
                h = high[i]
                lo = low[i]
                cl = close[i]
                if cl >= o:
                    p1, p2 = lo, h
                else:
                    p1, p2 = h, lo
                start = o
                for leg in range(3):
                    end = p1 if leg == 0 else (p2 if leg == 1 else cl)
                    why, at = _leg_exit(side, start, end, sl, tp, trailing_stop, peak)
                    if why != REASON_NONE:
                        if side > 0:
                            lx_out[rb, col] = True
                        else:
                            sx_out[rb, col] = True
                        price[rb, col] = at
                        reason[rb, col] = why
                        side = 0
                        break
                    peak = max(peak, end) if side > 0 else min(peak, end)
                    start = end
    return le_out, lx_out, se_out, sx_out, price, size, reason
