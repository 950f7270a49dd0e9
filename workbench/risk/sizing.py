"""Entry sizes, the one implementation: the formulas of the four sizing methods, applied to
whole arrays of bars (`entry_sizes`: backtest and sweep) and one closed candle at a time
(`EntrySizer`: the live trader, paper or real), so a size means the same thing in both. An
entry filled at bar i's open is sized from data up to bar i-1's close and bar i's open.
``cost`` is the quote one unit of order quantity takes from the cash, fee included
(`unit_cost`: for a buy ``1 / max_buy_quantity(1, fill)`` of the fill model, so
``fill * (1 + fee)`` with fees in quote and ``fill`` with fees in the asset received).

* fixed_amount: spend ``amount`` quote, fee included: ``amount / cost`` units.
* fixed_fraction / fixed_risk / volatility_target: spend ``fraction`` of the cash available,
  fee included: ``fraction * cash / cost`` units.

  - fixed_risk: ``fraction = risk_fraction * cost / (atr_multiple * ATR)``, so that
    ``units = cash * risk_fraction / (atr_multiple * ATR)`` (ATR: Wilder, ``atr_period``, of
    the signal bar); that distance from the fill is also a stop-loss level;
  - volatility_target: ``fraction = min(max_fraction, target / realized)``, ``realized`` the
    std (ddof=1) of the last ``lookback`` log close-to-close returns times sqrt(bars per
    365-day year).

Fractions are capped at 1 (no leverage). NaN means "no entry possible" (warm-up). Every
formula takes floats or numpy arrays alike.

Whole arrays of bars (`entry_sizes`, for the backtest and the sweep kernel) are in vectorbt's
terms: either an AMOUNT of base units (``fixed_amount``) or a FRACTION of the cash available
to the position (the other methods: its equity while flat; with shared cash, the pool's cash
balance for a long entry — which holds the proceeds of another symbol's open short — and the
pool's free cash for a short entry, as vectorbt sizes them), which vectorbt spends fee
included. Amounts are what the position will hold: with the fee taken from the base received
a buy of ``q`` holds ``q * (1 - fee)`` (see `workbench.backtest.ledger.fee_rates` for the fee
vectorbt then charges on it).

Where each trading rule lives: docs/architecture.md.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from workbench.candles import Candle
from workbench.fills import FeeIn, FillModel, Side
from workbench.strategy.indicators.registry import KINDS
from workbench.strategy.risk import (
    FixedAmount,
    FixedFraction,
    FixedRisk,
    Risk,
    Sizing,
    VolatilityTarget,
)

SECONDS_PER_YEAR = 365 * 86400


def unit_cost(fill_model: FillModel, side: Side, fill: Any) -> Any:
    """Give the quote one unit of an entry on ``side`` at ``fill`` takes, fee included.

    A buy costs ``1 / max_buy_quantity(1, fill)``: the fill plus the fee when the fee is paid
    in quote, the fill alone otherwise. A short (a sell) reserves its notional plus the fee,
    which a sell always pays in quote (or in BNB).
    """
    rate = fill_model.effective_rate
    if side is Side.BUY and fill_model.fee_in(Side.BUY) is not FeeIn.QUOTE:
        return fill * 1.0
    return fill * (1.0 + rate)


def fixed_risk_fraction(sizing: FixedRisk, cost: Any, atr: Any) -> Any:
    """Give fixed_risk's fraction of cash for an entry of ``cost`` per unit (NaN: none)."""
    distance = sizing.atr_multiple * atr
    with np.errstate(divide="ignore", invalid="ignore"):
        fraction = np.where(distance > 0, sizing.risk_fraction * cost / distance, np.nan)
    return np.minimum(fraction, 1.0)


def volatility_fraction(sizing: VolatilityTarget, realized: Any) -> Any:
    """Give volatility_target's fraction of cash at a realized volatility (NaN: none)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        fraction = np.minimum(
            np.minimum(sizing.max_fraction, sizing.target_volatility / realized), 1.0
        )
    return np.where(np.isnan(realized), np.nan, fraction)


def log_returns(close: np.ndarray) -> np.ndarray:
    """Give the log close-to-close returns of a series (one fewer than its closes)."""
    return np.log(close[1:] / close[:-1])


def realized_volatility(returns: np.ndarray, lookback: int, timeframe_seconds: int) -> np.ndarray:
    """Give the annualized std (ddof=1) of each window of ``lookback`` returns, oldest first."""
    if len(returns) < lookback:
        return np.empty(0)
    windows = np.lib.stride_tricks.sliding_window_view(returns, lookback)
    return windows.std(axis=1, ddof=1) * math.sqrt(SECONDS_PER_YEAR / timeframe_seconds)


class EntrySizer:
    """Keeps what a sizing method needs (ATR, recent returns) and sizes the next entry."""

    def __init__(self, sizing: Sizing, fill_model: FillModel, timeframe_seconds: int) -> None:
        self.sizing = sizing
        self.fill_model = fill_model
        self.timeframe_seconds = timeframe_seconds
        self.atr_value = math.nan
        self._atr = (
            KINDS["atr"].incremental({"period": sizing.atr_period})
            if isinstance(sizing, FixedRisk)
            else None
        )
        lookback = sizing.lookback if isinstance(sizing, VolatilityTarget) else 0
        self._closes: deque[float] = deque(maxlen=lookback + 1)

    def update(self, candle: Candle) -> None:
        """Take in a closed candle."""
        if self._atr is not None:
            (self.atr_value,) = self._atr.update(candle.high, candle.low, candle.close)
        if isinstance(self.sizing, VolatilityTarget):
            self._closes.append(candle.close)

    def atr_stop_distance(self) -> float | None:
        """Give the extra stop distance fixed_risk imposes (None for other methods)."""
        if isinstance(self.sizing, FixedRisk) and not math.isnan(self.atr_value):
            return self.sizing.atr_multiple * self.atr_value
        return None

    def fraction(self, side: Side, fill_price: float) -> float:
        """Give the fraction of cash an entry at ``fill_price`` may spend (NaN: no entry)."""
        sizing = self.sizing
        if isinstance(sizing, FixedFraction):
            return min(sizing.fraction, 1.0)
        if isinstance(sizing, FixedRisk):
            cost = unit_cost(self.fill_model, side, fill_price)
            return float(fixed_risk_fraction(sizing, cost, self.atr_value))
        if isinstance(sizing, VolatilityTarget):
            if len(self._closes) <= sizing.lookback:
                return math.nan
            closes = np.fromiter(self._closes, dtype=np.float64, count=len(self._closes))
            realized = realized_volatility(
                log_returns(closes), sizing.lookback, self.timeframe_seconds
            )
            return float(volatility_fraction(sizing, realized[-1]))
        raise TypeError(f"no fraction for sizing {sizing!r}")

    def amount(self, side: Side, open_price: float, cash: float) -> float | None:
        """Give the order quantity of an entry filled at ``open_price`` (None or 0: no entry)."""
        fill = self.fill_model.market_price(side, open_price)
        if isinstance(self.sizing, FixedAmount):
            spend = min(self.sizing.amount, cash)
        else:
            fraction = self.fraction(side, fill)
            if math.isnan(fraction) or fraction <= 0 or cash <= 0:
                return None
            spend = fraction * cash
        if side is Side.BUY:
            return self.fill_model.max_buy_quantity(spend, fill)
        return spend / unit_cost(self.fill_model, side, fill)


@dataclass(frozen=True)
class EntrySizes:
    """Sizes for an entry at each bar's open, long and short, and an extra ATR stop distance."""

    long: np.ndarray
    short: np.ndarray
    atr_stop: np.ndarray
    as_fraction: bool  # True: fraction of cash (vectorbt Percent); False: base units


def _lagged(values: np.ndarray) -> np.ndarray:
    out = np.full(values.shape, np.nan)
    out[1:] = values[:-1]
    return out


def atr(candles: pd.DataFrame, period: int) -> np.ndarray:
    """Give Wilder's ATR per bar, as the strategy indicator `atr` computes it."""
    fields = {c: candles[c].to_numpy(dtype=np.float64)[None, :] for c in ("high", "low", "close")}
    (out,) = KINDS["atr"].vector(fields, {"period": np.array([period], dtype=np.int64)}, 1)
    return np.asarray(out)[0]


def bar_volatility(close: np.ndarray, lookback: int, timeframe_seconds: int) -> np.ndarray:
    """Give per bar the realized volatility of the ``lookback`` returns up to its close."""
    out = np.full(close.shape, np.nan)
    windows = realized_volatility(log_returns(close), lookback, timeframe_seconds)
    out[lookback : lookback + len(windows)] = windows
    return out


def entry_sizes(
    risk: Risk, candles: pd.DataFrame, timeframe_seconds: int, fill_model: FillModel
) -> EntrySizes:
    """Give the size of an entry filled at each bar's open under the spec's sizing method.

    ``fill_model`` is the one the account books by (`FillModel.on_pair`).
    """
    open_ = candles["open"].to_numpy(dtype=np.float64)
    n = len(open_)
    fill_long = fill_model.market_price(Side.BUY, open_)
    fill_short = fill_model.market_price(Side.SELL, open_)
    cost_long = unit_cost(fill_model, Side.BUY, fill_long)
    cost_short = unit_cost(fill_model, Side.SELL, fill_short)
    no_stop = np.full(n, np.nan)
    sizing = risk.sizing
    if isinstance(sizing, FixedAmount):
        held = 1.0 - fill_model.effective_rate if fill_model.fee_in(Side.BUY) is FeeIn.BASE else 1.0
        return EntrySizes(
            sizing.amount / cost_long * held, sizing.amount / cost_short, no_stop, False
        )
    if isinstance(sizing, FixedFraction):
        frac = np.full(n, min(sizing.fraction, 1.0))
        return EntrySizes(frac, frac.copy(), no_stop, as_fraction=True)
    if isinstance(sizing, FixedRisk):
        signal_atr = _lagged(atr(candles, sizing.atr_period))
        return EntrySizes(
            fixed_risk_fraction(sizing, cost_long, signal_atr),
            fixed_risk_fraction(sizing, cost_short, signal_atr),
            sizing.atr_multiple * signal_atr,
            True,
        )
    if isinstance(sizing, VolatilityTarget):
        close = candles["close"].to_numpy(dtype=np.float64)
        realized = _lagged(bar_volatility(close, sizing.lookback, timeframe_seconds))
        frac = volatility_fraction(sizing, realized)
        return EntrySizes(frac, frac.copy(), no_stop, as_fraction=True)
    raise TypeError(f"unknown sizing method {sizing!r}")
