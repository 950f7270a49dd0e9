"""Opening a page in the test browser with its problems collected."""

from __future__ import annotations

from typing import Any

LOCAL = ("http://127.0.0.1", "ws://127.0.0.1", "data:", "blob:")
STRATEGY_ROWS = ".strategy-table .tabulator-row"  # the live page's strategies


def open_page(
    browser: Any, url: str, *, width: int = 1500, height: int = 1100, wait: str = "load"
) -> tuple[Any, list[str]]:
    """Open a page; give it and the list its console errors and external requests go to."""
    page = browser.new_page(viewport={"width": width, "height": height})
    problems: list[str] = []
    page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda exc: problems.append(str(exc)))
    # Nothing may leave this machine: the apps run offline.
    page.on(
        "request",
        lambda r: None if r.url.startswith(LOCAL) else problems.append(f"external: {r.url}"),
    )
    page.goto(url, wait_until=wait)
    return page, problems


def sign_in(
    browser: Any, base: str, name: str, password: str, *, width: int = 1500, height: int = 1100
) -> tuple[Any, Any, list[str]]:
    """Log in through the dashboard's form; give the browser context, the page (its strategy
    strategies drawn) and the list its console errors and external requests go to."""
    context = browser.new_context(viewport={"width": width, "height": height})
    page = context.new_page()
    problems: list[str] = []
    page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda exc: problems.append(str(exc)))
    page.on(
        "request",
        lambda r: None if r.url.startswith(LOCAL) else problems.append(f"external: {r.url}"),
    )
    page.goto(f"{base}/dashboard")
    page.fill("#username", name)
    page.fill("#password", password)
    page.click("#login")
    page.locator(STRATEGY_ROWS).first.wait_for(timeout=60_000)
    return context, page, problems


def strategy_row(page: Any, strategy_id: str) -> Any:
    """Give a strategy's row in the live page's strategies table."""
    return page.locator(STRATEGY_ROWS, has_text=strategy_id).first


def set_state(page: Any, strategy_id: str, control: str) -> None:
    """Click a strategy's Start, Pause or Stop in its row of the strategies table."""
    strategy_row(page, strategy_id).get_by_role("button", name=control).click()


def state_shown(page: Any, strategy_id: str, state: str, timeout_ms: int = 30_000) -> None:
    """Wait until a strategy's row shows a state, and the note beside the table says it was
    set (after the engine stored it)."""
    strategy_row(page, strategy_id).locator(f"text={state}").wait_for(timeout=timeout_ms)
    note = page.locator(".strategy-note").locator(f"text=/{strategy_id}: set {state}/")
    note.wait_for(timeout=timeout_ms)


def details(page: Any) -> Any:
    """Give the selected strategy's details beside the table."""
    return page.locator(".strategy-details")
