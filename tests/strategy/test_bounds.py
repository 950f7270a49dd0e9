"""Bounded oscillators stay inside their bounds exactly, and hit them exactly by definition.

A value a few 1e-13 outside [0, 100] flips a rule such as ``stoch.k <= 0`` on the bars where
the close equals the lowest low. Checked on every shipped candle file, for the vectorized and
the incremental form alike (which stay equal bit for bit).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from shipped import CANDLE_FILES, shipped

from workbench.strategy.indicators.registry import KINDS
from workbench.strategy.loader import load_spec
from workbench.strategy.vectorized import evaluate

#: kind -> (arguments, outputs bounded to [0, 100])
BOUNDED = {
    "stoch": ({"period": 14, "smooth_k": 1, "d_period": 3}, ("k", "d")),
    "stoch_smoothed": ({"period": 5, "smooth_k": 3, "d_period": 3}, ("k", "d")),
    "rsi": ({"period": 14}, ("value",)),
    "adx": ({"period": 14}, ("adx", "plus_di", "minus_di")),
}


@pytest.fixture(scope="module")
def files() -> dict[str, pd.DataFrame]:
    return dict(shipped(path) for path in CANDLE_FILES)


def both_forms(kind: str, args: dict[str, int], candles: pd.DataFrame) -> list[np.ndarray]:
    spec = KINDS[kind]
    inputs = {
        n: candles["close" if n == "source" else n].to_numpy(float)[None, :] for n in spec.inputs
    }
    arrays = {a: np.array([v], dtype=np.int64) for a, v in args.items()}
    vector = [out[0] for out in spec.vector(inputs, arrays, 1)]
    obj = spec.incremental(args)
    columns = [inputs[n][0].tolist() for n in spec.inputs]
    rows = np.array([obj.update(*values) for values in zip(*columns, strict=True)])
    for j, out in enumerate(vector):
        np.testing.assert_array_equal(rows[:, j], out, err_msg=f"{kind} output {j}")
    return vector


@pytest.mark.parametrize("name", list(BOUNDED))
def test_oscillators_stay_within_0_and_100_on_the_shipped_data(name: str, files) -> None:
    args, outputs = BOUNDED[name]
    kind = name.split("_")[0]
    for symbol, candles in files.items():
        values = dict(zip(KINDS[kind].outputs, both_forms(kind, args, candles), strict=True))
        for output in outputs:
            v = values[output][~np.isnan(values[output])]
            assert v.min() >= 0.0 and v.max() <= 100.0, f"{symbol} {name}.{output}"


def test_stochastic_is_exactly_0_and_100_at_the_range_ends(files) -> None:
    touched = 0
    for symbol, candles in files.items():
        k, _ = both_forms("stoch", {"period": 14, "smooth_k": 1, "d_period": 3}, candles)
        lowest = candles["low"].rolling(14).min().to_numpy()
        highest = candles["high"].rolling(14).max().to_numpy()
        close = candles["close"].to_numpy()
        ranged = highest > lowest
        at_low, at_high = ranged & (close == lowest), ranged & (close == highest)
        assert (k[at_low] == 0.0).all(), symbol
        assert (k[at_high] == 100.0).all(), symbol
        touched += at_low.sum() + at_high.sum()
    assert touched > 100, "the data never touched a range end: the test proved nothing"


def test_a_rule_on_the_bound_fires_on_every_bar_at_the_lowest_low(files) -> None:
    spec = load_spec(
        {
            "name": "at_the_low",
            "market": {"symbol": "ETH/BTC", "timeframe": "5m"},
            "indicators": {"stoch": {"kind": "stoch", "period": 14, "smooth_k": 1}},
            "entry": {"le": ["stoch.k", 0]},
            "exit": {"ge": ["stoch.k", 100]},
        }
    )
    candles = files["ETH/BTC"]
    signals = evaluate(spec, candles)
    lowest = candles["low"].rolling(14).min()
    highest = candles["high"].rolling(14).max()
    ranged = highest > lowest
    want_entry = (ranged & (candles["close"] == lowest)).to_numpy()
    want_exit = (ranged & (candles["close"] == highest)).to_numpy()
    np.testing.assert_array_equal(signals.entries.iloc[:, 0].to_numpy(), want_entry)
    np.testing.assert_array_equal(signals.exits.iloc[:, 0].to_numpy(), want_exit)
