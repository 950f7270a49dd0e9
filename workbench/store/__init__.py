"""DuckDB storage: candles, and (in later migrations) orders, trades, runs, users, audit."""

from workbench.store.db import Store
from workbench.store.errors import SchemaTooNew, StoreError, StoreLocked

__all__ = ["SchemaTooNew", "Store", "StoreError", "StoreLocked"]
