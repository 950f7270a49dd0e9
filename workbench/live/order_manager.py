"""The order path of one strategy, in one owner: place, settle, book, protect, reconcile.

Every step is stored before it acts (freqtrade's order of operations): the order row
(pending) before it is sent; each fill before it is booked or reported; the order's new
state after. A stored order only moves forward (`Order.advanced`), so a late, older answer
changes nothing and a replayed update books nothing twice (fills are stored by fill id).

Protection. After an entry fills, its stop-loss and take-profit rest on the exchange when the
broker can (an OCO list where the exchange has one; `workbench.live.protection` builds the
legs, sized to what the account holds, rounded down to the lot step); the runner is told which
levels rest (`ProtectionChanged`) and watches the others. Before any other exit the resting
legs are cancelled first, which releases the position they lock.

Nothing transient stops protection. A placement whose outcome is unknown (the answer was lost
and no lookup could tell) stays pending and is looked up again with backoff; a broker that
cannot be asked now is asked again later; meanwhile the strategy is degraded (its
`problems`), keeps evaluating bars and watching its stops, and is settled when the broker
answers. Only a definite answer (refused key, insufficient funds, invalid order) ends an
order.

Exits are never dropped. An exit the rules call for is remembered (`exit_wanted`) until the
position is flat: one in flight at a time, a refused or failed one tried again with bounded
backoff under a new client id, each sized from what the exchange says is free (rounded down
to the lot step, so it never asks for more than the account holds). After repeated failure
the strategy is degraded and the failure stored and logged loudly; it keeps trying.

Decisions and bookings of one strategy never interleave: the engine holds the strategy's lock
around every call here.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace

from workbench.broker.base import (
    Broker,
    BrokerUnavailable,
    ExchangeStops,
    Execution,
    OrderRejected,
    OutcomeUnknown,
)
from workbench.broker.models import (
    PROTECTIVE,
    Order,
    OrderIntent,
    OrderPurpose,
    OrderState,
    OrderType,
    client_order_id,
)
from workbench.fills import Side, StopKind
from workbench.live.crashpoints import crash_point
from workbench.live.events import EngineEvent, FillBooked, Notice, NoticeKind, OrderChanged
from workbench.live.protection import protective_legs
from workbench.live.runner import StrategyRunner
from workbench.live.trader import ProtectionChanged
from workbench.lots import LotRules
from workbench.records import evolve
from workbench.risk.limits import Refusal
from workbench.store.trading import TradingStore

log = logging.getLogger(__name__)

Emit = Callable[[EngineEvent], None]


@dataclass
class Retry:
    """When to try something again: bounded exponential backoff on a monotonic clock."""

    base_s: float = 0.5
    max_s: float = 30.0
    attempts: int = 0
    due: float = 0.0

    def failed(self, now: float) -> None:
        self.attempts += 1
        self.due = now + min(self.base_s * 2 ** (self.attempts - 1), self.max_s)

    def ready(self, now: float) -> bool:
        return now >= self.due


@dataclass
class ExitWanted:
    """An exit the rules called for and the position still open: kept until flat."""

    purpose: OrderPurpose
    bar_ts_ms: int
    stop_price: float | None
    reason: str | None
    retry: Retry = field(default_factory=Retry)


class OrderManager:
    """Places, settles, books and protects the orders of one strategy."""

    def __init__(
        self,
        runner: StrategyRunner,
        store: TradingStore,
        broker: Broker,
        *,
        exchange: str,
        emit: Emit,
        rules: LotRules | None = None,
        retry_s: float = 0.5,
        max_retry_s: float = 30.0,
        degrade_after: int = 3,
        clock: Callable[[], float] = time.monotonic,
        market_now: Callable[[], int | None] = lambda: None,
    ) -> None:
        self.runner = runner
        self.store = store
        self.broker = broker
        self.exchange = exchange
        self.emit = emit
        self.rules = rules or LotRules()
        self.retry_s, self.max_retry_s = retry_s, max_retry_s
        self.degrade_after = degrade_after
        self.clock = clock
        self.market_now = market_now  # the market's time, when it can be told without IO
        self.trades = len(runner.portfolio.round_trips)
        # The trades booked from the stored fills and not stored themselves (a trade's row
        # follows its fill, and a killed process may have had it still waiting: grouped on
        # DuckDB, queued on PostgreSQL): stored again, so none is lost.
        for n in range(store.trade_count(self.sid), self.trades):
            store.save_round_trip(self.sid, n + 1, runner.portfolio.round_trips[n])
        self.exit_wanted: ExitWanted | None = None
        self.late_exit: OrderIntent | None = None
        self.unknown: dict[str, Retry] = {}  # client ids whose outcome is not known yet
        self.protect_due: Retry | None = None  # legs to place once the broker answers
        self.problems: dict[str, str] = {}
        # The strategy's orders as stored, kept in step with every write (this manager makes
        # them all): the store is the durable record, this the fast read of the hot path.
        self.known: dict[str, Order] = {o.client_order_id: o for o in store.orders(self.sid)}
        # Those not final yet: what the hot path asks about, whatever the history's length.
        self.working: dict[str, Order] = {
            cid: o for cid, o in self.known.items() if not o.state.is_final
        }
        # The fills booked, by id: a replayed update (a stream repeating itself, a lookup
        # after a restart) books nothing twice.
        self.booked: set[str] = {f.fill_id for f in store.fills(self.sid)}
        #: called when `problems` changed (the engine shows the strategy degraded or not)
        self.on_problems: Callable[[OrderManager], None] = lambda _: None

    @property
    def sid(self) -> str:
        return self.runner.strategy_id

    @property
    def symbol(self) -> str:
        return self.runner.symbol

    # -- deciding -------------------------------------------------------------------------
    def shape(self, intent: OrderIntent, price: float) -> OrderIntent | Refusal:
        """Round an opening order down to the lot step; refuse one under the minimums.

        Exits are sized when they are sent (from what the account holds)."""
        if intent.purpose.closes:
            return intent
        amount = self.rules.round_down(intent.amount)
        why = self.rules.refusal(amount, intent.price or price)
        if why is not None:
            return Refusal(
                "market_rules",
                {"amount": intent.amount, "rounded": amount, "price": price, "why": why},
            )
        return evolve(intent, amount=amount)

    def blocks_entry(self) -> str | None:
        """Give why no new entry may go out now (an earlier one's fate is unknown), or None."""
        if self.unknown:
            return f"the outcome of {', '.join(sorted(self.unknown))} is not known yet"
        for order in self.open_orders():
            if order.purpose is OrderPurpose.ENTRY:
                return f"entry {order.client_order_id} is still {order.state}"
        return None

    async def place(self, intent: OrderIntent, now_ms: int) -> Order | None:
        """Place an intent that passed the limits; give the order as stored (None: nothing
        was sent, e.g. an exit already in flight)."""
        if intent.purpose.closes:
            self._want_exit(intent)
            return await self._try_exit(now_ms)
        known = self.order(intent.client_order_id)
        if known is not None and known.state is not OrderState.PENDING:
            log.info("order %s was placed before a restart; not again", known.client_order_id)
            return known
        return await self.send(known or Order.from_intent(intent, intent.bar_ts_ms))

    def note_missed(self, intents: list[OrderIntent], bar_ms: int) -> None:
        """Take the decisions of a bar caught up late: nothing is placed; the first exit the
        rules called for while a position is open is kept, to be taken late."""
        if self.runner.portfolio.is_flat(self.symbol):
            return
        for intent in intents:
            if intent.purpose.closes and self.late_exit is None:
                self.late_exit = replace(intent, reason=f"{intent.purpose} of bar {bar_ms}")

    async def take_late_exit(self, now_ms: int) -> Order | None:
        """Close a position the strategy would no longer hold (its exit fell while the engine
        was down); logged as a late exit with the bar it belonged to."""
        missed, self.late_exit = self.late_exit, None
        if missed is None or self.runner.portfolio.is_flat(self.symbol):
            return None
        detail = f"late exit: {missed.reason}, taken at {now_ms}"
        log.warning("%s %s", self.sid, detail)
        self.notice(NoticeKind.LATE_EXIT, detail)
        late = replace(missed, purpose=OrderPurpose.LATE_EXIT, bar_ts_ms=now_ms, stop_price=None)
        return await self.place(late, now_ms)

    # -- sending --------------------------------------------------------------------------
    async def send(self, order: Order) -> Order:
        """Store an order, send it, settle the answer; give it as stored.

        An order never goes out for a bar older than one bar by the market's clock: an
        opening one whose bar has passed is expired (its signal is stale); an exit goes out
        anyway, named after the bar it goes out in (exits are never dropped)."""
        now = self.market_now()
        step = self.runner.step_ms
        if now is not None and not order.type.is_stop and now - order.created_ms >= step:
            if order.purpose.closes:
                order = order.update(created_ms=now - now % step)
            elif order.purpose is OrderPurpose.ENTRY:
                late = order.update(
                    state=OrderState.EXPIRED,
                    reason=f"stale: its bar had passed ({now - order.created_ms} ms) before it "
                    "could be sent",
                )
                self.save(late)
                log.warning("%s: %s %s", self.sid, order.client_order_id, late.reason)
                return late
        self.save(order)
        await self.store.writes.durable()  # its row is committed before it goes out
        crash_point("order_stored")
        try:
            execution = await self.broker.submit(order)
        except OrderRejected as exc:
            rejected = order.update(state=OrderState.REJECTED, reason=exc.reason)
            self.save(rejected)
            if exc.permanent:
                self._problem("account", f"the exchange refuses this account: {exc.reason}")
            if order.purpose.closes:
                self._exit_failed(f"exit {order.client_order_id} rejected: {exc.reason}")
            return rejected
        except OutcomeUnknown as exc:
            self._unknown(order, exc.reason)
            return order
        except BrokerUnavailable as exc:  # refused before it could reach the exchange
            gone = order.update(state=OrderState.EXPIRED, reason=f"not sent: {exc.reason}")
            self.save(gone)
            if order.purpose.closes:
                self._exit_failed(f"exit {order.client_order_id} not sent: {exc.reason}")
            return gone
        crash_point("order_sent")
        await self.settle(execution)
        return self.order(order.client_order_id) or execution.order

    async def cancel(self, order: Order) -> Order:
        """Cancel an open order; give its new state as stored."""
        execution = await self.broker.cancel(order)
        await self.settle(execution)
        return self.order(order.client_order_id) or execution.order

    async def settle(self, execution: Execution) -> None:
        """Book an execution, then act on what it changed: protect an entry, end an OCO."""
        if execution.fills:
            crash_point("fill_received")
        order = execution.order
        if order.client_order_id in self.unknown and order.state is not OrderState.PENDING:
            del self.unknown[order.client_order_id]
            self._settled(f"order:{order.client_order_id}")
        became_final = await self.book(execution)
        wanted = self.exit_wanted is not None or self.late_exit is not None
        if wanted and self.runner.portfolio.is_flat(self.symbol):
            self.exit_wanted = self.late_exit = None
            self._settled("exit")
        if not became_final:
            return
        if order.purpose.opens and order.filled > 0:
            await self.protect()
        elif order.purpose in PROTECTIVE and order.type.is_stop and order.filled > 0:
            # One leg fired: the other must not (the exchange expires an OCO sibling itself).
            await self.unprotect()
        elif self.exit_wanted is not None and order.purpose.closes:
            self.exit_wanted.retry.due = 0.0  # ended short of flat: the rest goes out next

    async def book(self, execution: Execution) -> bool:
        """Store and book an execution's new fills, then its order; give True when the order
        became final now."""
        runner = self.runner
        fills = [fill for fill in execution.fills if fill.fill_id not in self.booked]
        for fill in fills:
            self.store.save_fill(fill)
        if fills:
            await self.store.writes.durable()  # stored before it is booked or reported
        for fill in fills:
            self.booked.add(fill.fill_id)
            trips_before = len(runner.portfolio.round_trips)
            runner.on_fill(fill)
            for trip in runner.portfolio.round_trips[trips_before:]:
                self.trades += 1
                self.store.save_round_trip(self.sid, self.trades, trip)
            self.emit(FillBooked(fill))
        news = execution.order
        stored = self.order(news.client_order_id)
        order = news if stored is None else stored.advanced(news)
        if order is None:
            return False
        self.save(order)
        return order.state.is_final and (stored is None or not stored.state.is_final)

    # -- exits ----------------------------------------------------------------------------
    def _want_exit(self, intent: OrderIntent) -> None:
        if self.exit_wanted is None:
            self.exit_wanted = ExitWanted(
                intent.purpose,
                intent.bar_ts_ms,
                intent.stop_price,
                intent.reason,
                Retry(self.retry_s, self.max_retry_s),
            )

    def exit_in_flight(self) -> Order | None:
        """Give the strategy's exit order still working, if any."""
        for order in self.open_orders():
            if order.purpose.closes and not order.type.is_stop:
                return order
        return None

    async def _try_exit(self, now_ms: int) -> Order | None:
        wanted = self.exit_wanted
        if wanted is None or not wanted.retry.ready(self.clock()) or self.exit_in_flight():
            return None
        if self.open_legs():
            try:  # the resting legs lock the position: cancel them, then exit what is left
                await self.unprotect()
            except BrokerUnavailable as exc:
                self._exit_failed(f"cannot cancel the resting legs first: {exc.reason}")
                return None
        position = self.runner.portfolio.position(self.symbol).amount
        if self.runner.portfolio.is_flat(self.symbol):
            self.exit_wanted = None
            self._settled("exit")
            return None
        # Covering a short pays a fee taken from the base bought: buy enough to be flat.
        needed = self.runner.trader.fill_model.order_quantity(Side.BUY, position)
        amount = await self._sellable(abs(position) if position > 0 else needed, position > 0)
        if self.rules.refusal(amount, self.runner.last_price or 0.0) is not None:
            detail = f"position {position:.10g} is dust (under the market's minimums): left"
            self.notice(NoticeKind.EXIT_FAILED, detail)
            self.exit_wanted = None
            self._settled("exit")
            return None
        attempt = wanted.retry.attempts
        while True:  # a new client id for each try (tries before a restart are stored)
            cid = client_order_id(self.sid, wanted.bar_ts_ms, wanted.purpose, attempt)
            known = self.order(cid)
            if known is None or known.state is OrderState.PENDING:
                break
            if not known.state.is_final:
                return known  # placed before a restart and still working
            attempt += 1
        first = attempt == 0
        order = Order(
            client_order_id=cid,
            strategy_id=self.sid,
            symbol=self.symbol,
            side=Side.SELL if position > 0 else Side.BUY,
            type=OrderType.MARKET,
            amount=amount,
            stop_price=wanted.stop_price if first else None,
            purpose=wanted.purpose,
            created_ms=wanted.bar_ts_ms if first else now_ms,
            updated_ms=now_ms,
            reason=wanted.reason
            if first
            else f"{wanted.reason or wanted.purpose}, retry {attempt}",
        )
        return await self.send(known or order)

    async def _sellable(self, amount: float, long: bool) -> float:
        """Give what an exit can ask for: the position, no more than the exchange says is
        free (a long on spot), rounded down to the lot step."""
        if long:
            try:
                balances = await self.broker.balances()
            except BrokerUnavailable as exc:
                log.warning("%s: balances unknown (%s); selling the booked amount", self.sid, exc)
                balances = None
            if balances is not None:
                free = balances.get(self.symbol.split("/")[0])
                amount = min(amount, free.free if free is not None else 0.0)
        return self.rules.round_down(amount)

    def _exit_failed(self, detail: str) -> None:
        wanted = self.exit_wanted
        if wanted is None:
            return
        wanted.retry.failed(self.clock())
        say = log.error if wanted.retry.attempts >= self.degrade_after else log.warning
        say("%s: %s (attempt %d)", self.sid, detail, wanted.retry.attempts)
        self.notice(NoticeKind.EXIT_FAILED, f"{detail} (attempt {wanted.retry.attempts})")
        if wanted.retry.attempts >= self.degrade_after:
            self._problem("exit", f"exit failing after {wanted.retry.attempts} tries: {detail}")

    # -- protection -----------------------------------------------------------------------
    def open_legs(self) -> list[Order]:
        """Give the strategy's protective stop orders still resting (as stored)."""
        if self.broker.exchange_stops(self.symbol) is ExchangeStops.NONE:
            return []
        return [o for o in self.open_orders() if o.purpose in PROTECTIVE and o.type.is_stop]

    def _tell_resting(self, legs: list[Order]) -> None:
        resting = frozenset(StopKind(str(o.purpose)) for o in legs)
        self.runner.on_protection(ProtectionChanged(resting))

    async def protect(self) -> None:
        """Rest the open position's stop-loss / take-profit on the exchange, if it can."""
        trader = self.runner.trader
        mode = self.broker.exchange_stops(self.symbol)
        if mode is ExchangeStops.NONE or trader.side == 0 or trader.entry_ms is None:
            return
        if self.open_legs():
            return
        placed: dict[str, int] = {}
        for o in list(self.known.values()):
            if o.purpose in PROTECTIVE and o.type.is_stop and o.created_ms == trader.entry_ms:
                placed[o.purpose] = placed.get(o.purpose, 0) + 1
        position = self.runner.portfolio.position(self.symbol).amount
        held = await self._sellable(abs(position), position > 0)
        legs = protective_legs(
            self.sid,
            self.symbol,
            held if position > 0 else -held,
            trader.protection,
            trader.entry_ms,
            mode,
            placed,
            trader.entry_ms,
        )
        if not legs or self.rules.refusal(held, self.runner.last_price or 0.0) is not None:
            return
        for leg in legs:
            self.save(leg)
        await self.store.writes.durable()
        try:
            if len(legs) == 2:
                executions = await self.broker.submit_oco((legs[0], legs[1]))
            else:
                executions = [await self.broker.submit(legs[0])]
        except OrderRejected as exc:
            # The level may already be crossed: watch it instead (it fires at the next bar).
            for leg in legs:
                self.save(leg.update(state=OrderState.REJECTED, reason=exc.reason))
            self.notice(
                NoticeKind.PROTECTION,
                f"exchange-side stops refused ({exc.reason}): watched instead",
            )
            self._tell_resting([])
            return
        except BrokerUnavailable as exc:
            # Watched meanwhile (nothing rests as far as we know); tried again later.
            for leg in legs:
                if isinstance(exc, OutcomeUnknown):
                    self._unknown(leg, exc.reason)
                else:
                    self.save(leg.update(state=OrderState.EXPIRED, reason=f"not sent: {exc}"))
            self.protect_due = Retry(self.retry_s, self.max_retry_s)
            self.protect_due.failed(self.clock())
            self.notice(NoticeKind.PROTECTION, f"stops not placed ({exc.reason}): watched")
            self._tell_resting([])
            return
        self.protect_due = None
        for execution in executions:
            await self.book(execution)
        self._tell_resting(self.open_legs())

    async def unprotect(self) -> None:
        """Cancel the resting protective legs (their fills so far are booked)."""
        for leg in self.open_legs():
            await self.book(await self.broker.cancel(leg))
        self._tell_resting(self.open_legs())

    async def restore_protection(self) -> None:
        """After a restart: know which levels rest on the exchange; place missing ones."""
        self._tell_resting(self.open_legs())
        await self.protect()

    # -- settling what is not known -------------------------------------------------------
    async def reconcile(self, now_ms: int) -> None:
        """Settle the orders the store has open with what the broker knows of them.

        Known to the exchange: its state and any fills not yet stored are taken and booked.
        Unknown and never acknowledged (stored pending, then the process died): an opening
        order whose bar is still the current one is sent (same client id); an older one is
        expired (a restart never trades a stale signal); an exit is wanted again. Unknown but
        acknowledged before: expired. A broker that cannot be asked now: looked up again
        later. Every correction is a `reconcile` notice.
        """
        step = self.runner.step_ms
        for order in self.open_orders():
            try:
                execution = await self.broker.lookup(order)
            except BrokerUnavailable as exc:
                self._unknown(order, exc.reason)
                continue
            fresh = now_ms - order.created_ms < step
            unsent = execution is None and order.state is OrderState.PENDING
            if unsent and fresh and order.purpose.opens and not order.type.is_stop:
                detail = f"{order.client_order_id} never reached the broker: sent now"
                log.warning("reconcile %s: %s", self.sid, detail)
                self.notice(NoticeKind.RECONCILE, detail)
                await self.send(order)
                continue
            detail = self._reconciled(order, execution)
            if execution is not None:
                fills_before = len(self.booked)
                await self.settle(execution)
                booked = len(self.booked) - fills_before
                detail = (
                    f"{order.client_order_id} was {order.state}, the broker says "
                    f"{execution.order.state}; {booked} new fill(s) booked"
                )
            log.warning("reconcile %s: %s", self.sid, detail)
            self.notice(NoticeKind.RECONCILE, detail)

    def _reconciled(self, order: Order, execution: Execution | None) -> str:
        if execution is not None:
            return ""
        if order.state is OrderState.PENDING:
            why = "never reached the broker"
        else:
            why = "unknown to the broker"
        self.save(order.update(state=OrderState.EXPIRED, reason=why))
        if order.purpose.closes and not order.type.is_stop:
            self._want_exit(
                OrderIntent(
                    self.sid,
                    self.symbol,
                    order.side,
                    order.amount,
                    purpose=order.purpose,
                    bar_ts_ms=order.created_ms,
                    reason=order.reason,
                )
            )
            return f"{order.client_order_id} {why}: the exit goes out again"
        if order.type.is_stop:
            return f"{order.client_order_id} {why}: protection redone"
        return f"{order.client_order_id} {why}: expired (never sent again late)"

    async def housekeeping(self, now_ms: int) -> None:
        """Retry what is due: unknown outcomes, protection, a wanted exit."""
        now = self.clock()
        for cid, retry in list(self.unknown.items()):
            if not retry.ready(now):
                continue
            order = self.order(cid)
            if order is None or order.state.is_final:
                del self.unknown[cid]
                self._settled(f"order:{cid}")
                continue
            try:
                execution = await self.broker.lookup(order)
            except BrokerUnavailable as exc:
                retry.failed(now)
                self._problem(f"order:{cid}", f"outcome of {cid} unknown: {exc.reason}")
                continue
            del self.unknown[cid]
            self._settled(f"order:{cid}")
            if execution is None:
                detail = self._reconciled(order, None)
                self.notice(NoticeKind.RECONCILE, detail)
            else:
                await self.settle(execution)
        if self.protect_due is not None and self.protect_due.ready(now):
            await self.protect()
        if self.exit_wanted is not None:
            await self._try_exit(now_ms)

    # -- helpers --------------------------------------------------------------------------
    def save(self, order: Order) -> None:
        self.store.save_order(order, self.exchange)
        cid = order.client_order_id
        self.known[cid] = order
        if order.state.is_final:
            self.working.pop(cid, None)
        else:
            self.working[cid] = order
        self.emit(OrderChanged(order))

    def order(self, client_order_id: str) -> Order | None:
        """Give one of the strategy's orders as stored."""
        return self.known.get(client_order_id)

    def open_orders(self) -> list[Order]:
        """Give the strategy's orders not final yet, oldest first (as stored)."""
        return list(self.working.values())

    def _unknown(self, order: Order, reason: str) -> None:
        retry = self.unknown.setdefault(
            order.client_order_id, Retry(self.retry_s, self.max_retry_s)
        )
        retry.failed(self.clock())
        self._problem(
            f"order:{order.client_order_id}",
            f"outcome of {order.client_order_id} unknown ({reason}); looking it up again",
        )

    def notice(self, kind: NoticeKind, detail: str) -> None:
        self.store.add_event(self.sid, str(kind), detail)
        self.emit(Notice(self.sid, kind, detail))

    def store_problem(self, detail: str | None) -> None:
        """Show that the database refuses writes now (they wait in the journal), or that it
        takes them again (None)."""
        if detail is None:
            self._settled("store")
        else:
            self._problem("store", detail)

    def _problem(self, key: str, detail: str) -> None:
        if self.problems.get(key) == detail:
            return
        new = key not in self.problems
        self.problems[key] = detail
        if new:
            self.notice(NoticeKind.DEGRADED, detail)
        self.on_problems(self)

    def _settled(self, key: str) -> None:
        if self.problems.pop(key, None) is not None:
            self.notice(NoticeKind.RECOVERED, f"settled: {key}")
            self.on_problems(self)
