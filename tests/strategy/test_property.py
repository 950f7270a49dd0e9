"""Property: on random candles (with gaps and flat stretches) and random parameters, the
incremental evaluator equals the vectorized one for a spec using every indicator kind."""

from __future__ import annotations

import numpy as np
import pandas as pd
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from strategy.helpers import assert_values_match, replay

from workbench.strategy import IncrementalStrategy, evaluate, load_spec

P = {"default": 5, "range": [1, 30, 1]}
SPEC = {
    "name": "everything",
    "market": {"symbol": "A/B", "timeframe": "5m"},
    "params": {
        "n1": P,
        "n2": P,
        "n3": P,
        "k": {"default": 2.0, "range": [0.5, 3.0, 0.5]},
        "lag": {"default": 2, "range": [1, 5, 1]},
    },
    "indicators": {
        "sma": {"kind": "sma", "period": "$n1"},
        "ema": {"kind": "ema", "period": "$n2", "source": "hlc3"},
        "wma": {"kind": "wma", "period": "$n3", "source": "ema"},
        "rsi": {"kind": "rsi", "period": "$n1"},
        "rsi_smooth": {"kind": "sma", "period": 3, "source": "rsi"},
        "macd": {"kind": "macd", "fast": "$n1", "slow": "$n2", "signal": "$n3"},
        "bb": {"kind": "bbands", "period": "$n2", "mult": "$k"},
        "atr": {"kind": "atr", "period": "$n3"},
        "stoch": {"kind": "stoch", "period": "$n1", "smooth_k": 2, "d_period": "$lag"},
        "adx": {"kind": "adx", "period": "$n2"},
        "obv": {"kind": "obv"},
        "vwap": {"kind": "vwap", "period": "$n3"},
        "dc": {"kind": "donchian", "period": "$n1"},
        "hi": {"kind": "highest", "period": "$n2", "source": "close"},
        "lo": {"kind": "lowest", "period": "$n2"},
        "roc": {"kind": "roc", "period": "$n3", "source": "macd.hist"},
        "vol": {"kind": "volatility", "period": "$n1"},
        "h_ema": {"kind": "ema", "period": "$n3", "timeframe": "15m"},
        "h_rsi": {"kind": "rsi", "period": 3, "timeframe": "1h", "source": "ohlc4"},
        "h_atr": {"kind": "atr", "period": 2, "timeframe": "15m"},
    },
    "entry": {
        "any": [
            {"crosses_above": ["sma", "ema"]},
            {"all": [{"lt": ["rsi", 30]}, {"rising": ["wma", "$lag"]}]},
            {"gt": ["close", {"ago": ["dc.upper", 1]}]},
            {"crosses_above": ["stoch.k", "stoch.d"]},
            {"gt": ["close", {"add": ["h_ema", {"mul": ["$k", "h_atr"]}]}]},
        ]
    },
    "exit": {
        "any": [
            {"crosses_below": ["close", "bb.middle"]},
            {"falling": ["obv", "$lag"]},
            {"lt": [{"div": ["roc", "adx.adx"]}, -1]},
            {"gt": ["h_rsi", 80]},
        ]
    },
    "short_entry": {"all": [{"gt": ["adx.plus_di", "adx.minus_di"]}, {"lt": ["vwap", "close"]}]},
    "short_exit": {"ge": [{"max": ["vol", {"abs": "macd.macd"}]}, {"min": ["atr", "hi"]}]},
}


@st.composite
def candles(draw: st.DrawFn) -> pd.DataFrame:
    n = draw(st.integers(min_value=2, max_value=300))
    seed = draw(st.integers(min_value=0, max_value=2**32 - 1))
    rng = np.random.default_rng(seed)
    steps = rng.normal(0, 0.01, n) * (rng.random(n) < draw(st.floats(0.2, 1.0)))  # flat runs
    close = np.round(100 * np.exp(np.cumsum(steps)), draw(st.integers(1, 6)))
    open_ = np.concatenate([[close[0]], close[:-1]])
    high = np.maximum(open_, close) * (1 + np.abs(rng.normal(0, 0.002, n)))
    low = np.minimum(open_, close) * (1 - np.abs(rng.normal(0, 0.002, n)))
    volume = np.where(rng.random(n) < 0.1, 0.0, rng.exponential(10, n))
    gaps = rng.integers(1, 2 + draw(st.integers(0, 30)), n)  # 1 = next bar, more = missing bars
    start = pd.Timestamp("2024-01-01", tz="UTC") + pd.Timedelta(
        minutes=5 * int(rng.integers(0, 12))
    )
    index = pd.DatetimeIndex(start + pd.to_timedelta(np.cumsum(gaps) * 5, unit="min"), name="ts")
    return pd.DataFrame(
        {"open": open_, "high": high, "low": low, "close": close, "volume": volume}, index=index
    )


params = st.fixed_dictionaries(
    {
        "n1": st.integers(1, 30),
        "n2": st.integers(1, 30),
        "n3": st.integers(1, 30),
        "k": st.sampled_from([0.5, 1.0, 1.5, 2.0, 2.5, 3.0]),
        "lag": st.integers(1, 5),
    }
)


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=candles(), values=params)
def test_incremental_equals_vectorized_on_random_data(data: pd.DataFrame, values: dict) -> None:
    spec = load_spec(SPEC)
    signals = evaluate(spec, data, pd.DataFrame([values]))
    events = replay(IncrementalStrategy(spec, values), data)
    for key, attr in [
        ("entries", "entry"),
        ("exits", "exit"),
        ("short_entries", "short_entry"),
        ("short_exits", "short_exit"),
    ]:
        got = np.array([getattr(e, attr) for e in events])
        assert np.array_equal(got, getattr(signals, key).iloc[:, 0].to_numpy()), key
    vec = {k: v.iloc[:, 0].to_numpy() for k, v in signals.indicators.items()}
    assert_values_match(vec, events, list(vec))
