"""The store's tests run on both backends: `store` is a fresh DuckDB file or PostgreSQL
database."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from workbench.store import Store


@pytest.fixture
def store(db_target: str) -> Iterator[Store]:
    """Give a fresh, migrated store on each backend, closed after the test."""
    with Store.open(db_target) as opened:
        yield opened
