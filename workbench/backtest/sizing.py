"""Entry sizes per bar for the four sizing methods of `workbench.strategy.risk`.

Every method is expressed as what an entry at bar i's open may use, computed from data up to
bar i-1's close (no look-ahead) and bar i's open:

* ``fixed_amount``: an AMOUNT of base units, ``amount / (fill * (1 + fee_rate))``, so the quote
  spent, fee included, is ``amount`` (capped by the cash available);
* ``fixed_fraction``, ``fixed_risk``, ``volatility_target``: a FRACTION of the cash available
  to the position (its equity while flat; with shared cash, the pool's cash balance for a
  long entry — which holds the proceeds of another symbol's open short — and the pool's free
  cash for a short entry, as vectorbt sizes them), spent fee included:
  ``units = fraction * cash / (fill * (1 + fee_rate))`` (the fill model's
  ``max_buy_quantity`` of that quote);

  - ``fixed_risk``: ``fraction = risk_fraction * fill * (1 + fee_rate) / (atr_multiple * ATR)``
    so that ``units = equity * risk_fraction / (atr_multiple * ATR)``, with ATR (Wilder,
    ``atr_period``) of the signal bar; the same distance ``atr_multiple * ATR`` from the fill
    is also a stop-loss level (the tighter one wins when the spec also has ``stop_loss``);
  - ``volatility_target``: ``fraction = min(max_fraction, target / realized)``, ``realized``
    the std (ddof=1) of the last ``lookback`` log close-to-close returns times
    sqrt(bars per 365-day year).

Fractions are capped at 1 (no leverage). NaN means "no entry possible" (indicator warm-up).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from workbench.strategy.indicators.registry import KINDS
from workbench.strategy.risk import FixedAmount, FixedFraction, FixedRisk, Risk, VolatilityTarget

SECONDS_PER_YEAR = 365 * 86400


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


def realized_volatility(close: np.ndarray, lookback: int, timeframe_seconds: int) -> np.ndarray:
    """Give the annualized std of the last ``lookback`` log returns, per bar (NaN before)."""
    logret = np.full(close.shape, np.nan)
    logret[1:] = np.diff(np.log(close))
    std = pd.Series(logret).rolling(lookback, min_periods=lookback).std(ddof=1).to_numpy()
    return std * np.sqrt(SECONDS_PER_YEAR / timeframe_seconds)


def entry_sizes(
    risk: Risk,
    candles: pd.DataFrame,
    timeframe_seconds: int,
    fee_rate: float,
    slippage: float,
) -> EntrySizes:
    """Give the size of an entry filled at each bar's open under the spec's sizing method."""
    open_ = candles["open"].to_numpy(dtype=np.float64)
    n = len(open_)
    fill_long = open_ * (1.0 + slippage)
    fill_short = open_ * (1.0 - slippage)
    no_stop = np.full(n, np.nan)
    sizing = risk.sizing
    if isinstance(sizing, FixedAmount):
        return EntrySizes(
            sizing.amount / (fill_long * (1.0 + fee_rate)),
            sizing.amount / (fill_short * (1.0 + fee_rate)),
            no_stop,
            as_fraction=False,
        )
    if isinstance(sizing, FixedFraction):
        frac = np.full(n, min(sizing.fraction, 1.0))
        return EntrySizes(frac, frac.copy(), no_stop, as_fraction=True)
    if isinstance(sizing, FixedRisk):
        distance = _lagged(sizing.atr_multiple * atr(candles, sizing.atr_period))
        with np.errstate(divide="ignore", invalid="ignore"):
            long = sizing.risk_fraction * fill_long * (1.0 + fee_rate) / distance
            short = sizing.risk_fraction * fill_short * (1.0 + fee_rate) / distance
        bad = np.isnan(distance)
        long[bad] = np.nan
        short[bad] = np.nan
        return EntrySizes(np.minimum(long, 1.0), np.minimum(short, 1.0), distance, True)
    if isinstance(sizing, VolatilityTarget):
        close = candles["close"].to_numpy(dtype=np.float64)
        realized = _lagged(realized_volatility(close, sizing.lookback, timeframe_seconds))
        with np.errstate(divide="ignore", invalid="ignore"):
            frac = np.minimum(
                np.minimum(sizing.max_fraction, sizing.target_volatility / realized), 1.0
            )
        frac[np.isnan(realized)] = np.nan
        return EntrySizes(frac, frac.copy(), no_stop, as_fraction=True)
    raise TypeError(f"unknown sizing method {sizing!r}")
