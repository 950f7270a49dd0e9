"""/health, /ready and /metrics on a real `panel serve` of the dashboard with login on (the
routes `workbench serve` adds with `--plugins workbench.ops.panel_routes`), and an alert
that reaches both the trader's sink (apprise → a local receiver) and the open page."""

from __future__ import annotations

import json
import re
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from alert_receiver import Receiver, receiving
from prometheus_client.parser import text_string_to_metric_families
from shipped import ROOT
from ui.conftest import LIVE_ENV, serve

from workbench.auth.accounts import Accounts
from workbench.auth.roles import Role, User
from workbench.cli.serve import HOOKS
from workbench.store import Store

COOKIE_SECRET = "ops-test-cookie-secret-0123456789abcdefgh"
METRICS_TOKEN = "ops-test-metrics-token-0123456789"
ADMIN = ("ada", "admin password 1")


class _Stay(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *_args: Any, **_kwargs: Any) -> None:
        return None


OPENER = urllib.request.build_opener(_Stay)


@dataclass
class Served:
    base: str
    db: Path
    receiver: Receiver

    def get(self, path: str, **headers: str) -> tuple[int, str, dict[str, str]]:
        request = urllib.request.Request(self.base + path, headers=headers)
        try:
            with OPENER.open(request, timeout=30) as answer:
                return answer.status, answer.read().decode(), dict(answer.headers)
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read().decode(), dict(exc.headers)


@pytest.fixture(scope="module")
def served(served_db: Path) -> Iterator[Served]:
    with Store.open(served_db) as store:
        Accounts(store).add_user(User("test", Role.ADMIN), ADMIN[0], "admin", ADMIN[1])
    with receiving() as receiver:
        env = {
            **LIVE_ENV,
            "WORKBENCH_AUTH": "true",
            "WORKBENCH_COOKIE_SECRET": COOKIE_SECRET,
            "BOKEH_COOKIE_SECRET": COOKIE_SECRET,
            "WORKBENCH_LOGIN_MAX_FAILURES": "3",
            "WORKBENCH_ALERT_URLS": receiver.url,
            "WORKBENCH_METRICS_TOKEN": METRICS_TOKEN,
            # At 3000x a bar lasts 0.1 s: a busy machine is "bars" behind in market time.
            "WORKBENCH_ALERT_STALE_BARS": "1000",
            "WORKBENCH_READY_MAX_FEED_LAG_BARS": "1000",
        }
        args = ["--auth-module", str(HOOKS), "--plugins", "workbench.ops.panel_routes"]
        app = ROOT / "apps" / "dashboard.py"
        with serve(app, served_db, "panel-serve-ops.log", env, setup=True, args=args) as url:
            yield Served(url.rsplit("/", 1)[0], served_db, receiver)


def test_health_and_ready_are_public_metrics_are_not(served: Served) -> None:
    status, body, _ = served.get("/health")
    assert status == 200 and json.loads(body)["status"] in ("alive", "starting")
    for _ in range(240):  # the engine warms up with the server
        status, body, _ = served.get("/ready")
        if status == 200:
            break
        time.sleep(0.5)
    ready = json.loads(body)
    assert status == 200 and ready["ready"] is True, body
    assert ready["strategies"].get("running", 0) >= 1
    assert "admin" not in body and COOKIE_SECRET not in body
    status, _, headers = served.get("/dashboard")  # the apps still need a login
    assert status == 302 and "/login" in headers["Location"]
    status, text, headers = served.get("/metrics")  # from this machine
    assert status == 200 and headers["Content-Type"].startswith("text/plain")
    names = {f.name for f in text_string_to_metric_families(text)}
    assert {
        "workbench_candles",
        "workbench_strategy_equity",
        "workbench_feed_lag_bars",
        "workbench_loop_lag_seconds",
        "workbench_close_to_order_seconds",
    } <= names
    proxied = {"X-Forwarded-For": "203.0.113.5"}
    assert served.get("/metrics", **proxied)[0] == 401
    authorized = {**proxied, "Authorization": f"Bearer {METRICS_TOKEN}"}
    assert served.get("/metrics", **authorized)[0] == 200


@pytest.mark.browser
def test_a_lockout_alerts_the_sink_and_the_open_page(served: Served, browser: Any) -> None:
    context = browser.new_context(viewport={"width": 1500, "height": 1100})
    page = context.new_page()
    page.goto(f"{served.base}/dashboard")
    page.fill("#username", ADMIN[0])
    page.fill("#password", ADMIN[1])
    page.click("#login")
    page.wait_for_url(re.compile(r".*/dashboard$"), timeout=30_000)
    page.locator(".card").first.wait_for(timeout=90_000)
    for _ in range(3):  # wrong passwords for one name: the third locks it out
        form = urllib.parse.urlencode({"username": "mallory", "password": "guess", "next": "/"})
        request = urllib.request.Request(f"{served.base}/login", data=form.encode())
        with pytest.raises(urllib.error.HTTPError):
            OPENER.open(request, timeout=30)
    for _ in range(300):
        if any("locked out: mallory" in t for t in served.receiver.titles()):
            break
        time.sleep(0.1)
    assert any("locked out: mallory" in t for t in served.receiver.titles()), (
        served.receiver.titles()
    )
    toast = page.locator(".notyf__message", has_text="locked out: mallory")
    toast.first.wait_for(timeout=30_000)
    page.locator(".bk-tab", has_text="Alerts").click()
    page.locator(".tabulator-cell", has_text="lockout").first.wait_for(timeout=30_000)
    context.close()
