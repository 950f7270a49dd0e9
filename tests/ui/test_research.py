"""The research app in a real browser: it loads cleanly, runs a backtest from the UI and shows
the same statistics as a direct `backtest()` of the same spec and parameters."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from shipped import ARTIFACTS, ROOT
from ui.pages import open_page

from workbench.backtest.engine import backtest
from workbench.store import Store
from workbench.strategy import load_spec

pytestmark = pytest.mark.browser


def stat_cell(page: Any, name: str) -> str:
    """Give the displayed value of statistic ``name`` in the stats table."""
    values = page.locator(".tabulator-row").evaluate_all(
        """(rows, name) => rows
            .filter(r => r.querySelector('[tabulator-field=stat]')?.innerText.trim() === name)
            .map(r => r.querySelector('[tabulator-field=value]').innerText.trim())""",
        name,
    )
    assert len(values) == 1, (name, values)
    return values[0]


def test_a_backtest_run_from_the_ui_shows_the_direct_backtest_stats(
    browser: Any, research: str, served_db: Path
) -> None:
    page, problems = open_page(browser, research, height=1300, wait="networkidle")
    page.get_by_role("button", name="Run backtest").wait_for(timeout=60_000)

    page.get_by_role("button", name="Run backtest").click()
    page.get_by_text("backtest done.").wait_for(timeout=60_000)
    page.wait_for_selector('.tabulator-cell:has-text("total_return")', timeout=30_000)
    page.wait_for_timeout(1000)
    page.screenshot(path=str(ARTIFACTS / "research.png"), full_page=True)

    # The app's defaults: ema_cross_rsi on the stored ETH/BTC 5m bars, default costs.
    spec = load_spec(ROOT / "data" / "strategies" / "ema_cross_rsi.json")
    with Store.open(served_db, read_only=True) as store:
        candles = store.candles.read("local", "ETH/BTC", "5m")
        rules = {"ETH/BTC": store.markets.get("local", "ETH/BTC")}  # the app sizes by them
    direct = backtest(
        spec, candles, spec.default_params(), cash=10_000.0, fees=0.001, lot_rules=rules
    )
    # Shown as traders read them (worked out here, not by the app's formatter).
    stats = direct.stats
    assert stat_cell(page, "total_return") == f"{100 * stats['total_return']:+.2f}%"
    assert stat_cell(page, "max_drawdown") == f"{100 * stats['max_drawdown']:.2f}%"
    assert stat_cell(page, "sharpe") == f"{stats['sharpe']:.2f}"
    assert stat_cell(page, "trades") == f"{stats['trades']:,d}"
    assert stat_cell(page, "final_equity") == f"{stats['final_equity']:,.8f} BTC"

    # Saved, the run is listed in the Runs tab.
    page.get_by_role("button", name="Save run").click()
    page.get_by_text("Saved as run").wait_for(timeout=60_000)
    run_id = page.get_by_text("Saved as run").inner_text().split()[-1].rstrip(".")
    page.locator(".bk-tab", has_text="Runs").click()
    # The table refreshes when the run is saved; under a loaded CI machine this can take a while.
    page.locator(".tabulator-cell", has_text=run_id).wait_for(timeout=90_000)
    # The other tabs draw when first shown, from the server's resources only.
    for tab, shows in (
        ("Sweep", "Run sweep"),
        ("Walk-forward", "Run walk-forward"),
        ("Monte Carlo", "Run Monte Carlo"),
    ):
        page.locator(".bk-tab", has_text=tab).click()
        page.get_by_role("button", name=shows).wait_for(timeout=30_000)
    page.wait_for_timeout(500)
    assert problems == []
    page.close()
