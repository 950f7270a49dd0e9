"""The engine's watch over its strategy leases (PostgreSQL: advisory locks held on the server).

A lease whose connection the server ended (a restart, `pg_terminate_backend`, a cut network)
is lost: another engine may take the strategy. The engine asks before every order without a
round trip (`quick`), and verifies once per housekeeping tick with one (`verify`) on a worker
thread, so a server that does not answer never blocks the event loop: no answer within
`answer_s` counts as lost. A lost strategy places no order; it is taken back (lease, replay,
reconcile) when the server gives the lease again, or left to the engine that took it.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass

from workbench.store import Store

LEASE_ANSWER_S = 5.0  # a verification not answered within this counts as a lost lease


@dataclass(frozen=True)
class LeaseLost:
    """A strategy whose lease this engine no longer holds, and why."""

    strategy_id: str
    reason: str


class LeaseWatch:
    """Tells which of a store's strategy leases are lost (nothing to watch on DuckDB)."""

    def __init__(self, store: Store, answer_s: float = LEASE_ANSWER_S) -> None:
        self.store = store
        self.answer_s = answer_s
        self._pending: asyncio.Future[list[str]] | None = None
        self._since = 0.0

    def quick(self, strategy_id: str) -> LeaseLost | None:
        """Give the loss of a strategy's lease if it is known without waiting, else None."""
        if strategy_id in self.store.lost_leases():
            return LeaseLost(strategy_id, _LOST)
        return None

    async def verify(self, strategy_ids: list[str]) -> list[LeaseLost]:
        """Give the leases of `strategy_ids` the server no longer holds for this engine (all
        of them when it has not answered within `answer_s`)."""
        if not strategy_ids or not self.store.leases_can_be_lost:
            return []
        if self._pending is None:
            self._since = time.monotonic()
            self._pending = asyncio.ensure_future(
                asyncio.to_thread(self.store.lost_leases, verify=True)
            )
        try:
            # A tick waits a little; the check goes on over the next ticks until answer_s.
            async with asyncio.timeout(min(self._left_s(), 0.25)):
                lost = await asyncio.shield(self._pending)
        except TimeoutError:
            waited = time.monotonic() - self._since
            if waited < self.answer_s:
                return []
            why = f"{self.store.describe()} has not answered the lease check for {waited:.0f} s"
            return [LeaseLost(sid, why) for sid in strategy_ids]
        except Exception as exc:  # a check that failed proves nothing: counted as lost
            self._pending = None
            return [LeaseLost(sid, f"{_LOST}: {exc}") for sid in strategy_ids]
        self._pending = None
        return [LeaseLost(sid, _LOST) for sid in strategy_ids if sid in lost]

    def _left_s(self) -> float:
        """Give how long the running check may still take before its leases count as lost."""
        return max(0.0, self.answer_s - (time.monotonic() - self._since))


_LOST = "lease lost: the database server ended its connection (no new orders until it is back)"
