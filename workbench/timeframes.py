"""Timeframes: the ccxt notation ("1m", "5m", "1h", "1d", "1w") and its lengths."""

from __future__ import annotations

import re

import pandas as pd

from workbench.errors import WorkbenchError

_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
_PATTERN = re.compile(r"^(\d+)([smhdw])$")

# What exchanges commonly offer; shown when a timeframe is not understood.
COMMON = ("1m", "3m", "5m", "15m", "30m", "1h", "2h", "4h", "6h", "8h", "12h", "1d", "3d", "1w")


class TimeframeError(WorkbenchError, ValueError):
    """A timeframe string that the workbench does not understand."""


def timeframe_seconds(timeframe: str) -> int:
    """Give the length of a timeframe in seconds ("5m" -> 300)."""
    match = _PATTERN.match(timeframe)
    if not match or int(match.group(1)) == 0:
        raise TimeframeError(
            f"unknown timeframe {timeframe!r}: expected a number and one of s/m/h/d/w, "
            f"such as {', '.join(COMMON)}"
        )
    return int(match.group(1)) * _UNIT_SECONDS[match.group(2)]


def timeframe_ms(timeframe: str) -> int:
    """Give the length of a timeframe in milliseconds."""
    return timeframe_seconds(timeframe) * 1000


def timeframe_delta(timeframe: str) -> pd.Timedelta:
    """Give the length of a timeframe as a pandas Timedelta."""
    return pd.Timedelta(seconds=timeframe_seconds(timeframe))
