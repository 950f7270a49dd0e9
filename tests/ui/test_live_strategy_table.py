"""The live strategies table's rows, patches, sparklines and details, without a browser."""

from __future__ import annotations

import re

import pandas as pd

from workbench.ui.formats import COLOURS, Tone
from workbench.ui.live_strategy_table import (
    COLUMNS,
    SPARK_POINTS,
    changed_cells,
    details_text,
    drawdown,
    new_rows,
    sparkline,
    strategy_rows,
)


def status(**over: object) -> pd.DataFrame:
    """Give `LiveEngine.status()` of two strategies, one in BTC and one in USDT."""
    rows = [
        {
            "strategy_id": "sma-ETHBTC-1",
            "state": "running",
            "problem": None,
            "symbol": "ETH/BTC",
            "position": 2.5,
            "average_price": 0.05,
            "cash": 0.875,
            "equity": 1.0125,
            "realized_pnl": 0.015,
            "unrealized_pnl": -0.0025,
            "fees": 0.00031,
            "trades": 3,
            "return": 0.0125,
        },
        {
            "strategy_id": "ema-BTCUSDT-2",
            "state": "paused",
            "problem": None,
            "symbol": "BTC/USDT",
            "position": 0.0,
            "average_price": 0.0,
            "cash": 9_400.0,
            "equity": 9_400.0,
            "realized_pnl": -600.0,
            "unrealized_pnl": 0.0,
            "fees": 12.5,
            "trades": 1_204,
            "return": -0.06,
        },
    ]
    rows[0].update(over)
    return pd.DataFrame(rows)


def test_rows_read_as_traders_read_them() -> None:
    peaks = {"sma-ETHBTC-1": 1.0125, "ema-BTCUSDT-2": 10_000.0}
    rows = strategy_rows(status(), peaks, {"sma-ETHBTC-1": "<svg/>"})
    assert list(rows.columns) == COLUMNS
    assert rows.to_dict("records") == [
        {
            "strategy": "sma-ETHBTC-1",
            "state": "running",
            "equity": "1.01250000 BTC",
            "return": "+1.25%",
            "drawdown": "0.00%",  # at its peak
            "trades": "3",
            "curve": "<svg/>",
        },
        {
            "strategy": "ema-BTCUSDT-2",
            "state": "paused",
            "equity": "9,400.00 USDT",
            "return": "-6.00%",
            "drawdown": "6.00%",  # 600 under a peak of 10,000
            "trades": "1,204",
            "curve": "",
        },
    ]


def test_drawdown_is_measured_from_the_peak_or_from_a_new_high() -> None:
    assert drawdown(90.0, 120.0) == 0.25
    assert drawdown(130.0, 120.0) == 0.0  # above the stored peak: a new high
    assert drawdown(0.0, 0.0) == 0.0


def test_only_the_changed_cells_are_patched() -> None:
    peaks: dict[str, float] = {}
    before = strategy_rows(status(), peaks, {})
    after = strategy_rows(status(equity=1.02, state="paused"), peaks, {})
    assert changed_cells(before, before) == {}
    assert changed_cells(before, after) == {
        "state": [(0, "paused")],
        "equity": [(0, "1.02000000 BTC")],
    }
    # A strategy added: the first rows patched, the new one appended.
    assert changed_cells(before.iloc[:1], after) == {
        "state": [(0, "paused")],
        "equity": [(0, "1.02000000 BTC")],
    }
    added = new_rows(before.iloc[:1], after)
    assert added.to_dict("records") == after.iloc[1:].to_dict("records")
    assert list(added.index) == [1]  # numbered after the rows already shown
    # Strategies gone or in another order: the rows are replaced.
    assert changed_cells(before, after.iloc[:1]) is None
    assert changed_cells(before, after.iloc[::-1].reset_index(drop=True)) is None


def points(svg: str) -> list[tuple[float, float]]:
    found = re.search(r'points="([^"]+)"', svg)
    assert found, svg
    return [tuple(map(float, p.split(","))) for p in found.group(1).split()]  # type: ignore[misc]


def test_a_sparkline_draws_the_curve_in_its_box_coloured_by_its_end() -> None:
    rising = sparkline([1.0, 3.0, 2.0], width=90, height=22)
    assert f'stroke="{COLOURS[Tone.GAIN]}"' in rising
    # x spread over the width; the highest value at the top (y small), the lowest at the bottom
    assert points(rising) == [(1.0, 20.0), (45.0, 2.0), (89.0, 11.0)]
    assert f'stroke="{COLOURS[Tone.LOSS]}"' in sparkline([3.0, 1.0])
    flat = sparkline([2.0, 2.0, 2.0])
    assert {y for _, y in points(flat)} == {10.0}  # the middle of the default 20 px
    assert sparkline([1.0]) == "" and sparkline([]) == ""


def test_a_long_curve_is_sampled_down_keeping_its_ends() -> None:
    curve = [float(i) for i in range(1000)]
    drawn = points(sparkline(curve))
    assert len(drawn) == SPARK_POINTS
    assert drawn[0] == (1.0, 18.0) and drawn[-1] == (71.0, 2.0)  # first low, last high


def test_details_say_state_stored_state_and_amounts_in_the_quote() -> None:
    row = status(problem="feed stale").iloc[0].to_dict()
    text = details_text(row, "paused")
    assert "**running** (stored state: paused) · ETH/BTC" in text
    assert "⚠ feed stale" in text
    assert "equity **1.01250000 BTC** · return **+1.25%**" in text
    assert "realized +0.01500000 BTC · unrealized -0.00250000 BTC" in text
    assert "fees 0.00031000 BTC · trades 3" in text
    assert "position 2.50000000 ETH · cash 0.87500000 BTC" in text
