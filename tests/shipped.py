"""The shipped candle files, for tests that need real market data."""

from __future__ import annotations

import sys
from pathlib import Path

import pandas as pd

from workbench.data import parse_file_name, read_candle_file

ROOT = Path(__file__).resolve().parents[1]
CANDLE_DIR = ROOT / "data" / "candles"
CANDLE_FILES = sorted(CANDLE_DIR.glob("*.csv.gz"))
# Screenshots and server logs that CI keeps.
ARTIFACTS = ROOT / "artifacts"
SMA_CROSS = ROOT / "data" / "strategies" / "sma_cross.json"


def live_run(*options: str) -> list[str]:
    """Give the command line of `workbench live run` on the shipped SMA cross, replaying the
    local exchange at 3000x, with `options` after it."""
    return [sys.executable, "-m", "workbench", "live", "run", str(SMA_CROSS), "--speed", "3000",
            *options]  # fmt: skip


def shipped(path: Path) -> tuple[str, pd.DataFrame]:
    """Give a shipped file's symbol and candles."""
    name = parse_file_name(path)
    assert name is not None
    return name.symbol, read_candle_file(path, name.timeframe)
