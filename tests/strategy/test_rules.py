"""Rule semantics on hand-made series, identical in both evaluators."""

from __future__ import annotations

import numpy as np
import pandas as pd
from strategy.helpers import replay

from workbench.strategy import IncrementalStrategy, evaluate, load_spec


def candles(closes: list[float]) -> pd.DataFrame:
    index = pd.date_range("2024-01-01", periods=len(closes), freq="5min", tz="UTC", name="ts")
    c = np.array(closes, dtype=float)
    return pd.DataFrame(
        {"open": c, "high": c + 1, "low": c - 1, "close": c, "volume": np.ones_like(c)},
        index=index,
    )


def both(entry: object, closes: list[float], params: dict | None = None) -> list[bool]:
    spec = load_spec(
        {
            "name": "t",
            "market": {"symbol": "A/B", "timeframe": "5m"},
            "params": params or {},
            "indicators": {"avg": {"kind": "sma", "period": 2}},
            "entry": entry,
        }
    )
    data = candles(closes)
    vec = evaluate(spec, data).entries.iloc[:, 0].tolist()
    inc = [e.entry for e in replay(IncrementalStrategy(spec), data)]
    assert vec == inc
    return vec


def test_crosses_above_fires_once_on_the_crossing_bar() -> None:
    got = both({"crosses_above": ["close", 5]}, [4, 5, 6, 7, 4, 6])
    assert got == [False, False, True, False, False, True]


def test_crosses_below_needs_the_previous_bar_at_or_above() -> None:
    got = both({"crosses_below": ["close", 5]}, [6, 5, 4, 4, 6, 3])
    assert got == [False, False, True, False, False, True]


def test_comparisons_with_warming_indicators_are_false() -> None:
    got = both({"lt": ["avg", 100]}, [1, 2, 3])
    assert got == [False, True, True]


def test_rising_counts_strict_consecutive_increases() -> None:
    got = both({"rising": ["close", 2]}, [1, 2, 3, 3, 4, 5, 6])
    assert got == [False, False, True, False, False, True, True]


def test_falling_with_a_parameter_bar_count() -> None:
    params = {"n": {"default": 3, "range": [1, 5, 1]}}
    got = both({"falling": ["close", "$n"]}, [9, 8, 7, 6, 5, 6], params)
    assert got == [False, False, False, True, True, False]


def test_ago_reads_the_value_n_bars_back() -> None:
    got = both({"gt": ["close", {"ago": ["close", 2]}]}, [1, 5, 2, 6, 1])
    assert got == [False, False, True, True, False]


def test_division_by_zero_is_nan_and_compares_false() -> None:
    rule = {
        "any": [
            {"gt": [{"div": [1, {"sub": ["close", 3]}]}, 0]},
            {"le": [{"div": [1, {"sub": ["close", 3]}]}, 0]},
        ]
    }
    assert both(rule, [2, 3, 4]) == [True, False, True]


def test_arithmetic_and_logic_combine() -> None:
    rule = {
        "all": [
            {"gt": [{"add": ["close", {"mul": [2, "$k"]}]}, 9.5]},
            {"not": {"gt": ["close", 9]}},
        ]
    }
    got = both(rule, [3, 7, 10], {"k": {"default": 1.5, "range": [0.5, 3.0, 0.5]}})
    assert got == [False, True, False]


def test_min_max_abs_neg() -> None:
    rule = {"gt": [{"max": [{"abs": {"neg": "close"}}, {"min": [2, "close"]}]}, 4]}
    assert both(rule, [3, 5, 4]) == [False, True, False]


def test_constant_rules() -> None:
    assert both(True, [1, 2]) == [True, True]
    assert both(False, [1, 2]) == [False, False]
