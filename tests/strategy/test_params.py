"""Spec parameters become param classes and sweep grids."""

from __future__ import annotations

import param
import pytest
from strategy.helpers import STRATEGIES, read_candles

from workbench.strategy import evaluate, load_spec


@pytest.fixture
def spec():
    return load_spec(STRATEGIES / "ema_cross_rsi.json")


def test_param_class_carries_defaults_bounds_and_steps(spec) -> None:
    cls = spec.param_class()
    assert issubclass(cls, param.Parameterized)
    fast = cls.param["fast"]
    assert isinstance(fast, param.Integer)
    assert (fast.default, fast.bounds, fast.step) == (12, (5, 50), 1)
    assert cls().slow == 26


def test_param_class_rejects_values_outside_bounds(spec) -> None:
    with pytest.raises(ValueError):
        spec.param_class()(fast=1000)


def test_float_parameters_become_numbers() -> None:
    spec = load_spec(STRATEGIES / "bollinger_reversion.json")
    mult = spec.param_class().param["mult"]
    assert isinstance(mult, param.Number) and not isinstance(mult, param.Integer)
    assert (mult.bounds, mult.step) == ((1.5, 3.0), 0.25)


def test_param_grid_is_the_cartesian_product(spec) -> None:
    grid = spec.param_grid(fast=[5, 10], slow=range(30, 60, 10))
    assert len(grid) == 2 * 3 * 7  # rsi_max takes its whole range 55..85 by 5
    assert spec.param_grid(use_ranges=False, fast=[5, 10]).to_dict("list") == {
        "fast": [5, 10],
        "slow": [26, 26],
        "rsi_max": [70, 70],
    }
    assert len(spec.param_grid()) == 46 * 37 * 7


def test_mapping_params_broadcast_to_a_product(spec) -> None:
    candles = read_candles("ETH_BTC-5m.csv.gz").iloc[:800]
    signals = evaluate(spec, candles, {"fast": [8, 12], "slow": [30, 40]})
    assert signals.entries.shape == (800, 4)
    assert signals.entries.columns.names == ["fast", "slow", "rsi_max"]
    assert signals.indicator("ema_fast").columns.names == ["fast"]
    assert signals.indicator("ema_fast").shape == (800, 2)


def test_unknown_parameter_is_refused(spec) -> None:
    with pytest.raises(KeyError):
        spec.param_grid(nope=[1])
