"""What a bar's open does with the signals of the bar before: one compiled rule.

A signal computed on bar t's close acts at bar t+1's open. While a position is open, only
its own exit signal acts (an opposite entry is ignored: no reversal in one bar). While flat,
an entry is taken unless the same close also called for its exit, and a long and a short
entry on the same close cancel each other. Protective exits (`workbench.fills_nb`) are judged
before this, on the opening tick.

`workbench.backtest.plan.open_step_nb` inlines `open_action_nb` (backtest and sweep);
`workbench.live.trader.SignalTrader` calls the same compiled function from Python.
"""

from __future__ import annotations

from workbench.kernel_cache import njit

OPEN_NONE = 0
OPEN_EXIT = 1
OPEN_LONG = 2
OPEN_SHORT = 3


@njit(cache=True, inline="always")
def open_action_nb(
    side: int, long_entry: bool, long_exit: bool, short_entry: bool, short_exit: bool
) -> int:
    """Give what the previous close's signals call for at this open: one of ``OPEN_*``.

    ``side`` is the position's (+1 long, -1 short, 0 flat).
    """
    if side != 0:
        if (side > 0 and long_exit) or (side < 0 and short_exit):
            return OPEN_EXIT
        return OPEN_NONE
    go_long = long_entry and not long_exit
    go_short = short_entry and not short_exit
    if go_long == go_short:
        return OPEN_NONE
    return OPEN_LONG if go_long else OPEN_SHORT
