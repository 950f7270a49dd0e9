"""Where the local exchange's candles come from: the store, read briefly, or shipped files."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from workbench.localexchange import HistoryError, load_history, load_history_file
from workbench.store import Store


def test_load_history_reads_stored_candles_and_releases_the_file(
    db_path: Path, history: dict[str, pd.DataFrame]
) -> None:
    with Store.open(db_path) as store:
        store.candles.write("local", "ETH/BTC", "5m", history["ETH/BTC"])
    loaded = load_history_file(db_path, symbols=["ETH/BTC"])
    stored, shipped = loaded["ETH/BTC"], history["ETH/BTC"]
    assert (stored.index == shipped.index).all()
    pd.testing.assert_frame_equal(stored.reset_index(drop=True), shipped.reset_index(drop=True))
    with Store.open(db_path) as store:  # read-write again: the server kept no lock
        assert load_history(store)["ETH/BTC"].index.name == "ts"


def test_missing_symbols_are_named_in_the_error(db_path: Path) -> None:
    with Store.open(db_path) as store, pytest.raises(HistoryError, match="DOGE/BTC"):
        load_history(store, symbols=["DOGE/BTC"])
