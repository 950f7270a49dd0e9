"""A stop that arrives as a probe answers still stops the ops tick. On Python 3.11
`asyncio.wait_for` returned the answer and dropped the cancel, so the tick that asked the
market's time ran on and `OpsService.stop` waited for it for good (a suite teardown that
hung 300 s under load)."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace

import pytest

from workbench.ops.service import OpsService
from workbench.settings import Settings


class AnswersAsItIsStopped:
    """A replay's market clock whose answer comes in the same turn as the stop."""

    moves_alone = False

    def __init__(self) -> None:
        self.asking: asyncio.Task[None] | None = None
        self.asked = 0

    async def sync(self) -> None:
        self.asked += 1
        assert self.asking is not None
        self.asking.cancel()  # the stop, while the answer is on its way


async def test_a_stop_that_meets_the_market_times_answer_stops_the_tick() -> None:
    clock = AnswersAsItIsStopped()
    ops = OpsService(SimpleNamespace(market_clock=clock), None, Settings())
    clock.asking = asyncio.get_running_loop().create_task(ops._ask_market_time())
    with pytest.raises(asyncio.CancelledError):
        await asyncio.wait_for(asyncio.shield(clock.asking), 5)
    assert clock.asked == 1
