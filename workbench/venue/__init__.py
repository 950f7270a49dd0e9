"""The venue side: how the workbench reaches an exchange, real or local.

`connect` is the one place ccxt clients are built (`ExchangeClients`: a REST and a streaming
client); `market_now_ms` is the market's clock (the replay clock on the local exchange); the
market rules (lot step, minimum notional) come from the loaded markets.
"""

from workbench.venue.client import (
    LOCAL,
    LOCAL_API_KEY,
    LOCAL_API_SECRET,
    ExchangeClients,
    connect,
    market_now_ms,
)
from workbench.venue.clock import MarketClock

__all__ = [
    "LOCAL",
    "LOCAL_API_KEY",
    "LOCAL_API_SECRET",
    "ExchangeClients",
    "MarketClock",
    "connect",
    "market_now_ms",
]
