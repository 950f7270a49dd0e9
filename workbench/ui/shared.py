"""Process-wide singletons of a `panel serve` process: one Store, one live engine.

DuckDB lets one process hold the database file, so every app served by one process (the live
dashboard and the research app) reads and writes through the one `Store` opened here, each
piece of work on its own cursor (`borrow`). The live engine (paper trading on the local
exchange, replaying the stored candles) is started once, on the server's event loop, when
the server starts (`panel serve --setup workbench/ui/server_setup.py`, as `workbench demo`
does) or else by the first session that asks for it, and runs for the life of the process:
sessions come and go (each `subscribe`s an `EventBuffer` and drops it when it ends), the
engine stays. When the server stops (Ctrl-C, SIGTERM) the engine is stopped at exit: its
buffered candles and equity marks are written and the database is closed.

On first start, when the store holds no strategy of the exchange, the demo strategies are
added (`WORKBENCH_DEMO_STRATEGIES=N` picks how many, cycling specs over the shipped markets).
A restart resumes the stored strategies, the replay starting where they stopped.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import logging
import os
import threading
from collections import deque
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from workbench.candles import Candle
from workbench.live.engine import LiveEngine
from workbench.live.events import (
    CandleClosed,
    CandleForming,
    EngineEvent,
    FillBooked,
    HaltChanged,
    LimitsChanged,
    Notice,
    OrderChanged,
    OrderRefused,
    StateChanged,
)
from workbench.live.session import Live
from workbench.settings import Settings, load_settings
from workbench.store import Store
from workbench.timeframes import timeframe_ms

log = logging.getLogger(__name__)

STRATEGIES = Path(__file__).resolve().parents[2] / "data" / "strategies"
# (spec file stem, symbol): the demo's strategies, in the order they are added.
DEMO = [
    ("sma_cross", "ETH/BTC"),
    ("ema_cross_rsi", "ETH/BTC"),
    ("bollinger_reversion", "LTC/BTC"),
    ("sma_cross", "LTC/BTC"),
    ("ema_cross_rsi", "XMR/BTC"),
    ("bollinger_reversion", "ETH/BTC"),
    ("sma_cross", "DASH/BTC"),
    ("ema_cross_rsi", "ZEC/BTC"),
    ("bollinger_reversion", "XLM/BTC"),
    ("sma_cross", "ADA/BTC"),
]
DEMO_ALLOCATION = 1.0
Key = tuple[str, str, str]
# What each event makes a session redraw.
_DIRTY: dict[type, str] = {
    FillBooked: "fill",
    OrderChanged: "order",
    OrderRefused: "refused",
    StateChanged: "state",
    Notice: "state",
    HaltChanged: "halt",
    LimitsChanged: "limits",
}

_lock = threading.Lock()
_store: Store | None = None
_service: LiveService | None = None


def settings() -> Settings:
    return load_settings()


def store() -> Store:
    """Give the process's read-write Store on the settings' database (opened once)."""
    global _store
    with _lock:
        if _store is None:
            _store = Store.open(settings().db)
        return _store


@dataclass
class Closed:
    """A closed candle and, for each strategy on its market, what it said and was worth."""

    key: Key
    candle: Candle
    strategies: dict[str, dict[str, Any]]


@dataclass
class EventBuffer:
    """What happened since a session last looked: bounded, drained by the session."""

    closed: deque[Closed] = field(default_factory=lambda: deque(maxlen=5000))
    forming: dict[Key, Candle] = field(default_factory=dict)
    fills: deque[Any] = field(default_factory=lambda: deque(maxlen=1000))
    dirty: set[str] = field(default_factory=set)
    #: (level, text) to show as in-page notifications: fills, rejections, refusals, alerts
    notes: deque[tuple[str, str]] = field(default_factory=lambda: deque(maxlen=50))

    def drain(self) -> tuple[list[Closed], dict[Key, Candle], list[Any], set[str]]:
        closed, self.closed = list(self.closed), deque(maxlen=self.closed.maxlen)
        forming, self.forming = self.forming, {}
        fills, self.fills = list(self.fills), deque(maxlen=self.fills.maxlen)
        dirty, self.dirty = self.dirty, set()
        return closed, forming, fills, dirty

    def take_notes(self) -> list[tuple[str, str]]:
        notes = list(self.notes)
        self.notes.clear()
        return notes


class LiveService:
    """The one live engine of this process and the sessions listening to it."""

    def __init__(self, config: Settings) -> None:
        self.settings = config
        self.live: Live | None = None
        self.error: str | None = None
        self.ready = False
        self._buffers: dict[int, EventBuffer] = {}
        self._task: asyncio.Task[None] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    @property
    def engine(self) -> LiveEngine:
        assert self.live is not None, "the live engine has not started yet"
        return self.live.engine

    @property
    def store(self) -> Store:
        return store()

    def ensure_started(self) -> None:
        """Start the engine on the running loop unless it is (being) started."""
        if self._task is None:
            self._loop = asyncio.get_running_loop()
            self._task = self._loop.create_task(self._start())

    def shutdown(self, timeout_s: float = 15.0) -> None:
        """Stop the engine and close what it holds, once the server's loop has stopped."""
        live, self.live, self.ready = self.live, None, False
        if live is None:
            return
        loop = self._loop
        try:
            if loop is not None and not loop.is_running() and not loop.is_closed():
                run_to_end(loop, asyncio.wait_for(live.__aexit__(None, None, None), timeout_s))
            elif live.store is not None:
                live.engine.flush()  # a loop still runs elsewhere: at least write the buffers
        except Exception:
            log.exception("the live engine did not stop cleanly")

    async def _start(self) -> None:
        try:
            store()  # the shared connection first: the engine's joins the same instance
            known = self._stored_strategies()
            self.live = Live(self.settings, paper=True, start=self._resume_at(known), ops="serve")
            await self.live.__aenter__()
            engine = self.live.engine
            engine.subscribe(self._on_event)
            if self.live.ops is not None:  # alerts, shown on the open pages as they come
                self.live.ops.alert_listeners.append(self._on_alert)
                self.live.ops.alert_stored_listeners.append(self._on_alert_stored)
            if not await engine.resume():
                await self._add_demo(engine)
            await engine.start()
            self.ready = True
            log.info("live engine running %d strategies", len(engine.strategies))
        except Exception as exc:  # shown on the page; the server goes on
            log.exception("the live engine did not start")
            self.error = f"{type(exc).__name__}: {exc}"

    def _stored_strategies(self) -> pd.DataFrame:
        rows = store().trading.strategies()
        return rows[rows["exchange"] == self.settings.exchange]

    def _resume_at(self, known: pd.DataFrame) -> pd.Timestamp | None:
        """Give where the replay picks up: after the last bar stored strategies saw."""
        last_ms = store().trading.last_mark_ms(list(known["strategy_id"]))
        if last_ms is None:
            return None
        step = timeframe_ms(str(known["timeframe"].iloc[0]))
        return pd.Timestamp(last_ms + 2 * step, unit="ms", tz="UTC")

    async def _add_demo(self, engine: LiveEngine) -> None:
        count = int(os.environ.get("WORKBENCH_DEMO_STRATEGIES", "3"))
        stored = set(store().candles.coverage(exchange=self.settings.exchange)["symbol"])
        pool = [d for d in DEMO if d[1] in stored]
        for n in range(count if pool else 0):  # past the pool's end: the pool again, numbered
            name, symbol = pool[n % len(pool)]
            again = f"-{n // len(pool) + 1}" if n >= len(pool) else ""
            await engine.add_strategy(
                STRATEGIES / f"{name}.json",
                allocation=DEMO_ALLOCATION,
                symbol=symbol,
                strategy_id=f"{name}-{symbol.replace('/', '')}{again}",
            )

    # -- events ------------------------------------------------------------------------
    def subscribe(self) -> EventBuffer:
        """Give a new buffer that collects the engine's events until `unsubscribe`d."""
        buffer = EventBuffer()
        self._buffers[id(buffer)] = buffer
        return buffer

    def unsubscribe(self, buffer: EventBuffer) -> None:
        self._buffers.pop(id(buffer), None)

    def _on_event(self, event: EngineEvent) -> None:
        if not self._buffers:
            return
        match event:
            case CandleClosed(key=key, candle=candle):
                closed = Closed(key, candle, self._snapshot(key))
                for buffer in self._buffers.values():
                    buffer.closed.append(closed)
            case CandleForming(key=key, candle=candle):
                for buffer in self._buffers.values():
                    buffer.forming[key] = candle
            case _:
                what = _DIRTY.get(type(event))
                if what is None:
                    return
                note = page_note(event)
                for buffer in self._buffers.values():
                    if isinstance(event, FillBooked):
                        buffer.fills.append(event.fill)
                    buffer.dirty.add(what)
                    if note is not None:
                        buffer.notes.append(note)

    def _on_alert(self, alert: Any) -> None:
        level = {"critical": "error", "warning": "warning"}.get(str(alert.level), "info")
        text = f"{alert.title}: {alert.body.splitlines()[0]}"[:300]
        self._on_loop(self._note_alert, (level, text))

    def _on_alert_stored(self, _alert: Any) -> None:
        # The history is read once its row is there (raised, then again when delivered).
        self._on_loop(self._alert_dirty)

    def _on_loop(self, work: Callable[..., None], *args: Any) -> None:
        """Run `work` on the server's loop: alerts are raised and stored on other threads,
        and a mark added to a page's buffer while the page swaps it out would be lost."""
        loop = self._loop
        if loop is None or loop.is_closed():
            return
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is loop:
            work(*args)
        else:
            with contextlib.suppress(RuntimeError):  # the loop closed meanwhile (at exit)
                loop.call_soon_threadsafe(work, *args)

    def _note_alert(self, note: tuple[str, str]) -> None:
        for buffer in self._buffers.values():
            buffer.notes.append(note)

    def _alert_dirty(self) -> None:
        for buffer in self._buffers.values():
            buffer.dirty.add("alert")

    def _snapshot(self, key: Key) -> dict[str, dict[str, Any]]:
        """Give, per strategy on `key`, its signal and equity right after the bar closed."""
        out = {}
        for sid, live in self.engine.strategies.items():
            if live.feed_key != key:
                continue
            runner = live.runner
            signal = runner.last_signal
            out[sid] = {
                "values": dict(signal.values) if signal is not None else {},
                "entry": bool(signal and (signal.entry or signal.short_entry)),
                "exit": bool(signal and (signal.exit or signal.short_exit)),
                "equity": runner.equity(),
            }
        return out


def page_note(event: EngineEvent) -> tuple[str, str] | None:
    """Give the in-page notification of an event (fills, rejected and refused orders)."""
    match event:
        case FillBooked(fill=f):
            return "success", f"{f.strategy_id}: {f.side} {f.amount:.8g} {f.symbol} @ {f.price:.8g}"
        case OrderChanged(order=o) if str(o.state) == "rejected":
            return "error", f"{o.strategy_id}: {o.purpose} order rejected: {o.reason or '?'}"[:300]
        case OrderRefused(intent=i, refusal=r):
            return "warning", f"{i.strategy_id}: {i.purpose} refused by {r.rule}"
    return None


def run_to_end(loop: asyncio.AbstractEventLoop, work: Coroutine[Any, Any, Any]) -> Any:
    """Run `work` on a stopped loop to its end; give its result.

    The Ctrl-C (SIGINT: systemd's stop) that stopped the server may have landed inside a
    request handler: its future holds the KeyboardInterrupt, and a done-callback raises it
    again on the loop's next run. That one must not cut the engine's close short (it would
    leave the store open and the run marked unclean); the close has its own time limit.
    """
    task = loop.create_task(work)
    while True:
        try:
            return loop.run_until_complete(task)
        except KeyboardInterrupt:
            if task.done():
                raise
            log.warning("an interrupt left over from the server's stop; closing on")


def _shutdown() -> None:
    global _store
    if _service is not None:
        _service.shutdown()
    with _lock:
        if _store is not None:
            _store.close()
            _store = None


def service() -> LiveService:
    """Give this process's live service, starting its engine if a loop is running."""
    global _service
    with _lock:
        if _service is None:
            _service = LiveService(settings())
            atexit.register(_shutdown)
    # Without a running loop (imported outside a server) it starts on a later call.
    with contextlib.suppress(RuntimeError):
        _service.ensure_started()
    return _service
