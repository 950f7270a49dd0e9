"""The live-side evaluator: candle shapes it accepts, ordering, warm-up flag."""

from __future__ import annotations

from dataclasses import replace

import pandas as pd
import pytest
from strategy.helpers import STRATEGIES, read_candles

from workbench.candles import Candle
from workbench.strategy import IncrementalStrategy, load_spec


@pytest.fixture
def spec():
    return load_spec(STRATEGIES / "ema_cross_rsi.json")


@pytest.mark.parametrize("name", sorted(p.name for p in STRATEGIES.glob("*.json")))
def test_candle_values_rows_and_mappings_give_the_same_event(name: str) -> None:
    # A Candle takes the live path's shortcut; rows and mappings the general one.
    spec = load_spec(STRATEGIES / name)
    data = read_candles("ETH_BTC-5m.csv.gz").iloc[:600]
    a, b, c = IncrementalStrategy(spec), IncrementalStrategy(spec), IncrementalStrategy(spec)
    for ts, row in data.iterrows():
        ea = a.update(Candle(ts_ms=int(ts.value // 1_000_000), **row.to_dict()))
        eb = b.update(row)
        ec = c.update({"ts": ts.isoformat(), **row.to_dict()})
        assert replace(ea, values={}) == replace(eb, values={}) == replace(ec, values={})
        # Bit for bit, NaN where one is NaN (a dict holding NaN never equals its copy).
        assert pd.Series(ea.values).equals(pd.Series(eb.values))
        assert pd.Series(ea.values).equals(pd.Series(ec.values))
    assert ea.ts == data.index[-1]


def test_out_of_order_candles_are_refused(spec) -> None:
    data = read_candles("ETH_BTC-5m.csv.gz").iloc[:3]
    live = IncrementalStrategy(spec)
    live.seed(data)
    with pytest.raises(ValueError, match="increasing"):
        live.update(data.iloc[1])


def test_ready_turns_true_after_warmup_bars(spec) -> None:
    data = read_candles("ETH_BTC-5m.csv.gz")
    live = IncrementalStrategy(spec, {"slow": 40})
    assert live.warmup_bars == spec.warmup_bars({"slow": 40}) > 40
    assert not live.seed(data.iloc[: live.warmup_bars - 1]).ready
    assert live.update(data.iloc[live.warmup_bars - 1]).ready


def test_unknown_parameter_is_refused(spec) -> None:
    with pytest.raises(KeyError):
        IncrementalStrategy(spec, {"fastt": 3})


def test_candles_with_nan_are_refused(spec) -> None:
    data = read_candles("ETH_BTC-5m.csv.gz").iloc[:5].copy()
    data.iloc[2, 0] = float("nan")
    with pytest.raises(ValueError, match="NaN"):
        IncrementalStrategy(spec).seed(data)


def test_naive_timestamps_are_taken_as_utc(spec) -> None:
    data = read_candles("ETH_BTC-5m.csv.gz").iloc[:2]
    live = IncrementalStrategy(spec)
    event = live.update({"ts": pd.Timestamp("2030-01-01 00:00"), **data.iloc[0].to_dict()})
    assert event.ts == pd.Timestamp("2030-01-01 00:00", tz="UTC")
