"""The dashboard in a real browser: it loads cleanly and shows the demo strategies."""

from __future__ import annotations

from typing import Any

from shipped import ARTIFACTS


def open_page(browser: Any, url: str) -> tuple[Any, list[str]]:
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    problems: list[str] = []
    page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda exc: problems.append(str(exc)))
    # Nothing may leave this machine: the dashboard runs offline.
    page.on(
        "request",
        lambda r: (
            None
            if r.url.startswith(("http://127.0.0.1", "ws://127.0.0.1", "data:", "blob:"))
            else problems.append(f"external request: {r.url}")
        ),
    )
    page.goto(url, wait_until="load")
    return page, problems


def test_dashboard_loads_without_console_errors_and_shows_the_demo_strategies(
    browser: Any, dashboard: str
) -> None:
    page, problems = open_page(browser, dashboard)
    page.wait_for_selector("text=/bars streamed/", timeout=60_000)
    page.wait_for_selector("canvas", timeout=30_000)
    page.wait_for_timeout(1500)
    page.screenshot(path=str(ARTIFACTS / "dashboard.png"), full_page=True)
    assert problems == []
    # A card per demo strategy, each with its controls.
    assert page.get_by_role("button", name="Pause").count() == 3
    page.close()
