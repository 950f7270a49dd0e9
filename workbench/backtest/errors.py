"""Errors of backtests, sweeps, searches, walk-forward and Monte Carlo."""

from __future__ import annotations

from workbench.errors import WorkbenchError


class BacktestError(WorkbenchError, ValueError):
    """A backtest or an analysis of one that cannot run on what it was given, and why."""


class SweepError(BacktestError):
    """A grid, constraint or search that cannot be swept, with the reason."""
