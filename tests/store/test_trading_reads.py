"""Reading a long run's trades and refusals: the newest few, and win rates, from SQL."""

from __future__ import annotations

import numpy as np
import pandas as pd

from workbench.portfolio.accounting import RoundTrip
from workbench.store import Store

STEP_MS = 300_000


def test_latest_trades_and_refusals_and_win_rates_match_the_whole_tables(store: Store) -> None:
    rng = np.random.default_rng(7)
    trading = store.trading
    for sid in ("a", "b"):
        for n in range(40):
            entry = 1_600_000_000_000 + int(rng.integers(0, 10_000)) * STEP_MS
            pnl = float(rng.normal())
            trip = RoundTrip("ETH/BTC", "long", entry, entry + STEP_MS, 1.0, 1.0, 1.0, pnl, 0.0)
            trading.save_round_trip(sid, n + 1, trip)
            trading.save_refusal(
                sid, entry, "ETH/BTC", "buy", 1.0, "entry", "position_limit", {"n": n}
            )
    whole = trading.round_trips()
    latest = trading.round_trips(latest=7)
    refusals = trading.refusals()
    newest_refusals = trading.refusals(latest=5)
    wins = trading.win_rates()
    assert len(whole) == 80 and len(latest) == 7
    expected = whole.sort_values("exit_time", ascending=False, kind="stable").head(7)
    assert list(latest["exit_time"]) == list(expected["exit_time"])
    assert list(newest_refusals["ts"]) == list(refusals["ts"].iloc[::-1].head(5))
    by_hand = whole.assign(win=whole["pnl"] > 0).groupby("strategy_id")["win"].mean()
    pd.testing.assert_series_equal(
        wins.sort_index(), by_hand.astype(float).rename("win_rate"), check_names=False
    )


def test_the_last_equity_mark_among_strategies_is_the_newest_of_theirs(store: Store) -> None:
    t0 = 1_600_000_000_000
    trading = store.trading
    assert trading.last_mark_ms(["a"]) is None and trading.last_mark_ms([]) is None
    rows = [("a", t0 + k * STEP_MS, 1.0, 1.0, 0.0, 1.0) for k in range(5)]
    rows += [("b", t0 + 9 * STEP_MS, 1.0, 1.0, 0.0, 1.0), ("c", t0 + 20 * STEP_MS, 1, 1, 0, 1)]
    trading.save_equity_rows(rows)
    assert trading.last_mark_ms(["a"]) == t0 + 4 * STEP_MS
    assert trading.last_mark_ms(["a", "b"]) == t0 + 9 * STEP_MS
    assert trading.last_mark_ms(["zzz"]) is None
