"""Importing candle files into the store, all or nothing per file."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from workbench.data.files import CandleFileError, parse_file_name, read_candle_file
from workbench.lots import LotRules
from workbench.store import Store
from workbench.store.candles import WriteResult
from workbench.timeframes import timeframe_ms


@dataclass(frozen=True)
class ImportResult:
    """What importing one file did."""

    file: str
    exchange: str
    symbol: str
    timeframe: str
    rows: int
    result: WriteResult


def import_file(
    store: Store,
    path: Path | str,
    *,
    exchange: str,
    symbol: str | None = None,
    timeframe: str | None = None,
) -> ImportResult:
    """Import one file into the store; a bad file raises CandleFileError and writes nothing.

    Symbol and timeframe come from the arguments, else from the file name
    (`ETH_BTC-5m.csv.gz` is ETH/BTC on 5m). For the local exchange the market's rules (lot
    step, minimums) are stored too, as the local exchange derives them from the data.
    """
    path = Path(path)
    named = parse_file_name(path)
    symbol = symbol or (named.symbol if named else None)
    timeframe = timeframe or (named.timeframe if named else None)
    if symbol is None or timeframe is None:
        raise CandleFileError(
            path,
            "cannot tell the symbol and timeframe: name the file like ETH_BTC-5m.csv.gz "
            "or pass --symbol and --timeframe",
        )
    candles = read_candle_file(path, timeframe)
    result = store.candles.write(exchange, symbol, timeframe, candles)
    if exchange == "local" and store.markets.get(exchange, symbol) is None:
        store.markets.put(exchange, symbol, local_rules(symbol, candles, timeframe))
    return ImportResult(str(path), exchange, symbol, timeframe, len(candles), result)


def local_rules(symbol: str, candles: pd.DataFrame, timeframe: str) -> LotRules:
    """Give the rules the local exchange applies to a market replaying ``candles``."""
    from workbench.localexchange.markets import MarketRules
    from workbench.localexchange.replay import SymbolReplay

    market = MarketRules.derive(SymbolReplay(symbol, candles, timeframe_ms(timeframe)))
    return LotRules(market.step_size, market.min_qty, market.min_notional)
