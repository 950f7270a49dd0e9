"""The catalogue of indicator kinds: arguments, inputs, outputs, warm-up, and both evaluators.

An indicator in a spec names a ``kind`` from this catalogue plus its arguments. Arguments are
numbers or ``"$param"`` references. Single-series kinds take a ``source`` (a price field or
another indicator's output); bar kinds read fixed price fields.

Warm-up (``warmup_bars``): the number of input bars after which an indicator's value no longer
depends, to 1e-9 relative, on where the series started = bars to the first value plus, for
recursive smoothers (EMA, Wilder), ``ceil(ln(1e-9) / ln(1 - alpha))`` settling bars. A live
runner seeding from that much history matches a backtest that ran from far earlier. OBV is
cumulative: its level depends on the start forever, only its changes do not.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from workbench.strategy.indicators import incremental_osc as io
from workbench.strategy.indicators import incremental_trend as it
from workbench.strategy.indicators import kernels_osc as ko
from workbench.strategy.indicators import kernels_trend as kt

PRICE_FIELDS = ("open", "high", "low", "close", "volume", "hl2", "hlc3", "ohlc4")
SOURCE = "source"

Arrays = Mapping[str, np.ndarray]


@dataclass(frozen=True)
class ArgDef:
    """One numeric argument of an indicator kind, with its type, default and lower bound."""

    name: str
    type: type  # int or float
    default: int | float
    minimum: int | float
    doc: str = ""


@dataclass(frozen=True)
class IndicatorKind:
    """What a kind needs and gives, and how to compute it vectorized and incrementally."""

    name: str
    doc: str
    args: tuple[ArgDef, ...]
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]
    vector: Callable[[Arrays, Arrays, int], tuple[np.ndarray, ...]]
    incremental: Callable[[Mapping[str, Any]], Any]
    first: Callable[[Mapping[str, Any]], int]
    settle: Callable[[Mapping[str, Any]], int]
    default_source: str | None = None

    @property
    def arg_names(self) -> tuple[str, ...]:
        return tuple(a.name for a in self.args)

    def warmup_bars(self, args: Mapping[str, Any]) -> int:
        """Give input bars needed for a start-independent value with these arguments."""
        return self.first(args) + 1 + self.settle(args)


def settle_bars(alpha: float) -> int:
    """Give bars for a smoother with weight ``alpha`` to forget its seed to 1e-9 relative."""
    return math.ceil(math.log(1e-9) / math.log(1.0 - alpha)) if 0.0 < alpha < 1.0 else 0


def _period(default: int = 14, minimum: int = 1) -> ArgDef:
    return ArgDef("period", int, default, minimum, "window length in bars")


def _one(fn: Callable[..., np.ndarray]) -> Callable[..., tuple[np.ndarray, ...]]:
    return lambda *a: (fn(*a),)


def _n(a: Mapping[str, Any]) -> int:
    return int(a["period"])


_ZERO: Callable[[Mapping[str, Any]], int] = lambda a: 0  # noqa: E731


def _kinds() -> dict[str, IndicatorKind]:
    src = (SOURCE,)
    hlc = ("high", "low", "close")
    ks = [
        IndicatorKind(
            "sma",
            "Simple moving average.",
            (_period(20),),
            src,
            ("value",),
            lambda i, p, k: (kt.sma_nb(i[SOURCE], p["period"]),),
            lambda a: it.SMA(a["period"]),
            lambda a: _n(a) - 1,
            _ZERO,
            "close",
        ),
        IndicatorKind(
            "ema",
            "Exponential moving average, alpha 2/(n+1), seeded with an SMA.",
            (_period(20),),
            src,
            ("value",),
            lambda i, p, k: (kt.ema_nb(i[SOURCE], p["period"]),),
            lambda a: it.EMA(a["period"]),
            lambda a: _n(a) - 1,
            lambda a: settle_bars(2.0 / (_n(a) + 1.0)),
            "close",
        ),
        IndicatorKind(
            "wma",
            "Linearly weighted moving average.",
            (_period(20),),
            src,
            ("value",),
            lambda i, p, k: (kt.wma_nb(i[SOURCE], p["period"]),),
            lambda a: it.WMA(a["period"]),
            lambda a: _n(a) - 1,
            _ZERO,
            "close",
        ),
        IndicatorKind(
            "rsi",
            "Wilder's relative strength index (0-100).",
            (_period(14),),
            src,
            ("value",),
            lambda i, p, k: (ko.rsi_nb(i[SOURCE], p["period"]),),
            lambda a: io.RSI(a["period"]),
            _n,
            lambda a: settle_bars(1.0 / _n(a)),
            "close",
        ),
        IndicatorKind(
            "macd",
            "MACD line, signal line and histogram.",
            (ArgDef("fast", int, 12, 1), ArgDef("slow", int, 26, 1), ArgDef("signal", int, 9, 1)),
            src,
            ("macd", "signal", "hist"),
            lambda i, p, k: kt.macd_nb(i[SOURCE], p["fast"], p["slow"], p["signal"]),
            lambda a: it.MACD(a["fast"], a["slow"], a["signal"]),
            lambda a: max(int(a["fast"]), int(a["slow"])) + int(a["signal"]) - 2,
            lambda a: (
                settle_bars(2.0 / (max(int(a["fast"]), int(a["slow"])) + 1.0))
                + settle_bars(2.0 / (int(a["signal"]) + 1.0))
            ),
            "close",
        ),
        IndicatorKind(
            "bbands",
            "Bollinger Bands (population std), width and %b.",
            (_period(20), ArgDef("mult", float, 2.0, 0.0, "band width in std")),
            src,
            ("upper", "middle", "lower", "width", "percent_b"),
            lambda i, p, k: ko.bbands_nb(i[SOURCE], p["period"], p["mult"]),
            lambda a: io.BBands(a["period"], a["mult"]),
            lambda a: _n(a) - 1,
            _ZERO,
            "close",
        ),
        IndicatorKind(
            "atr",
            "Wilder's average true range.",
            (_period(14),),
            hlc,
            ("value",),
            lambda i, p, k: (ko.atr_nb(i["high"], i["low"], i["close"], p["period"]),),
            lambda a: io.ATR(a["period"]),
            lambda a: _n(a) - 1,
            lambda a: settle_bars(1.0 / _n(a)),
        ),
        IndicatorKind(
            "stoch",
            "Stochastic oscillator: %K (SMA-smoothed) and %D.",
            (_period(14), ArgDef("smooth_k", int, 1, 1), ArgDef("d_period", int, 3, 1)),
            hlc,
            ("k", "d"),
            lambda i, p, k: ko.stoch_nb(
                i["high"], i["low"], i["close"], p["period"], p["smooth_k"], p["d_period"]
            ),
            lambda a: io.Stoch(a["period"], a["smooth_k"], a["d_period"]),
            lambda a: _n(a) + int(a["smooth_k"]) + int(a["d_period"]) - 3,
            _ZERO,
        ),
        IndicatorKind(
            "adx",
            "Average directional index with +DI and -DI.",
            (_period(14),),
            hlc,
            ("adx", "plus_di", "minus_di"),
            lambda i, p, k: ko.adx_nb(i["high"], i["low"], i["close"], p["period"]),
            lambda a: io.ADX(a["period"]),
            lambda a: 2 * _n(a) - 1,
            lambda a: 2 * settle_bars(1.0 / _n(a)),
        ),
        IndicatorKind(
            "obv",
            "On-balance volume (starts at 0).",
            (),
            ("close", "volume"),
            ("value",),
            lambda i, p, k: (ko.obv_nb(i["close"], i["volume"], k),),
            lambda a: io.OBV(),
            _ZERO,
            _ZERO,
        ),
        IndicatorKind(
            "vwap",
            "Rolling volume-weighted average typical price.",
            (_period(20),),
            ("high", "low", "close", "volume"),
            ("value",),
            lambda i, p, k: (
                ko.vwap_nb(i["high"], i["low"], i["close"], i["volume"], p["period"]),
            ),
            lambda a: io.VWAP(a["period"]),
            lambda a: _n(a) - 1,
            _ZERO,
        ),
        IndicatorKind(
            "donchian",
            "Donchian channel: highest high, lowest low, midpoint.",
            (_period(20),),
            ("high", "low"),
            ("upper", "lower", "middle"),
            lambda i, p, k: kt.donchian_nb(i["high"], i["low"], p["period"]),
            lambda a: it.Donchian(a["period"]),
            lambda a: _n(a) - 1,
            _ZERO,
        ),
        IndicatorKind(
            "highest",
            "Rolling maximum (default source: high).",
            (_period(20),),
            src,
            ("value",),
            lambda i, p, k: (kt.rolling_extreme_nb(i[SOURCE], p["period"], True),),
            lambda a: it.Highest(a["period"]),
            lambda a: _n(a) - 1,
            _ZERO,
            "high",
        ),
        IndicatorKind(
            "lowest",
            "Rolling minimum (default source: low).",
            (_period(20),),
            src,
            ("value",),
            lambda i, p, k: (kt.rolling_extreme_nb(i[SOURCE], p["period"], False),),
            lambda a: it.Lowest(a["period"]),
            lambda a: _n(a) - 1,
            _ZERO,
            "low",
        ),
        IndicatorKind(
            "roc",
            "Rate of change in percent.",
            (_period(10),),
            src,
            ("value",),
            lambda i, p, k: (kt.roc_nb(i[SOURCE], p["period"]),),
            lambda a: it.ROC(a["period"]),
            _n,
            _ZERO,
            "close",
        ),
        IndicatorKind(
            "volatility",
            "Rolling population std of log returns (per bar).",
            (_period(20),),
            src,
            ("value",),
            lambda i, p, k: (ko.volatility_nb(i[SOURCE], p["period"]),),
            lambda a: io.Volatility(a["period"]),
            _n,
            _ZERO,
            "close",
        ),
    ]
    return {k.name: k for k in ks}


KINDS: dict[str, IndicatorKind] = _kinds()
