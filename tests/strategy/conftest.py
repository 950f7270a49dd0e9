"""Fixtures for strategy tests: shipped candles."""

from __future__ import annotations

import pandas as pd
import pytest
from strategy.helpers import read_candles


@pytest.fixture(scope="session")
def eth_candles() -> pd.DataFrame:
    return read_candles("ETH_BTC-5m.csv.gz")
