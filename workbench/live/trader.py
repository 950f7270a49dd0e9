"""From signals to orders, one bar at a time, with the backtest's rules. Pure: no IO.

The rules are those of `workbench.backtest.plan` (its docstring is the reference):

* A signal on bar t's close acts at bar t+1's open. Entries only when flat; an entry and an
  exit on the same bar cancel; a long and a short entry on the same bar cancel; an opposite
  entry while in a position is ignored.
* Protective levels (stop-loss, take-profit, trailing stop, fixed_risk's ATR stop) are set
  from the entry FILL price; the trailing peak starts there. At each open a level the bar
  gapped through fires at the open; then (paper trading) the bar's path, as the fill model
  draws it, is walked at the bar's close, and a level it reached fires at its trigger price.
* A level that rests on the exchange as a stop order (`exchange_side`, set by the engine once
  the exchange accepted it) is not watched here: the exchange fires it on the same path. The
  trailing stop is always watched. After a restart `rebuild_peak` walks the stored bars since
  the entry so the trailing level continues where it was.

`on_open` is called with the first price of each bar, `on_close` with each closed bar;
both give the orders to place now. `on_fill` books what the broker did.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace

from workbench.broker.models import Fill, OrderIntent, OrderType
from workbench.candles import Candle
from workbench.fills import Exit, FillModel, Protection, Side, StopKind, bar_path, first_exit
from workbench.risk.sizing import EntrySizer
from workbench.strategy.incremental import SignalEvent
from workbench.strategy.risk import Risk


@dataclass
class _Pending:
    entry: bool = False
    exit: bool = False
    short_entry: bool = False
    short_exit: bool = False


class SignalTrader:
    """The position logic of one strategy on one symbol."""

    def __init__(
        self,
        strategy_id: str,
        symbol: str,
        risk: Risk,
        fill_model: FillModel,
        sizer: EntrySizer,
        allow_short: bool = False,
    ) -> None:
        self.strategy_id = strategy_id
        self.symbol = symbol
        self.risk = risk
        self.fill_model = fill_model
        self.sizer = sizer
        self.allow_short = allow_short
        self.side = 0  # +1 long, -1 short, 0 flat
        self.amount = 0.0
        self.protection = Protection()
        self._pending = _Pending()
        self._opened_ms: int | None = None
        self._exiting = False
        #: the levels resting on the exchange as stop orders (not watched here)
        self.exchange_side: frozenset[StopKind] = frozenset()
        #: when the open position's first fill happened (None when flat)
        self.entry_ms: int | None = None

    # -- events ---------------------------------------------------------------------------
    def on_open(self, ts_ms: int, open_price: float, cash: float) -> list[OrderIntent]:
        """Give the orders for the first price of bar `ts_ms` (signals of the bar before)."""
        pending, self._pending = self._pending, _Pending()
        self._opened_ms = ts_ms
        if self.side != 0:
            hit = self._walk([open_price])
            if hit is not None:
                return [self._exit(ts_ms, hit.kind.value, open_price)]
            if (self.side > 0 and pending.exit) or (self.side < 0 and pending.short_exit):
                return [self._exit(ts_ms, "exit", None)]
            return []
        go_long = pending.entry and not pending.exit
        go_short = self.allow_short and pending.short_entry and not pending.short_exit
        if go_long == go_short:
            return []
        side = Side.BUY if go_long else Side.SELL
        amount = self.sizer.amount(side, open_price, cash)
        if amount is None or amount <= 0:
            return []
        return [
            OrderIntent(
                self.strategy_id,
                self.symbol,
                side,
                amount,
                OrderType.MARKET,
                purpose="entry",
                bar_ts_ms=ts_ms,
            )
        ]

    def on_close(self, candle: Candle, signal: SignalEvent | None) -> list[OrderIntent]:
        """Give the protective exits bar `candle` reached; remember its signals for the open."""
        self.sizer.update(candle)
        self.remember(signal)
        if self.side == 0 or self._exiting:
            return []
        hit = self._walk(bar_path(candle.open, candle.high, candle.low, candle.close))
        if hit is None:
            return []
        return [self._exit(candle.ts_ms, hit.kind.value, hit.price)]

    def rebuild_peak(self, candles: Iterable[Candle]) -> None:
        """Take the bars closed since the entry into the trailing peak (after a restart).

        Walking a bar's path moves the peak to its high (long) or low (short); no exit fired
        on these bars, or the position would not be open.
        """
        if self.side == 0 or self.protection.peak is None:
            return
        peak = self.protection.peak
        for candle in candles:
            peak = max(peak, candle.high) if self.side > 0 else min(peak, candle.low)
        self.protection = replace(self.protection, peak=peak)

    def flatten(self, ts_ms: int) -> list[OrderIntent]:
        """Give a market exit of the whole position (none when flat or already exiting)."""
        if self.side == 0 or self._exiting:
            return []
        return [self._exit(ts_ms, "flatten", None)]

    def remember(self, signal: SignalEvent | None) -> None:
        """Keep a closed bar's signals for the next open (also after seeding on history)."""
        if signal is not None:
            self._pending = _Pending(
                signal.entry, signal.exit, signal.short_entry, signal.short_exit
            )

    def on_fill(self, fill: Fill) -> None:
        """Book a fill of one of this trader's orders."""
        signed = fill.amount if fill.side is Side.BUY else -fill.amount
        was_flat = self.side == 0
        self.amount += signed
        if abs(self.amount) <= 1e-12 * max(1.0, fill.amount):
            self.amount, self.side, self.protection = 0.0, 0, Protection()
            self._exiting = False
            self.exchange_side = frozenset()
            self.entry_ms = None
            return
        self.side = 1 if self.amount > 0 else -1
        if was_flat:
            self.protection = self._levels(fill.price)
            self.entry_ms = fill.ts_ms

    # -- helpers ----------------------------------------------------------------------------
    def _walk(self, path: list[float] | tuple[float, ...]) -> Exit | None:
        """Walk a path through the watched levels; keep the new peak; give the exit, if any."""
        watched = self.protection
        if self.exchange_side:
            watched = replace(
                watched,
                stop_loss=None if StopKind.STOP_LOSS in self.exchange_side else watched.stop_loss,
                take_profit=(
                    None if StopKind.TAKE_PROFIT in self.exchange_side else watched.take_profit
                ),
            )
        hit, walked = first_exit(self._position_side, watched, path)
        self.protection = replace(self.protection, peak=walked.peak)
        return hit

    @property
    def _position_side(self) -> Side:
        return Side.BUY if self.side > 0 else Side.SELL

    def _levels(self, fill_price: float) -> Protection:
        risk, side = self.risk, self.side
        stop = fill_price * (1.0 - side * risk.stop_loss) if risk.stop_loss else None
        distance = self.sizer.atr_stop_distance()
        if distance is not None:
            atr_level = fill_price - side * distance
            if stop is None:
                stop = atr_level
            else:
                stop = max(stop, atr_level) if side > 0 else min(stop, atr_level)
        target = fill_price * (1.0 + side * risk.take_profit) if risk.take_profit else None
        return Protection(stop, target, risk.trailing_stop, fill_price)

    def _exit(self, ts_ms: int, purpose: str, trigger: float | None) -> OrderIntent:
        self._exiting = True
        side = Side.SELL if self.side > 0 else Side.BUY
        kind = purpose in {k.value for k in StopKind}
        return OrderIntent(
            self.strategy_id,
            self.symbol,
            side,
            abs(self.amount),
            OrderType.MARKET,
            stop_price=trigger if kind else None,
            purpose=purpose,
            bar_ts_ms=ts_ms,
        )
