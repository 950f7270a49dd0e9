"""The dashboard server's engine is closed at exit even when the Ctrl-C (SIGINT, systemd's
stop) that stopped the server landed inside a request handler: tornado's done-callback raises
that KeyboardInterrupt again on the loop's next run, which cut the close short (the store
stayed open, the run was left unclean, systemd never heard STOPPING=1)."""

from __future__ import annotations

import asyncio
from types import TracebackType

import pytest

from workbench.settings import Settings
from workbench.ui.shared import LiveService


class Closing:
    """Stands in for the `Live` session: its close takes a few loop turns."""

    def __init__(self) -> None:
        self.closed = False
        self.store = None

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        for _ in range(5):
            await asyncio.sleep(0.01)
        self.closed = True


def test_an_interrupt_left_in_a_handler_does_not_cut_the_close_short() -> None:
    loop = asyncio.new_event_loop()
    try:

        async def handler() -> None:  # a request the SIGINT landed in
            raise KeyboardInterrupt

        request = loop.create_task(handler())
        request.add_done_callback(lambda f: f.cancelled() or f.result())  # tornado's
        with pytest.raises(KeyboardInterrupt):  # the server's loop stops on it
            loop.run_until_complete(asyncio.sleep(5))
        service = LiveService(Settings())
        live = Closing()
        service.live, service._loop = live, loop  # type: ignore[assignment]
        try:
            service.shutdown(timeout_s=5)
        except KeyboardInterrupt:
            pytest.fail("the left-over interrupt escaped the close")
        assert live.closed
    finally:
        loop.close()
