"""The account's guard in a live engine: its limits, its drawdown memory, its kill switch.

`AccountRisk` (workbench.risk.account) decides; this keeps it fed with every strategy's books
and keeps it stored: limits in force, the guard's memory (written when a day starts or the
guard trips, and with the batched writes otherwise), and every halt and resume, stored before
the engine acts on it.

Limits in force. The settings (file, variables, `live run` flags) give the account's limits at
start; the dashboard and the Python API change them at run time. Whichever changed last wins:
the settings' limits are stored beside those in force, and replace them at a start only when
they differ from what the settings said at the start before (the settings were edited).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict

from workbench.broker.models import OrderIntent
from workbench.live.running import LiveStrategy
from workbench.risk.account import AccountLimits, AccountRisk, Halt, Holding, Usage
from workbench.risk.limits import Refusal
from workbench.store.risk import RiskStore, account_scope


def _wall_ms() -> int:
    return int(time.time() * 1000)


class AccountGuard:
    """One engine's account: checks opening orders over every strategy it runs."""

    def __init__(
        self,
        store: RiskStore,
        exchange: str,
        strategies: Mapping[str, LiveStrategy],
        limits: AccountLimits | None = None,
        clock: Callable[[], int] = _wall_ms,
    ) -> None:
        self.store = store
        self.exchange = exchange
        self.strategies = strategies
        self.clock = clock
        self.risk = AccountRisk(self._limits_at_start(limits), store.states(exchange))
        self.seq, self.risk.halt = store.halt(exchange)
        self._saved = self._snapshot()

    def _limits_at_start(self, given: AccountLimits | None) -> AccountLimits:
        scope, settings_scope = account_scope(self.exchange), f"settings:{self.exchange}"
        stored = self.store.account_limits(self.exchange)
        given = given or AccountLimits()
        last_given = self.store.limits_of(settings_scope)
        if stored is None or last_given != given.as_dict():
            self.store.save_limits(settings_scope, given, by="settings")
            self.store.save_limits(scope, given, by="settings")
            return given
        return stored

    @property
    def limits(self) -> AccountLimits:
        return self.risk.limits

    @property
    def halt(self) -> Halt | None:
        return self.risk.halt

    # -- the books ------------------------------------------------------------------------
    def holdings(self) -> list[Holding]:
        """Give every strategy's books at its last price, with its entries still working."""
        books = []
        for live in self.strategies.values():
            runner = live.runner
            position = runner.portfolio.position(runner.symbol)
            price = runner.last_price or 0.0
            working = sum(
                order.remaining * (order.price or price)
                for order in live.orders.working.values()
                if order.purpose.opens
            )
            books.append(
                Holding(
                    runner.strategy_id,
                    runner.symbol,
                    position.amount,
                    price,
                    runner.initial_cash,
                    runner.equity(),
                    runner.portfolio.is_flat(runner.symbol),
                    working,
                )
            )
        return books

    def check(self, intent: OrderIntent, price: float) -> Refusal | None:
        return self.risk.check(intent, price=price, holdings=self.holdings, now_ms=self.clock())

    def sent(self) -> None:
        self.risk.sent(self.clock())

    def mark(self, ts_ms: int) -> list[str]:
        """Take the account's books at a fresh bar; give the quotes whose guard tripped
        (stored before the caller acts on it)."""
        milestones = self.risk.milestones
        tripped = self.risk.mark(ts_ms, self.holdings())
        if self.risk.milestones != milestones:
            self.save()
        return tripped

    def usage(self) -> list[Usage]:
        return self.risk.usage(self.holdings(), self.clock())

    # -- storing --------------------------------------------------------------------------
    def _snapshot(self) -> str:
        return json.dumps({q: asdict(s) for q, s in self.risk.states.items()}, sort_keys=True)

    def save(self) -> None:
        """Store the guard's memory when it changed since it was last stored."""
        snapshot = self._snapshot()
        if snapshot != self._saved:
            self.store.save_states(self.exchange, self.risk.states)
            self._saved = snapshot

    def set_limits(self, limits: AccountLimits, by: str) -> None:
        """Put new limits in force (stored first): they apply to the next order."""
        self.store.save_limits(account_scope(self.exchange), limits, by=by)
        self.risk.limits = limits

    def record_halt(self, *, halted: bool, reason: str, by: str, flatten: bool = False) -> None:
        """Store a halt or a resume, then put it in force."""
        self.seq = self.store.record_halt(
            self.exchange, halted=halted, reason=reason, by=by, flatten=flatten
        )
        self.risk.halt = Halt(reason, by, self.clock(), flatten) if halted else None

    def poll(self) -> bool:
        """Take up a halt or resume another process stored since the last look; give True
        when there was one (`halt` is then what is in force)."""
        seq, halt = self.store.halt(self.exchange)
        if seq == self.seq:
            return False
        self.seq, self.risk.halt = seq, halt
        return True
