"""Fixtures shared by every test: fresh DuckDB files, the shipped candles."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from workbench.store import Store


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
