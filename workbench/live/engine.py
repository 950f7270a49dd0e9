"""The live engine: feeds, strategies, risk, broker and store in one asyncio process.

Order of operations for every order (freqtrade's rule): the order row is stored (pending)
before it is sent; each fill is stored before it is booked or reported; the order's new state
is stored after (`workbench.live.booking`). A strategy that raises is set to `error` with its
traceback stored; the others go on. State changes are stored as they happen; closed candles
and equity marks in batches every `flush_s` (a restart rebuilds what a crash lost: the feed
catches up). So a restart comes back with the same strategies, positions, orders, equity and
drawdown guard (a running cool-down goes on), and settles the rest with the broker and the
exchange (`workbench.live.restart`).

Orders that rest (limits, the exchange-side stops) are followed by the broker's `run` task
(ccxt.pro `watch_orders`, polling when the stream fails); each change it reports is booked like
an answer to a placement. A filled entry's stop-loss and take-profit rest on the exchange when
the broker can (`workbench.live.exchange_side`); before any other exit the resting legs are
cancelled first, which releases the position they lock. Decisions and bookings of one strategy
never interleave (one lock per strategy).
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
import traceback
from collections.abc import Callable
from dataclasses import replace
from typing import Any

import pandas as pd

from workbench.broker.base import Broker, Execution, OrderRejected
from workbench.broker.models import Order, OrderIntent, OrderState, OrderType
from workbench.candles import COLUMNS, Candle
from workbench.fills import FillModel, Side
from workbench.live.booking import Booking
from workbench.live.exchange_side import ExchangeSideProtection
from workbench.live.feed import CandleFeed
from workbench.live.reports import metrics_frame, status_frame
from workbench.live.restart import Recovery
from workbench.live.runner import StrategyRunner, StrategyState
from workbench.live.running import LiveStrategy
from workbench.risk.limits import RiskLimits
from workbench.store import Store
from workbench.strategy import Spec, load_spec
from workbench.timeframes import timeframe_ms
from workbench.venue.client import market_now_ms

log = logging.getLogger(__name__)
# Purposes of orders placed by hand (`LiveEngine.place_order`): one that adds to the position
# meets the risk limits like an entry; one that only reduces it passes like an exit.
MANUAL, MANUAL_EXIT = "manual", "manual_exit"
Listener = Callable[[str, dict[str, Any]], None]


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
        history_bars: int | None = None,
        flush_s: float = 0.5,
        catch_up_bars: int = 288,
    ) -> None:
        self.store = store
        self.clients = clients
        self.broker = broker
        self.fill_model = fill_model or FillModel()
        self.limits = limits
        self.history_bars = history_bars
        self.exchange = clients.name
        self.strategies: dict[str, LiveStrategy] = {}
        self.feeds: dict[tuple[str, str, str], CandleFeed] = {}
        self._opened: dict[tuple[str, str, str], int] = {}
        self.flush_s = flush_s
        self.catch_up_bars = catch_up_bars
        # Candles and equity marks are written in batches (they can be rebuilt: the feed
        # backfills candles after a restart); orders, fills and trades are written at once.
        self._candles: dict[tuple[str, str, str], list[Candle]] = {}
        self._equity: list[tuple[str, int, float, float, float, float]] = []
        self._tasks: set[asyncio.Task[Any]] = set()
        self._running = False
        self._listeners: list[Listener] = []
        booking = Booking(store, self.exchange, self._emit)
        self._protection = ExchangeSideProtection(booking, broker, clients)
        self._recovery = Recovery(self._protection, clients)

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
        rows = self.store.trading.strategies()
        await self._start(next(r for r in rows.itertuples() if r.strategy_id == strategy_id))
        return strategy_id

    async def resume(self) -> list[str]:
        """Bring back every stored strategy of this exchange with its positions; give ids."""
        back = []
        for row in self.store.trading.strategies().itertuples():
            if row.exchange == self.exchange and row.strategy_id not in self.strategies:
                await self._start(row)
                back.append(row.strategy_id)
        return back

    async def _start(self, row: Any) -> None:
        """Build a stored strategy's runner and attach it to its feed."""
        runner = StrategyRunner(
            row.strategy_id,
            load_spec(json.loads(row.spec_json)),
            json.loads(row.params_json),
            row.allocation,
            self.fill_model,
            symbol=row.symbol,
        )
        await self._attach(row.strategy_id, runner, StrategyState(row.state))

    async def _attach(
        self, strategy_id: str, runner: StrategyRunner, state: StrategyState
    ) -> LiveStrategy:
        runner.state = state
        key = (self.exchange, runner.symbol, runner.timeframe)
        for fill in self.store.trading.fills(strategy_id):
            runner.on_fill(fill)
        history, current_open_ms = await self._history(key, runner.warmup_bars)
        runner.seed(history)
        if not history.empty:
            runner.last_price = float(history["close"].iloc[-1])
        risk = self._recovery.risk_manager(strategy_id, self.limits)
        live = self.strategies[strategy_id] = LiveStrategy(runner, risk, key)
        live.trades = len(runner.portfolio.round_trips)
        self._recovery.rebuild_peak(live, current_open_ms)
        async with live.lock:
            await self._recovery.reconcile(live)
            await self._recovery.reconcile_balances(live, self.strategies)
            await self._recovery.restore_protection(live)
        if key not in self.feeds:
            # Bars since the last stored one are caught up (a restart trades through them,
            # as if it had never stopped) unless too many are missing; then, or with no
            # history at all, trading starts with the bar forming now.
            step = timeframe_ms(runner.timeframe)
            last = current_open_ms - step
            stored = runner.last_close_ms
            if stored is not None and last - stored <= self.catch_up_bars * step:
                last = stored
            feed = CandleFeed(self.clients, runner.symbol, runner.timeframe, last_closed_ms=last)
            feed.on_forming(lambda c, k=key: self._on_forming(k, c))
            feed.on_closed(lambda c, k=key: self._on_closed(k, c))
            self.feeds[key] = feed
            if self._running:
                self._spawn(feed.run())
        return live

    async def _history(self, key: tuple[str, str, str], warmup: int) -> tuple[pd.DataFrame, int]:
        """Give the stored closed bars before the market's current bar (never later ones:
        the local exchange's history is in the store, future included), and that bar's open."""
        exchange, symbol, timeframe = key
        now_ms = await market_now_ms(self.clients.rest)
        step = timeframe_ms(timeframe)
        bars = self.history_bars or max(warmup * 2, 500)
        end = pd.Timestamp(now_ms - now_ms % step, unit="ms", tz="UTC")
        start = end - pd.Timedelta(milliseconds=step * bars)
        history = self.store.candles.read(exchange, symbol, timeframe, start=start, end=end)
        return history, int(end.value // 1_000_000)

    def set_state(self, strategy_id: str, state: StrategyState | str) -> None:
        """Run, pause or stop a strategy; the change is stored."""
        state = StrategyState(state)
        self.strategies[strategy_id].runner.state = state
        self.store.trading.set_state(strategy_id, str(state))
        self._emit("state", {"strategy_id": strategy_id, "state": str(state)})

    # -- running --------------------------------------------------------------------------
    async def start(self) -> None:
        """Start every feed, and the broker's follow-up of resting orders."""
        self._running = True
        for feed in self.feeds.values():
            self._spawn(feed.run())
        self._spawn(self._flush_loop())
        self._spawn(self.broker.run(self._on_report))

    async def stop(self) -> None:
        """Stop the feeds (strategies keep their stored states)."""
        self._running = False
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks.clear()
        self.flush()

    def flush(self) -> None:
        """Write the buffered equity marks and candles (kept for the next try on failure).

        Marks first: a stored bar is never without its marks (the drawdown guard's peak is
        rebuilt from them at a restart; a bar not stored is traded again and marked again).
        """
        self.store.trading.save_equity_rows(self._equity)
        self._equity = []
        for key in list(self._candles):
            self.store.candles.write(*key, _frame(self._candles[key]))
            del self._candles[key]

    async def _flush_loop(self) -> None:
        while True:
            await asyncio.sleep(self.flush_s)
            try:
                self.flush()
            except Exception:  # the store may be busy; what is buffered is written next time
                log.exception("writing candles and equity failed; retrying in %.1fs", self.flush_s)

    def _spawn(self, work: Any) -> None:
        task = asyncio.get_running_loop().create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def subscribe(self, listener: Listener) -> None:
        """Call `listener(kind, data)` on each candle, order, fill and state change."""
        self._listeners.append(listener)

    def unsubscribe(self, listener: Listener) -> None:
        """Stop calling a listener (a closed browser session)."""
        if listener in self._listeners:
            self._listeners.remove(listener)

    async def cancel_order(self, client_order_id: str) -> Order:
        """Cancel an open order through the broker; its new state is stored and reported."""
        order = self.store.trading.order(client_order_id)
        if order is None:
            raise KeyError(f"no order {client_order_id}")
        if order.state.is_final:
            return order
        live = self.strategies[order.strategy_id]
        async with live.lock:
            execution = await self.broker.cancel(order)
            await self._protection.settle(live, execution)
        return execution.order

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
        and take-profit, and its exit rule closes it). Resting paper limits do not survive a
        restart (they are expired then, as the paper broker forgets them). It does not touch
        resting protective legs: on spot they lock the position, so a manual sell of a
        protected position is refused by the exchange and stored as rejected.
        """
        live = self.strategies[strategy_id]
        order_type, side = OrderType(order_type), Side(side)
        if amount <= 0:
            raise ValueError(f"amount must be > 0, got {amount}")
        if order_type not in (OrderType.MARKET, OrderType.LIMIT):
            raise ValueError(f"manual orders are market or limit, not {order_type}")
        if order_type is OrderType.LIMIT and not price:
            raise ValueError("a limit order needs a price > 0")
        now_ms = await market_now_ms(self.clients.rest)
        held = live.runner.portfolio.position(live.runner.symbol).amount
        after = held + (amount if side is Side.BUY else -amount)
        # An order that only reduces the position is an exit: the risk limits let exits through.
        purpose = MANUAL_EXIT if abs(after) < abs(held) and after * held >= 0 else MANUAL
        intent = OrderIntent(
            strategy_id,
            live.runner.symbol,
            side,
            float(amount),
            order_type,
            price=float(price) if order_type is OrderType.LIMIT and price else None,
            purpose=purpose,
            bar_ts_ms=now_ms,
        )
        while self.store.trading.order(intent.client_order_id) is not None:
            intent = replace(intent, bar_ts_ms=intent.bar_ts_ms + 1)  # ids stay unique
        async with live.lock:
            await self._place(live, intent)
        return self.store.trading.order(intent.client_order_id)

    async def _on_report(self, execution: Execution) -> None:
        """Book an order update the broker's follow-up reported (stored, then emitted)."""
        live = self.strategies.get(execution.order.strategy_id)
        if live is None:
            log.warning("update of %s: no such strategy here", execution.order.client_order_id)
            return
        async with live.lock:
            try:
                await self._protection.settle(live, execution)
            except Exception:  # one bad update must not stop the follow-up of the others
                log.exception("booking an update of %s failed", execution.order.client_order_id)
                self.store.trading.add_event(
                    live.runner.strategy_id, "error", traceback.format_exc()
                )

    def _emit(self, kind: str, data: dict[str, Any]) -> None:
        for listener in self._listeners:
            listener(kind, data)

    def _on_forming(self, key: tuple[str, str, str], candle: Candle) -> None:
        self._emit("forming", {"key": key, "candle": candle})
        if self._opened.get(key, -1) < candle.ts_ms:
            self._spawn(self._open_bar(key, candle))

    async def _open_bar(self, key: tuple[str, str, str], candle: Candle) -> None:
        if self._opened.get(key, -1) >= candle.ts_ms:
            return
        self._opened[key] = candle.ts_ms
        self.broker.on_price(key[1], candle.open, candle.ts_ms)
        for live in self.strategies.values():
            if live.feed_key == key and live.resubmit:
                pending, live.resubmit = live.resubmit, []
                async with live.lock:
                    for order in pending:
                        await self._send(live, order)
        for sid, live in list(self.strategies.items()):
            if live.feed_key == key and not _seen(live.runner, candle):
                await self._guarded(sid, lambda r=live.runner: r.on_open(candle.ts_ms, candle.open))

    async def _on_closed(self, key: tuple[str, str, str], candle: Candle) -> None:
        t0 = time.perf_counter()
        await self._open_bar(key, candle)  # a backfilled bar was never seen forming
        self.broker.on_price(key[1], candle.close, candle.ts_ms)
        # Resting paper limits fill on the bars after the one they were placed in.
        for execution in self.broker.on_bar(key[1], candle):
            await self._on_report(execution)
        for sid, live in list(self.strategies.items()):
            if live.feed_key != key or _seen(live.runner, candle):
                continue  # a strategy added later may have been seeded past this bar
            await self._guarded(sid, lambda r=live.runner: r.on_close(candle))
            runner = live.runner
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
                    self.store.trading.add_event(
                        sid, "risk", f"drawdown guard tripped at {equity:g}"
                    )
            # A trip replayed after a restart flattens again (a no-op once flat).
            if tripped and risk.limits.flatten_on_drawdown:
                await self._guarded(sid, lambda r=runner: r.flatten(candle.ts_ms))
        # Stored after the decisions on it: a stored bar is a bar fully acted on.
        self._candles.setdefault(key, []).append(candle)
        self._emit(
            "closed",
            {"key": key, "candle": candle, "latency_ms": (time.perf_counter() - t0) * 1000},
        )

    async def _guarded(self, sid: str, decide: Callable[[], list[OrderIntent]]) -> None:
        live = self.strategies[sid]
        if live.runner.state is StrategyState.ERROR:
            return
        try:
            async with live.lock:
                for intent in decide():
                    await self._place(live, intent)
        except Exception:  # one strategy's failure must not stop the others
            error = traceback.format_exc()
            log.error("strategy %s failed:\n%s", sid, error)
            live.runner.state = StrategyState.ERROR
            self.store.trading.set_state(sid, str(StrategyState.ERROR), error)
            self._emit("state", {"strategy_id": sid, "state": "error", "error": error})

    async def _place(self, live: LiveStrategy, intent: OrderIntent) -> None:
        runner = live.runner
        price = runner.last_price or 0.0
        marks = {runner.symbol: price}
        refusal = live.risk.check(
            intent,
            now_ms=intent.bar_ts_ms,
            price=price,
            equity=runner.equity(),
            position_value=abs(runner.portfolio.position(runner.symbol).amount) * price,
            exposure=runner.portfolio.exposure(marks),
            open_orders=len(self.store.trading.orders(runner.strategy_id, open_only=True)),
        )
        if refusal is not None:
            self.store.trading.save_refusal(
                runner.strategy_id,
                intent.bar_ts_ms,
                intent.symbol,
                str(intent.side),
                intent.amount,
                intent.purpose,
                refusal.rule,
                refusal.detail,
            )
            self._emit("refused", {"intent": intent, "refusal": refusal})
            return
        known = self.store.trading.order(intent.client_order_id)
        if known is not None and known.state is not OrderState.PENDING:
            log.info("order %s was placed before a restart; not again", known.client_order_id)
            return
        exit_ = intent.purpose not in ("entry", MANUAL, MANUAL_EXIT)
        if exit_ and self._protection.open_legs(live):
            # The resting legs lock the position: cancel them, then exit what is left.
            await self._protection.unprotect(live)
            position = runner.portfolio.position(runner.symbol).amount
            if abs(position) <= 1e-12:
                return  # a leg filled meanwhile: nothing left to exit
            intent = replace(intent, amount=abs(position))
        order = known or Order.from_intent(intent, intent.bar_ts_ms)
        self.store.trading.save_order(order, self.exchange)
        await self._send(live, order)

    async def _send(self, live: LiveStrategy, order: Order) -> None:
        try:
            execution = await self.broker.submit(order)
        except OrderRejected as exc:
            rejected = order.update(state=OrderState.REJECTED, reason=exc.reason)
            self.store.trading.save_order(rejected, self.exchange)
            self._emit("order", {"order": rejected})
            return
        await self._protection.settle(live, execution)

    # -- reading ----------------------------------------------------------------------------
    def metrics(self) -> pd.DataFrame:
        """Give live metrics per strategy: return, drawdown, Sharpe to date, win rate, trades."""
        self.flush()
        return metrics_frame(self.store, self.strategies)

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
