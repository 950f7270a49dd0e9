"""The live engine: feeds, strategies, risk, broker and store in one asyncio process.

The engine keeps the feeds and the schedule; each strategy's order path (place, settle, book,
protect, reconcile, retry) is its `OrderManager` (workbench.live.order_manager), which stores
every step before it acts. Listeners get typed events (workbench.live.events).

Bars and freshness. Every closed bar reaches every strategy on its market, whatever its state,
so indicators never skip one. Only a fresh bar trades: the newest closed bar when it arrives,
and the open of the bar after it while that bar is still forming. Bars caught up late (after
a restart, a dropped socket, a stall) warm the indicators and the trader's state and place no
order; an exit the rules called for on one of them, while a position was open, is taken late
on the first fresh bar (a `late_exit` order, its reason naming the bar it belonged to). Missed
entries are never taken. With `replay_missed` (paper only) bars caught up late trade as if the
engine had never been down: research's simulate-as-if behaviour.

Restart. A strategy taken up again replays its stored bars from where its first warm-up
started, with its stored fills where they fell (so indicators, trailing peak and pending
signals are where a never-stopped run has them), reconciles its orders, balances and
protective legs with the exchange, and then the feed delivers every bar after the last one it
acted on, caught up from the exchange.

Supervision. Every background task has an owner: one that dies logs its traceback and is
reported (`TaskFailed`); loops (feeds, the broker's order follow-up, flushing, housekeeping)
start again with backoff. A feed that is down marks its strategies degraded. A strategy whose
own code raises is set to `error` with its traceback stored while the others go on; its stops
stay watched, and Start takes it up again (replayed and reconciled like a restart).

Leases. On PostgreSQL each strategy is held by a lease (an advisory lock) that the server ends
with its connection. The engine asks before every order (no round trip) and verifies every
housekeeping tick (`LeaseWatch`); a strategy whose lease is lost places no order at all (its
protection resting on the exchange stays), shows `degraded` with the reason, and is taken back
(lease, replay, reconcile) once the server gives the lease again; if another engine took it
meanwhile, it is left to that engine (`engine.left` says by whom).

Closed candles and equity marks are written in batches every `flush_s` (a restart rebuilds
what a crash lost: the feed catches up); orders, fills, trades and state changes at once,
through the store's writes (journaled on a DuckDB file; on PostgreSQL queued and committed by
a task on this loop, the order manager awaiting the commit of an order's row before it is
sent and of a fill before it is booked: `workbench.store.pg_writes`).
"""

from __future__ import annotations

import asyncio
import gc
import json
import logging
import threading
import time
import traceback
from collections.abc import Awaitable, Callable
from dataclasses import replace
from typing import Any

import pandas as pd

from workbench.broker.base import Broker, Execution
from workbench.broker.models import Order, OrderIntent, OrderPurpose, OrderType
from workbench.candles import COLUMNS, Candle
from workbench.fills import FillModel, Side
from workbench.live.account import AccountGuard
from workbench.live.events import (
    CandleClosed,
    CandleForming,
    EngineEvent,
    FeedKey,
    HaltChanged,
    LimitsChanged,
    Listener,
    Notice,
    NoticeKind,
    OrderRefused,
    StateChanged,
    StrategyState,
    TaskFailed,
)
from workbench.live.feed import CandleFeed
from workbench.live.lease_watch import LeaseWatch
from workbench.live.order_manager import OrderManager
from workbench.live.reconcile import reconcile_balances
from workbench.live.reports import (
    EngineSnapshot,
    metrics_frame,
    status_frame,
    strategy_snapshot,
)
from workbench.live.runner import StrategyRunner
from workbench.live.running import LiveStrategy
from workbench.lots import LotRules
from workbench.portfolio.allocation import allocate
from workbench.records import evolve
from workbench.risk.account import AccountLimits, Halt, Usage
from workbench.risk.limits import Refusal, RiskLimits, RiskManager
from workbench.risk.volatility import RealizedVolatility, entry_scale
from workbench.store import Store, StrategyLeased
from workbench.strategy import Spec, load_spec
from workbench.venue.clock import MarketClock
from workbench.venue.rules import market_rules

log = logging.getLogger(__name__)
CLOCK_SYNC_S = 10.0  # how often the market clock is asked again (it extrapolates between)


class LiveEngine:
    """Runs strategies on streaming candles; the Python API of notebooks and the dashboard."""

    def __init__(
        self,
        store: Store,
        clients: Any,
        broker: Broker,
        *,
        fill_model: FillModel | None = None,
        limits: RiskLimits | None = None,
        account_limits: AccountLimits | None = None,
        history_bars: int | None = None,
        flush_s: float = 0.5,
        housekeeping_s: float = 0.5,
        apply_market_rules: bool = True,
        replay_missed: bool = False,
    ) -> None:
        if replay_missed and broker.name != "paper":
            raise ValueError("replay_missed is for paper trading: real orders never trade late")
        self.store = store
        store.use_engine_writes()  # PostgreSQL: committed by a task on this loop
        self.clients = clients
        self.broker = broker
        self.fill_model = fill_model or FillModel()
        self.limits = limits
        self.history_bars = history_bars
        self.exchange = clients.name
        self.apply_market_rules = apply_market_rules
        self.replay_missed = replay_missed
        self.market_clock = MarketClock(clients.rest)
        self.strategies: dict[str, LiveStrategy] = {}
        self.feeds: dict[FeedKey, CandleFeed] = {}
        self._opened: dict[FeedKey, int] = {}
        self.flush_s = flush_s
        self.housekeeping_s = housekeeping_s
        # Candles and equity marks are written in batches (they can be rebuilt: the feed
        # backfills candles after a restart); orders, fills and trades are written at once.
        self._candles: dict[FeedKey, list[Candle]] = {}
        self._candle_writes = threading.Lock()
        # Bars some markets of a timeframe took and the account was not marked at yet.
        self._unmarked: dict[tuple[str, int], set[FeedKey]] = {}
        self._equity: list[tuple[str, int, float, float, float, float]] = []
        self._tasks: set[asyncio.Task[Any]] = set()
        self._running = False
        self._listeners: list[Listener] = []
        self._shown: dict[str, tuple[StrategyState, str | None]] = {}
        self.leases = LeaseWatch(store)
        #: strategies left to another engine that took their lease: id -> who and when
        self.left: dict[str, str] = {}
        self.account = AccountGuard(store.risk, self.exchange, self.strategies, account_limits)

    # -- strategies ---------------------------------------------------------------------
    async def add_strategy(
        self,
        spec: Spec | str | dict[str, Any],
        *,
        allocation: float,
        params: dict[str, Any] | None = None,
        strategy_id: str | None = None,
        symbol: str | None = None,
        state: StrategyState = StrategyState.RUNNING,
    ) -> str:
        """Add a strategy with `allocation` quote of its own; give its id.

        An id already in the store is a restart: its stored parameters, allocation, state,
        positions and orders win over the arguments.
        """
        spec = load_spec(spec)
        symbol = symbol or spec.market.symbol
        strategy_id = (
            strategy_id or f"{spec.name}-{symbol.replace('/', '')}-{len(self.strategies) + 1}"
        )
        self.store.trading.save_strategy(
            strategy_id,
            spec_name=spec.name,
            spec_json=json.dumps(spec.raw, sort_keys=True),
            params=spec.resolve_params(dict(params or {})),
            exchange=self.exchange,
            symbol=symbol,
            timeframe=spec.market.timeframe,
            broker=self.broker.name,
            allocation=allocation,
            state=str(state),
        )
        await self._start(self._row(strategy_id))
        return strategy_id

    async def resume(self) -> list[str]:
        """Bring back every stored strategy of this exchange with its positions; give ids."""
        back = []
        for row in self.store.trading.strategies().itertuples():
            if row.exchange == self.exchange and row.strategy_id not in self.strategies:
                await self._start(row)
                back.append(row.strategy_id)
        return back

    def _row(self, strategy_id: str) -> Any:
        rows = self.store.trading.strategies()
        return next(r for r in rows.itertuples() if r.strategy_id == strategy_id)

    async def _start(self, row: Any) -> LiveStrategy:
        """Build a stored strategy's runner and attach it to its feed."""
        self.store.lease_strategy(row.strategy_id)  # StrategyLeased: another engine runs it
        symbol = row.symbol
        rules = self._rules(symbol)
        runner = StrategyRunner(
            row.strategy_id,
            load_spec(json.loads(row.spec_json)),
            json.loads(row.params_json),
            row.allocation,
            self.fill_model,
            symbol=symbol,
            dust=rules.dust,
        )
        state = StrategyState(row.state)
        return await self._attach(runner, rules, state)

    def _rules(self, symbol: str) -> LotRules:
        if not self.apply_market_rules:
            return LotRules()
        return market_rules(self.clients.rest, symbol)

    async def _attach(
        self, runner: StrategyRunner, rules: LotRules, state: StrategyState
    ) -> LiveStrategy:
        sid = runner.strategy_id
        trading = self.store.trading
        runner.state = state
        key = (self.exchange, runner.symbol, runner.timeframe)
        step = runner.step_ms
        now_ms = await self.market_clock.sync()
        current_open = now_ms - now_ms % step
        fills = trading.fills(sid)
        cursor = trading.last_marked_ms(sid)
        seed_from = trading.seed_from_ms(sid)
        if seed_from is None:
            bars = self.history_bars or max(runner.warmup_bars * 2, 500)
            latest = current_open if cursor is None else min(cursor + step, current_open)
            seed_from = latest - bars * step
            trading.set_seed_from(sid, seed_from)
        # The bars acted on before (or, the first time, the warm-up): never later ones (the
        # local exchange's history is in the store, future included).
        end = current_open if cursor is None else min(cursor + step, current_open)
        self.flush()  # the bars this engine buffered are part of that history
        history = await self._history(key, seed_from, end)
        if cursor is None and not fills:
            runner.seed(history)
        else:
            runner.replay(history, fills)
        orders = OrderManager(
            runner,
            trading,
            self.broker,
            exchange=self.exchange,
            emit=self._emit,
            rules=rules,
            market_now=self.market_clock.now_ms,
        )
        orders.on_problems = lambda _: self._show(sid)
        live = LiveStrategy(runner, self._risk_manager(runner), orders, key)
        live.volatility = self._volatility(runner, history)
        self.strategies[sid] = live
        async with live.lock:
            await orders.reconcile(now_ms)
            await reconcile_balances(live, self.strategies, self.broker, now_ms)
            await orders.restore_protection()
        await self._follow(live, current_open)
        self._show(sid)
        return live

    async def _history(self, key: FeedKey, start_ms: int, end_ms: int) -> pd.DataFrame:
        """Give the stored closed bars in [start, end); fetch and store them when the store
        has none (a real venue nothing was downloaded from)."""
        exchange, symbol, timeframe = key
        start = pd.Timestamp(start_ms, unit="ms", tz="UTC")
        end = pd.Timestamp(end_ms, unit="ms", tz="UTC")
        history = self.store.candles.read(exchange, symbol, timeframe, start=start, end=end)
        if history.empty and end_ms > start_ms:
            feed = self.feeds.get(key) or CandleFeed(self.clients, symbol, timeframe)
            bars = await feed.fetch_closed(start_ms, end_ms)
            if bars:
                history = _frame(bars)
                self.store.candles.write(exchange, symbol, timeframe, history)
        return history

    async def _follow(self, live: LiveStrategy, current_open: int) -> None:
        """Put a strategy on its market's feed; catch it up on the bars it has not seen."""
        key, runner, step = live.feed_key, live.runner, live.runner.step_ms
        start_at = runner.last_close_ms if runner.last_close_ms is not None else current_open - step
        feed = self.feeds.get(key)
        if feed is None:
            feed = CandleFeed(
                self.clients, runner.symbol, runner.timeframe, last_closed_ms=start_at
            )
            feed.on_opened(lambda c, k=key: self._open_bar(k, c, current=True))
            feed.on_forming(lambda c, k=key: self._on_forming(k, c))
            feed.on_closed(lambda c, fresh, k=key: self._on_closed(k, c, fresh))
            feed.on_status(lambda problem, k=key: self._on_feed_status(k, problem))
            self.feeds[key] = feed
            if self._running:
                self._spawn(f"feed {key[1]} {key[2]}", feed.run, restart=True)
        elif feed.last_closed_ms is not None and start_at < feed.last_closed_ms:
            if not self._running:
                feed.last_closed_ms = start_at  # it delivers from there; the others skip
            else:
                bars = await feed.fetch_closed(start_at + step, feed.last_closed_ms + step)
                for bar in bars:
                    await self._close_for(live, bar, fresh=False)
        # Nothing missed: the newest closed bar is acted on, its decision may trade at the
        # open of the bar forming now.
        if feed.last_closed_ms == current_open - step and not self._running:
            feed.fresh_close_ms = feed.last_closed_ms
        live.feed_problem = feed.problem

    def _volatility(self, runner: StrategyRunner, history: pd.DataFrame) -> RealizedVolatility:
        """Give a strategy's market volatility, measured on the bars before now."""
        tracked = RealizedVolatility(
            self.account.limits.volatility_lookback, runner.step_ms // 1000
        )
        if not history.empty:
            tracked.seed(history["close"].to_numpy()[-(tracked.lookback + 1) :])
        return tracked

    def _risk_manager(self, runner: StrategyRunner) -> RiskManager:
        """Give the strategy's risk manager on its stored guard state (a running cool-down,
        today's start), the peak's rises since then rebuilt from the stored equity marks."""
        strategy_id, risk = runner.strategy_id, runner.spec.risk
        # The spec's own limits tighten the engine's (settings, flags).
        limits = (self.limits or RiskLimits()).tightened(
            max_position_fraction=risk.max_position,
            daily_loss_fraction=risk.daily_loss,
            max_drawdown_fraction=risk.max_drawdown,
        )
        stored = self.store.trading.risk_state(strategy_id)
        if stored is None:
            return RiskManager(limits)
        marks = self.store.trading.equity_marks(strategy_id, stored.marked_ms)
        return RiskManager(limits, stored.with_peak(marks))

    def set_state(self, strategy_id: str, state: StrategyState | str) -> None:
        """Run, pause or stop a strategy; the change is stored. A strategy in `error` is
        taken up again (replayed and reconciled) when started."""
        state = StrategyState(state)
        if state is StrategyState.DEGRADED:
            raise ValueError("degraded is shown, not set: it ends when its problem is settled")
        live = self.strategies[strategy_id]
        if live.lease_problem is not None:
            raise StrategyLeased(f"{strategy_id} cannot change now: {live.lease_problem}")
        if live.runner.state is StrategyState.ERROR and state is not StrategyState.ERROR:
            self.store.trading.set_state(strategy_id, str(state))
            self._spawn_once(self._recover(strategy_id))
            return
        live.runner.state = state
        self.store.trading.set_state(strategy_id, str(state))
        self._show(strategy_id)

    async def _recover(self, strategy_id: str) -> None:
        """Take a strategy out of `error`: build it again from the store, reconcile, resume."""
        old = self.strategies.pop(strategy_id)
        async with old.lock:
            try:
                await self._start(self._row(strategy_id))
            except Exception:
                error = traceback.format_exc()
                log.error("strategy %s could not be taken up again:\n%s", strategy_id, error)
                self.strategies[strategy_id] = old
                self.store.trading.set_state(strategy_id, str(StrategyState.ERROR), error)
                self._show(strategy_id, error)

    def _show(self, strategy_id: str, reason: str | None = None) -> None:
        """Tell listeners (and the store) a strategy's shown state when it changed."""
        live = self.strategies.get(strategy_id)
        if live is None:
            return
        state, problem = live.state, live.problem
        if self._shown.get(strategy_id) == (state, problem) and reason is None:
            return
        # Without its lease the strategy's row is not this engine's to write.
        if self._shown.get(strategy_id, (None, None))[1] != problem and not live.lease_problem:
            self.store.trading.set_health(strategy_id, problem)
        self._shown[strategy_id] = (state, problem)
        self._emit(StateChanged(strategy_id, state, reason or problem))

    # -- running --------------------------------------------------------------------------
    async def start(self) -> None:
        """Start every feed, the broker's follow-up of resting orders, and housekeeping."""
        self._running = True
        # What the process holds by now (libraries, markets, strategies, history) lives as
        # long as it does: out of the collector's sight, a full collection walks only what
        # came after. Walking it all took 200-300 ms, between a close and its orders
        # whenever it fell in one (benchmarks/bench_live.py, gc callbacks).
        gc.collect()
        gc.freeze()
        halt = self.account.halt
        if halt is not None:
            # A halt stored before a crash (or by `live halt` while this engine was down) is
            # acted on again: entries cancelled, positions flattened if it said so.
            self._spawn_once(self._act_on_halt(halt.flatten))
        for key, feed in self.feeds.items():
            self._spawn(f"feed {key[1]} {key[2]}", feed.run, restart=True)
        self._spawn("flush", self._flush_loop, restart=True)
        self._spawn("housekeeping", self._housekeeping_loop, restart=True)
        self._spawn("order follow-up", lambda: self.broker.run(self._on_report), restart=True)

    async def stop(self) -> None:
        """Stop the feeds (strategies keep their stored states)."""
        self._running = False
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks.clear()
        self.flush()
        await self.store.trading.writes.detach()

    def flush(self) -> None:
        """Write the buffered equity marks and candles (kept for the next try on failure).

        Marks first: a stored bar is never without its marks (the drawdown guard's peak is
        rebuilt from them at a restart; a bar not stored is traded again and marked again).
        Bars a background write has in hand are stored when this returns.
        """
        self._flush_marks()
        taken = self._take_candles()
        try:
            self._write_candles(taken)
        finally:
            self._give_back(taken)

    def _flush_marks(self) -> None:
        self.store.trading.save_equity_rows(self._equity)  # journaled: no commit here
        self._equity = []
        self.account.save()

    def _take_candles(self) -> dict[FeedKey, list[Candle]]:
        taken, self._candles = self._candles, {}
        return taken

    def _give_back(self, left: dict[FeedKey, list[Candle]]) -> None:
        """Put bars that could not be stored back in front of the buffer (on the loop)."""
        for key, bars in left.items():
            self._candles[key] = bars + self._candles.get(key, [])

    def _write_candles(self, candles: dict[FeedKey, list[Candle]]) -> None:
        """Store bars taken from the buffer, removing each market's from `candles` once
        stored; one write at a time (any thread)."""
        with self._candle_writes:
            for key in list(candles):
                self.store.candles.write(*key, _frame(candles[key]))
                del candles[key]

    async def _flush_loop(self) -> None:
        while True:
            await asyncio.sleep(self.flush_s)
            taken: dict[FeedKey, list[Candle]] = {}
            try:
                self._flush_marks()
                # A DuckDB commit of many bars takes milliseconds: off the loop, so no
                # bar's decisions wait for it.
                taken = self._take_candles()
                await asyncio.to_thread(self._write_candles, taken)
            except Exception:  # the store may be busy; what is buffered is written next time
                log.exception("writing candles and equity failed; retrying in %.1fs", self.flush_s)
            finally:
                self._give_back(taken)

    async def _housekeeping_loop(self) -> None:
        """Retry what waits on the broker: unknown outcomes, protection, wanted exits; keep
        the market clock in step."""
        synced = time.monotonic()
        while True:
            await asyncio.sleep(self.housekeeping_s)
            if time.monotonic() - synced >= CLOCK_SYNC_S:
                synced = time.monotonic()
                try:
                    await self.market_clock.sync()
                except Exception as exc:  # the clock extrapolates on; tried again next time
                    log.warning("market clock not synced: %s", exc)
            # First: the checks below raise while the database is away.
            trouble = self.store.trading.writes.problem
            for live in list(self.strategies.values()):
                live.orders.store_problem(trouble)
            await self._watch_leases()
            await self._poll_halt()
            for live in list(self.strategies.values()):
                orders = live.orders
                if not (orders.unknown or orders.protect_due or orders.exit_wanted):
                    continue
                if not self._leased(live):
                    continue
                async with live.lock:
                    await orders.housekeeping(self._now_ms(live))

    # -- leases -----------------------------------------------------------------------------
    def _leased(self, live: LiveStrategy) -> bool:
        """Give whether this engine holds the strategy's lease, as far as is known without
        waiting (a lease found lost here stops the strategy's orders at once)."""
        if live.lease_problem is None:
            lost = self.leases.quick(live.strategy_id)
            if lost is not None:
                self._lose_lease(live, lost.reason)
        return live.lease_problem is None

    def _lose_lease(self, live: LiveStrategy, reason: str) -> None:
        sid = live.strategy_id
        live.lease_problem = reason
        log.warning("%s: %s", sid, reason)
        self._emit(Notice(sid, NoticeKind.DEGRADED, reason))
        self._show(sid)

    async def _watch_leases(self) -> None:
        """Verify the leases held; take lost ones back (or leave them to their new holder)."""
        held = [sid for sid, live in self.strategies.items() if live.lease_problem is None]
        for lost in await self.leases.verify(held):
            live = self.strategies.get(lost.strategy_id)
            if live is not None and live.lease_problem is None:
                self._lose_lease(live, lost.reason)
        for live in [x for x in self.strategies.values() if x.lease_problem is not None]:
            await self._retake(live)

    async def _retake(self, live: LiveStrategy) -> None:
        """Take a lost lease back; then build the strategy again from the store and reconcile
        it with the exchange (as after a restart) before it trades again."""
        sid = live.strategy_id
        try:
            # On a worker thread: a server that does not answer must not stop the loop.
            await asyncio.to_thread(self.store.lease_strategy, sid)
            row = await asyncio.to_thread(self._row, sid)
        except StrategyLeased as exc:
            self._leave(live, str(exc))
            return
        except Exception as exc:  # the server is still away: tried again next tick
            log.info("%s: lease not taken back yet: %s", sid, str(exc).splitlines()[0])
            return
        async with live.lock:
            self.strategies.pop(sid, None)
            try:
                again = await self._start(row)
            except StrategyLeased as exc:
                self.strategies[sid] = live
                self._leave(live, str(exc))
                return
            except Exception:  # the server went away again meanwhile: tried again next tick
                log.warning("%s: lease taken back, not resumed yet:\n%s", sid,
                            traceback.format_exc())  # fmt: skip
                self.strategies[sid] = live
                return
        detail = "lease taken back: replayed and reconciled, trading again"
        log.warning("%s: %s", sid, detail)
        again.orders.notice(NoticeKind.RECOVERED, detail)
        if self.account.halt is not None:  # a halt in force meanwhile applies to it too
            await self._act_on_halt(self.account.halt.flatten, [again])

    def _leave(self, live: LiveStrategy, detail: str) -> None:
        """Give a strategy up to the engine that holds its lease now: no more bars, no
        order, nothing stored for it by this engine."""
        sid = live.strategy_id
        self.strategies.pop(sid, None)
        self._shown.pop(sid, None)
        self.left[sid] = detail
        reason = f"left to the engine that holds its lease now: {detail}"
        log.warning("%s: %s", sid, reason)
        self._emit(Notice(sid, NoticeKind.STATE, reason))
        self._emit(StateChanged(sid, StrategyState.STOPPED, reason))

    def _now_ms(self, live: LiveStrategy) -> int:
        """Give the open of the bar forming now on a strategy's market, as the feed knows it."""
        feed = self.feeds.get(live.feed_key)
        if feed is not None and feed.forming is not None:
            return feed.forming.ts_ms
        last = live.runner.last_close_ms
        return last + live.runner.step_ms if last is not None else 0

    def _spawn(self, name: str, work: Callable[[], Awaitable[Any]], *, restart: bool) -> None:
        """Run a background task the engine owns; a loop that dies starts again."""

        async def supervised() -> None:
            attempt = 0
            while True:
                try:
                    await work()
                    return
                except asyncio.CancelledError:
                    raise
                except Exception:
                    error = traceback.format_exc()
                    retry_s = min(0.5 * 2**attempt, 30.0) if restart else None
                    log.error("task %s died:\n%s", name, error)
                    self._emit(TaskFailed(name, error, retry_s))
                    if retry_s is None:
                        return
                    attempt += 1
                    await asyncio.sleep(retry_s)

        self._spawn_once(supervised())

    def _spawn_once(self, work: Awaitable[Any]) -> None:
        task = asyncio.get_running_loop().create_task(work)  # type: ignore[arg-type]
        self._tasks.add(task)
        task.add_done_callback(self._done)

    def _done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            error = "".join(traceback.format_exception(task.exception()))
            log.error("background task failed:\n%s", error)
            self._emit(TaskFailed(task.get_name(), error, None))

    def subscribe(self, listener: Listener) -> None:
        """Call `listener(event)` with every engine event (see workbench.live.events)."""
        self._listeners.append(listener)

    def unsubscribe(self, listener: Listener) -> None:
        """Stop calling a listener (a closed browser session)."""
        if listener in self._listeners:
            self._listeners.remove(listener)

    def _emit(self, event: EngineEvent) -> None:
        for listener in list(self._listeners):
            try:
                listener(event)
            except Exception:  # a listener's bug must not stop trading
                log.exception("a listener failed on %s", type(event).__name__)

    # -- orders by hand -------------------------------------------------------------------
    async def cancel_order(self, client_order_id: str) -> Order:
        """Cancel an open order through the broker; its new state is stored and reported."""
        order = self.store.trading.order(client_order_id)
        if order is None:
            raise KeyError(f"no order {client_order_id}")
        if order.state.is_final:
            return order
        live = self.strategies[order.strategy_id]
        if not self._leased(live):
            raise StrategyLeased(f"{order.strategy_id}: {live.lease_problem}")
        async with live.lock:
            return await live.orders.cancel(order)

    async def place_order(
        self,
        strategy_id: str,
        side: Side | str,
        amount: float,
        *,
        order_type: OrderType | str = OrderType.MARKET,
        price: float | None = None,
    ) -> Order | None:
        """Place a manual order in a strategy's book; give it as stored, or None if refused.

        An order that adds to the position meets the strategy's risk limits like an entry (a
        refusal is stored with its rule); one that only reduces it passes like an exit. It is
        stored before it is sent, and its fills are booked into the strategy's portfolio,
        which the strategy then manages by its spec (a manual entry gets the spec's stop-loss
        and take-profit, and its exit rule closes it). A paper market order fills at the next
        price the feed shows. Resting paper limits do not survive a restart (they are expired
        then, as the paper broker forgets them). It does not touch resting protective legs:
        on spot they lock the position, so a manual sell of a protected position is refused
        by the exchange and stored as rejected.
        """
        live = self.strategies[strategy_id]
        order_type, side = OrderType(order_type), Side(side)
        if amount <= 0:
            raise ValueError(f"amount must be > 0, got {amount}")
        if order_type not in (OrderType.MARKET, OrderType.LIMIT):
            raise ValueError(f"manual orders are market or limit, not {order_type}")
        if order_type is OrderType.LIMIT and not price:
            raise ValueError("a limit order needs a price > 0")
        now_ms = await self.market_clock.sync()
        held = live.runner.portfolio.position(live.runner.symbol).amount
        after = held + (amount if side is Side.BUY else -amount)
        # An order that only reduces the position is an exit: the risk limits let exits through.
        reduces = abs(after) < abs(held) and after * held >= 0
        intent = OrderIntent(
            strategy_id,
            live.runner.symbol,
            side,
            float(amount),
            order_type,
            price=float(price) if order_type is OrderType.LIMIT and price else None,
            purpose=OrderPurpose.MANUAL_EXIT if reduces else OrderPurpose.MANUAL,
            bar_ts_ms=now_ms,
        )
        while self.store.trading.order(intent.client_order_id) is not None:
            intent = replace(intent, bar_ts_ms=intent.bar_ts_ms + 1)  # ids stay unique
        async with live.lock:
            # By hand, the amount is what was asked: not the whole position as for an exit.
            placed = await self._place(live, intent, now_ms, manual=True)
        if placed is None:
            return None
        return self.store.trading.order(intent.client_order_id)

    async def _on_report(self, execution: Execution) -> None:
        """Book an order update the broker reported (stored, then emitted)."""
        live = self.strategies.get(execution.order.strategy_id)
        if live is None:
            log.warning("update of %s: no such strategy here", execution.order.client_order_id)
            return
        if not self._leased(live):
            # Booked by whoever holds the lease: reconciled when it is taken back.
            log.warning("update of %s left for reconciling: %s", execution.order.client_order_id,
                        live.lease_problem)  # fmt: skip
            return
        async with live.lock:
            try:
                await live.orders.settle(execution)
            except Exception:  # one bad update must not stop the follow-up of the others
                log.exception("booking an update of %s failed", execution.order.client_order_id)
                live.orders.notice(NoticeKind.ERROR, traceback.format_exc())

    # -- bars -----------------------------------------------------------------------------
    def _on_forming(self, key: FeedKey, candle: Candle) -> None:
        self._emit(CandleForming(key, candle))
        if self._opened.get(key, -1) < candle.ts_ms:
            self._spawn_once(self._open_bar(key, candle, current=True))
        else:
            # A newer price: paper orders placed by hand fill on it.
            executions = self.broker.on_price(key[1], candle.close, candle.ts_ms)
            if executions:
                self._spawn_once(self._report_all(executions))

    async def _report_all(self, executions: list[Execution]) -> None:
        for execution in executions:
            await self._on_report(execution)

    async def _open_bar(self, key: FeedKey, candle: Candle, *, current: bool) -> None:
        """Act at a bar's first price on the signals of the bar before (if that was fresh)."""
        if self._opened.get(key, -1) >= candle.ts_ms:
            return
        self._opened[key] = candle.ts_ms
        with self.store.trading.writes.grouped():
            await self._open_orders(key, candle, current)

    async def _open_orders(self, key: FeedKey, candle: Candle, current: bool) -> None:
        feed = self.feeds[key]
        fresh = self.replay_missed or (
            current
            and feed.fresh_close_ms == candle.ts_ms - feed.step_ms
            and (feed.forming is None or feed.forming.ts_ms == candle.ts_ms)
        )
        for live in list(self.strategies.values()):
            if live.feed_key == key and not _seen(live.runner, candle):
                runner = live.runner
                await self._step(
                    live, lambda r=runner: r.on_open(candle.ts_ms, candle.open), candle.ts_ms, fresh
                )
        # The bar's open fills the paper orders placed at it (an exchange fills its own).
        await self._report_all(self.broker.on_price(key[1], candle.open, candle.ts_ms))

    async def _on_closed(self, key: FeedKey, candle: Candle, fresh: bool) -> None:
        t0 = time.perf_counter()
        # A strategy's rows wait to be journaled with the next order's (store.journal).
        with self.store.trading.writes.grouped():
            await self._open_bar(key, candle, current=False)  # caught up: never forming
            await self._report_all(self.broker.on_price(key[1], candle.close, candle.ts_ms))
            # Resting paper limits fill on the bars after the one they were placed in.
            await self._report_all(self.broker.on_bar(key[1], candle))
            acted = False
            for live in list(self.strategies.values()):
                if live.feed_key == key and not _seen(live.runner, candle):
                    await self._close_for(live, candle, fresh or self.replay_missed)
                    acted = True
            if acted and (fresh or self.replay_missed) and self._running:
                await self._account_bar(key, candle.ts_ms)
        # Stored after the decisions on it: a stored bar is a bar fully acted on.
        self._candles.setdefault(key, []).append(candle)
        latency_ms = (time.perf_counter() - t0) * 1000
        self._emit(CandleClosed(key, candle, latency_ms, fresh))

    async def _close_for(self, live: LiveStrategy, candle: Candle, fresh: bool) -> None:
        """Give a strategy a closed bar, after the bars it has not taken before it (stale):
        a strategy never skips a bar, even one taken up again while its feed went on (the
        feed may deliver a newer bar while the catch-up fetches the older ones)."""
        if live.lease_problem is not None:
            return  # taken up again from the store when the lease is back
        async with live.bars:
            runner, step = live.runner, live.runner.step_ms
            last = runner.last_close_ms
            if last is not None and candle.ts_ms > last + step:
                missed = await self.feeds[live.feed_key].fetch_closed(last + step, candle.ts_ms)
                for bar in missed:
                    await self._close_one(live, bar, fresh=False)
            await self._close_one(live, candle, fresh)

    async def _close_one(self, live: LiveStrategy, candle: Candle, fresh: bool) -> None:
        """One strategy's work on a closed bar: decide, mark equity, guard, late exits."""
        if live.lease_problem is not None:
            return
        runner = live.runner
        sid = runner.strategy_id
        taken = False

        def decide() -> list[OrderIntent]:
            # Asked under the strategy's lock: a bar waiting for it may have been caught up
            # meanwhile (a strategy taken up again while its feed went on).
            nonlocal taken
            if _seen(runner, candle):
                return []
            taken = True
            return runner.on_close(candle)

        await self._step(live, decide, candle.ts_ms, fresh)
        if not taken:
            return
        if live.volatility is not None:
            live.volatility.update(candle.close)
        equity = runner.equity()
        position = runner.portfolio.position(runner.symbol).amount
        self._equity.append(
            (sid, candle.ts_ms, equity, runner.portfolio.cash, position, candle.close)
        )
        risk = live.risk
        milestone = risk.state.milestone
        tripped = risk.mark(candle.ts_ms, equity)
        if risk.state.milestone != milestone:
            # Stored before it is acted on: a restart keeps the cool-down and the day.
            self.store.trading.save_risk_state(sid, risk.state)
            if tripped:
                live.orders.notice(NoticeKind.RISK, f"drawdown guard tripped at {equity:g}")
        # A trip replayed after a restart flattens again (a no-op once flat).
        if tripped and risk.limits.flatten_on_drawdown:
            await self._step(live, lambda: runner.flatten(candle.ts_ms), candle.ts_ms, fresh)
        if fresh and live.orders.late_exit is not None:
            async with live.lock:
                await live.orders.take_late_exit(candle.ts_ms + runner.step_ms)

    async def _account_bar(self, key: FeedKey, ts_ms: int) -> None:
        """Mark the account once per bar: when every market of this timeframe has taken it
        (or a later bar shows one never will). Once per strategy made a bar cost strategies
        squared; once per market, markets times strategies."""
        waiting = self._unmarked.setdefault((key[2], ts_ms), set())
        waiting.add(key)
        markets = {live.feed_key for live in self.strategies.values() if live.feed_key[2] == key[2]}
        due = sorted(
            t
            for (tf, t), seen in self._unmarked.items()
            if tf == key[2] and (t < ts_ms or (t == ts_ms and markets <= seen))
        )
        for t in due:
            del self._unmarked[(key[2], t)]
        if due:
            await self._mark_account(due[-1])

    async def _mark_account(self, ts_ms: int) -> None:
        """Take the account's books at a fresh bar; act on its drawdown guard; rebalance."""
        tripped = self.account.mark(ts_ms)
        for quote in sorted(self.account.risk.states):
            if self.account.risk.rebalance_due(quote, ts_ms):
                self._rebalance(quote, ts_ms)
                self.account.save()
        for quote in tripped:
            detail = f"account drawdown guard tripped ({quote}): no new entries for a while"
            log.warning(detail)
            for live in list(self.strategies.values()):
                if live.runner.symbol.endswith(f"/{quote}"):
                    live.orders.notice(NoticeKind.RISK, detail)
                    if self.account.limits.flatten_on_drawdown:
                        await self._flatten(live)

    async def _step(
        self,
        live: LiveStrategy,
        decide: Callable[[], list[OrderIntent]],
        bar_ms: int,
        fresh: bool,
    ) -> None:
        """Run a strategy's decision on a bar and place what it gives (if the bar is fresh;
        else keep its exits for later). A strategy whose own code raises is set to `error`."""
        if live.lease_problem is not None:
            return
        async with live.lock:
            try:
                intents = decide()
                if not intents:
                    return
                if not fresh:
                    live.orders.note_missed(intents, bar_ms)
                    return
                for intent in intents:
                    await self._place(live, intent, bar_ms)
            except Exception:  # one strategy's failure must not stop the others
                self._fail(live, traceback.format_exc())

    def _fail(self, live: LiveStrategy, error: str) -> None:
        sid = live.strategy_id
        log.error("strategy %s failed:\n%s", sid, error)
        live.runner.state = StrategyState.ERROR
        self.store.trading.set_state(sid, str(StrategyState.ERROR), error)
        self._show(sid, error)

    async def _place(
        self, live: LiveStrategy, intent: OrderIntent, now_ms: int, *, manual: bool = False
    ) -> Order | None:
        """Check an intent against the market's rules and the risk limits; place it."""
        if not self._leased(live):
            log.warning("%s: %s not placed: %s", live.strategy_id, intent.purpose,
                        live.lease_problem)  # fmt: skip
            return None
        runner = live.runner
        price = runner.last_price or 0.0
        target = self.account.limits.volatility_target
        if (
            target is not None
            and intent.purpose is OrderPurpose.ENTRY
            and live.volatility is not None
        ):
            realized = live.volatility.value
            scale = entry_scale(target, realized)
            if scale < 1.0:
                why = f"volatility target {target:g}: x{scale:.6g} (realized {realized:.6g})"
                intent = evolve(intent, amount=intent.amount * scale, reason=why)
        shaped = live.orders.shape(intent, price)
        if isinstance(shaped, Refusal):
            self._refuse(live, intent, shaped)
            return None
        if intent.purpose.opens:
            blocked = live.orders.blocks_entry()
            if blocked is not None and intent.purpose is OrderPurpose.ENTRY:
                log.warning("%s: entry held back: %s", runner.strategy_id, blocked)
                return None
            marks = {runner.symbol: price}
            refusal = live.risk.check(
                shaped,
                now_ms=intent.bar_ts_ms,
                price=price,
                equity=runner.equity(),
                position_value=abs(runner.portfolio.position(runner.symbol).amount) * price,
                exposure=runner.portfolio.exposure(marks),
                open_orders=len(live.orders.open_orders()),
            )
            if refusal is None:
                refusal = self.account.check(shaped, price)
            if refusal is not None:
                self._refuse(live, intent, refusal)
                return None
        self.account.sent()
        if manual:
            return await live.orders.send(Order.from_intent(shaped, now_ms))
        return await live.orders.place(shaped, now_ms)

    def _refuse(self, live: LiveStrategy, intent: OrderIntent, refusal: Refusal) -> None:
        self.store.trading.save_refusal(
            live.strategy_id,
            intent.bar_ts_ms,
            intent.symbol,
            str(intent.side),
            intent.amount,
            str(intent.purpose),
            refusal.rule,
            refusal.detail,
        )
        self._emit(OrderRefused(intent, refusal))

    def _on_feed_status(self, key: FeedKey, problem: str | None) -> None:
        for live in self.strategies.values():
            if live.feed_key == key:
                live.feed_problem = problem
                self._show(live.strategy_id)
        if problem is not None:
            for live in self.strategies.values():
                if live.feed_key == key:
                    self._emit(Notice(live.strategy_id, NoticeKind.DEGRADED, problem))

    # -- the account ------------------------------------------------------------------------
    async def halt(self, reason: str, *, by: str, flatten: bool = False) -> None:
        """Turn the kill switch on: no new entry anywhere until `end_halt`; resting entry
        orders cancelled; protection left in place; with `flatten` every position closed at
        market. Stored before it acts, so a restart keeps it (and finishes a flatten)."""
        if not reason.strip():
            raise ValueError("a halt needs a reason")
        self.account.record_halt(halted=True, reason=reason, by=by, flatten=flatten)
        log.warning("halted by %s: %s%s", by, reason, " (flattening)" if flatten else "")
        self._emit(HaltChanged(self.exchange, self.account.halt, by, reason))
        await self._act_on_halt(flatten)

    async def end_halt(self, *, by: str, reason: str = "resumed") -> None:
        """Turn the kill switch off (stored): entries may go out again."""
        if self.account.halt is None:
            return
        self.account.record_halt(halted=False, reason=reason, by=by)
        log.warning("halt ended by %s: %s", by, reason)
        self._emit(HaltChanged(self.exchange, None, by, reason))

    async def _poll_halt(self) -> None:
        """Take up a halt or a resume stored by another process (a `live halt` on a shared
        PostgreSQL database)."""
        if not self.account.poll():
            return
        halt = self.account.halt
        if halt is not None:
            by, reason = halt.by, halt.reason
        else:  # the resume as stored: who and why
            newest = self.store.risk.halts(self.exchange).iloc[0]
            by, reason = str(newest["by_user"]), str(newest["reason"])
        self._emit(HaltChanged(self.exchange, halt, by, reason))
        if halt is not None:
            await self._act_on_halt(halt.flatten)

    async def _act_on_halt(self, flatten: bool, only: list[LiveStrategy] | None = None) -> None:
        for live in only if only is not None else list(self.strategies.values()):
            if not self._leased(live):
                continue  # acted on when its lease is taken back
            async with live.lock:
                for order in live.orders.open_orders():
                    if order.purpose.opens:
                        try:
                            await live.orders.cancel(order)
                        except Exception as exc:  # told; a halt given again tries again
                            detail = f"halt: {order.client_order_id} not cancelled: {exc}"
                            live.orders.notice(NoticeKind.ERROR, detail)
            if flatten:
                await self._flatten(live)

    async def _flatten(self, live: LiveStrategy) -> None:
        runner = live.runner
        if runner.portfolio.is_flat(runner.symbol):
            return
        now_ms = self._now_ms(live)
        await self._step(live, lambda: runner.flatten(now_ms), now_ms, True)

    def _rebalance(self, quote: str, ts_ms: int) -> None:
        """Share the capital of the flat strategies trading in `quote` again, each in
        proportion to 1 / its market's volatility on past bars (stored in one transaction)."""
        flat = {
            sid: live
            for sid, live in self.strategies.items()
            if live.runner.symbol.endswith(f"/{quote}")
            and live.runner.portfolio.is_flat(live.runner.symbol)
            and not live.orders.open_orders()
            and live.volatility is not None
            and live.volatility.value is not None
            and live.lease_problem is None
        }
        if len(flat) < 2:
            return
        cash = {sid: live.runner.portfolio.cash for sid, live in flat.items()}
        vols = {sid: float(live.volatility.value or 0.0) for sid, live in flat.items()}
        targets = allocate(sum(cash.values()), list(flat), "volatility", volatility=vols)
        moves = {sid: targets[sid] - cash[sid] for sid in flat}
        states = {}
        for sid, delta in moves.items():
            runner, state = flat[sid].runner, flat[sid].risk.state
            state.peak_equity += delta  # capital moved is no profit nor loss
            state.day_start_equity += delta
            state.marked_ms = max(state.marked_ms, ts_ms)
            states[sid] = state
        reason = f"inverse-volatility rebalance at {ts_ms}"
        self.store.trading.move_capital(moves, reason, states)  # stored before it is in force
        for sid, delta in moves.items():
            runner = flat[sid].runner
            runner.portfolio.cash += delta
            runner.initial_cash += delta
            flat[sid].orders.notice(NoticeKind.RISK, f"capital {delta:+.8g} {quote} ({reason})")

    def set_account_limits(self, limits: AccountLimits, *, by: str) -> None:
        """Put new account limits in force (stored); they apply to the next order."""
        before = self.account.limits
        lookback = before.volatility_lookback
        self.account.set_limits(limits, by)
        if limits.volatility_lookback != lookback:  # measured again on the stored bars
            self.flush()
            for live in self.strategies.values():
                runner = live.runner
                end = (runner.last_close_ms or 0) + runner.step_ms
                start = end - (limits.volatility_lookback + 1) * runner.step_ms
                bars = self.store.candles.read(
                    *live.feed_key,
                    start=pd.Timestamp(start, unit="ms", tz="UTC"),
                    end=pd.Timestamp(end, unit="ms", tz="UTC"),
                )
                live.volatility = self._volatility(runner, bars)
        self._emit(LimitsChanged(self.exchange, limits, by, before))

    @property
    def halted(self) -> Halt | None:
        """Give the halt in force (None: trading)."""
        return self.account.halt

    def risk_usage(self) -> list[Usage]:
        """Give each account limit's use now (for the Risk panel)."""
        return self.account.usage()

    # -- reading ----------------------------------------------------------------------------
    def metrics(self) -> pd.DataFrame:
        """Give live metrics per strategy: return, drawdown, Sharpe to date, win rate, trades."""
        self.flush()
        return metrics_frame(self.store, self.strategies)

    def snapshot(self) -> EngineSnapshot:
        """Give the engine as it stands, as frozen values (for the live views)."""
        return EngineSnapshot(
            self.exchange,
            self._running,
            self.halted,
            tuple(strategy_snapshot(live) for live in self.strategies.values()),
        )

    def status(self) -> pd.DataFrame:
        """Give one row per strategy: state, position, cash, equity, P&L, trades."""
        return status_frame(self.strategies)


def _seen(runner: StrategyRunner, candle: Candle) -> bool:
    return runner.last_close_ms is not None and candle.ts_ms <= runner.last_close_ms


def _frame(candles: list[Candle]) -> pd.DataFrame:
    rows = [(c.ts_ms, c.open, c.high, c.low, c.close, c.volume) for c in candles]
    frame = pd.DataFrame(rows, columns=["ts_ms", *COLUMNS]).drop_duplicates("ts_ms", keep="last")
    frame.index = pd.to_datetime(frame.pop("ts_ms"), unit="ms", utc=True)
    return frame


__all__ = ["LiveEngine", "StrategyState"]
