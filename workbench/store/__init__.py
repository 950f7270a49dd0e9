"""The database: candles, backtest runs, Optuna studies and live records (`Store`)."""

from workbench.store.db import Store
from workbench.store.errors import SchemaTooNew, StoreError, StoreLocked

__all__ = ["SchemaTooNew", "Store", "StoreError", "StoreLocked"]
