"""What the live engine holds for each strategy it runs. No IO."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from workbench.broker.models import Order
from workbench.live.runner import StrategyRunner
from workbench.risk.limits import RiskManager


@dataclass
class LiveStrategy:
    """A running strategy: its runner, its risk manager, its feed, and the engine's notes."""

    runner: StrategyRunner
    risk: RiskManager
    feed_key: tuple[str, str, str]
    trades: int = 0
    resubmit: list[Order] = field(default_factory=list)  # never acknowledged: sent again
    # Decisions and bookings of one strategy never interleave.
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
