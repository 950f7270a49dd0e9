"""The drawdown guard's state in the store: what is saved comes back, a later save replaces it."""

from __future__ import annotations

from workbench.risk.limits import DAY_MS, RiskState
from workbench.store import Store


def test_a_saved_guard_state_comes_back_whole(store: Store) -> None:
    halted = RiskState(
        peak_equity=10_250.5,
        day_start_ms=3 * DAY_MS,
        day_start_equity=10_100.25,
        halted_until_ms=3 * DAY_MS + 7_200_000,
        halts=[2 * DAY_MS + 300_000, 3 * DAY_MS + 600_000],
        marked_ms=3 * DAY_MS + 600_000,
    )
    store.trading.save_risk_state("dd", halted)
    store.trading.save_risk_state("fresh", RiskState())
    assert store.trading.risk_state("dd") == halted
    assert store.trading.risk_state("fresh") == RiskState()
    assert store.trading.risk_state("unknown") is None


def test_a_later_save_replaces_the_state(store: Store) -> None:
    store.trading.save_risk_state("dd", RiskState(peak_equity=1.0, day_start_ms=0, marked_ms=0))
    later = RiskState(peak_equity=2.0, day_start_ms=DAY_MS, day_start_equity=2.0, marked_ms=DAY_MS)
    store.trading.save_risk_state("dd", later)
    assert store.trading.risk_state("dd") == later


def test_equity_marks_after_a_bar_come_oldest_first(store: Store) -> None:
    bars_ms = [0, 300_000, 600_000]
    rows = [("dd", ts_ms, 100.0 + i, 0.0, 0.0, 1.0) for i, ts_ms in enumerate(bars_ms)]
    store.trading.save_equity_rows(rows[::-1])
    assert store.trading.equity_marks("dd") == [(0, 100.0), (300_000, 101.0), (600_000, 102.0)]
    assert store.trading.equity_marks("dd", 300_000) == [(600_000, 102.0)]
