"""Risk limits: exits always pass; entries are refused by the rule that applies, with numbers."""

from __future__ import annotations

from dataclasses import replace

from workbench.broker.models import OrderIntent
from workbench.fills import Side
from workbench.risk.limits import DAY_MS, RiskLimits, RiskManager


def entry(amount: float = 1.0, purpose: str = "entry") -> OrderIntent:
    return OrderIntent("s", "ETH/BTC", Side.BUY, amount, purpose=purpose)


def check(risk: RiskManager, intent: OrderIntent, **over: float) -> object:
    numbers = (
        dict(now_ms=0, price=10.0, equity=100.0, position_value=0.0, exposure=0.0, open_orders=0)
        | over
    )
    return risk.check(intent, **numbers)  # type: ignore[arg-type]


def test_no_limits_refuse_nothing_and_exits_always_pass() -> None:
    assert check(RiskManager(), entry(1e9)) is None
    strict = RiskManager(RiskLimits(max_position_fraction=0.0, max_open_orders=0))
    assert check(strict, entry(5, purpose="stop_loss")) is None


def test_position_and_exposure_limits_name_the_numbers() -> None:
    risk = RiskManager(RiskLimits(max_position_fraction=0.5, max_exposure_fraction=0.8))
    assert check(risk, entry(4)) is None
    refused = check(risk, entry(6))
    assert refused.rule == "position_limit"  # type: ignore[attr-defined]
    assert refused.detail == {
        "position_value": 0.0,
        "order_notional": 60.0,  # type: ignore[attr-defined]
        "allowed": 50.0,
        "equity": 100.0,
    }
    assert check(risk, entry(4), exposure=50.0).rule == "exposure_limit"  # type: ignore[attr-defined]


def test_the_drawdown_guard_halts_entries_for_its_cool_down() -> None:
    risk = RiskManager(RiskLimits(max_drawdown_fraction=0.1, drawdown_cooldown_ms=DAY_MS))
    assert not risk.mark(0, 100.0)
    assert not risk.mark(1, 120.0)
    assert risk.mark(2, 107.0)  # 10.8 % below the peak of 120
    assert check(risk, entry(), now_ms=3).rule == "drawdown_guard"  # type: ignore[attr-defined]
    assert check(risk, entry(), now_ms=2 + DAY_MS) is None
    assert not risk.mark(3 + DAY_MS, 100.0)  # measured afresh from where it resumed


def test_the_daily_loss_limit_resets_each_day() -> None:
    risk = RiskManager(RiskLimits(daily_loss_fraction=0.05))
    risk.mark(0, 100.0)
    assert check(risk, entry(), equity=94.0).rule == "daily_loss"  # type: ignore[attr-defined]
    risk.mark(DAY_MS, 94.0)
    assert check(risk, entry(), equity=94.0, now_ms=DAY_MS) is None


def test_open_orders_are_capped() -> None:
    risk = RiskManager(RiskLimits(max_open_orders=2))
    assert check(risk, entry(), open_orders=1) is None
    assert check(risk, entry(), open_orders=2).rule == "open_orders"  # type: ignore[attr-defined]


def test_a_manager_on_a_restored_state_keeps_the_cool_down_and_the_day() -> None:
    limits = RiskLimits(max_drawdown_fraction=0.1, daily_loss_fraction=0.5)
    first = RiskManager(limits)
    first.mark(0, 100.0)
    assert first.mark(1, 85.0)
    restored = RiskManager(limits, replace(first.state, halts=list(first.state.halts)))
    assert check(restored, entry(), now_ms=2).rule == "drawdown_guard"  # type: ignore[attr-defined]
    assert check(restored, entry(), now_ms=1 + DAY_MS) is None
    assert restored.state.day_start_equity == 100.0


def test_a_bar_marked_again_changes_nothing_and_gives_the_same_answer() -> None:
    risk = RiskManager(RiskLimits(max_drawdown_fraction=0.1))
    risk.mark(0, 100.0)
    assert risk.mark(1, 85.0)
    state = replace(risk.state, halts=list(risk.state.halts))
    assert risk.mark(1, 85.0)  # the trip bar replayed after a restart: trips the same way
    assert not risk.mark(0, 500.0)
    assert risk.state == state


def test_the_peak_rises_with_the_marks_after_the_stored_state() -> None:
    risk = RiskManager(RiskLimits(max_drawdown_fraction=0.1))
    for ts_ms, equity in enumerate([100.0, 104.0, 103.0, 107.0, 105.0]):
        risk.mark(ts_ms, equity)
    stored = RiskManager(RiskLimits(max_drawdown_fraction=0.1))
    stored.mark(0, 100.0)
    marks = list(enumerate([100.0, 104.0, 103.0, 107.0, 105.0]))
    assert stored.state.with_peak(marks) == risk.state
    assert stored.state.with_peak([]) == stored.state
