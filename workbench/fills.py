"""The one fill model: what price an order gets, what it pays, and when a stop fires.

The backtest, the paper broker and the local exchange all call these functions, so a fill means
the same thing everywhere (docs/architecture.md, decision 3). Everything here is pure: numbers
in, numbers out, no IO and no clock.

Decisions, stated once:

* **Market orders** fill at the reference price moved against the taker by ``slippage``
  (a fraction): a BUY at ``price * (1 + slippage)``, a SELL at ``price * (1 - slippage)``.
* **Fees** are worth ``fee_rate * notional`` and are charged in the asset the venue takes
  them in (`FeeAsset`, `FillModel.charge`):
  - ``quote``: always the quote currency; a buy costs ``notional + fee`` quote, a sell yields
    ``notional - fee``; the base amount moves by exactly the order quantity.
  - ``received`` (Binance's default): the asset received. A buy of ``q`` costs ``notional``
    quote and adds ``q * (1 - fee_rate)`` base; a sell yields ``notional - fee`` quote.
  - ``bnb``: a third asset, at ``bnb_discount`` off the rate, valued in quote at the fill;
    base and quote move by the order alone (the BNB balance pays).
  Maker and taker pay the same rate.
* **Intrabar path.** Inside a bar the price travels a fixed path (`bar_path`): open→low→high→
  close for an up bar (close >= open), open→high→low→close for a down bar. The local exchange
  replays this path in real time and the backtest uses it to decide which of two levels a bar
  touched first, so both agree.
* **Limit orders** fill at their limit price when the price crosses it inside the bar (a buy
  when ``low <= limit``, a sell when ``high >= limit``), or at the bar's open when the bar opens
  already through the limit (a gap gives the better price). A limit order that is already
  marketable when placed fills at once at the current price (capped at the limit).
* **Stops** follow Binance spot: a stop-loss SELL (and a take-profit BUY) fires when the price
  falls to the stop; a stop-loss BUY (and a take-profit SELL) fires when the price rises to it.
  A stop fires at its stop price, or at the open when the bar gaps through it. A fired stop
  becomes a market order (slippage applies) or, for the ``*_LIMIT`` kinds, a limit order.
* **Trailing stops** on a long position trail the highest price seen since entry by a fraction:
  level = peak × (1 − trail); on a short, level = trough × (1 + trail). The peak is updated
  along the intrabar path, so a bar that first rises then falls can stop out in the same bar.

Every function here works on one "segment" (open, high, low): a whole bar for the backtest, or
the stretch of path between two replay ticks for the local exchange.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum

import numpy as np


class Side(StrEnum):
    """Order side, in ccxt's spelling."""

    BUY = "buy"
    SELL = "sell"


class StopKind(StrEnum):
    """What a triggered order protects: a loss limit or a profit target."""

    STOP_LOSS = "stop_loss"
    TAKE_PROFIT = "take_profit"
    TRAILING_STOP = "trailing_stop"


class FeeAsset(StrEnum):
    """What a venue takes its commission in (see the module docstring)."""

    QUOTE = "quote"
    RECEIVED = "received"
    BNB = "bnb"


class FeeIn(StrEnum):
    """The asset one fill's fee was paid in, relative to its market."""

    BASE = "base"
    QUOTE = "quote"
    OTHER = "other"  # a third asset (BNB)


#: The fee asset of a `FillModel` nobody configured: the local exchange, the paper broker and
#: the backtest all default to it, Binance's own default (the asset received).
DEFAULT_FEE_ASSET = FeeAsset.RECEIVED


@dataclass(frozen=True)
class Charge:
    """What one fill does to an account.

    ``base`` and ``quote`` are the signed changes of the market's two balances, fees included
    when they are paid in one of them; ``fee`` is the fee in the asset it is paid in
    (``fee_in``; for OTHER its quote value, which the venue turns into units of that asset);
    ``fee_quote`` is its value in quote at the fill price.
    """

    base: float
    quote: float
    fee: float
    fee_in: FeeIn
    fee_quote: float


@dataclass(frozen=True)
class FillModel:
    """Fees and slippage: the costs of trading, applied the same way everywhere.

    ``fee_rate`` is a fraction of notional; ``fee_asset`` says which asset pays it (see the
    module docstring), ``bnb_discount`` what fraction of it a BNB payment saves; ``slippage``
    is a fraction by which a market (taker-at-market) fill is worse than the reference price.
    """

    fee_rate: float = 0.001
    slippage: float = 0.0
    fee_asset: FeeAsset = DEFAULT_FEE_ASSET
    bnb_discount: float = 0.25

    def __post_init__(self) -> None:
        if not 0.0 <= self.fee_rate < 1.0:
            raise ValueError(f"fee_rate must be in [0, 1), got {self.fee_rate}")
        if not 0.0 <= self.slippage < 1.0:
            raise ValueError(f"slippage must be in [0, 1), got {self.slippage}")
        if not 0.0 <= self.bnb_discount < 1.0:
            raise ValueError(f"bnb_discount must be in [0, 1), got {self.bnb_discount}")
        object.__setattr__(self, "fee_asset", FeeAsset(self.fee_asset))

    @property
    def effective_rate(self) -> float:
        """Give the fee as a fraction of notional (BNB's discount applied)."""
        if self.fee_asset is FeeAsset.BNB:
            return self.fee_rate * (1.0 - self.bnb_discount)
        return self.fee_rate

    def fee_in(self, side: Side) -> FeeIn:
        """Give the asset a fill on ``side`` pays its fee in."""
        if self.fee_asset is FeeAsset.BNB:
            return FeeIn.OTHER
        if self.fee_asset is FeeAsset.RECEIVED and side is Side.BUY:
            return FeeIn.BASE
        return FeeIn.QUOTE

    def charge(self, side: Side, price: float, quantity: float) -> Charge:
        """Give what a fill of ``quantity`` (the order's base amount) at ``price`` moves."""
        notional = price * quantity
        fee_quote = abs(notional) * self.effective_rate
        fee_in = self.fee_in(side)
        sign = 1.0 if side is Side.BUY else -1.0
        base, quote = sign * quantity, -sign * notional
        if fee_in is FeeIn.BASE:
            fee = quantity * self.effective_rate
            return Charge(base - fee, quote, fee, fee_in, fee_quote)
        if fee_in is FeeIn.QUOTE:
            return Charge(base, quote - fee_quote, fee_quote, fee_in, fee_quote)
        return Charge(base, quote, fee_quote, fee_in, fee_quote)

    def market_price(self, side: Side, price: float) -> float:
        """Give the fill price of a market order whose reference price is ``price``."""
        if side is Side.BUY:
            return price * (1.0 + self.slippage)
        return price * (1.0 - self.slippage)

    def fee(self, notional: float) -> float:
        """Give the fee's value, in quote currency, on a fill of ``notional`` quote."""
        return abs(notional) * self.effective_rate

    def quote_delta(self, side: Side, price: float, quantity: float) -> float:
        """Give the signed change of the quote balance for a fill (fees included)."""
        return self.charge(side, price, quantity).quote

    def max_buy_quantity(self, quote: float, price: float) -> float:
        """Give the largest order quantity ``quote`` can buy at ``price``, fee included."""
        if self.fee_in(Side.BUY) is FeeIn.QUOTE:
            return quote / (price * (1.0 + self.fee_rate))
        return quote / price

    def order_quantity(self, side: Side, base: float) -> float:
        """Give the order quantity whose fill moves the base balance by ``base`` (unsigned).

        The quantity itself, unless the fee is taken from the base received: covering a short
        of ``base`` then needs ``base / (1 - fee_rate)``.
        """
        if self.fee_in(side) is FeeIn.BASE:
            return abs(base) / (1.0 - self.effective_rate)
        return abs(base)

    def on_pair(self) -> FillModel:
        """Give the model an account of the market's two balances alone books fees by.

        A backtest holds base and quote only: with ``bnb`` there is no third balance to pay
        from, so the fee is charged in quote value at the discounted rate (and reserved when
        sizing from cash). The other fee assets are booked as they are.
        """
        if self.fee_asset is not FeeAsset.BNB:
            return self
        return FillModel(self.effective_rate, self.slippage, FeeAsset.QUOTE, self.bnb_discount)


def bar_path(open_: float, high: float, low: float, close: float) -> tuple[float, ...]:
    """Give the four vertices of the price path inside one bar, in time order."""
    if close >= open_:
        return (open_, low, high, close)
    return (open_, high, low, close)


def path_price(path: Sequence[float], fraction: float) -> float:
    """Give the price at ``fraction`` (0..1) of a bar along its path (equal time per leg)."""
    legs = len(path) - 1
    if fraction <= 0.0:
        return path[0]
    if fraction >= 1.0:
        return path[-1]
    position = fraction * legs
    leg = int(position)
    within = position - leg
    return path[leg] + (path[leg + 1] - path[leg]) * within


def limit_fill_price(
    side: Side, limit_price: float, open_: float, high: float, low: float
) -> float | None:
    """Give the fill price of a resting limit order over one segment, or None if untouched."""
    if side is Side.BUY:
        if open_ <= limit_price:
            return open_
        if low <= limit_price:
            return limit_price
        return None
    if open_ >= limit_price:
        return open_
    if high >= limit_price:
        return limit_price
    return None


def stop_fires_on_rise(kind: StopKind, side: Side) -> bool:
    """Tell whether a stop of this kind and side fires when the price rises to it."""
    if kind is StopKind.TAKE_PROFIT:
        return side is Side.SELL
    return side is Side.BUY


def stop_trigger_price(
    kind: StopKind, side: Side, stop_price: float, open_: float, high: float, low: float
) -> float | None:
    """Give the price at which a stop fires over one segment, or None if it does not."""
    if stop_fires_on_rise(kind, side):
        if open_ >= stop_price:
            return open_
        if high >= stop_price:
            return stop_price
        return None
    if open_ <= stop_price:
        return open_
    if low <= stop_price:
        return stop_price
    return None


def would_trigger_now(kind: StopKind, side: Side, stop_price: float, price: float) -> bool:
    """Tell whether a stop placed now, at ``price``, would fire immediately."""
    if stop_fires_on_rise(kind, side):
        return price >= stop_price
    return price <= stop_price


@dataclass(frozen=True)
class Exit:
    """A protective exit that fired: which kind, and the price it fired at."""

    kind: StopKind
    price: float


@dataclass(frozen=True)
class Protection:
    """The protective levels of an open position, all optional.

    ``stop_loss`` and ``take_profit`` are absolute prices; ``trail`` is a fraction and ``peak``
    the best price seen since entry (highest for a long, lowest for a short).
    """

    stop_loss: float | None = None
    take_profit: float | None = None
    trail: float | None = None
    peak: float | None = None


_KIND_OF_REASON = {
    2: StopKind.STOP_LOSS,  # fills_nb.REASON_STOP_LOSS
    3: StopKind.TAKE_PROFIT,
    4: StopKind.TRAILING_STOP,
}
_NAN = float("nan")


def first_exit(
    position_side: Side, protection: Protection, path: Sequence[float]
) -> tuple[Exit | None, Protection]:
    """Walk a price path and give the first protective exit it hits, with the updated peak.

    ``position_side`` is the side of the open position (BUY = long); exits trade the other
    way. The path is a sequence of prices in time order (``bar_path`` of a bar, or replay
    ticks): the opening point first (only a gap fires there), then each monotonic leg in turn,
    the level nearest the leg's start winning within a leg; the peak moves after each leg.
    The walk is `workbench.fills_nb.walk_nb`, the one the backtest kernels run.
    """
    from workbench.fills_nb import walk_nb  # numba: loaded by the first caller that walks

    p = protection
    why, price, peak = walk_nb(
        1 if position_side is Side.BUY else -1,
        np.asarray(path, dtype=np.float64),
        False,
        _NAN if p.stop_loss is None else p.stop_loss,
        _NAN if p.take_profit is None else p.take_profit,
        _NAN if p.trail is None else p.trail,
        path[0] if p.peak is None else p.peak,
    )
    walked = Protection(p.stop_loss, p.take_profit, p.trail, float(peak))
    if why == 0:
        return None, walked
    return Exit(_KIND_OF_REASON[why], float(price)), walked
