"""Portfolio-level risk limits: what may be placed, and why not. Pure: no IO.

Exits are never refused (a limit must not trap a position). Entries are checked against:
per-symbol position value, total exposure, open orders, today's loss, and the drawdown guard
that stops new entries (optionally flattens) for a cool-down once equity falls too far from
its peak.

The guard's memory (`RiskState`) is kept by the caller across restarts: a manager is built on a
restored state, and a bar marked again (replayed after a restart) changes nothing and gives the
answer it gave the first time.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from typing import Any

from workbench.broker.models import OrderIntent

DAY_MS = 86_400_000


@dataclass(frozen=True)
class RiskLimits:
    """Limits as fractions of equity (None: no limit)."""

    max_position_fraction: float | None = None
    max_exposure_fraction: float | None = None
    max_open_orders: int | None = None
    daily_loss_fraction: float | None = None
    max_drawdown_fraction: float | None = None
    drawdown_cooldown_ms: int = DAY_MS
    flatten_on_drawdown: bool = False

    def tightened(self, **limits: float | None) -> RiskLimits:
        """Give these limits with each one given (not None) taken where it is tighter."""
        changes = {}
        for name, value in limits.items():
            if value is not None:
                current = getattr(self, name)
                changes[name] = value if current is None else min(current, value)
        return replace(self, **changes)


@dataclass(frozen=True)
class Refusal:
    """A refused order: the rule, and the numbers that refused it."""

    rule: str
    detail: dict[str, Any]


@dataclass
class RiskState:
    """What the guard remembers: the equity peak, today's start, a running cool-down."""

    peak_equity: float = 0.0
    day_start_ms: int = -1
    day_start_equity: float = 0.0
    halted_until_ms: int = -1
    halts: list[int] = field(default_factory=list)
    marked_ms: int = -1  # the last bar marked

    @property
    def milestone(self) -> tuple[int, int]:
        """Give what the equity marks alone cannot rebuild: the day started, the halts so far.

        When it changes the state must be stored; the peak's rises in between follow from the
        equity marks (see `with_peak`).
        """
        return self.day_start_ms, len(self.halts)

    def with_peak(self, marks: Iterable[tuple[int, float]]) -> RiskState:
        """Give this state with the (ts_ms, equity) marks after `marked_ms` taken into the peak.

        Exact when no marked bar in between tripped the guard or started a day (those changes
        are stored when they happen, so they come before the marks given here).
        """
        later = [(ts_ms, equity) for ts_ms, equity in marks if ts_ms > self.marked_ms]
        if not later:
            return replace(self, halts=list(self.halts))
        return replace(
            self,
            halts=list(self.halts),
            peak_equity=max(self.peak_equity, *(equity for _, equity in later)),
            marked_ms=max(ts_ms for ts_ms, _ in later),
        )


class RiskManager:
    """Checks order intents against the limits, with equity and exposure given by the caller."""

    def __init__(self, limits: RiskLimits | None = None, state: RiskState | None = None) -> None:
        self.limits = limits or RiskLimits()
        self.state = state or RiskState()

    def mark(self, ts_ms: int, equity: float) -> bool:
        """Take the equity at a closed bar; give True when the drawdown guard trips now."""
        state, limits = self.state, self.limits
        if ts_ms <= state.marked_ms:
            # Marked before (a bar replayed after a restart): the same answer, no change.
            return ts_ms in state.halts
        state.marked_ms = ts_ms
        day = ts_ms - ts_ms % DAY_MS
        if day != state.day_start_ms:
            state.day_start_ms, state.day_start_equity = day, equity
        state.peak_equity = max(state.peak_equity, equity)
        if limits.max_drawdown_fraction is None or ts_ms < state.halted_until_ms:
            return False
        drawdown = 1.0 - equity / state.peak_equity if state.peak_equity > 0 else 0.0
        if drawdown >= limits.max_drawdown_fraction:
            state.halted_until_ms = ts_ms + limits.drawdown_cooldown_ms
            state.halts.append(ts_ms)
            # After the cool-down the guard measures from the equity it resumes at.
            state.peak_equity = equity
            return True
        return False

    def check(
        self,
        intent: OrderIntent,
        *,
        now_ms: int,
        price: float,
        equity: float,
        position_value: float,
        exposure: float,
        open_orders: int,
    ) -> Refusal | None:
        """Give why an intent is refused, or None to let it through."""
        if not intent.purpose.opens:  # exits always pass
            return None
        limits, state = self.limits, self.state
        notional = intent.amount * price
        if now_ms < state.halted_until_ms:
            return Refusal(
                "drawdown_guard",
                {
                    "halted_until_ms": state.halted_until_ms,
                    "peak_equity": state.peak_equity,
                    "equity": equity,
                },
            )
        if limits.daily_loss_fraction is not None and state.day_start_equity > 0:
            loss = 1.0 - equity / state.day_start_equity
            if loss >= limits.daily_loss_fraction:
                return Refusal(
                    "daily_loss",
                    {
                        "loss_fraction": loss,
                        "limit": limits.daily_loss_fraction,
                        "day_start_equity": state.day_start_equity,
                    },
                )
        if limits.max_open_orders is not None and open_orders >= limits.max_open_orders:
            return Refusal(
                "open_orders", {"open_orders": open_orders, "limit": limits.max_open_orders}
            )
        if limits.max_position_fraction is not None:
            allowed = limits.max_position_fraction * equity
            if position_value + notional > allowed:
                return Refusal(
                    "position_limit",
                    {
                        "position_value": position_value,
                        "order_notional": notional,
                        "allowed": allowed,
                        "equity": equity,
                    },
                )
        if limits.max_exposure_fraction is not None:
            allowed = limits.max_exposure_fraction * equity
            if exposure + notional > allowed:
                return Refusal(
                    "exposure_limit",
                    {
                        "exposure": exposure,
                        "order_notional": notional,
                        "allowed": allowed,
                        "equity": equity,
                    },
                )
        return None
