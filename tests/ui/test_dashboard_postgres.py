"""The live dashboard on PostgreSQL in a real browser: the page streams, a pause clicked in it
is stored, and a notebook reads the database directly while the server trades (no read
proxy: PostgreSQL serves every process)."""

from __future__ import annotations

import time
from typing import Any

import pytest
from shipped import ROOT
from ui.conftest import LIVE_ENV, serve
from ui.pages import open_page, set_state, state_shown

from workbench.data.shipped import ensure_shipped
from workbench.store import Store
from workbench.store.sharing import query

pytestmark = pytest.mark.browser


def marks(url: str) -> int:
    return int(query("SELECT count(*) AS n FROM equity", db=url)["n"].iloc[0])


def test_the_dashboard_trades_on_postgres_and_a_pause_is_stored(browser: Any, pg_url: str) -> None:
    with Store.open(pg_url) as store:
        ensure_shipped(store)
    app = ROOT / "apps" / "dashboard.py"
    with serve(app, pg_url, "panel-serve-postgres.log", LIVE_ENV, setup=True) as url:
        page, problems = open_page(browser, url)
        page.wait_for_selector("text=/bars streamed/", timeout=60_000)
        set_state(page, "sma_cross-ETHBTC", "Pause")
        state_shown(page, "sma_cross-ETHBTC", "paused")
        first = marks(pg_url)
        deadline = time.monotonic() + 30
        while marks(pg_url) <= first and time.monotonic() < deadline:
            time.sleep(0.5)
        assert marks(pg_url) > first, "read directly while the server writes"
        state = query(
            "SELECT state FROM strategies WHERE strategy_id = ?", ["sma_cross-ETHBTC"], db=pg_url
        )
        assert state["state"].tolist() == ["paused"]
        assert problems == []
        page.close()
