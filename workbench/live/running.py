"""What the live engine holds for each strategy it runs. No IO."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from workbench.live.events import FeedKey, StrategyState
from workbench.live.order_manager import OrderManager
from workbench.live.runner import StrategyRunner
from workbench.risk.limits import RiskManager
from workbench.risk.volatility import RealizedVolatility


@dataclass
class LiveStrategy:
    """A running strategy: its runner, its risk manager, its order path and its feed."""

    runner: StrategyRunner
    risk: RiskManager
    orders: OrderManager
    feed_key: FeedKey
    #: its market's realized volatility on past bars (the account's volatility target)
    volatility: RealizedVolatility | None = None
    #: what is wrong with its feed, if anything (the order path keeps its own problems)
    feed_problem: str | None = None
    #: why this engine does not hold the strategy's lease now (None: it does); no order then
    lease_problem: str | None = None
    # Decisions and bookings of one strategy never interleave.
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    # Its closed bars are taken one at a time, in order (a gap filled before the bar after).
    bars: asyncio.Lock = field(default_factory=asyncio.Lock)

    @property
    def strategy_id(self) -> str:
        return self.runner.strategy_id

    @property
    def problem(self) -> str | None:
        """Give what degrades the strategy now, in words (None: nothing)."""
        found = list(self.orders.problems.values())
        if self.feed_problem:
            found.insert(0, self.feed_problem)
        if self.lease_problem:
            found.insert(0, self.lease_problem)
        return "; ".join(found) if found else None

    @property
    def state(self) -> StrategyState:
        """Give the state to show: DEGRADED for a running strategy with a problem."""
        state = self.runner.state
        if state is StrategyState.RUNNING and self.problem is not None:
            return StrategyState.DEGRADED
        return state
