"""The real `workbench serve` process: the first start's one-time admin password (printed
once, never stored, logs in), and a sign-in through OAuth against a provider on 127.0.0.1,
audited like a password login."""

from __future__ import annotations

import http.cookiejar
import os
import re
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from auth.oauth_provider import oauth_provider
from cryptography.fernet import Fernet
from ui.conftest import COOKIE_SECRET, free_port

from workbench.auth.accounts import Accounts
from workbench.auth.roles import Role, User
from workbench.store import Store
from workbench.store.sharing import query

pytestmark = pytest.mark.slow


@contextmanager
def workbench_serve(
    db: Path, log: Path, env: dict[str, str], until: str | None = None
) -> Iterator[str]:
    """Run `workbench serve` on a free port of 127.0.0.1; give its base URL once it answers,
    or once it printed `until` (its output goes to `log`)."""
    port = free_port()
    out = log.open("wb")
    process = subprocess.Popen(
        [sys.executable, "-m", "workbench", "serve", "--port", str(port), "--db", str(db)],
        env={**os.environ, "WORKBENCH_COOKIE_SECRET": COOKIE_SECRET, **env},
        stdout=out,
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            assert process.poll() is None, log.read_text()
            assert time.monotonic() < deadline, log.read_text()
            if until is not None:
                if until in log.read_text():
                    break
                time.sleep(0.1)
                continue
            try:
                with urllib.request.urlopen(f"{base}/health", timeout=5):
                    break
            except OSError:
                time.sleep(0.3)
        yield base
    finally:
        process.terminate()  # as systemd stops it: it stops its panel serve first
        try:
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        out.close()


def browser() -> urllib.request.OpenerDirector:
    """Give an HTTP client that keeps cookies and follows redirects, as a browser does."""
    return urllib.request.build_opener(
        urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar())
    )


def log_in(base: str, name: str, password: str) -> tuple[int, str]:
    """Post the login form; give the status and the URL it ended at."""
    form = urllib.parse.urlencode({"username": name, "password": password, "next": "/research"})
    try:
        with browser().open(f"{base}/login", data=form.encode(), timeout=60) as answer:
            return answer.status, answer.url
    except urllib.error.HTTPError as refused:
        return refused.code, refused.url


def test_the_first_start_prints_a_one_time_admin_password_once_and_it_logs_in(
    tmp_path: Path,
) -> None:
    db = tmp_path / "workbench.duckdb"  # no database yet: no user
    first_log = tmp_path / "first.log"
    with workbench_serve(db, first_log, {}) as base:
        printed = first_log.read_text()
        found = re.findall(r"one-time password (\S+)", printed)
        assert len(found) == 1, printed
        password = found[0]
        assert log_in(base, "admin", password + "x")[0] == 401
        status, landed = log_in(base, "admin", password)
        assert (status, urllib.parse.urlsplit(landed).path) == (200, "/research")
        rows = query(
            "SELECT actor, action, result, target, after_json FROM audit_log ORDER BY seq", db=db
        )
    second_log = tmp_path / "second.log"
    # The next start has its admin: it prints no password (it has none to print).
    with workbench_serve(db, second_log, {}, until="login required"):
        again = second_log.read_text()
    assert "one-time password" not in again and "first admin" not in again
    # Stored only as its argon2 hash: not in the database file, its journal or the WAL.
    for path in tmp_path.glob("workbench.duckdb*"):
        assert password.encode() not in path.read_bytes(), path.name
    with Store.open(db, read_only=True) as store:
        users = store.users.users()
        assert users["name"].tolist() == ["admin"] and users["role"].tolist() == ["admin"]
        assert store.users.user("admin").password_hash.startswith("$argon2id$")
    made = rows.iloc[0]
    assert (made["actor"], made["action"], made["target"]) == ("workbench", "manage_users", "admin")
    assert '"first_admin":true' in made["after_json"]
    assert rows[["actor", "action", "result"]].values.tolist()[1:] == [
        ["admin", "login_failed", "refused"],
        ["admin", "login", "allowed"],
    ]


def test_an_oauth_sign_in_is_audited_with_its_provider_and_address(tmp_path: Path) -> None:
    db = tmp_path / "workbench.duckdb"
    with Store.open(db) as store:
        Accounts(store).add_user(User("test", Role.ADMIN), "octo@example.com", "trader", None)
    client_secret = "oauth-client-secret-5d41402abc4b"
    with oauth_provider("workbench-client", client_secret) as provider:
        env = {
            "WORKBENCH_OAUTH_PROVIDER": "generic",
            "WORKBENCH_OAUTH_KEY": "workbench-client",
            "WORKBENCH_OAUTH_SECRET": client_secret,
            "WORKBENCH_OAUTH_ENCRYPTION_KEY": Fernet.generate_key().decode(),
            **provider.env,
        }
        with workbench_serve(db, tmp_path / "serve.log", env) as base:
            provider.signs_in = "octo@example.com"
            with browser().open(f"{base}/research", timeout=60) as page:
                assert urllib.parse.urlsplit(page.url).path == "/research"
                assert page.status == 200
            assert provider.token_requests == 1  # the code went to the provider's token route
            provider.signs_in = "mallory@example.com"  # the provider knows her; we do not
            with pytest.raises(urllib.error.HTTPError) as refused:
                browser().open(f"{base}/research", timeout=60)
            assert refused.value.code == 403
            provider.signs_in = None  # the provider refuses
            with pytest.raises(urllib.error.HTTPError) as denied:
                browser().open(f"{base}/research", timeout=60)
            assert denied.value.code == 401
            rows = query(
                "SELECT actor, action, result, address, target, after_json, reason "
                "FROM audit_log WHERE action IN ('login', 'login_failed') ORDER BY seq",
                db=db,
            )
    assert client_secret not in (tmp_path / "serve.log").read_text()
    octo = rows[rows["actor"] == "octo@example.com"]
    assert octo[["action", "result", "address"]].values.tolist() == [
        ["login", "allowed", "127.0.0.1"]
    ]
    assert octo["after_json"].tolist() == ['{"provider":"generic"}']
    mallory = rows[rows["actor"] == "mallory@example.com"]
    # Refused at the sign-in, then at the page she was sent on to.
    assert mallory[["action", "result", "address"]].values.tolist()[:2] == [
        ["login_failed", "refused", "127.0.0.1"],
        ["login_failed", "refused", "127.0.0.1"],
    ]
    assert mallory["reason"].str.contains("not a workbench user").all()
    assert mallory["target"].tolist()[1] == "/research"
    assert set(rows["actor"]) == {"octo@example.com", "mallory@example.com"}
