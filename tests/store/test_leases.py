"""Strategy leases: one engine per strategy; the holder is named; a crashed holder's lease is
taken over."""

from __future__ import annotations

import signal
import subprocess
import sys
import textwrap
import time

import pytest

from workbench.store import Store, StrategyLeased

HOLDER = textwrap.dedent(
    """
    import sys, time
    from workbench.store import Store
    store = Store.open(sys.argv[1])
    store.lease_strategy("sma-ETHBTC")
    print("holding", flush=True)
    time.sleep(60)
    """
)


def test_a_store_holds_a_strategy_once_and_another_store_is_refused(db_target: str) -> None:
    with Store.open(db_target) as first, Store.open(db_target) as second:
        lease = first.lease_strategy("sma-ETHBTC")
        assert first.lease_strategy("sma-ETHBTC") is lease
        with pytest.raises(StrategyLeased, match="sma-ETHBTC is already run by"):
            second.lease_strategy("sma-ETHBTC")
        second.lease_strategy("ema-ETHBTC")  # other strategies are free
        lease.release()
        second.lease_strategy("sma-ETHBTC")


def test_closing_a_store_releases_its_leases(db_target: str) -> None:
    with Store.open(db_target) as first:
        first.lease_strategy("sma-ETHBTC")
    with Store.open(db_target) as second:
        second.lease_strategy("sma-ETHBTC")


def test_another_process_is_named_and_its_lease_taken_over_after_a_crash(pg_url: str) -> None:
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER, pg_url], stdout=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "holding"
        with Store.open(pg_url) as store:
            with pytest.raises(StrategyLeased, match=f"workbench pid {holder.pid} on ") as refused:
                store.lease_strategy("sma-ETHBTC")
            assert "postgresql://postgres@127.0.0.1" in str(refused.value)
            holder.send_signal(signal.SIGKILL)
            holder.wait()
            # The server notices the dead connection and lets go of its locks.
            deadline = time.monotonic() + 10
            while True:
                try:
                    store.lease_strategy("sma-ETHBTC")
                    break
                except StrategyLeased:
                    assert time.monotonic() < deadline, "the dead holder's lease never ended"
                    time.sleep(0.05)
    finally:
        holder.kill()
        holder.wait()
