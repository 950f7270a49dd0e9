"""The local exchange: a Binance-protocol server on 127.0.0.1 that replays stored candles,
matches orders with the shared fill model, takes commissions in the asset Binance would
(`commission`) and injects faults (`faults`). Reach it with
`workbench.venue.connect("local", port=...)`, which always signs with its own key pair."""

from workbench.localexchange.clock import Clock, ManualClock, ReplayClock
from workbench.localexchange.faults import FaultKind
from workbench.localexchange.history import (
    HistoryError,
    load_csv_history,
    load_history,
    load_history_file,
)
from workbench.localexchange.server import LocalExchange
from workbench.venue.client import LOCAL_API_KEY, LOCAL_API_SECRET

__all__ = [
    "LOCAL_API_KEY",
    "LOCAL_API_SECRET",
    "Clock",
    "FaultKind",
    "HistoryError",
    "LocalExchange",
    "ManualClock",
    "ReplayClock",
    "load_csv_history",
    "load_history",
    "load_history_file",
]
