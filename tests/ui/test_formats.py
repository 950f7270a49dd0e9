"""Display text of statistics, against strings worked out by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest

from workbench.ui.formats import (
    COLOURS,
    MISSING,
    Tone,
    colour_css,
    duration,
    format_stat,
    format_stats,
    money,
    percent,
    pnl,
    quote_of,
    ratio,
    tone,
    tone_of_text,
)


@pytest.mark.parametrize(
    ("value", "signed", "text"),
    [
        (0.1234, False, "12.34%"),
        (0.1234, True, "+12.34%"),
        (-0.05, True, "-5.00%"),
        (0.0, True, "+0.00%"),
        (0.00004, False, "0.00%"),
        (12.5, True, "+1,250.00%"),
        (math.nan, False, MISSING),
        (None, True, MISSING),
        (math.inf, True, "+∞"),
    ],
)
def test_fractions_read_in_percent(value: float | None, signed: bool, text: str) -> None:
    assert percent(value, signed=signed) == text


@pytest.mark.parametrize(
    ("value", "text"),
    [(1.2345, "1.23"), (-0.456, "-0.46"), (2.0, "2.00"), (1234.5, "1,234.50"), (math.inf, "∞")],
)
def test_ratios_read_to_two_decimals(value: float, text: str) -> None:
    assert ratio(value) == text


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (0, "0 min"),
        (45 * 60, "45 min"),
        (59 * 60 + 40, "1 h"),  # 59 min 40 s rounds to the hour, never "60 min"
        (5 * 3600 + 20 * 60, "5 h 20 min"),
        (23 * 3600 + 59 * 60 + 50, "1 d"),  # rounds up to a whole day, never "24 h"
        (3 * 86400 + 4 * 3600, "3 d 4 h"),
        (3 * 86400 + 4 * 3600 + 29 * 60, "3 d 4 h"),
        (2 * 86400, "2 d"),
        (400 * 86400, "400 d"),
        (-7200, "-2 h"),
    ],
)
def test_durations_read_in_days_and_hours(seconds: float, text: str) -> None:
    assert duration(seconds) == text


@pytest.mark.parametrize(
    ("value", "quote", "signed", "text"),
    [
        (1.0, "BTC", False, "1.00000000 BTC"),
        (0.0012, "BTC", True, "+0.00120000 BTC"),
        (-0.0005, "BTC", True, "-0.00050000 BTC"),
        (1234.567, "USDT", False, "1,234.57 USDT"),
        (-12.3, "usdt", True, "-12.30 usdt"),
        (-0.000000001, "BTC", True, "+0.00000000 BTC"),  # too small to show: no "-0"
        (0.5, None, True, "+0.50000000"),
    ],
)
def test_amounts_read_in_their_quote_currency(
    value: float, quote: str | None, signed: bool, text: str
) -> None:
    assert money(value, quote, signed=signed) == text


def test_pnl_carries_its_sign_and_its_colour() -> None:
    assert pnl(0.25, "ETH") == "+0.25000000 ETH"
    assert [tone(0.25), tone(-1e-9), tone(0.0), tone(math.nan)] == [
        Tone.GAIN,
        Tone.LOSS,
        Tone.FLAT,
        Tone.FLAT,
    ]
    assert tone_of_text(pnl(-3, "BTC")) is Tone.LOSS
    assert tone_of_text(percent(0.1, signed=True)) is Tone.GAIN
    assert tone_of_text(MISSING) is Tone.FLAT
    assert tone_of_text("+0.00%") is Tone.FLAT and tone_of_text("+0.00000000 BTC") is Tone.FLAT
    assert tone_of_text("-0.01%") is Tone.LOSS and tone_of_text("+∞") is Tone.GAIN
    assert colour_css("-1.00%") == f"color: {COLOURS[Tone.LOSS]}"
    assert COLOURS[Tone.GAIN] != COLOURS[Tone.LOSS]


def test_quote_of_a_market() -> None:
    assert quote_of("ETH/BTC") == "BTC"
    assert quote_of("BTC/USDT:USDT") == "USDT"  # a perpetual's settle currency dropped
    assert quote_of(None) is None


def test_each_statistic_reads_by_what_it_is() -> None:
    stats = {
        "total_return": 0.0734,
        "cagr": -0.2,
        "sharpe": np.float64(1.4567),
        "sortino": np.nan,
        "calmar": 0.333,
        "max_drawdown": 0.1209,
        "max_drawdown_bars": np.int64(1500),
        "max_drawdown_days": 1500 * 300 / 86400,  # 1,500 five-minute bars
        "final_equity": 1.0734,
        "win_rate": 0.5,
        "profit_factor": np.inf,
        "expectancy": -0.0001,
        "trades": np.int64(42),
        "fee_rate": 0.001,
        "orders_skipped": 3,
        "ideal": np.bool_(False),
        "kind": "backtest",
        "alpha": 0.000123456789,
        "entry_price": 0.0877009712,
    }
    assert format_stats(stats, "BTC") == {
        "total_return": "+7.34%",
        "cagr": "-20.00%",
        "sharpe": "1.46",
        "sortino": MISSING,
        "calmar": "0.33",
        "max_drawdown": "12.09%",
        "max_drawdown_bars": "1,500",
        "max_drawdown_days": "5 d 5 h",  # 125 h
        "final_equity": "1.07340000 BTC",
        "win_rate": "50.00%",
        "profit_factor": "∞",
        "expectancy": "-0.00010000 BTC",
        "trades": "42",
        "fee_rate": "0.10%",
        "orders_skipped": "3",
        "ideal": "False",
        "kind": "backtest",
        "alpha": "0.000123457",
        "entry_price": "0.087700971",
    }


def test_walk_forward_and_monte_carlo_statistics_read_as_their_base_statistic() -> None:
    assert format_stat("oos_total_return", 0.012) == "+1.20%"
    assert format_stat("is_mean_sharpe", 0.876) == "0.88"
    assert format_stat("is_cagr", -0.5) == "-50.00%"
    assert format_stat("efficiency", 0.4567) == "0.46"
    assert format_stat("probability_of_loss", 0.0312) == "3.12%"
    assert format_stat("windows", 7) == "7"
