"""Custom indicators: registered kinds work in specs, and their two forms agree bar for bar."""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Iterator

import numpy as np
import pandas as pd
import pytest
from strategy.helpers import replay

from workbench.strategy import IncrementalStrategy, SpecError, evaluate, load_spec
from workbench.strategy.custom import (
    IndicatorRegistrationError,
    check_parity,
    register_indicator,
    unregister_indicator,
)
from workbench.strategy.indicators.registry import KINDS


def momentum(source: np.ndarray, period: int) -> np.ndarray:
    """Price change over ``period`` bars."""
    out = np.full(len(source), np.nan)
    out[period:] = source[period:] - source[:-period]
    return out


class Momentum:
    def __init__(self, period: int) -> None:
        self.window: deque[float] = deque(maxlen=period + 1)

    def update(self, x: float) -> tuple[float]:
        self.window.append(x)
        full = len(self.window) == self.window.maxlen
        return (x - self.window[0] if full else math.nan,)


def range_position(high: np.ndarray, low: np.ndarray, close: np.ndarray, period: int):
    """Where the close sits in the rolling high-low range (0..1), and the range's width."""
    hi = pd.Series(high).rolling(period).max().to_numpy()
    lo = pd.Series(low).rolling(period).min().to_numpy()
    width = hi - lo
    with np.errstate(invalid="ignore", divide="ignore"):
        pos = np.where(width > 0, (close - lo) / width, 0.5)
    return np.where(np.isnan(width), np.nan, pos), width


class RangePosition:
    def __init__(self, period: int) -> None:
        self.highs: deque[float] = deque(maxlen=period)
        self.lows: deque[float] = deque(maxlen=period)

    def update(self, high: float, low: float, close: float) -> tuple[float, float]:
        self.highs.append(high)
        self.lows.append(low)
        if len(self.highs) < self.highs.maxlen:
            return (math.nan, math.nan)
        hi, lo = max(self.highs), min(self.lows)
        width = hi - lo
        return ((close - lo) / width if width > 0 else 0.5, width)


@pytest.fixture
def custom_kinds() -> Iterator[None]:
    register_indicator(
        "momentum", momentum, Momentum, args={"period": 10}, first_value=lambda period: period
    )
    register_indicator(
        "range_position",
        range_position,
        RangePosition,
        args={"period": 20},
        inputs=("high", "low", "close"),
        outputs=("position", "width"),
        first_value=lambda period: period - 1,
    )
    yield
    unregister_indicator("momentum")
    unregister_indicator("range_position")


def spec_doc() -> dict:
    return {
        "name": "custom_momentum",
        "market": {"symbol": "ETH/BTC", "timeframe": "5m"},
        "params": {"n": {"default": 12, "range": [6, 30, 6]}, "fast": {"default": 8}},
        "indicators": {
            "mom": {"kind": "momentum", "period": "$n"},
            "ema": {"kind": "ema", "period": "$fast"},
            "mom_of_ema": {"kind": "momentum", "period": 5, "source": "ema"},
            "rp": {"kind": "range_position", "period": 30},
        },
        "entry": {"all": [{"crosses_above": ["mom", 0]}, {"gt": ["rp.position", 0.5]}]},
        "exit": {"any": [{"crosses_below": ["mom_of_ema", 0]}, {"lt": ["rp.position", 0.2]}]},
    }


def test_custom_kind_forms_agree_bit_for_bit(custom_kinds: None, eth_candles: pd.DataFrame) -> None:
    assert check_parity("momentum", eth_candles, period=14) == 0.0
    assert check_parity("range_position", eth_candles, period=20) == 0.0


def test_parity_check_catches_a_disagreeing_incremental_form(eth_candles: pd.DataFrame) -> None:
    class Wrong(Momentum):
        def update(self, x: float) -> tuple[float]:
            (value,) = super().update(x)
            return (value * 1.001,)

    register_indicator(
        "bad_momentum", momentum, Wrong, args={"period": 5}, first_value=lambda period: period
    )
    try:
        assert check_parity("bad_momentum", eth_candles) > 0.0
    finally:
        unregister_indicator("bad_momentum")


def test_a_spec_using_custom_kinds_gives_the_same_signals_both_ways(
    custom_kinds: None, eth_candles: pd.DataFrame
) -> None:
    spec = load_spec(spec_doc())
    candles = eth_candles.iloc[:1500]
    signals = evaluate(spec, candles, {"n": 12})
    assert signals.entries.to_numpy().any() and signals.exits.to_numpy().any()
    events = replay(IncrementalStrategy(spec, {"n": 12}), candles)
    assert [e.entry for e in events] == signals.entries.iloc[:, 0].tolist()
    assert [e.exit for e in events] == signals.exits.iloc[:, 0].tolist()
    # The chained one (momentum of an EMA) skips the EMA's warm-up NaNs in both forms.
    vector = signals.indicator("mom_of_ema").iloc[:, 0].to_numpy()
    live = np.array([e.values["mom_of_ema.value"] for e in events])
    np.testing.assert_array_equal(vector, live)
    assert np.isnan(vector[: 8 - 1 + 5]).all() and not np.isnan(vector[8 - 1 + 5])


def test_a_grid_computes_one_column_per_distinct_period(
    custom_kinds: None, eth_candles: pd.DataFrame
) -> None:
    spec = load_spec(spec_doc())
    signals = evaluate(spec, eth_candles.iloc[:800], spec.param_grid())
    mom = signals.indicator("mom")
    periods = list(mom.columns.get_level_values("n"))
    assert periods == [6, 12, 18, 24, 30]
    np.testing.assert_array_equal(
        mom.iloc[:, periods.index(18)].to_numpy(),
        momentum(eth_candles["close"].to_numpy()[:800], 18),
    )


def test_warmup_counts_the_custom_first_value(custom_kinds: None) -> None:
    doc = spec_doc()
    doc["indicators"] = {"mom": doc["indicators"]["mom"]}
    doc["entry"], doc["exit"] = {"crosses_above": ["mom", 0]}, {"lt": ["mom", 0]}
    spec = load_spec(doc)
    # momentum(30) first value at bar 30 → 31 bars, plus one bar of crossover look-back.
    assert spec.warmup_bars({"n": 30}) == 31 + 1


def test_spec_validation_knows_custom_kinds_and_their_arguments(custom_kinds: None) -> None:
    doc = spec_doc()
    doc["indicators"]["mom"]["period"] = 0
    with pytest.raises(SpecError) as info:
        load_spec(doc)
    assert "indicators.mom.period" in str(info.value)


def test_unregistered_kind_is_refused_by_specs(eth_candles: pd.DataFrame) -> None:
    assert "momentum" not in KINDS
    with pytest.raises(SpecError, match="momentum"):
        load_spec(spec_doc())


def test_builtin_kinds_cannot_be_replaced() -> None:
    with pytest.raises(IndicatorRegistrationError, match="already exists"):
        register_indicator(
            "ema", momentum, Momentum, first_value=lambda period: period, replace=True
        )


def test_re_registering_needs_replace(custom_kinds: None) -> None:
    with pytest.raises(IndicatorRegistrationError):
        register_indicator("momentum", momentum, Momentum, first_value=lambda period: period)
    register_indicator(
        "momentum",
        momentum,
        Momentum,
        args={"period": 3},
        first_value=lambda period: period,
        replace=True,
    )
    assert KINDS["momentum"].args[0].default == 3


def test_wrong_output_count_is_reported(eth_candles: pd.DataFrame) -> None:
    register_indicator(
        "two_outputs",
        momentum,
        Momentum,
        args={"period": 3},
        outputs=("a", "b"),
        first_value=lambda period: period,
    )
    try:
        with pytest.raises(IndicatorRegistrationError, match="gave 1 outputs, declared 2"):
            check_parity("two_outputs", eth_candles)
    finally:
        unregister_indicator("two_outputs")
