"""Engine events handed to the ops listeners after the burst, off the path from a bar's close
to its orders.

The engine calls its listeners in line (workbench.live.events): an order's `OrderChanged`
comes between storing the order and sending it, and every strategy of a market decides on a
bar in one step of the loop, so whatever a listener does there waits in front of the next
strategy's order. Metrics, event records and alert rules need not be that prompt.
`AfterBurst` is the one listener the ops service subscribes: it keeps each event with the
time it came (`time.perf_counter()`, one append) and hands them on in one callback the loop
runs once the step at hand is done (`call_soon`: behind every task already woken, so behind
the other markets' closes that arrived with this one). Each listener gets `(event, at)`, so
latencies and log times are those of the event, not of its delivery.

`flush()` hands on what is kept at once: a scrape asks for it (a scrape is never behind) and
so does the service's stop (nothing kept is lost).
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable

from workbench.live.events import EngineEvent

log = logging.getLogger(__name__)

#: A listener of events handed on later: the event and when it came (perf_counter seconds).
TimedListener = Callable[[EngineEvent, float], None]


class AfterBurst:
    """Keep engine events as they come; hand them to `listeners` when the loop is free."""

    def __init__(self, listeners: Iterable[TimedListener]) -> None:
        self.listeners = list(listeners)
        self._kept: deque[tuple[EngineEvent, float]] = deque()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._due: asyncio.Handle | None = None
        self._lock = threading.Lock()  # a scrape may come from another thread

    def bind(self, loop: asyncio.AbstractEventLoop | None) -> None:
        """Hand events on by callbacks of this loop (the engine's); None: only on `flush`."""
        if self._due is not None:
            self._due.cancel()
            self._due = None
        self._loop = loop

    def __call__(self, event: EngineEvent) -> None:
        """The engine listener (on the engine's loop): keep the event, nothing else."""
        self._kept.append((event, time.perf_counter()))
        if self._due is None and self._loop is not None:
            self._due = self._loop.call_soon(self._run)

    def _run(self) -> None:
        self._due = None
        self.flush()

    def flush(self) -> int:
        """Hand every kept event to the listeners, in order; give how many."""
        handed = 0
        with self._lock:
            kept = self._kept
            while kept:
                event, at = kept.popleft()
                handed += 1
                for listener in self.listeners:
                    try:
                        listener(event, at)
                    except Exception:  # one listener's bug must not lose the others' events
                        log.exception("an ops listener failed on %s", type(event).__name__)
        return handed

    @property
    def waiting(self) -> int:
        """Events kept, not handed on yet."""
        return len(self._kept)
