"""Markets of the local exchange: symbols and trading filters derived from the replayed data."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from workbench.localexchange.replay import SymbolReplay

#: Minimum order value per quote currency, as Binance sets them (NOTIONAL filter).
MIN_NOTIONAL_BY_QUOTE: dict[str, float] = {
    "BTC": 0.0001,
    "ETH": 0.001,
    "BNB": 0.01,
    "USDT": 5.0,
    "USDC": 5.0,
    "FDUSD": 5.0,
    "BUSD": 5.0,
    "TUSD": 5.0,
    "EUR": 5.0,
}

ORDER_TYPES = [
    "LIMIT",
    "LIMIT_MAKER",
    "MARKET",
    "STOP_LOSS",
    "STOP_LOSS_LIMIT",
    "TAKE_PROFIT",
    "TAKE_PROFIT_LIMIT",
]


def market_id(symbol: str) -> str:
    """Give Binance's id of a unified symbol (``ETH/BTC`` → ``ETHBTC``)."""
    return symbol.replace("/", "")


def price_tick(prices: np.ndarray, max_decimals: int = 8) -> float:
    """Give the coarsest power-of-ten tick on which every price of the data lies."""
    sample = prices[np.isfinite(prices)]
    for decimals in range(max_decimals + 1):
        scaled = sample * 10.0**decimals
        if np.all(np.abs(scaled - np.round(scaled)) < 1e-6):
            return 10.0**-decimals
    return 10.0**-max_decimals


@dataclass(frozen=True)
class MarketRules:
    """One spot market and its filters, as exchangeInfo publishes them."""

    symbol: str
    base: str
    quote: str
    tick_size: float
    step_size: float
    min_qty: float
    max_qty: float
    min_price: float
    max_price: float
    min_notional: float

    @property
    def id(self) -> str:
        """Give the Binance market id."""
        return market_id(self.symbol)

    @property
    def price_decimals(self) -> int:
        """Give the number of decimals of the tick size."""
        return max(0, round(-math.log10(self.tick_size)))

    def on_tick(self, price: float) -> bool:
        """Tell whether a price is a whole number of ticks."""
        return _on_grid(price, self.tick_size)

    def on_step(self, quantity: float) -> bool:
        """Tell whether a quantity is a whole number of lot steps."""
        return _on_grid(quantity, self.step_size)

    @classmethod
    def derive(cls, replay: SymbolReplay) -> MarketRules:
        """Give the rules of a market, sized from its price data like Binance sizes them."""
        base, quote = replay.symbol.split("/")
        median = replay.median_price
        min_notional = MIN_NOTIONAL_BY_QUOTE.get(quote, 10.0 ** math.floor(math.log10(median)))
        # A lot step worth about a hundredth of the minimum order, between 1e-8 and 1.
        step_exp = math.floor(math.log10(min_notional / median)) - 2
        step = 10.0 ** min(0, max(-8, step_exp))
        tick = price_tick(np.concatenate([replay.o, replay.h, replay.l, replay.c]))
        return cls(
            symbol=replay.symbol,
            base=base,
            quote=quote,
            tick_size=tick,
            step_size=step,
            # Ten steps, so an order can be on the lot grid and still below the minimum.
            min_qty=step * 10,
            max_qty=9_000_000.0,
            min_price=tick,
            max_price=1_000_000.0,
            min_notional=min_notional,
        )

    def exchange_info_entry(self) -> dict[str, object]:
        """Give this market as an element of exchangeInfo's ``symbols``."""
        return {
            "symbol": self.id,
            "status": "TRADING",
            "baseAsset": self.base,
            "baseAssetPrecision": 8,
            "quoteAsset": self.quote,
            "quotePrecision": 8,
            "quoteAssetPrecision": 8,
            "baseCommissionPrecision": 8,
            "quoteCommissionPrecision": 8,
            "orderTypes": ORDER_TYPES,
            "icebergAllowed": False,
            "ocoAllowed": True,
            "otoAllowed": False,
            "quoteOrderQtyMarketAllowed": True,
            "allowTrailingStop": False,
            "cancelReplaceAllowed": False,
            "isSpotTradingAllowed": True,
            "isMarginTradingAllowed": False,
            "filters": [
                {
                    "filterType": "PRICE_FILTER",
                    "minPrice": fmt_fixed(self.min_price),
                    "maxPrice": fmt_fixed(self.max_price),
                    "tickSize": fmt_fixed(self.tick_size),
                },
                {
                    "filterType": "LOT_SIZE",
                    "minQty": fmt_fixed(self.min_qty),
                    "maxQty": fmt_fixed(self.max_qty),
                    "stepSize": fmt_fixed(self.step_size),
                },
                {
                    "filterType": "NOTIONAL",
                    "minNotional": fmt_fixed(self.min_notional),
                    "applyMinToMarket": True,
                    "maxNotional": "9000000.00000000",
                    "applyMaxToMarket": False,
                    "avgPriceMins": 5,
                },
                {"filterType": "MAX_NUM_ORDERS", "maxNumOrders": 200},
            ],
            "defaultSelfTradePreventionMode": "EXPIRE_MAKER",
            "allowedSelfTradePreventionModes": ["NONE", "EXPIRE_TAKER", "EXPIRE_MAKER"],
            "permissions": [],
            "permissionSets": [["SPOT"]],
        }


def _on_grid(value: float, step: float) -> bool:
    ratio = value / step
    return abs(ratio - round(ratio)) < 1e-6


def fmt_fixed(value: float) -> str:
    """Give a number as Binance prints account and filter numbers (8 decimals)."""
    return f"{value:.8f}"


def fmt_exact(value: float) -> str:
    """Give a float in positional notation that parses back to the very same float."""
    return np.format_float_positional(float(value), trim="-")
