"""The local exchange (a Binance-protocol replay server) and `connect`, the one way to get ccxt
clients in the workbench."""

from workbench.exchange.auth import LOCAL_API_KEY, LOCAL_API_SECRET
from workbench.exchange.client import ExchangeClients, connect
from workbench.exchange.clock import Clock, ManualClock, ReplayClock
from workbench.exchange.faults import FaultKind
from workbench.exchange.history import (
    HistoryError,
    load_csv_history,
    load_history,
    load_history_file,
)
from workbench.exchange.server import LocalExchange

__all__ = [
    "LOCAL_API_KEY",
    "LOCAL_API_SECRET",
    "Clock",
    "ExchangeClients",
    "FaultKind",
    "HistoryError",
    "LocalExchange",
    "ManualClock",
    "ReplayClock",
    "connect",
    "load_csv_history",
    "load_history",
    "load_history_file",
]
