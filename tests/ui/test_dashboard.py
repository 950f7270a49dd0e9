"""The dashboard in a real browser: it loads cleanly and shows the demo strategies."""

from __future__ import annotations

from typing import Any

from shipped import ARTIFACTS
from ui.pages import STRATEGY_ROWS, open_page


def test_dashboard_loads_without_console_errors_and_shows_the_demo_strategies(
    browser: Any, dashboard: str
) -> None:
    page, problems = open_page(browser, dashboard)
    page.wait_for_selector("text=/bars streamed/", timeout=60_000)
    page.wait_for_selector("canvas", timeout=30_000)
    page.wait_for_timeout(1500)
    page.screenshot(path=str(ARTIFACTS / "dashboard.png"), full_page=True)
    assert problems == []
    # A row per demo strategy, each with its controls.
    assert page.locator(STRATEGY_ROWS).count() == 3
    assert page.locator(STRATEGY_ROWS).get_by_role("button", name="Pause").count() == 3
    page.close()
