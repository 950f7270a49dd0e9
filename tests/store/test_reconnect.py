"""A PostgreSQL server that restarts under a running process: the pool reconnects by itself,
and a write tried while the server is away raises (named, never lost silently). On a
throwaway server of its own, so the session's server is untouched."""

from __future__ import annotations

import threading
import time

from workbench.store import Store
from workbench.store.errors import StoreUnavailable
from workbench.store.local_postgres import LocalPostgres


def test_the_pool_reconnects_after_a_restart_and_writes_meanwhile_are_refused(
    restartable_pg: LocalPostgres,
) -> None:
    own_server = restartable_pg
    url = own_server.create_database("restarted")
    with Store.open(url) as store:
        store.trading.add_event("s", "state", "before")
        with store.db.session() as s1, store.db.session() as s2:  # two idle pooled connections
            s1.execute("SELECT 1")
            s2.execute("SELECT 1")

        own_server.restart()
        # The pooled connections the restart ended are replaced as they are taken: no error.
        for n in range(3):
            store.trading.add_event("s", "state", f"after {n}")

        # While the server is away a write raises, naming the server (it is not lost quietly).
        refused: list[str] = []
        down = threading.Event()

        def write_while_down() -> None:
            down.wait()
            try:
                store.trading.add_event("s", "state", "while down")
            except StoreUnavailable as exc:
                refused.append(str(exc))

        writer = threading.Thread(target=write_while_down)
        writer.start()
        own_server.shut_down()
        started = time.monotonic()
        down.set()
        writer.join(timeout=60)
        assert refused and own_server.url("restarted").split("@")[1] in refused[0]
        # Told within seconds, not after the pool's whole wait (30 s).
        assert time.monotonic() - started < 10
        assert "cannot reach the PostgreSQL server" in refused[0]
        own_server.start_again()

        deadline = time.monotonic() + 30
        while True:  # the pool reconnects by itself: no reopening of the store
            try:
                store.trading.add_event("s", "state", "back")
                break
            except StoreUnavailable:
                assert time.monotonic() < deadline, "the pool never reconnected"
                time.sleep(0.2)
        details = list(store.trading.events("s")["detail"])
    assert details.count("while down") == 0
    assert {"before", "after 0", "after 1", "after 2", "back"} <= set(details)
