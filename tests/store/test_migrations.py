"""Migrations on both backends: from empty, from every earlier version, refusal of a newer
schema, rollback; on DuckDB also the file lock between processes."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from workbench.store import SchemaTooNew, Store, StoreError, StoreLocked
from workbench.store.database import Database
from workbench.store.migrations import current_version, known_migrations, latest_version, migrate


def tables(db: Database) -> set[str]:
    return set(db.tables())


def test_opening_an_empty_database_applies_every_migration_once(db_target: str) -> None:
    with Store.open(db_target) as store:
        rows = store.db.fetchall("SELECT version, name FROM schema_migrations ORDER BY 1")
    assert [v for v, _ in rows] == list(range(1, latest_version() + 1))
    assert [n for _, n in rows] == [m.name for m in known_migrations()]
    with Store.open(db_target) as store:
        count = store.db.fetchone("SELECT count(*) FROM schema_migrations")
    assert count == (latest_version(),)


@pytest.mark.parametrize("start", range(0, latest_version() + 1))
def test_every_earlier_version_migrates_to_the_latest(db_target: str, start: int) -> None:
    with Store.open(db_target, migrate_schema=False) as raw:
        migrate(raw.db, target=start)
        assert current_version(raw.db) == start
    with Store.open(db_target) as store:
        assert current_version(store.db) == latest_version()
        assert "candles" in tables(store.db)


def test_a_newer_schema_is_refused_with_a_clear_error(db_target: str) -> None:
    with Store.open(db_target) as store:
        store.db.execute(
            "INSERT INTO schema_migrations (version, name) VALUES (999, 'from_the_future')"
        )
        where = store.describe()
    with pytest.raises(SchemaTooNew, match=r"version 999.*knows only up to") as refused:
        Store.open(db_target)
    assert where in str(refused.value)
    with pytest.raises(SchemaTooNew):
        Store.open(db_target, read_only=True)


def test_a_failing_migration_leaves_the_previous_version(db_target: str) -> None:
    with Store.open(db_target, migrate_schema=False) as raw:
        # A table in the way makes migration 1 fail halfway (after CREATE TABLE would run).
        raw.db.execute("CREATE TABLE candles (x INTEGER)")
        with pytest.raises(StoreError, match="0001_candles failed"):
            migrate(raw.db)
        assert current_version(raw.db) == 0
        assert raw.db.fetchone("SELECT count(*) FROM schema_migrations") == (0,)


def test_read_only_open_of_a_missing_file_says_what_to_do(db_path: Path) -> None:
    with pytest.raises(StoreError, match="workbench data import"):
        Store.open(db_path, read_only=True)
    assert not db_path.exists()


def test_read_only_open_of_an_empty_postgres_database_says_what_to_do(pg_url: str) -> None:
    with pytest.raises(StoreError, match="workbench db migrate"):
        Store.open(pg_url, read_only=True)


HOLDER = textwrap.dedent(
    """
    import sys, time
    from workbench.store import Store
    store = Store.open(sys.argv[1])
    print("holding", flush=True)
    time.sleep(float(sys.argv[2]))
    store.close()
    """
)


def hold(db_path: Path, seconds: float) -> subprocess.Popen[str]:
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(db_path), str(seconds)],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert holder.stdout is not None
    assert holder.stdout.readline().strip() == "holding"
    return holder


def test_a_second_process_waits_for_the_lock_then_opens(db_path: Path) -> None:
    holder = hold(db_path, 1.0)
    started = time.monotonic()
    with Store.open(db_path, read_only=True, wait_s=20) as store:
        assert current_version(store.db) == latest_version()
    assert time.monotonic() - started > 0.3
    assert holder.wait(timeout=20) == 0


def test_a_lock_held_too_long_names_the_holder(db_path: Path) -> None:
    holder = hold(db_path, 5.0)
    try:
        with pytest.raises(StoreLocked, match=f"PID {holder.pid}"):
            Store.open(db_path, wait_s=0.3)
    finally:
        holder.kill()
        holder.wait()


def test_a_second_open_in_the_owning_process_borrows_its_connection(db_path: Path) -> None:
    owner = Store.open(db_path)
    owner.con.execute("CREATE TABLE t AS SELECT 42 AS x")
    with Store.open(db_path, read_only=True) as borrowed:
        assert borrowed.con.execute("SELECT x FROM t").fetchone() == (42,)
    assert owner.con.execute("SELECT count(*) FROM t").fetchone() == (1,)
    owner.close()
    with Store.open(db_path, read_only=True) as reopened:  # the file is free again
        assert reopened.owner is False


def test_a_live_database_of_version_3_gets_the_guard_state_and_keeps_its_rows(
    db_target: str,
) -> None:
    with Store.open(db_target, migrate_schema=False) as raw:
        migrate(raw.db, target=3)
        raw.db.execute(
            "INSERT INTO strategies (strategy_id, spec_name, spec_json, params_json, exchange, "
            "symbol, timeframe, broker, allocation, state) "
            "VALUES ('s', 'sma', '{}', '{}', 'local', 'ETH/BTC', '5m', 'paper', 1.0, 'running')"
        )
    with Store.open(db_target) as store:
        assert "risk_state" in tables(store.db)
        assert list(store.trading.strategies()["strategy_id"]) == ["s"]
        assert store.trading.risk_state("s") is None  # resumes with a fresh guard, as before
