"""Ops fixtures: a local HTTP receiver for alerts, the shipped ETH/BTC candles."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest
from alert_receiver import Receiver, _serve
from shipped import CANDLE_DIR

from workbench.localexchange import load_csv_history


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    """A receiver on its own thread and loop (apprise posts from the sender's thread)."""
    found = Receiver()
    ready, stop = threading.Event(), threading.Event()
    thread = threading.Thread(target=_serve, args=(found, ready, stop), daemon=True)
    thread.start()
    assert ready.wait(10)
    yield found
    if found.hold is not None:
        found.hold.set()
    stop.set()
    thread.join(5)


@pytest.fixture(scope="session")
def eth() -> pd.DataFrame:
    return load_csv_history(CANDLE_DIR, ["ETH/BTC"])["ETH/BTC"]


@pytest.fixture
def db_file(tmp_path: Path) -> Path:
    return tmp_path / "ops.duckdb"
