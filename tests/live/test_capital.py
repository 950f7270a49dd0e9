"""`live run --split volatility` reads only bars closed before the run starts."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from shipped import CANDLE_DIR

from workbench.live.capital import volatilities_before
from workbench.localexchange import load_csv_history
from workbench.portfolio.allocation import recent_volatility
from workbench.store import Store


def test_the_split_never_reads_bars_after_the_start(tmp_path: Path) -> None:
    history = load_csv_history(CANDLE_DIR, ["ETH/BTC", "LTC/BTC"])
    start = history["ETH/BTC"].index[1000]
    now_ms = int(start.value // 1_000_000) + 60_000  # a minute into bar 1000
    markets = {"eth": ("ETH/BTC", "5m"), "ltc": ("LTC/BTC", "5m")}
    with Store.open(tmp_path / "v.duckdb") as store:
        for symbol, frame in history.items():
            store.candles.write("local", symbol, "5m", frame)
        found = volatilities_before(store, "local", markets, now_ms)
        # The future turns wild for ETH: nothing read before the start may change.
        wild = history["ETH/BTC"].iloc[1000:].copy()
        wild["close"] = wild["close"] * np.where(np.arange(len(wild)) % 2, 1.5, 0.5)
        store.candles.write("local", "ETH/BTC", "5m", wild)
        again = volatilities_before(store, "local", markets, now_ms)
    assert again == found
    oracle = {
        "eth": recent_volatility(history["ETH/BTC"].iloc[:1000]),
        "ltc": recent_volatility(history["LTC/BTC"][history["LTC/BTC"].index < start]),
    }
    assert found == oracle
