"""Login on a real `panel serve` with auth on, driven by chromium: wrong passwords and the
lockout, roles on the page and on the server (a viewer's crafted click is refused and
audited), a trader trading, an admin adding a user, logout and session expiry; no secret
in any page or websocket frame."""

from __future__ import annotations

import re
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import TimeoutError as PlaywrightTimeout
from shipped import ARTIFACTS
from ui.conftest import COOKIE_SECRET, serve_with_login, worker_log_name
from ui.pages import STRATEGY_ROWS, set_state, state_shown

from workbench.store.sharing import query

pytestmark = pytest.mark.browser


class _Stay(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *_args: Any, **_kwargs: Any) -> None:
        return None


NO_REDIRECTS = urllib.request.build_opener(_Stay)
CANARY_KEY, CANARY_SECRET = "canaryKEY-44aa9d0e7c1b", "canarySECRET-9d8c7b6a5f4e"
SESSION_TTL_S = 75  # the viewer's page (opened first) must outlive its own crafted clicks
LOCKOUT_S = 8  # longer than a busy machine takes from one submit to the next
PASSWORDS = {"ada": "admin password 1", "tess": "trader password 1", "vic": "viewer password 1"}
ROLES = {"ada": "admin", "tess": "trader", "vic": "viewer"}


@dataclass
class Server:
    base: str
    db: Path
    started: float
    frames: list[str] = field(default_factory=list)
    pages: list[str] = field(default_factory=list)


@pytest.fixture(scope="module")
def server(served_db: Path) -> Iterator[Server]:
    users = {name: (ROLES[name], password) for name, password in PASSWORDS.items()}
    env = {
        "WORKBENCH_SESSION_TTL_S": str(SESSION_TTL_S),
        "WORKBENCH_LOGIN_MAX_FAILURES": "3",
        "WORKBENCH_LOGIN_LOCKOUT_S": str(LOCKOUT_S),
        "WORKBENCH_API_KEY": CANARY_KEY,
        "WORKBENCH_API_SECRET": CANARY_SECRET,
    }
    with serve_with_login(served_db, "panel-serve-auth.log", users, env) as base:
        yield Server(base, served_db, time.monotonic())


def watch(page: Any, server: Server) -> list[str]:
    """Collect the page's console errors, and every websocket frame it receives."""
    problems: list[str] = []
    page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda exc: problems.append(str(exc)))
    page.on(
        "websocket",
        lambda ws: ws.on(
            "framereceived",
            lambda f: server.frames.append(
                f if isinstance(f, str) else f.decode("utf-8", "replace")
            ),
        ),
    )
    return problems


def submit(page: Any, name: str, password: str) -> None:
    page.fill("#username", name)
    page.fill("#password", password)
    page.click("#login")


def log_in(browser: Any, server: Server, name: str) -> tuple[Any, Any, list[str]]:
    """Log in through the form; give the browser context, the dashboard page, its problems."""
    context = browser.new_context(viewport={"width": 1500, "height": 1100})
    page = context.new_page()
    problems = watch(page, server)
    page.goto(f"{server.base}/dashboard")
    assert "/login" in page.url
    submit(page, name, PASSWORDS[name])
    page.wait_for_url(re.compile(r".*/dashboard$"), timeout=30_000)
    page.locator("text=/Signed in as/").wait_for(timeout=30_000)
    page.locator(STRATEGY_ROWS).first.wait_for(timeout=60_000)
    return context, page, problems


def audit_rows(server: Server, actor: str) -> list[tuple[str, str, str | None]]:
    rows = query(
        "SELECT action, result, target FROM audit_log WHERE actor = ? ORDER BY seq", [actor],
        db=server.db,
    )  # fmt: skip
    return [tuple(r) for r in rows.itertuples(index=False)]


@dataclass
class Early:
    """A viewer's page opened first, whose session expires while the other tests run."""

    context: Any
    page: Any
    problems: list[str]
    #: taken before the login form went out: the server's session began after it (the
    #: dashboard can take many seconds to load on a busy machine)
    logged_in: float


@pytest.fixture(scope="module")
def early(browser: Any, server: Server) -> Iterator[Early]:
    before = time.monotonic()
    context, page, problems = log_in(browser, server, "vic")
    yield Early(context, page, problems, before)
    context.close()


def test_a_viewer_sees_no_controls_and_a_crafted_click_is_refused_and_audited(
    server: Server, early: Early
) -> None:
    page, problems = early.page, early.problems
    assert "Signed in as vic (viewer)" in page.locator("text=/Signed in as/").inner_text()
    for control in ("Pause", "Start", "Stop", "Place order", "Add strategy"):
        assert page.get_by_role("button", name=control, exact=True).count() == 0
    assert page.locator(".bk-tab", has_text="Users").count() == 0
    assert page.locator(".bk-tab", has_text="Audit").count() == 0
    assert page.locator(STRATEGY_ROWS).count() == 3  # every strategy, without its controls
    # A crafted client: send the click a Pause control would send for the first row
    # (sma_cross-ETHBTC), from BokehJS, though the page drew no control.
    sent = page.evaluate(
        """() => {
        const {ModelEvent} = Bokeh.require("core/bokeh_events");
        class Crafted extends ModelEvent {
          get event_values() { return {model: this.origin, column: "pause", row: 0}; }
        }
        Crafted.prototype.event_name = "cell-click";
        let n = 0;
        for (const doc of Bokeh.documents)
          for (const m of doc.all_models)
            if (m.css_classes?.includes("strategy-table")) {
              m.trigger_event(new Crafted()); n += 1;
            }
        return n;
      }"""
    )
    assert sent == 1
    refused = "text=/Refused: vic \\(viewer\\) may not set_state/"
    page.locator(".strategy-note").locator(refused).wait_for(timeout=15_000)
    state = query(
        "SELECT state FROM strategies WHERE strategy_id = 'sma_cross-ETHBTC'", db=server.db
    )
    assert state["state"].tolist() == ["running"]
    assert ("set_state", "refused", "sma_cross-ETHBTC") in audit_rows(server, "vic")

    # The Risk tab's kill switch, crafted the same way: enabled in BokehJS, then clicked.
    page.locator(".bk-tab", has_text="Risk").click()
    page.locator("text=/Halt and resume are not for vic/").wait_for(timeout=30_000)
    enable = """([label, reason]) => {
        for (const doc of Bokeh.documents)
          for (const m of doc.all_models) {
            if (m.label === label) m.disabled = false;
            if (reason && m.placeholder && m.placeholder.startsWith("why trading halts")) {
              m.disabled = false; m.value = reason;
            }
          }
      }"""

    def crafted_click(label: str, then: str, reason: str | None = None) -> None:
        # The server disables the button again on its next refresh (every 2 s): a DOM click
        # landing after that sends nothing, so the crafted client tries again, as an attacker
        # would. Each try that reaches the server is refused.
        for _ in range(5):
            page.evaluate(enable, [label, reason])
            try:
                page.get_by_role("button", name=label, exact=True).click(timeout=5_000)
                if then:
                    page.get_by_role("button", name=then).click(timeout=5_000)
            except PlaywrightTimeout:  # disabled again before the click, or nothing to confirm
                continue
            if page.locator(f"text=/may not {action[label]}/").count():
                return
            page.wait_for_timeout(2_000)
            if page.locator(f"text=/may not {action[label]}/").count():
                return
        raise AssertionError(f"the crafted {label} click never reached the server")

    action = {"Halt": "halt"}
    crafted_click("Halt", "Confirm halt", "crafted by a viewer")
    page.locator("text=/Not done: vic \\(viewer\\) may not halt/").wait_for(timeout=15_000)
    assert ("halt", "refused") in [row[:2] for row in audit_rows(server, "vic")]
    assert query("SELECT count(*) AS n FROM halts", db=server.db)["n"].tolist() == [0]
    server.pages.append(page.content())
    assert problems == []


def test_the_research_app_needs_a_login_too(server: Server) -> None:
    with pytest.raises(urllib.error.HTTPError) as redirected:  # a redirect, not followed
        NO_REDIRECTS.open(f"{server.base}/research", timeout=30)
    assert redirected.value.code == 302
    assert "login?next=%2Fresearch" in redirected.value.headers["Location"]


def test_wrong_passwords_lock_the_login_out_until_it_ends(
    browser: Any, server: Server, early: Early
) -> None:
    context = browser.new_context()
    page = context.new_page()
    page.goto(f"{server.base}/dashboard")
    page.wait_for_selector("#login")
    submit(page, "tess", "not the password")
    assert page.locator("#login-error").inner_text() == "Wrong name or password."
    submit(page, "tess", "still not it")
    submit(page, "tess", "third time")
    assert "Too many failed logins" in page.locator("#login-error").inner_text()
    locked_at = time.monotonic()  # the answer is here: the lockout began before it
    # The right one, while locked out: refused. Sent at once (a browser's next submit can take
    # longer than the lockout on a busy machine).
    form = urllib.parse.urlencode({"username": "tess", "password": PASSWORDS["tess"]}).encode()
    with pytest.raises(urllib.error.HTTPError) as locked:
        NO_REDIRECTS.open(urllib.request.Request(f"{server.base}/login", data=form), timeout=30)
    assert locked.value.code == 429 and b"Too many failed logins" in locked.value.read()
    page.wait_for_timeout(max(LOCKOUT_S + 0.3 - (time.monotonic() - locked_at), 0) * 1000)
    submit(page, "tess", PASSWORDS["tess"])
    page.wait_for_url(re.compile(r".*/dashboard$"), timeout=30_000)
    server.pages.append(page.content())
    context.close()
    assert [r[:2] for r in audit_rows(server, "tess")][-5:] == [
        ("login_failed", "refused"),
        ("login_failed", "refused"),
        ("login_failed", "refused"),
        ("login_failed", "refused"),
        ("login", "allowed"),
    ]


def test_a_trader_pauses_a_strategy_places_an_order_then_logs_out_for_good(
    browser: Any, server: Server
) -> None:
    context, page, problems = log_in(browser, server, "tess")
    set_state(page, "ema_cross_rsi-ETHBTC", "Pause")
    state_shown(page, "ema_cross_rsi-ETHBTC", "paused")
    assert ("set_state", "allowed", "ema_cross_rsi-ETHBTC") in audit_rows(server, "tess")
    ticket = page.locator(".bk-panel-models-layout-Column", has_text="Order ticket").last
    ticket.locator("select").first.select_option("sma_cross-ETHBTC")
    amount, price = ticket.locator("input").nth(0), ticket.locator("input").nth(1)
    amount.fill("0.5")
    amount.press("Enter")
    price.fill("0.001")  # far below ETH/BTC: it rests
    price.press("Enter")
    ticket.get_by_role("button", name="Place order").click()
    page.locator("text=/Order wb-[0-9a-f]+: open/").wait_for(timeout=30_000)
    assert ("place_order", "allowed", "sma_cross-ETHBTC") in audit_rows(server, "tess")
    cookies = context.cookies()
    page.get_by_role("link", name="Log out").click()
    page.locator("#login-again").wait_for(timeout=15_000)
    page.goto(f"{server.base}/dashboard")
    assert "/login" in page.url
    # The old cookies are worth nothing now: the session ended on the server.
    replay = browser.new_context()
    replay.add_cookies(cookies)
    again = replay.new_page()
    again.goto(f"{server.base}/dashboard")
    assert "/login" in again.url
    assert audit_rows(server, "tess")[-1][:2] == ("logout", "allowed")
    assert problems == []
    replay.close()
    context.close()


def test_an_admin_adds_a_user_who_can_then_log_in(browser: Any, server: Server) -> None:
    context, page, problems = log_in(browser, server, "ada")
    page.locator(".bk-tab", has_text="Users").click()
    users = page.locator(".bk-panel-models-layout-Column", has_text="Add user").last
    users.locator("input").nth(0).fill("newbie")
    users.locator("select").first.select_option("trader")
    users.locator("input[type=password]").fill("newbie password 1")
    users.get_by_role("button", name="Add user").click()
    page.locator("text=/Added newbie \\(trader\\)/").wait_for(timeout=15_000)
    assert ("manage_users", "allowed", "newbie") in audit_rows(server, "ada")
    page.locator(".bk-tab", has_text="Audit").click()
    page.get_by_role("button", name="Refresh").click()
    page.locator(".tabulator-row", has_text="newbie").first.wait_for(timeout=15_000)
    page.get_by_role("button", name="Verify chain").click()
    page.locator("text=/Hash chain holds over/").wait_for(timeout=15_000)
    server.pages.append(page.content())
    assert problems == []
    context.close()
    # The new user logs in (the form's request, without a browser).
    form = urllib.parse.urlencode(
        {"username": "newbie", "password": "newbie password 1", "next": "/dashboard"}
    ).encode()
    with pytest.raises(urllib.error.HTTPError) as redirected:  # a redirect, not followed
        NO_REDIRECTS.open(urllib.request.Request(f"{server.base}/login", data=form), timeout=30)
    answer = redirected.value
    assert answer.code == 302 and answer.headers["Location"] == "/dashboard"
    assert "workbench_session=" in answer.headers["Set-Cookie"]
    assert [r[:2] for r in audit_rows(server, "newbie")] == [("login", "allowed")]


def test_a_session_expires_on_the_open_page_and_on_the_server(server: Server, early: Early) -> None:
    page = early.page
    page.bring_to_front()  # a page left in the background may be throttled by chromium
    left_s = max(SESSION_TTL_S - (time.monotonic() - early.logged_in), 0)
    page.locator("text=/Your session has ended/").wait_for(timeout=(left_s + 20) * 1000)
    assert time.monotonic() - early.logged_in >= SESSION_TTL_S - 1
    page.goto(f"{server.base}/dashboard")
    assert "/login" in page.url


def test_no_secret_reached_a_page_a_websocket_frame_the_log_or_the_database(
    server: Server,
) -> None:
    assert server.frames and server.pages
    log = ARTIFACTS / worker_log_name("panel-serve-auth.log")  # this worker's server
    files = [log, *server.db.parent.glob(server.db.name + "*")]  # the database, its WAL
    texts = [
        *server.frames,
        *server.pages,
        *(path.read_bytes().decode("latin-1") for path in files),
    ]
    assert len(files) >= 2 and "live engine running" in log.read_text()
    for text in texts:
        for secret in (CANARY_KEY, CANARY_SECRET, COOKIE_SECRET):
            assert secret not in text
