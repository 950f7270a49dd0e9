"""Ops fixtures: a local HTTP receiver for alerts, the shipped ETH/BTC candles."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest
from alert_receiver import Receiver, receiving
from shipped import CANDLE_DIR

from workbench.localexchange import load_csv_history
from workbench.ops.logs import stop_logging


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    """A local receiver that apprise's json:// sink posts alerts to."""
    with receiving() as found:
        yield found


@pytest.fixture(scope="session")
def eth() -> pd.DataFrame:
    return load_csv_history(CANDLE_DIR, ["ETH/BTC"])["ETH/BTC"]


@pytest.fixture
def db_file(tmp_path: Path) -> Path:
    return tmp_path / "ops.duckdb"


@pytest.fixture
def restore_root() -> Iterator[None]:
    """Give the root logger back as it was (handlers, level) after a test set logging up."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    stop_logging()
    for handler in list(root.handlers):
        if handler not in handlers:
            root.removeHandler(handler)
            handler.close()
    root.setLevel(level)
