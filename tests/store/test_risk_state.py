"""The drawdown guard's state in the store: what is saved comes back, a later save replaces it."""

from __future__ import annotations

from pathlib import Path

import pytest

from workbench.risk.account import QuoteState
from workbench.risk.limits import DAY_MS, RiskState
from workbench.store import Store
from workbench.store.journal import journal_path, read_journal


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


def test_the_account_guards_memory_is_a_trading_write_not_a_commit_of_its_own(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The engine stores it from its event loop at nearly every bar (the account's peak
    # moves): a commit of its own held the loop for a millisecond or more each time.
    with Store.open(tmp_path / "live.duckdb") as store:
        commits: list[object] = []
        real = store.db.transaction
        monkeypatch.setattr(store.db, "transaction", lambda: (commits.append(1), real())[1])
        states = {"BTC": QuoteState(peak_pnl=0.25, day_start_ms=DAY_MS), "USDT": QuoteState()}
        store.risk.save_states("local", states)
        assert commits == [], "journaled: the writer thread commits it"
        assert [unit[0].name for _seq, unit in read_journal(journal_path(store.path))] == [
            "save_account_state"
        ]
        monkeypatch.undo()
        assert store.risk.states("local") == states, "read back: the journal is applied first"
    with Store.open(tmp_path / "live.duckdb") as store:
        assert store.risk.states("local") == states
