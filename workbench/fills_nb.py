"""The fill model's protective-exit rules, compiled once for the backtest and the live trader.

`workbench.fills` states the rules (intrabar path, stop triggers, trailing peak); this module
is their one implementation in numba. The backtest kernels (`workbench.backtest.plan`) inline
these functions; `workbench.fills.first_exit` and the live trader call the same compiled
functions from Python, so a protective level fires at the same tick and price everywhere.

Levels are floats, NaN meaning "not set"; ``side`` is the position's (+1 long, -1 short).
"""

from __future__ import annotations

import numpy as np

from workbench import fills
from workbench.kernel_cache import njit

REASON_NONE = 0
REASON_SIGNAL = 1
REASON_STOP_LOSS = 2
REASON_TAKE_PROFIT = 3
REASON_TRAILING_STOP = 4

#: `fills.bar_path`, compiled from the same source.
bar_path_nb = njit(cache=True, inline="always")(fills.bar_path)


@njit(cache=True, inline="always")
def leg_exit_nb(
    side: int, start: float, end: float, sl: float, tp: float, trail: float, peak: float
) -> tuple[int, float]:
    """Give (reason, trigger price) of the first protective level hit on one monotonic leg.

    Within a leg the level nearest its start is reached first; a level the leg starts beyond
    fires at the start (a gap). Ties go to the stop-loss, then the take-profit.
    """
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


@njit(cache=True, inline="always")
def walk_nb(
    side: int, path: np.ndarray, skip_open: bool, sl: float, tp: float, trail: float, peak: float
) -> tuple[int, float, float]:
    """Give (reason, trigger price, peak) of the first protective exit along a price path.

    ``path`` (an array or a tuple of prices in time order) is walked as its opening point (only
    a gap fires there; skipped with ``skip_open``) and then leg by leg; the trailing peak
    moves after each leg it survives. On an exit the peak is the one the exit was judged by.
    """
    n = len(path)
    first = 1 if skip_open else 0
    for j in range(first, n):
        start = path[j - 1] if j > 0 else path[0]
        end = path[j]
        why, at = leg_exit_nb(side, start, end, sl, tp, trail, peak)
        if why != REASON_NONE:
            return why, at, peak
        peak = max(peak, end) if side > 0 else min(peak, end)
    return REASON_NONE, np.nan, peak


@njit(cache=True, inline="always")
def entry_levels_nb(
    side: int, fill: float, stop_loss: float, take_profit: float, atr_distance: float
) -> tuple[float, float]:
    """Give (stop-loss level, take-profit level) of a position entered at ``fill``.

    ``stop_loss``/``take_profit`` are fractions of the fill; ``atr_distance`` (fixed_risk) is
    a further stop distance in price, the tighter of the two stops winning. NaN: not set.
    """
    sl = fill * (1.0 - side * stop_loss) if not np.isnan(stop_loss) else np.nan
    if not np.isnan(atr_distance):
        atr_level = fill - side * atr_distance
        if np.isnan(sl):
            sl = atr_level
        elif side > 0:
            sl = max(sl, atr_level)
        else:
            sl = min(sl, atr_level)
    tp = fill * (1.0 + side * take_profit) if not np.isnan(take_profit) else np.nan
    return sl, tp
