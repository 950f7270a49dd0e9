"""The trading write journal of a DuckDB file: a killed owner loses no write it made, each
journaled write is applied exactly once, and a write the database refuses is said, not lost.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path

import numpy as np
import pytest

from workbench.broker.models import Order, OrderState, OrderType
from workbench.fills import Side
from workbench.store import Store, StoreError
from workbench.store.database import Session
from workbench.store.dialect import ts_param
from workbench.store.journal import (
    JournaledWrites,
    Write,
    encode_line,
    journal_path,
    read_journal,
)
from workbench.store.trading import apply_writes

# A child that owns the file, writes, and is killed before it could close it. Its writer
# thread applies the first `applied` orders (read back, so they are in the database), then
# stops applying: the rest is only in the journal when the child dies.
CHILD = textwrap.dedent(
    """
    import os, signal, sys, threading
    from workbench.broker.models import Fill, Order, OrderType
    from workbench.fills import Side
    from workbench.store import Store
    from workbench.store import journal

    path, applied, total = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    store = Store.open(path)
    t = store.trading

    def write(i):
        t.save_order(Order(f"c{i}", "s", "ETH/BTC", Side.BUY, OrderType.MARKET, 1.0,
                           created_ms=1_000 * i, updated_ms=1_000 * i), "local")
        t.save_fill(Fill(f"f{i}", f"c{i}", "s", "ETH/BTC", Side.BUY, 1.0, 0.05, 0.0, 1_000 * i))
        t.add_event("s", "state", f"event {i}")

    for i in range(applied):
        write(i)
    assert len(t.orders("s")) == applied  # read back: applied, marked as applied
    stuck = threading.Event()
    journal.JournaledWrites._apply_batch = lambda self, batch: stuck.wait()
    for i in range(applied, total):
        write(i)
    os.kill(os.getpid(), signal.SIGKILL)
    """
)


def run_child(path: Path, applied: int, total: int) -> None:
    done = subprocess.run(
        [sys.executable, "-c", CHILD, str(path), str(applied), str(total)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == -signal.SIGKILL, done.stderr


def test_a_killed_owner_loses_no_write_and_none_is_applied_twice(tmp_path: Path) -> None:
    db = tmp_path / "live.duckdb"
    run_child(db, applied=40, total=100)
    units = list(read_journal(journal_path(db)))
    assert len(units) == 300, "every write of the child is in the journal"
    # A reader of the dead owner's file sees everything it wrote, each once, in order.
    with Store.open(db, read_only=True) as store:
        orders = store.trading.orders("s")
        fills = store.trading.fills("s")
        events = store.trading.events("s")
    assert [o.client_order_id for o in orders] == [f"c{i}" for i in range(100)]
    assert [f.fill_id for f in fills] == [f"f{i}" for i in range(100)]
    assert list(events["detail"]) == [f"event {i}" for i in range(100)]
    assert not journal_path(db).exists(), "applied, then emptied"
    with Store.open(db) as store:  # and opening again applies nothing twice
        assert len(store.trading.events("s")) == 100


def test_a_last_line_cut_short_is_left_out_and_the_rest_applied(tmp_path: Path) -> None:
    db = tmp_path / "live.duckdb"
    run_child(db, applied=0, total=3)
    journal = journal_path(db)
    whole = journal.read_bytes()
    journal.write_bytes(whole[:-7])  # the last write died half-way through `os.write`
    with Store.open(db) as store:
        assert [o.client_order_id for o in store.trading.orders("s")] == ["c0", "c1", "c2"]
        assert list(store.trading.events("s")["detail"]) == ["event 0", "event 1"]


def test_a_line_broken_in_the_middle_is_an_error_that_names_it(tmp_path: Path) -> None:
    db = tmp_path / "live.duckdb"
    run_child(db, applied=0, total=2)
    journal = journal_path(db)
    lines = journal.read_bytes().split(b"\n")
    lines[1] = b"not json"
    journal.write_bytes(b"\n".join(lines))
    with pytest.raises(StoreError, match="line 2 is not a journal line"):
        Store.open(db)
    assert journal.exists(), "nothing is thrown away"


def test_a_write_the_database_refuses_is_said_and_kept(tmp_path: Path) -> None:
    db = tmp_path / "live.duckdb"
    with Store.open(db) as store:
        writes = JournaledWrites(
            store.db, tmp_path / "other.journal", apply_writes, drain_timeout_s=0.5
        )
        writes.submit([Write("no_such_write", [])])
        with pytest.raises(StoreError, match=r"no_such_write.*other\.journal"):
            writes.drain()
        assert writes.problem is not None and "no_such_write" in writes.problem
        writes.close()
        assert [seq for seq, _ in read_journal(tmp_path / "other.journal")] == [1]


def test_a_second_handle_in_the_process_reads_the_owners_writes(tmp_path: Path) -> None:
    db = tmp_path / "live.duckdb"
    with Store.open(db) as owner, Store.open(db) as borrowed:
        order = Order("c1", "s", "ETH/BTC", Side.BUY, OrderType.MARKET, 1.0, created_ms=5)
        owner.trading.save_order(order, "local")
        owner.trading.save_order(order.update(state=OrderState.OPEN), "local")
        [seen] = borrowed.trading.orders("s")
        assert seen.state is OrderState.OPEN
        assert len(borrowed.sql("SELECT * FROM orders")) == 1


def test_fsync_puts_each_line_on_disk_before_the_write_returns(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    synced: list[int] = []
    real = os.fdatasync
    monkeypatch.setattr(os, "fdatasync", lambda fd: (synced.append(fd), real(fd))[1])
    with Store.open(tmp_path / "live.duckdb", journal_fsync=True) as store:
        store.trading.add_event("s", "state", "one")
        store.trading.add_event("s", "state", "two")
    assert len(synced) == 2


def test_a_burst_of_writes_is_applied_after_it_in_one_transaction(tmp_path: Path) -> None:
    # The writer thread's work holds the interpreter lock: applied while a bar's orders were
    # still being decided, it slowed them. Woken by a write, it gathers first.
    batches: list[int] = []

    def counted(session: Session, writes: Sequence[Write]) -> None:
        batches.append(len(writes))
        apply_writes(session, writes)

    with Store.open(tmp_path / "live.duckdb") as store:
        writes = JournaledWrites(store.db, tmp_path / "burst.journal", counted, gather_s=2.0)
        for i in range(5):
            writes.submit([Write("add_event", ["s", "state", f"event {i}", ts_param(1_000 + i)])])
            time.sleep(0.05)  # the writer thread gets the interpreter meanwhile
        started = time.monotonic()
        writes.drain()  # a reader waiting does not wait out the gathering
        waited = time.monotonic() - started
        writes.close()
        assert batches == [5]
        assert waited < 1.5
        assert list(store.trading.events("s")["detail"]) == [f"event {i}" for i in range(5)]


def test_a_group_journals_its_units_as_one_line_at_durable_a_read_or_its_end(
    tmp_path: Path,
) -> None:
    # An os.write per unit cost 20-40 us on the event loop, several times per order.
    def event(i: int) -> list[Write]:
        return [Write("add_event", ["s", "state", f"event {i}", ts_param(1_000 + i)])]

    with Store.open(tmp_path / "live.duckdb") as store:
        path = tmp_path / "group.journal"
        writes = JournaledWrites(store.db, path, apply_writes, gather_s=60.0)

        def lines() -> list[list[str]]:
            return [[w.args[2] for w in unit] for _seq, unit in read_journal(path)]

        with writes.grouped():
            writes.submit(event(0))
            writes.submit(event(1))
            assert lines() == [], "held: not journaled yet"
            asyncio.run(writes.durable())
            assert lines() == [["event 0", "event 1"]], "durable: one line"
            writes.submit(event(2))
            other = threading.Thread(target=writes.submit, args=(event(3),))
            other.start()
            other.join()
            assert lines()[-1] == ["event 3"], "another thread's unit is not held"
            with writes.grouped():  # nested: its end journals what waits
                writes.submit(event(4))
            assert lines()[-1] == ["event 2", "event 4"]
            writes.submit(event(5))
            writes.drain()  # a read sees every write made before it
            assert lines()[-1] == ["event 5"]
            writes.submit(event(6))
        assert lines()[-1] == ["event 6"], "the group's end journals what waits"
        writes.submit(event(7))
        assert lines()[-1] == ["event 7"], "outside a group: journaled at once"
        writes.close()
        assert list(store.trading.events("s")["detail"]) == [f"event {i}" for i in range(8)]


def test_a_group_left_by_an_error_journals_what_it_held(tmp_path: Path) -> None:
    with Store.open(tmp_path / "live.duckdb") as store:
        path = tmp_path / "group.journal"
        writes = JournaledWrites(store.db, path, apply_writes, gather_s=60.0)
        with pytest.raises(RuntimeError), writes.grouped():
            writes.submit([Write("add_event", ["s", "state", "held", ts_param(1)])])
            raise RuntimeError("a strategy failed")
        assert [len(unit) for _seq, unit in read_journal(path)] == [1]
        writes.close()


def test_a_journal_line_reads_back_as_written(tmp_path: Path) -> None:
    # orjson writes the lines; numpy floats, datetimes to the microsecond, None, text with
    # quotes and newlines come back as json would have kept them.
    when = datetime(2026, 12, 4, 18, 34, 49, 123456)
    args = [np.float64(0.1), 7, None, 'a "quoted"\nline', when, True, 1e-300, "é"]
    writes = [Write("save_order", args), Write("add_event", ["s", "x", "y", when])]
    path = tmp_path / "x.journal"
    path.write_bytes(encode_line(3, writes))
    [(seq, back)] = list(read_journal(path))
    assert seq == 3
    assert back == [Write("save_order", [0.1, *args[1:]]), writes[1]]
    assert type(back[0].args[4]) is datetime
