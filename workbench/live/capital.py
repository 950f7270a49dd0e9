"""What a live run's capital split reads: each market's recent volatility, from bars closed
before the run starts (never later ones: the local exchange's whole history is in the store)."""

from __future__ import annotations

from collections.abc import Mapping

import pandas as pd

from workbench.portfolio.allocation import recent_volatility
from workbench.store import Store
from workbench.timeframes import timeframe_ms


def volatilities_before(
    store: Store, exchange: str, markets: Mapping[str, tuple[str, str]], now_ms: int
) -> dict[str, float]:
    """Give each strategy's market volatility over the bars closed before `now_ms`.

    `markets` maps strategy id to (symbol, timeframe)."""
    found = {}
    for sid, (symbol, timeframe) in markets.items():
        end = pd.Timestamp(now_ms - now_ms % timeframe_ms(timeframe), unit="ms", tz="UTC")
        found[sid] = recent_volatility(store.candles.read(exchange, symbol, timeframe, end=end))
    return found
