"""Commission as Binance takes it: in the asset received, in the quote, or in BNB at a discount.

`workbench.fills.FillModel.charge` says what a fill moves in its market's two assets and what
its fee is worth. This module turns that into what the local exchange books and reports (the
``commission`` and ``commissionAsset`` of trades, order fills and execution reports):

* ``received``: the base asset on a buy (the account gets ``q * (1 - rate)``), the quote on a
  sell. Binance's default.
* ``quote``: the quote asset on both sides.
* ``bnb``: BNB, worth the fee at ``bnb_discount`` off, converted at BNB's price in the market's
  quote at the fill. When the account's free BNB does not cover it, Binance takes the fee in
  the asset received at the full rate instead, and so does the local exchange.

BNB's price. The shipped candles (Binance, January 2018) have no BNB market, and neither has
the freqtrade test data they come from (its ``tests/testdata`` holds no BNB pair in any
commit). So with ``fee_asset="bnb"`` the local exchange serves a ``BNB/<quote>`` market for
every quote currency of its markets: the history's own when it has one (give BNB/BTC candles
to value BNB at real prices), else a synthetic *flat* series over the same span at
`BNB_REFERENCE_PRICES` (BNB/BTC 0.0012: BNB traded between about 0.0006 and 0.0018 BTC in
January 2018; BNB/USDT 600: about its price in November 2021, the span of the shipped USDT
market). Flat on purpose: a made-up trend would be something to trade, and a constant price
keeps every BNB fee checkable by hand. A quote with neither is refused with an error naming it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace

import pandas as pd

from workbench.fills import FeeAsset, FeeIn, FillModel, Side

BNB = "BNB"
#: Price of one BNB per quote currency for the synthetic BNB markets (see the module docstring).
BNB_REFERENCE_PRICES: dict[str, float] = {"BTC": 0.0012, "USDT": 600.0}
#: Base volume of every synthetic BNB bar: liquid enough that it never limits a fill.
SYNTHETIC_BNB_VOLUME = 100_000.0
#: BNB a fresh account holds when the exchange takes fees in BNB and no balances are given.
DEFAULT_BNB_BALANCE = 10.0
EPSILON = 1e-12


@dataclass(frozen=True)
class Commission:
    """What one fill books: the signed change of each asset, and its fee as Binance reports it.

    ``moves`` holds every asset the fill touches (BNB too when it pays); ``fee`` is in
    ``fee_asset``; ``fee_quote`` its value in the market's quote at the fill.
    """

    moves: Mapping[str, float]
    fee: float
    fee_asset: str
    fee_quote: float


def commission(
    model: FillModel,
    side: Side,
    price: float,
    quantity: float,
    *,
    base: str,
    quote: str,
    bnb_price: float | None = None,
    bnb_free: float = 0.0,
) -> Commission:
    """Give what a fill of ``quantity`` base at ``price`` books, with its fee in Binance's asset.

    ``bnb_price`` is BNB's price in ``quote`` now and ``bnb_free`` the account's free BNB; they
    matter only when the model takes fees in BNB.
    """
    charge = model.charge(side, price, quantity)
    moves = {base: charge.base, quote: charge.quote}
    if charge.fee_in is FeeIn.BASE:
        return Commission(moves, charge.fee, base, charge.fee_quote)
    if charge.fee_in is FeeIn.QUOTE:
        return Commission(moves, charge.fee, quote, charge.fee_quote)
    if quote == BNB:
        bnb_price = 1.0
    if bnb_price is not None and bnb_price > 0:
        fee_bnb = charge.fee / bnb_price
        if bnb_free + moves.get(BNB, 0.0) + EPSILON >= fee_bnb:
            moves[BNB] = moves.get(BNB, 0.0) - fee_bnb
            return Commission(moves, fee_bnb, BNB, charge.fee_quote)
    # Not enough BNB: Binance takes the full fee in the asset received.
    fallback = replace(model, fee_asset=FeeAsset.RECEIVED)
    return commission(fallback, side, price, quantity, base=base, quote=quote)


def with_bnb_markets(
    history: Mapping[str, pd.DataFrame], timeframe_ms: int
) -> dict[str, pd.DataFrame]:
    """Give the history with a BNB/<quote> market for every quote of its markets.

    The history's own BNB markets are kept; a missing one is a flat series at the reference
    price over the span of that quote's markets. Raises ValueError for a quote with no
    reference price.
    """
    out = dict(history)
    spans: dict[str, list[pd.Timestamp]] = {}
    for symbol, frame in history.items():
        quote = symbol.split("/")[1]
        if quote == BNB or f"{BNB}/{quote}" in history:
            continue
        index = pd.DatetimeIndex(frame.index)
        spans.setdefault(quote, []).extend([index.min(), index.max()])
    for quote, bounds in sorted(spans.items()):
        price = BNB_REFERENCE_PRICES.get(quote)
        if price is None:
            raise ValueError(
                f"fee_asset bnb needs BNB's price in {quote}: serve BNB/{quote} candles too "
                f"(synthetic ones exist for {', '.join(sorted(BNB_REFERENCE_PRICES))})"
            )
        step = pd.Timedelta(milliseconds=timeframe_ms)
        index = pd.date_range(min(bounds), max(bounds), freq=step)
        index.name = "ts"
        out[f"{BNB}/{quote}"] = pd.DataFrame(
            {
                "open": price,
                "high": price,
                "low": price,
                "close": price,
                "volume": SYNTHETIC_BNB_VOLUME,
            },
            index=index,
        )
    return out
