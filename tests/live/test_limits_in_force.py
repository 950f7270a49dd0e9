"""Limits reach the engine from where users set them: the settings file's [risk] table, the
WORKBENCH_RISK_* variables (which win over the file), and run-time changes (stored; they win
at the next start unless the settings were edited since)."""

from __future__ import annotations

from pathlib import Path

import pytest

from workbench.live.account import AccountGuard
from workbench.live.session import Live
from workbench.risk.account import AccountLimits
from workbench.settings import load_settings
from workbench.store import Store


def test_the_risk_table_and_its_variables_reach_a_live_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = tmp_path / "workbench.toml"
    config.write_text(
        "[risk]\nmax_open_positions = 4\ndaily_loss = 0.05\nstrategy_max_position = 0.5\n"
    )
    monkeypatch.setenv("WORKBENCH_CONFIG", str(config))
    monkeypatch.setenv("WORKBENCH_RISK_DAILY_LOSS", "0.02")
    monkeypatch.setenv("WORKBENCH_RISK_MAX_ORDER_NOTIONAL", "250")
    live = Live(load_settings())
    assert live.account_limits == AccountLimits(
        max_open_positions=4, daily_loss_fraction=0.02, max_order_notional=250.0
    )
    assert live.limits.max_position_fraction == 0.5
    shown = load_settings().masked()
    assert shown["risk_daily_loss"] == 0.02 and shown["risk_max_open_positions"] == 4


def test_a_wrong_limit_in_the_settings_names_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("WORKBENCH_CONFIG", str(tmp_path / "none.toml"))
    monkeypatch.setenv("WORKBENCH_RISK_MAX_DRAWDOWN", "1.5")
    with pytest.raises(ValueError, match=r"max_drawdown\n  Input should be less than or equal"):
        load_settings()


def test_the_last_change_wins_settings_or_run_time() -> None:
    store = Store.memory()
    given = AccountLimits(max_open_positions=3)
    assert AccountGuard(store.risk, "local", {}, given).limits == given
    # Changed at run time (the dashboard): stored, and kept over a start with the same settings.
    AccountGuard(store.risk, "local", {}, given).set_limits(
        AccountLimits(max_open_positions=5), by="ada"
    )
    assert AccountGuard(store.risk, "local", {}, given).limits.max_open_positions == 5
    # The settings edited since: they win.
    edited = AccountLimits(max_open_positions=2, daily_loss_fraction=0.03)
    assert AccountGuard(store.risk, "local", {}, edited).limits == edited
    assert AccountGuard(store.risk, "local", {}, edited).limits == edited
