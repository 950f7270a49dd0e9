"""The Risk tab in a real browser, on `panel serve` with login on (the engine started with the
server, paper trading on the local exchange): a trader's confirmed halt reaches the running
engine (stored with their name, entries refused) and a resume ends it; an admin's limits
reach the engine (stored, shown as bars, the next order refused by them); bad input is
named on the page and changes nothing."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from shipped import ARTIFACTS
from ui.conftest import serve_with_login
from ui.pages import sign_in

from workbench.store.sharing import query

pytestmark = pytest.mark.browser
PASSWORDS = {"ada": "admin password 1", "tess": "trader password 1"}
ROLES = {"ada": "admin", "tess": "trader"}
SCOPE = "account:local"


@dataclass
class Server:
    base: str
    db: Path


@pytest.fixture(scope="module")
def server(served_db: Path) -> Iterator[Server]:
    users = {name: (ROLES[name], password) for name, password in PASSWORDS.items()}
    with serve_with_login(served_db, "panel-serve-risk.log", users) as base:
        yield Server(base, served_db)


def open_risk_tab(browser: Any, server: Server, name: str) -> Any:
    context, page, problems = sign_in(browser, server.base, name, PASSWORDS[name])
    page.locator(".bk-tab", has_text="Risk").click()
    page.locator("text=/Kill switch/").wait_for(timeout=30_000)
    return context, page, problems


def halts(server: Server) -> list[tuple[Any, ...]]:
    rows = query("SELECT halted, flatten, reason, by_user FROM halts ORDER BY seq", db=server.db)
    return [tuple(r) for r in rows.itertuples(index=False)]


def manual_refusals(server: Server, rule: str) -> list[dict[str, Any]]:
    """Give the stored refusals of manual orders by `rule` (the strategies' own entries may be
    refused by it too)."""
    rows = query(
        "SELECT strategy_id, detail FROM refused_orders WHERE rule = ? AND purpose = 'manual'",
        [rule],
        db=server.db,
    )
    return rows.to_dict("records")


def type_into(page: Any, label: str, text: str) -> None:
    field = page.get_by_label(label, exact=True)
    field.fill(text)
    field.press("Enter")


def place_manual_order(page: Any, strategy_id: str) -> None:
    """Send a resting limit buy from the order ticket (0.5 at 0.001, far below ETH/BTC)."""
    ticket = page.locator(".bk-panel-models-layout-Column", has_text="Order ticket").last
    ticket.locator("select").first.select_option(strategy_id)
    amount, price = ticket.locator("input").nth(0), ticket.locator("input").nth(1)
    amount.fill("0.5")
    amount.press("Enter")
    price.fill("0.001")
    price.press("Enter")
    ticket.get_by_role("button", name="Place order").click()
    page.locator("text=/Refused by the risk limits/").wait_for(timeout=30_000)


def test_a_confirmed_halt_from_the_page_stops_the_engine_until_resumed(
    browser: Any, server: Server
) -> None:
    context, page, problems = open_risk_tab(browser, server, "tess")
    page.locator("text=/no halt in force/").wait_for(timeout=15_000)
    # A trader may halt but not change limits: the form says why.
    page.locator("text=/Changing limits is not for tess: needs the admin role/").wait_for()
    assert page.get_by_role("button", name="Apply limits").is_disabled()

    type_into(page, "Reason", "news in five minutes")  # required (test_live_risk_view)
    page.get_by_role("button", name="Halt", exact=True).click()
    confirm = page.get_by_role("button", name="Confirm halt", exact=True)
    confirm.wait_for(timeout=15_000)
    assert halts(server) == []  # nothing happens before the confirmation
    confirm.click()

    page.locator("text=/Halted since .* by tess: news in five minutes/").wait_for(timeout=15_000)
    assert halts(server) == [(True, False, "news in five minutes", "tess")]
    # The running engine refuses entries now: a manual order is refused, stored and listed.
    place_manual_order(page, "sma_cross-ETHBTC")
    refused = manual_refusals(server, "halted")
    assert [r["strategy_id"] for r in refused] == ["sma_cross-ETHBTC"]
    assert json.loads(refused[0]["detail"])["by"] == "tess"
    risk_refusals = page.locator(".tabulator-row", has_text="halted")
    risk_refusals.filter(has_text="sma_cross-ETHBTC").first.wait_for(timeout=15_000)

    page.get_by_role("button", name="Resume", exact=True).click()
    page.get_by_role("button", name="Confirm resume", exact=True).click()
    page.locator("text=/no halt in force/").wait_for(timeout=15_000)
    assert halts(server)[-1] == (False, False, "resumed", "tess")
    history = page.locator(".tabulator-row", has_text="tess")
    history.filter(has_text="resume").first.wait_for(timeout=15_000)
    audited = query(
        "SELECT action, result FROM audit_log WHERE actor = 'tess' AND action IN "
        "('halt', 'resume') ORDER BY seq",
        db=server.db,
    )
    assert [tuple(r) for r in audited.itertuples(index=False)] == [
        ("halt", "allowed"),
        ("resume", "allowed"),
    ]
    assert problems == []
    context.close()


def test_limits_set_in_the_page_are_stored_shown_and_refuse_the_next_order(
    browser: Any, server: Server
) -> None:
    context, page, problems = open_risk_tab(browser, server, "ada")
    page.locator("text=/No account limit is set/").wait_for(timeout=15_000)
    before = query("SELECT limits, updated_by FROM risk_limits WHERE scope = ?", [SCOPE],
                   db=server.db).to_dict("records")  # fmt: skip

    # Bad input is named on the page and changes nothing (each rule: test_live_risk_rows).
    type_into(page, "max_open_positions", "2.5")
    type_into(page, "daily_loss", "30%")
    page.get_by_role("button", name="Apply limits").click()
    page.locator("text=/max_open_positions: a whole number >= 1 is needed, got '2.5'/").wait_for()
    stored = query("SELECT limits, updated_by FROM risk_limits WHERE scope = ?", [SCOPE],
                   db=server.db).to_dict("records")  # fmt: skip
    assert stored == before and before[0]["updated_by"] == "settings"
    assert page.get_by_label("daily_loss", exact=True).input_value() == "30%"  # kept, not lost

    type_into(page, "max_open_positions", "5")
    type_into(page, "max_exposure_fraction", "0.8")
    type_into(page, "max_order_notional", "0.0001")  # below any order the ticket sends here
    page.get_by_role("button", name="Apply limits").click()
    page.locator("text=/Applied by ada/").wait_for(timeout=15_000)
    row = query("SELECT limits, updated_by FROM risk_limits WHERE scope = ?", [SCOPE],
                db=server.db).to_dict("records")  # fmt: skip
    limits = json.loads(row[0]["limits"])
    assert row[0]["updated_by"] == "ada"
    assert {k: limits[k] for k in ("max_open_positions", "daily_loss_fraction")} == {
        "max_open_positions": 5,
        "daily_loss_fraction": 0.3,
    }
    assert limits["max_order_notional"] == 0.0001 and limits["max_exposure_fraction"] == 0.8
    assert limits["max_exposure"] is None  # left empty: no limit
    # The engine's use of each limit is drawn as a bar, read from the engine.
    usage = page.locator(".tabulator-row", has_text="open positions")
    usage.filter(has_text="5").first.wait_for(timeout=15_000)
    daily = page.locator(".tabulator-row", has_text="daily loss").filter(has_text="30.00%")
    daily.locator(".tabulator-cell[tabulator-field=use_pct]").first.wait_for(timeout=15_000)

    # In force for the next order: the ticket's 0.0005 BTC order is over the fat-finger limit.
    place_manual_order(page, "ema_cross_rsi-ETHBTC")
    refused = manual_refusals(server, "max_order_notional")
    assert [r["strategy_id"] for r in refused] == ["ema_cross_rsi-ETHBTC"]
    detail = json.loads(refused[0]["detail"])
    assert detail["limit"] == 0.0001 and detail["order_notional"] == pytest.approx(0.5 * 0.001)
    page.locator(".tabulator-row", has_text="max_order_notional").first.wait_for(timeout=15_000)
    page.screenshot(path=str(ARTIFACTS / "risk_panel.png"))
    assert problems == []
    context.close()
