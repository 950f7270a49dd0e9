"""Higher-timeframe indicators see only HTF bars that have closed, in both evaluators."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from strategy.helpers import STRATEGIES, read_candles, replay

from workbench.strategy import IncrementalStrategy, evaluate, load_spec

HOUR_CLOSE = {
    "name": "htf",
    "market": {"symbol": "A/B", "timeframe": "5m"},
    "indicators": {
        "h_close": {"kind": "sma", "period": 1, "timeframe": "1h"},
        "h_high": {"kind": "highest", "period": 1, "timeframe": "1h"},
    },
    "entry": {"gt": ["close", "h_close"]},
}


def candles(index: pd.DatetimeIndex) -> pd.DataFrame:
    c = np.arange(1.0, len(index) + 1.0)
    return pd.DataFrame(
        {"open": c, "high": c + 0.5, "low": c - 0.5, "close": c, "volume": np.ones_like(c)},
        index=index,
    )


def expected_last_closed_hour(data: pd.DataFrame, column: str, how: str) -> np.ndarray:
    """Independent oracle: for each 5m bar, the aggregate of the latest hour ended by its close."""
    out = []
    for ts in data.index:
        bar_close = ts + pd.Timedelta(minutes=5)
        hour_start = (bar_close - pd.Timedelta(hours=1)).floor("1h")
        rows = data[(data.index >= hour_start) & (data.index < hour_start + pd.Timedelta(hours=1))]
        before = data.index[0] >= hour_start + pd.Timedelta(hours=1)
        if rows.empty or before:
            out.append(np.nan)
        else:
            out.append(rows[column].iloc[-1] if how == "last" else getattr(rows[column], how)())
    return np.array(out)


def both(data: pd.DataFrame) -> tuple[pd.DataFrame, list]:
    spec = load_spec(HOUR_CLOSE)
    return evaluate(spec, data), replay(IncrementalStrategy(spec), data)


def test_the_bar_closing_the_hour_is_the_first_to_see_it() -> None:
    index = pd.date_range("2024-01-01 09:00", "2024-01-01 12:55", freq="5min", tz="UTC", name="ts")
    data = candles(index)
    signals, events = both(data)
    vec = signals.indicator("h_close").iloc[:, 0]
    assert np.isnan(vec.loc["2024-01-01 09:50"])
    assert vec.loc["2024-01-01 09:55"] == data.loc["2024-01-01 09:55", "close"]
    assert vec.loc["2024-01-01 10:50"] == data.loc["2024-01-01 09:55", "close"]
    assert vec.loc["2024-01-01 10:55"] == data.loc["2024-01-01 10:55", "close"]
    np.testing.assert_array_equal(vec.to_numpy(), expected_last_closed_hour(data, "close", "last"))
    inc = np.array([e.values["h_close.value"] for e in events])
    np.testing.assert_array_equal(inc, vec.to_numpy())


def test_a_missing_last_bar_delays_the_hour_to_the_next_bar() -> None:
    index = pd.date_range("2024-01-01 09:00", "2024-01-01 12:55", freq="5min", tz="UTC", name="ts")
    index = index.drop(pd.Timestamp("2024-01-01 10:55", tz="UTC"))
    data = candles(index)
    signals, events = both(data)
    vec = signals.indicator("h_high").iloc[:, 0]
    assert (
        vec.loc["2024-01-01 10:50"] == data.loc["2024-01-01 09:00":"2024-01-01 09:55", "high"].max()
    )
    assert (
        vec.loc["2024-01-01 11:00"] == data.loc["2024-01-01 10:00":"2024-01-01 10:50", "high"].max()
    )
    np.testing.assert_array_equal(vec.to_numpy(), expected_last_closed_hour(data, "high", "max"))
    inc = np.array([e.values["h_high.value"] for e in events])
    np.testing.assert_array_equal(inc, vec.to_numpy())


@pytest.mark.parametrize("cut", [700, 1451, 2999])
def test_future_candles_do_not_change_past_values(cut: int) -> None:
    spec = load_spec(STRATEGIES / "donchian_breakout_htf.json")
    data = read_candles("ETH_BTC-5m.csv.gz").iloc[:3000]
    full, part = evaluate(spec, data), evaluate(spec, data.iloc[:cut])
    for name, frame in part.indicators.items():
        np.testing.assert_array_equal(frame.to_numpy(), full.indicators[name].iloc[:cut].to_numpy())
    assert part.entries.equals(full.entries.iloc[:cut])
    assert part.exits.equals(full.exits.iloc[:cut])
