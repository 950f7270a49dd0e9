"""The live dashboard in a real browser: `panel serve apps/dashboard.py` paper trading on the
local exchange (replaying the shipped candles at 3000x), against a scratch database."""

from __future__ import annotations

import json
import re
import time
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import TimeoutError as PlaywrightTimeout
from shipped import ARTIFACTS, ROOT
from ui.pages import details, open_page, set_state, state_shown, strategy_row

from workbench.store import Store
from workbench.store.sharing import owner_file, query

pytestmark = pytest.mark.browser
BARS = re.compile(r"bars streamed: (\d+)")


def bars_streamed(page: Any) -> int:
    """Give the closed candles the market chart took since the page opened (shown on it)."""
    text = page.locator("text=/bars streamed/").first.inner_text()
    found = BARS.search(text)
    assert found, text
    return int(found.group(1))


def open_streaming(browser: Any, url: str) -> tuple[Any, list[str]]:
    """Open the dashboard once its market chart streams; give the page and its problems."""
    page, problems = open_page(browser, url)
    page.wait_for_selector("text=/bars streamed/", timeout=60_000)
    return page, problems


def equity_marks(db: Path, strategy_id: str | None = None, *, timeout_s: float) -> int:
    """Wait until equity marks are stored (for one strategy, or any); give how many."""
    where, args = ("WHERE strategy_id = ?", [strategy_id]) if strategy_id else ("", [])
    deadline = time.monotonic() + timeout_s
    while True:
        sql = f"SELECT count(*) AS n FROM equity {where}"
        marks = int(query(sql, args, db=db)["n"].iloc[0])
        if marks or time.monotonic() > deadline:
            return marks
        time.sleep(0.5)


def test_the_engine_trades_before_any_page_is_opened(live_dashboard: Any) -> None:
    # The server started the engine (--setup): equity marks are stored with no session open,
    # read through the server, which owns the file.
    assert equity_marks(live_dashboard.db, timeout_s=60) > 0
    strategies = query("SELECT strategy_id FROM strategies", db=live_dashboard.db)
    assert len(strategies) == 3


def test_the_page_loads_cleanly_and_its_chart_streams_candles(
    browser: Any, live_dashboard: Any
) -> None:
    page, problems = open_streaming(browser, live_dashboard.url)
    page.wait_for_selector("canvas", timeout=30_000)
    # Served without login (as `make demo` on 127.0.0.1): the page says so.
    assert page.locator("text=/Auth is off/").count() == 1
    first = bars_streamed(page)
    deadline = time.monotonic() + 20
    while bars_streamed(page) <= first and time.monotonic() < deadline:
        page.wait_for_timeout(500)
    assert bars_streamed(page) > first
    page.wait_for_timeout(1000)
    page.screenshot(path=str(ARTIFACTS / "live_dashboard.png"), full_page=True)
    assert problems == []
    page.close()


def test_the_page_leaves_mathjax_out(live_dashboard: Any) -> None:
    # Panel sends MathJax (1.7 MB) with any Markdown pane; the page shows no TeX, and the
    # browser parsed it before drawing the first chart.
    with urllib.request.urlopen(live_dashboard.url, timeout=60) as response:
        html = response.read().decode()
    assert "bokeh.min.js" in html
    assert "mathjax" not in html.lower()


def test_every_tab_draws_offline(browser: Any, live_dashboard: Any) -> None:
    # Tabs are drawn when first shown: what they load must come from the server too.
    page, problems = open_streaming(browser, live_dashboard.url)
    for tab, shows in (
        ("Orders & trades", "Refused orders"),
        ("Portfolio", "Risk status"),
        ("Risk", "Kill switch"),
        ("Comparison", "win_rate"),
        ("Market", "bars streamed"),
    ):
        page.get_by_text(tab, exact=True).first.click()
        page.locator(f"text=/{shows}/").first.wait_for(state="visible", timeout=30_000)
        page.wait_for_timeout(500)
    assert problems == []
    page.close()


def test_pausing_a_strategy_in_the_page_stores_its_state(browser: Any, live_dashboard: Any) -> None:
    page, problems = open_streaming(browser, live_dashboard.url)
    set_state(page, "sma_cross-ETHBTC", "Pause")
    state_shown(page, "sma_cross-ETHBTC", "paused")
    # Its details (it is the first strategy, shown first) give the state read back from the store.
    details(page).locator("text=/stored state: paused/").wait_for(timeout=30_000)
    assert problems == []
    page.close()


def test_strategies_picked_one_after_another_each_get_their_chart_cleanly(
    browser: Any, live_dashboard: Any
) -> None:
    # Each pick swaps the market chart for the picked strategy's, while candles stream into
    # it: the new chart has to reach the browser before what is streamed into it (a stream
    # that overtook it failed there with "reference ... isn't known").
    page, problems = open_streaming(browser, live_dashboard.url)
    picks = ["ema_cross_rsi-ETHBTC", "bollinger_reversion-LTCBTC", "sma_cross-ETHBTC"] * 5
    for sid in picks:
        # A click event on the cell, sent as soon as the cell is there: the table draws its
        # rows anew on every patch (once a second), so a pointer click waiting for the row to
        # stay put can wait for long on a loaded machine.
        strategy_row(page, sid).locator('[tabulator-field="return"]').dispatch_event("click")
        page.wait_for_timeout(300)
    shown = details(page).locator(f"text=/{picks[-1]}/")
    for _ in range(10):  # a click landing on a row as it is drawn again is lost: click again
        try:
            shown.wait_for(timeout=3_000)
            break
        except PlaywrightTimeout:
            strategy_row(page, picks[-1]).locator('[tabulator-field="return"]').dispatch_event(
                "click"
            )
    shown.wait_for(timeout=30_000)
    market = page.locator(".bk-panel-models-layout-Column", has_text="bars streamed").last
    market.locator("select").first.wait_for(timeout=30_000)
    deadline = time.monotonic() + 30
    while market.locator("select").first.input_value() != picks[-1]:
        assert time.monotonic() < deadline, "the chart did not follow the last pick"
        page.wait_for_timeout(250)
    first = bars_streamed(page)  # the last pick's chart streams on
    while bars_streamed(page) <= first and time.monotonic() < deadline + 30:
        page.wait_for_timeout(500)
    assert bars_streamed(page) > first
    assert problems == []
    page.close()


def test_a_strategy_added_in_the_page_trades_and_is_stored(
    browser: Any, live_dashboard: Any
) -> None:
    page, problems = open_streaming(browser, live_dashboard.url)
    form = page.locator(".bk-panel-models-layout-Column", has_text="Add a strategy").last
    form.locator("select").nth(0).select_option("bollinger_reversion")
    form.locator("select").nth(1).select_option("XMR/BTC")
    allocation = form.locator("input:not([type=file])").first
    allocation.fill("2.5")
    allocation.press("Enter")
    form.get_by_role("button", name="Add strategy").click()
    page.locator("text=/Added bollinger_reversion-XMRBTC-4/").wait_for(timeout=30_000)
    # A row of its own, in the table; picked, its details say it is stored as running.
    strategy_row(page, "bollinger_reversion-XMRBTC-4").click()
    details(page).locator("text=/bollinger_reversion-XMRBTC-4/").wait_for(timeout=30_000)
    details(page).locator("text=/stored state: running/").wait_for(timeout=30_000)
    stored = query(
        "SELECT symbol, allocation, state FROM strategies WHERE strategy_id = ?",
        ["bollinger_reversion-XMRBTC-4"],
        db=live_dashboard.db,
    )
    assert stored.to_dict("records") == [
        {"symbol": "XMR/BTC", "allocation": 2.5, "state": "running"}
    ]
    # It trades on its market: its equity is marked on the candles that close after it.
    assert equity_marks(live_dashboard.db, "bollinger_reversion-XMRBTC-4", timeout_s=30) > 0
    assert problems == []
    page.close()


def test_an_uploaded_spec_is_checked_then_added(
    browser: Any, live_dashboard: Any, tmp_path: Path
) -> None:
    spec = json.loads((ROOT / "data" / "strategies" / "sma_cross.json").read_text())
    spec["name"] = "my_cross"
    broken = {**spec, "indicators": {**spec["indicators"], "sma_fast": {"kind": "smaa"}}}
    (tmp_path / "broken.json").write_text(json.dumps(broken))
    (tmp_path / "my_cross.json").write_text(json.dumps(spec))
    page, problems = open_streaming(browser, live_dashboard.url)
    form = page.locator(".bk-panel-models-layout-Column", has_text="Add a strategy").last
    upload = form.locator("input[type=file]")

    upload.set_input_files(str(tmp_path / "broken.json"))
    # The problem is named by its JSON path, and nothing was added.
    page.locator("text=/indicators.sma_fast.kind: unknown indicator kind/").wait_for(timeout=30_000)
    assert form.locator("select").nth(0).input_value() != "my_cross (uploaded)"

    upload.set_input_files(str(tmp_path / "my_cross.json"))
    page.locator("text=/Checked my_cross.json/").wait_for(timeout=30_000)
    assert form.locator("select").nth(0).input_value() == "my_cross (uploaded)"
    form.get_by_role("button", name="Add strategy").click()
    page.locator("text=/Added my_cross-ETHBTC-5/").wait_for(timeout=30_000)
    stored = query(
        "SELECT spec_name, spec_json FROM strategies WHERE strategy_id = 'my_cross-ETHBTC-5'",
        db=live_dashboard.db,
    )
    assert stored["spec_name"].tolist() == ["my_cross"]
    assert json.loads(stored["spec_json"].iloc[0])["name"] == "my_cross"
    assert problems == []
    page.close()


def test_a_limit_order_from_the_ticket_rests_and_is_cancelled_from_the_table(
    browser: Any, live_dashboard: Any
) -> None:
    page, problems = open_streaming(browser, live_dashboard.url)
    ticket = page.locator(".bk-panel-models-layout-Column", has_text="Order ticket").last
    ticket.locator("select").first.select_option("ema_cross_rsi-ETHBTC")
    amount, price = ticket.locator("input").nth(0), ticket.locator("input").nth(1)
    amount.fill("0.5")
    amount.press("Enter")
    price.fill("0.001")  # far below ETH/BTC: it rests
    price.press("Enter")
    ticket.get_by_role("button", name="Place order").click()
    placed = page.locator("text=/Order wb-[0-9a-f]+: open/")
    placed.wait_for(timeout=30_000)
    cid = re.search(r"wb-[0-9a-f]+", placed.inner_text()).group(0)  # type: ignore[union-attr]
    stored = query(
        "SELECT state, purpose, side, type, amount, price FROM orders WHERE client_order_id = ?",
        [cid],
        db=live_dashboard.db,
    )
    assert stored.to_dict("records") == [
        {
            "state": "open",
            "purpose": "manual",
            "side": "buy",
            "type": "limit",
            "amount": 0.5,
            "price": 0.001,
        }
    ]

    page.locator(".bk-tab", has_text="Orders & trades").click()
    page.locator(".bk-tab", has_text="Open orders").click()
    row = page.locator(".tabulator-row", has_text=cid)
    row.wait_for(timeout=30_000)
    # A click picks the order and names it; Confirm cancels the one named. The table is
    # drawn again when the open orders change, so a click may pick the row that took this
    # one's place (named: nothing is cancelled), and the trader clicks again.
    picked = page.get_by_text(f"Cancel {cid} (ema_cross_rsi-ETHBTC: buy 0.5 ETH/BTC @ 0.001)?")
    for _ in range(5):
        row.locator(".tabulator-cell", has_text="Cancel").dispatch_event("click")
        try:
            picked.wait_for(timeout=10_000)
            break
        except PlaywrightTimeout:
            continue
    page.get_by_role("button", name="Confirm cancel").click()
    page.locator(f"text=/Cancel sent for {cid}/").wait_for(timeout=30_000)
    state = query("SELECT state FROM orders WHERE client_order_id = ?", [cid], db=live_dashboard.db)
    assert state["state"].tolist() == ["canceled"]
    row.wait_for(state="detached", timeout=30_000)  # gone from the open orders
    assert problems == []
    page.close()


def test_the_paused_state_is_in_the_database_after_the_server_stops(live_dashboard: Any) -> None:
    live_dashboard.stop()
    # Stopped cleanly at exit: the server no longer advertises itself as the file's owner.
    assert not owner_file(live_dashboard.db).exists()
    with Store.open(live_dashboard.db, read_only=True, wait_s=30) as store:
        states = store.trading.strategies().set_index("strategy_id")["state"]
    assert states["sma_cross-ETHBTC"] == "paused"
    assert states["ema_cross_rsi-ETHBTC"] == "running"
