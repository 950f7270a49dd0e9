"""The interpreter while an engine trades: a short GIL switch interval and the start-up heap
frozen out of garbage collections; both given back when it stops."""

from __future__ import annotations

import gc
import sys

from workbench.live.interpreter import SWITCH_INTERVAL_S, TradingInterpreter


def test_trading_shortens_the_switch_interval_and_freezes_the_heap_until_it_stops() -> None:
    before = sys.getswitchinterval()
    gc.unfreeze()
    interpreter = TradingInterpreter()
    interpreter.enter()
    interpreter.enter()  # a second start changes nothing
    try:
        assert sys.getswitchinterval() == min(before, SWITCH_INTERVAL_S)
        assert gc.get_freeze_count() > 10_000, "the modules' objects are out of collections"
    finally:
        interpreter.leave()
    assert sys.getswitchinterval() == before
    assert gc.get_freeze_count() == 0
    interpreter.leave()  # stopping twice changes nothing
    assert sys.getswitchinterval() == before
