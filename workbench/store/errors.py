"""Errors raised by the store."""

from __future__ import annotations

from workbench.errors import WorkbenchError


class StoreError(WorkbenchError):
    """A problem with the workbench database: what went wrong and why."""


class SchemaTooNew(StoreError):
    """The database was written by a newer workbench than this one."""


class StoreLocked(StoreError):
    """Another process holds the database file."""


class StoreUnavailable(StoreError):
    """The database server cannot be reached, refused the login, or lacks the database."""


class StorePermission(StoreError):
    """The database user may not do what the workbench needs (create tables, write rows)."""


class StrategyLeased(StoreError):
    """Another engine runs the strategy: the message names it."""
