"""The interpreter's settings while an engine trades: pauses that do not sit on the order path.

Two pauses of CPython's own came between a bar's close and its orders, measured in
benchmarks/bench_live.py:

* Waiting for the GIL. The store's writer thread (and a candle write) hold it for up to the
  switch interval, 5 ms by default, whenever the loop gives it up for a system call (a
  journal line's `write`); the loop then waits that long to go on. At 0.5 ms it waits at
  most a tenth of that, and the writer still gets the GIL whenever the loop waits.
* Full garbage collections. Every collection of the oldest generation walks the whole heap:
  pandas, numba, ccxt and the strategies' state, about 200 ms at a time. Frozen after start,
  what exists then is left out of every later collection (`gc.freeze`), so a collection
  only walks what trading made since.

Both are process-wide: set by `LiveEngine.start`, given back by `stop`.
"""

from __future__ import annotations

import gc
import sys

SWITCH_INTERVAL_S = 0.0005


class TradingInterpreter:
    """Set the interpreter up for trading, and give its settings back afterwards."""

    def __init__(self) -> None:
        self._switch_s: float | None = None

    def enter(self) -> None:
        if self._switch_s is not None:
            return
        self._switch_s = sys.getswitchinterval()
        sys.setswitchinterval(min(self._switch_s, SWITCH_INTERVAL_S))
        gc.collect()  # frozen garbage would never be collected
        gc.freeze()

    def leave(self) -> None:
        if self._switch_s is None:
            return
        sys.setswitchinterval(self._switch_s)
        self._switch_s = None
        gc.unfreeze()
