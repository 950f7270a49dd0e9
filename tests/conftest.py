"""Fixtures shared by every test: fresh DuckDB files, a real PostgreSQL server, the shipped
candles."""

from __future__ import annotations

import itertools
import os
import signal
from collections.abc import Iterator
from pathlib import Path

import pytest

from workbench.store import Store
from workbench.store.local_postgres import LocalPostgres

# Tests stop servers and engines they start with SIGINT, as Ctrl-C and systemd's KillSignal
# do. A suite started in the background of a shell (`make test &`, nohup) has SIGINT ignored,
# and an ignored signal is inherited by every child: they would never stop. A handler set
# here is reset to the default in each child, which then installs Python's own.
signal.signal(signal.SIGINT, signal.default_int_handler)

_databases = itertools.count(1)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Run files holding slow or browser tests first, each file's tests in their order: the
    two xdist workers take a file at a time, and a long file started last would keep one
    worker busy while the other idles."""
    heavy = {
        item.path
        for item in items
        if item.get_closest_marker("slow") or item.get_closest_marker("browser")
    }
    items.sort(key=lambda item: item.path not in heavy)  # stable: files stay whole


@pytest.fixture(autouse=True, scope="session")
def isolated_settings(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Point every test, subprocess and notebook at a scratch database, never the user's."""
    saved = {k: v for k, v in os.environ.items() if k.startswith("WORKBENCH_")}
    for name in saved:
        del os.environ[name]
    os.environ["WORKBENCH_DB"] = str(tmp_path_factory.mktemp("session") / "workbench.duckdb")
    os.environ["WORKBENCH_CONFIG"] = str(tmp_path_factory.getbasetemp() / "no-such.toml")
    yield
    for name in [k for k in os.environ if k.startswith("WORKBENCH_")]:
        del os.environ[name]
    os.environ.update(saved)


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    """Give the path of a database file that does not exist yet."""
    return tmp_path / "workbench.duckdb"


@pytest.fixture
def store(db_path: Path) -> Iterator[Store]:
    """Give a fresh store on a real DuckDB file, closed after the test."""
    with Store.open(db_path) as opened:
        yield opened


@pytest.fixture(scope="session")
def pg_server() -> Iterator[LocalPostgres]:
    """Give a PostgreSQL server of Debian's binaries on 127.0.0.1, started once per session."""
    with LocalPostgres() as server:
        yield server


@pytest.fixture(scope="session")
def restartable_pg() -> Iterator[LocalPostgres]:
    """Give a PostgreSQL server of its own that a test may restart or stop (never the shared
    `pg_server`), started once per session on first use."""
    with LocalPostgres() as server:
        yield server


@pytest.fixture
def pg_url(pg_server: LocalPostgres) -> str:
    """Give the URL of a new, empty PostgreSQL database (one per test)."""
    return pg_server.create_database(f"test_{os.getpid()}_{next(_databases)}")


@pytest.fixture(params=["duckdb", "postgres"])
def db_target(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Give where a fresh store goes, once per backend: a DuckDB path, a PostgreSQL URL."""
    if request.param == "postgres":
        return str(request.getfixturevalue("pg_url"))
    return str(tmp_path / "workbench.duckdb")
