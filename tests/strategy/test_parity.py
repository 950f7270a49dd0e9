"""The promise: replaying candles one by one gives the vectorized signals, bar for bar."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from strategy.helpers import assert_values_match, candle_files, example_specs, read_candles, replay

from workbench.strategy import IncrementalStrategy, evaluate, load_spec

CASES = [(s, f) for s in example_specs() for f in candle_files()]


@pytest.mark.parametrize(
    ("spec_path", "candle_path"), CASES, ids=[f"{s.stem}-{f.name[:-10]}" for s, f in CASES]
)
def test_incremental_equals_vectorized(spec_path: Path, candle_path: Path) -> None:
    spec = load_spec(spec_path)
    candles = read_candles(candle_path.name)
    signals = evaluate(spec, candles)
    events = replay(IncrementalStrategy(spec), candles)
    for key, attr in [("entries", "entry"), ("exits", "exit")]:
        expected = getattr(signals, key).iloc[:, 0].to_numpy()
        got = np.array([getattr(e, attr) for e in events])
        assert np.array_equal(got, expected), (
            f"{key} differ at bars {np.flatnonzero(got != expected)[:5]}"
        )
    if signals.short_entries is not None:
        got = np.array([e.short_entry for e in events])
        assert np.array_equal(got, signals.short_entries.iloc[:, 0].to_numpy())
        got = np.array([e.short_exit for e in events])
        assert np.array_equal(got, signals.short_exits.iloc[:, 0].to_numpy())
    values = {k: v.iloc[:, 0].to_numpy() for k, v in signals.indicators.items()}
    assert_values_match(values, events, list(values))


@pytest.mark.parametrize("spec_path", example_specs(), ids=lambda p: p.stem)
def test_every_grid_column_equals_its_own_replay(spec_path: Path) -> None:
    spec = load_spec(spec_path)
    candles = read_candles("ETH_BTC-5m.csv.gz").iloc[:3000]
    grid = spec.param_grid(use_ranges=False).iloc[[0] * 3].reset_index(drop=True)
    rng = np.random.default_rng(7)
    for name in spec.params:  # three random combinations from the spec ranges
        choices = spec.param_grid(use_ranges=True)[name].unique()
        grid[name] = rng.choice(choices, size=3)
    signals = evaluate(spec, candles, grid)
    assert list(signals.entries.columns.names) == list(spec.params)
    for col, row in grid.iterrows():
        events = replay(IncrementalStrategy(spec, row.to_dict()), candles)
        got = np.array([e.entry for e in events])
        assert np.array_equal(got, signals.entries.iloc[:, col].to_numpy())
        got = np.array([e.exit for e in events])
        assert np.array_equal(got, signals.exits.iloc[:, col].to_numpy())


@pytest.mark.parametrize("spec_path", example_specs(), ids=lambda p: p.stem)
def test_seeding_warmup_bars_of_history_matches_a_long_run(spec_path: Path) -> None:
    spec = load_spec(spec_path)
    candles = read_candles("ETH_BTC-5m.csv.gz")
    signals = evaluate(spec, candles)
    live = IncrementalStrategy(spec)
    start = len(candles) - 1200
    live.seed(candles.iloc[start - live.warmup_bars : start])
    events = replay(live, candles.iloc[start:])
    values = {k: v.iloc[start:, 0].to_numpy() for k, v in signals.indicators.items()}
    assert_values_match(values, events, list(values))
    got = np.array([e.entry for e in events])
    assert np.array_equal(got, signals.entries.iloc[start:, 0].to_numpy())


@pytest.mark.parametrize("spec_path", example_specs(), ids=lambda p: p.stem)
def test_examples_validate_and_trade_on_shipped_data(spec_path: Path) -> None:
    spec = load_spec(spec_path)
    signals = evaluate(spec, read_candles("ETH_BTC-5m.csv.gz"))
    entries, exits = signals.entries.iloc[:, 0].to_numpy(), signals.exits.iloc[:, 0].to_numpy()
    in_position, trades = False, 0
    for entry, exit_ in zip(entries, exits, strict=True):  # a minimal long-only position walk
        if not in_position and entry:
            in_position = True
        elif in_position and exit_:
            in_position, trades = False, trades + 1
    assert trades >= 3


def test_every_operator_compiled_equals_its_replay(tmp_path: Path) -> None:
    """Every grammar element, including NaN edges, lags by parameter and run lengths: the
    compiled kernel `evaluate` runs equals the incremental evaluator, combination by
    combination."""
    raw = {
        "name": "every_operator",
        "market": {"symbol": "ETH/BTC", "timeframe": "5m"},
        "params": {
            "n": {"default": 3, "range": [1, 5, 2]},
            "k": {"default": 1.5, "range": [0.5, 2.5, 1.0]},
            "m": {"default": 2, "range": [2, 4, 1]},
        },
        "indicators": {
            "fast": {"kind": "ema", "period": "$m"},
            "slow": {"kind": "sma", "period": 12},
            "bb": {"kind": "bbands", "period": 10, "mult": "$k"},
            "htf": {"kind": "sma", "period": 3, "timeframe": "1h"},
        },
        "entry": {
            "any": [
                {"crosses_above": ["fast", {"ago": ["slow", "$n"]}]},
                {
                    "all": [
                        {"rising": ["fast", "$m"]},
                        {"not": {"lt": [{"div": ["close", {"sub": ["high", "low"]}]}, 5]}},
                        {"gt": [{"max": ["close", "bb.middle", "htf"]}, {"min": ["open", 1]}]},
                    ]
                },
                {"crosses_below": [{"ago": [0.02, 2]}, {"abs": {"neg": "bb.percent_b"}}]},
            ]
        },
        "exit": {
            "any": [
                {"falling": [{"mul": ["$k", "hlc3"]}, 2]},
                {"ge": [{"add": ["bb.width", "$k", 0.0]}, {"ago": ["bb.width", 1]}]},
                False,
            ]
        },
        "short_entry": {"le": [{"div": ["volume", 0]}, 1]},
        "short_exit": True,
        "risk": {"stop_loss": 0.01},
    }
    spec = load_spec(raw)
    candles = read_candles("ETH_BTC-5m.csv.gz").iloc[:2000]
    grid = spec.param_grid().iloc[[0, 8, 13, 26]].reset_index(drop=True)
    signals = evaluate(spec, candles, grid)
    for col, row in grid.iterrows():
        events = replay(IncrementalStrategy(spec, row.to_dict()), candles)
        for key, attr in [
            ("entries", "entry"),
            ("exits", "exit"),
            ("short_entries", "short_entry"),
            ("short_exits", "short_exit"),
        ]:
            want = np.array([getattr(e, attr) for e in events])
            got = getattr(signals, key).iloc[:, col].to_numpy()
            where = f"{key} of {row.to_dict()} at bars {np.flatnonzero(got != want)[:5]}"
            assert np.array_equal(got, want), where
            assert (want.any() and not want.all()) or key.startswith("short"), key
