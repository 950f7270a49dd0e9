"""Entry sizes per bar in vectorbt's terms, for the sizing methods of `workbench.strategy.risk`.

The formulas are those of `workbench.risk.sizing` (its docstring is the reference; the live
sizer calls the same functions), applied to whole arrays of bars: what an entry at bar i's
open may use, from data up to bar i-1's close (no look-ahead) and bar i's open.

vectorbt is handed either an AMOUNT of base units (``fixed_amount``) or a FRACTION of the cash
available to the position (the other methods: its equity while flat; with shared cash, the
pool's cash balance for a long entry — which holds the proceeds of another symbol's open
short — and the pool's free cash for a short entry, as vectorbt sizes them), which vectorbt
spends fee included. Amounts are what the position will hold: with the fee taken from the base
received a buy of ``q`` holds ``q * (1 - fee)`` (see `workbench.backtest.ledger.fee_rates` for
the fee vectorbt then charges on it).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from workbench.fills import FeeIn, FillModel, Side
from workbench.risk.sizing import (
    fixed_risk_fraction,
    log_returns,
    realized_volatility,
    unit_cost,
    volatility_fraction,
)
from workbench.strategy.indicators.registry import KINDS
from workbench.strategy.risk import FixedAmount, FixedFraction, FixedRisk, Risk, VolatilityTarget


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
