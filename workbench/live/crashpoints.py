"""Named points on the order path where a crash test can kill the engine for real.

`WORKBENCH_CRASH_AT=NAME[:N]` makes the N-th pass (default the first) through the point NAME
send SIGKILL to this process: no cleanup, no flush, as a power cut or the OOM killer would.
Unset (always, outside tests) a point costs one dictionary lookup. The points:

* ``order_stored``: an order row is stored (pending) and not yet sent;
* ``order_sent``: the exchange has answered a placement and nothing of it is stored yet;
* ``fill_received``: the broker reported new fills and none of them is stored yet.
"""

from __future__ import annotations

import os
import signal

_SPEC = os.environ.get("WORKBENCH_CRASH_AT", "")
_NAME, _, _NTH = _SPEC.partition(":")
_left = {_NAME: int(_NTH or 1)} if _NAME else {}


def crash_point(name: str) -> None:
    """Kill this process here when a crash test asked for this point."""
    if name in _left:
        _left[name] -= 1
        if _left[name] <= 0:
            os.kill(os.getpid(), signal.SIGKILL)
