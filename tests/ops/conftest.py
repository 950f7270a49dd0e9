"""Ops fixtures: a local HTTP receiver for alerts, the shipped ETH/BTC candles."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest
from alert_receiver import Receiver, receiving
from shipped import CANDLE_DIR

from workbench.localexchange import load_csv_history


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
