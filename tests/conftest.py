"""Fixtures shared by every test: fresh DuckDB files, the shipped candles."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from workbench.store import Store


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    """Give the path of a database file that does not exist yet."""
    return tmp_path / "workbench.duckdb"


@pytest.fixture
def store(db_path: Path) -> Iterator[Store]:
    """Give a fresh store on a real DuckDB file, closed after the test."""
    with Store.open(db_path) as opened:
        yield opened
