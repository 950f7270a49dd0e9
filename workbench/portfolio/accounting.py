"""Positions, cash and P&L of one (sub-)portfolio in its quote currency. Pure: no IO.

Conventions:
- Fees are paid in the asset the venue took them in (`Fill.fee_in`, see workbench.fills): in
  quote they come out of cash; in base they come out of what a buy adds to the position (a buy
  of q with fee f·q adds q − f·q); in a third asset (BNB) they leave cash and the position
  whole and are kept apart (`fees_apart`, by asset), their quote value counted against equity.
- `fees` sums every fee's value in quote (`Fill.fee_value`); net P&L = realized − fees.
- A position's `average_price` is the volume-weighted fill price of the open amount; reducing
  a position realizes (exit − average) × amount (sign flipped for shorts), before fees.
- Equity = cash + Σ amount × mark price − the quote value of fees paid apart.
- A round trip (a closed trade) runs from the fill that opens a position from flat to the fill
  that brings it back to flat; its P&L is net of all fees paid along the way. "Flat" is an
  amount of at most `dust`: what a lot-rounded exit leaves of a position bought net of a fee
  in base is too small to trade; it stays in the position and is carried into the next trade.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from workbench.broker.models import Fill
from workbench.fills import FeeIn, Side

_EPSILON = 1e-12


@dataclass
class Position:
    """The open amount of one symbol (positive long, negative short) and its cost."""

    symbol: str
    amount: float = 0.0
    average_price: float = 0.0
    realized_pnl: float = 0.0
    fees: float = 0.0

    def unrealized(self, mark: float) -> float:
        return (mark - self.average_price) * self.amount if self.amount else 0.0


@dataclass(frozen=True)
class RoundTrip:
    """A closed trade: from flat to flat."""

    symbol: str
    direction: str  # "long" or "short"
    entry_ms: int
    exit_ms: int
    amount: float
    entry_price: float
    exit_price: float
    pnl: float
    fees: float

    @property
    def return_fraction(self) -> float:
        cost = self.entry_price * self.amount
        return self.pnl / cost if cost else 0.0


@dataclass
class _Open:
    entry_ms: int
    max_amount: float = 0.0
    entry_value: float = 0.0
    exit_value: float = 0.0
    exit_amount: float = 0.0
    realized: float = 0.0
    fees: float = 0.0


@dataclass
class Portfolio:
    """Cash and positions in one quote currency, changed only by fills."""

    cash: float
    positions: dict[str, Position] = field(default_factory=dict)
    round_trips: list[RoundTrip] = field(default_factory=list)
    fees: float = 0.0
    #: fees paid in a third asset (BNB), in its units, and their value in quote
    fees_apart: dict[str, float] = field(default_factory=dict)
    fees_apart_value: float = 0.0
    #: the largest amount counted as flat (what a lot-rounded exit leaves)
    dust: float = 0.0
    _open: dict[str, _Open] = field(default_factory=dict, repr=False)

    def position(self, symbol: str) -> Position:
        pos = self.positions.get(symbol)
        if pos is None:  # made only when missing: this runs on every order and every bar
            pos = self.positions[symbol] = Position(symbol)
        return pos

    def is_flat(self, symbol: str) -> bool:
        """Tell whether a symbol's position is no more than dust."""
        return abs(self.position(symbol).amount) <= max(self.dust, _EPSILON)

    def apply(self, fill: Fill) -> RoundTrip | None:
        """Book a fill; give the round trip it closes, if it brings the position to flat."""
        fee_in, fee_value = fill.fee_in, fill.fee_value
        signed = fill.base_delta
        self.cash -= (fill.amount if fill.side is Side.BUY else -fill.amount) * fill.price
        if fee_in is FeeIn.QUOTE:
            self.cash -= fill.fee
        elif fee_in is FeeIn.OTHER:
            currency = fill.fee_currency
            self.fees_apart[currency] = self.fees_apart.get(currency, 0.0) + fill.fee
            self.fees_apart_value += fee_value
        self.fees += fee_value
        pos = self.position(fill.symbol)
        pos.fees += fee_value
        closed: RoundTrip | None = None
        remaining = signed
        flat = max(self.dust, _EPSILON)
        # The part that reduces the open position realizes P&L at the average price.
        if abs(pos.amount) > flat and signed and (pos.amount > 0) != (signed > 0):
            reducing = min(abs(signed), abs(pos.amount))
            direction = 1.0 if pos.amount > 0 else -1.0
            pnl = (fill.price - pos.average_price) * reducing * direction
            pos.realized_pnl += pnl
            trip = self._open.get(fill.symbol)
            share = reducing / abs(signed)
            if trip is not None:
                trip.realized += pnl
                trip.fees += fee_value * share
                trip.exit_value += fill.price * reducing
                trip.exit_amount += reducing
            pos.amount -= direction * reducing
            remaining = signed + direction * reducing
            if abs(pos.amount) <= max(flat, _EPSILON * reducing):
                if abs(pos.amount) <= _EPSILON * max(1.0, reducing):
                    pos.amount = 0.0
                    pos.average_price = 0.0
                closed = self._close(fill, direction)
        # What a fee-in-base cover leaves over by rounding is no new position.
        if abs(remaining) > _EPSILON * max(1.0, abs(signed)):
            trip = self._open.get(fill.symbol)
            if trip is None:
                trip = self._open[fill.symbol] = _Open(entry_ms=fill.ts_ms)
            value = pos.average_price * abs(pos.amount) + fill.price * abs(remaining)
            pos.amount += remaining
            pos.average_price = value / abs(pos.amount) if pos.amount else 0.0
            trip.entry_value += fill.price * abs(remaining)
            trip.max_amount += abs(remaining)
            trip.fees += fee_value * abs(remaining) / abs(signed)
        return closed

    def _close(self, fill: Fill, direction: float) -> RoundTrip | None:
        trip = self._open.pop(fill.symbol, None)
        if trip is None or trip.max_amount == 0:
            return None
        done = RoundTrip(
            symbol=fill.symbol,
            direction="long" if direction > 0 else "short",
            entry_ms=trip.entry_ms,
            exit_ms=fill.ts_ms,
            amount=trip.max_amount,
            entry_price=trip.entry_value / trip.max_amount,
            exit_price=trip.exit_value / trip.exit_amount if trip.exit_amount else fill.price,
            pnl=trip.realized - trip.fees,
            fees=trip.fees,
        )
        self.round_trips.append(done)
        return done

    def equity(self, marks: dict[str, float]) -> float:
        """Give cash plus the open positions valued at the mark prices, less the value of
        fees paid in a third asset."""
        value = self.cash - self.fees_apart_value
        for symbol, pos in self.positions.items():
            if pos.amount:
                value += pos.amount * marks.get(symbol, pos.average_price)
        return value

    def unrealized(self, marks: dict[str, float]) -> float:
        return sum(
            pos.unrealized(marks.get(s, pos.average_price)) for s, pos in self.positions.items()
        )

    @property
    def realized(self) -> float:
        return sum(pos.realized_pnl for pos in self.positions.values())

    def exposure(self, marks: dict[str, float]) -> float:
        """Give the absolute value of all open positions at the mark prices."""
        return sum(
            abs(pos.amount) * marks.get(s, pos.average_price) for s, pos in self.positions.items()
        )
