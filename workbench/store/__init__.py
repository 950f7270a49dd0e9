"""The workbench database on DuckDB (a file) or PostgreSQL (a URL): candles, backtest runs,
Optuna studies, live records, and what later migrations add.

Names load on first use, so that `workbench.settings` can read a store target
(`workbench.store.target`) without importing pandas and the drivers.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from workbench.store.db import Store
    from workbench.store.errors import (
        SchemaTooNew,
        StoreError,
        StoreLocked,
        StorePermission,
        StoreUnavailable,
        StrategyLeased,
    )

__all__ = [
    "SchemaTooNew",
    "Store",
    "StoreError",
    "StoreLocked",
    "StorePermission",
    "StoreUnavailable",
    "StrategyLeased",
]


def __getattr__(name: str) -> Any:
    if name == "Store":
        return import_module("workbench.store.db").Store
    if name in __all__:
        return getattr(import_module("workbench.store.errors"), name)
    raise AttributeError(f"module 'workbench.store' has no attribute {name!r}")
