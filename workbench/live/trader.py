"""From signals to orders, one bar at a time, with the backtest's rules. Pure: no IO.

The rules are those of `workbench.backtest.plan` (its docstring is the reference), run by the
same compiled functions: what an open does with the signals (`workbench.signals_nb`), stop
levels and protective exits (`workbench.fills_nb`).

* A signal on bar t's close acts at bar t+1's open. Entries only when flat; an entry and an
  exit on the same bar cancel; a long and a short entry on the same bar cancel; an opposite
  entry while in a position is ignored.
* Protective levels (stop-loss, take-profit, trailing stop, fixed_risk's ATR stop) are set
  from the entry FILL price; the trailing peak starts there. At each open a level the bar
  gapped through fires at the open; then (paper trading) the bar's path, as the fill model
  draws it, is walked at the bar's close, and a level it reached fires at its trigger price.
* A level that rests on the exchange as a stop order is not watched here: the exchange fires
  it on the same path. The order manager tells the trader which levels rest
  (`on_protection`, a `ProtectionChanged` event). The trailing stop is always watched.

`on_open` is called with the first price of each bar, `on_close` with each closed bar;
both give the orders the rules call for now. The trader keeps no memory of orders in flight:
while a position is open, every bar whose rules call for an exit gives that exit again, and
the order manager, which knows what is in flight, places it once (so a rejected exit never
disarms the stops). `on_fill` takes the position as booked.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from workbench.broker.models import Fill, OrderIntent, OrderPurpose, OrderType
from workbench.candles import Candle
from workbench.fills import Exit, FillModel, Protection, Side, StopKind, bar_path, first_exit
from workbench.fills_nb import entry_levels_nb, walk_nb
from workbench.records import evolve
from workbench.risk.sizing import EntrySizer
from workbench.signals_nb import OPEN_EXIT, OPEN_LONG, OPEN_NONE, open_action_nb
from workbench.strategy.incremental import SignalEvent
from workbench.strategy.risk import Risk

# Load the compiled forms the trader calls from Python now, at import: the first call in a
# process would otherwise pay numba's one-time set-up (about a second) on the order path. (A
# backtest never pays for these: its kernels have them compiled in.)
entry_levels_nb(1, 1.0, np.nan, np.nan, np.nan)
walk_nb(1, np.zeros(1), False, np.nan, np.nan, np.nan, 1.0)
open_action_nb(0, False, False, False, False)


@dataclass(frozen=True)
class ProtectionChanged:
    """Which protective levels of the open position now rest on the exchange."""

    resting: frozenset[StopKind]


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
        dust: float = 0.0,
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
        #: the largest position counted as flat (what a lot-rounded exit leaves)
        self.dust = dust
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
                return [self._exit(ts_ms, OrderPurpose(hit.kind.value), open_price)]
            action = open_action_nb(
                self.side, pending.entry, pending.exit, pending.short_entry, pending.short_exit
            )
            if action == OPEN_EXIT:
                return [self._exit(ts_ms, OrderPurpose.EXIT, None)]
            return []
        action = open_action_nb(
            0,
            pending.entry,
            pending.exit,
            self.allow_short and pending.short_entry,
            pending.short_exit,
        )
        if action == OPEN_NONE:
            return []
        side = Side.BUY if action == OPEN_LONG else Side.SELL
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
                purpose=OrderPurpose.ENTRY,
                bar_ts_ms=ts_ms,
            )
        ]

    def on_close(self, candle: Candle, signal: SignalEvent | None) -> list[OrderIntent]:
        """Give the protective exits bar `candle` reached; remember its signals for the open."""
        self.sizer.update(candle)
        self.remember(signal)
        if self.side == 0:
            return []
        hit = self._walk(bar_path(candle.open, candle.high, candle.low, candle.close))
        if hit is None:
            return []
        return [self._exit(candle.ts_ms, OrderPurpose(hit.kind.value), hit.price)]

    def flatten(self, ts_ms: int) -> list[OrderIntent]:
        """Give a market exit of the whole position (none when flat)."""
        if self.side == 0:
            return []
        return [self._exit(ts_ms, OrderPurpose.FLATTEN, None)]

    def on_protection(self, event: ProtectionChanged) -> None:
        """Take which levels rest on the exchange now (those are not watched here)."""
        self.exchange_side = event.resting if self.side != 0 else frozenset()

    def remember(self, signal: SignalEvent | None) -> None:
        """Keep a closed bar's signals for the next open (also after seeding on history)."""
        if signal is not None:
            self._pending = _Pending(
                signal.entry, signal.exit, signal.short_entry, signal.short_exit
            )

    def on_fill(self, fill: Fill, position: float) -> None:
        """Take a fill of one of this trader's orders and the position it left (as booked:
        net of a fee taken in base)."""
        was_flat = self.side == 0
        self.amount = position
        if abs(position) <= max(self.dust, 1e-12 * max(1.0, fill.amount)):
            self.side, self.protection = 0, Protection()
            self.exchange_side = frozenset()
            self.entry_ms = None
            return
        self.side = 1 if position > 0 else -1
        if was_flat:
            self.protection = self._levels(fill.price)
            self.entry_ms = fill.ts_ms

    # -- helpers ----------------------------------------------------------------------------
    def _walk(self, path: list[float] | tuple[float, ...]) -> Exit | None:
        """Walk a path through the watched levels; keep the new peak; give the exit, if any."""
        watched = self.protection
        if self.exchange_side:
            watched = evolve(
                watched,
                stop_loss=None if StopKind.STOP_LOSS in self.exchange_side else watched.stop_loss,
                take_profit=(
                    None if StopKind.TAKE_PROFIT in self.exchange_side else watched.take_profit
                ),
            )
        hit, walked = first_exit(self._position_side, watched, path)
        self.protection = evolve(self.protection, peak=walked.peak)
        return hit

    @property
    def _position_side(self) -> Side:
        return Side.BUY if self.side > 0 else Side.SELL

    def _levels(self, fill_price: float) -> Protection:
        risk = self.risk
        distance = self.sizer.atr_stop_distance()
        stop, target = entry_levels_nb(
            self.side,
            fill_price,
            math.nan if risk.stop_loss is None else risk.stop_loss,
            math.nan if risk.take_profit is None else risk.take_profit,
            math.nan if distance is None else distance,
        )
        return Protection(
            None if math.isnan(stop) else stop,
            None if math.isnan(target) else target,
            risk.trailing_stop,
            fill_price,
        )

    def _exit(self, ts_ms: int, purpose: OrderPurpose, trigger: float | None) -> OrderIntent:
        side = Side.SELL if self.side > 0 else Side.BUY
        return OrderIntent(
            self.strategy_id,
            self.symbol,
            side,
            # Covering a short pays a fee taken from the base bought: buy enough to be flat.
            self.fill_model.order_quantity(side, self.amount),
            OrderType.MARKET,
            stop_price=trigger if purpose.protective else None,
            purpose=purpose,
            bar_ts_ms=ts_ms,
        )
