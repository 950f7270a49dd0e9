"""Opening a page in the test browser with its problems collected."""

from __future__ import annotations

from typing import Any

LOCAL = ("http://127.0.0.1", "ws://127.0.0.1", "data:", "blob:")


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
