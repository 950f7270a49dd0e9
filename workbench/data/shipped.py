"""The candles shipped in the repository's data/candles, imported on first run."""

from __future__ import annotations

from pathlib import Path

from workbench.data.files import parse_file_name
from workbench.data.imports import ImportResult, import_file
from workbench.store import Store

SHIPPED_DIR = Path(__file__).resolve().parents[2] / "data" / "candles"


def shipped_files() -> list[Path]:
    """Give the shipped candle files (none when the package runs outside the repository)."""
    return sorted(SHIPPED_DIR.glob("*.csv.gz"))


def ensure_shipped(store: Store, exchange: str = "local") -> list[ImportResult]:
    """Import each shipped file whose series the store lacks; give what was imported."""
    stored = set(store.candles.series())
    done = []
    for path in shipped_files():
        named = parse_file_name(path)
        if named and (exchange, named.symbol, named.timeframe) not in stored:
            done.append(import_file(store, path, exchange=exchange))
    return done
