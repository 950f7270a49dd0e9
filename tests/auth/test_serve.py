"""`workbench serve` refuses to start unsafe: auth off off the loopback, auth without a cookie
secret; `workbench demo` stays local and may run with auth off."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from workbench.auth import web
from workbench.auth.accounts import Accounts
from workbench.auth.roles import Role, User
from workbench.cli import app
from workbench.cli.serve import HOOKS, is_loopback, panel_command, panel_env
from workbench.settings import Settings
from workbench.store import Store

runner = CliRunner()
SECRET = "s" * 40


def test_auth_off_is_refused_on_any_address_but_the_loopback() -> None:
    refused = runner.invoke(app, ["serve", "--address", "0.0.0.0"], env={"WORKBENCH_AUTH": "false"})
    assert refused.exit_code == 1
    assert "refusing to serve on 0.0.0.0 with auth off" in refused.output
    assert [is_loopback(a) for a in ("127.0.0.1", "::1", "localhost", "10.0.0.5", "0.0.0.0")] == [
        True, True, True, False, False,
    ]  # fmt: skip


def test_auth_on_needs_a_long_cookie_secret() -> None:
    unset = runner.invoke(app, ["serve"], env={"WORKBENCH_COOKIE_SECRET": None})
    assert unset.exit_code == 1 and "WORKBENCH_COOKIE_SECRET is unset" in unset.output
    short = runner.invoke(app, ["serve"], env={"WORKBENCH_COOKIE_SECRET": "tiny"})
    assert short.exit_code == 1 and "too short" in short.output and "tiny" not in short.output


def test_the_server_gets_the_auth_hooks_and_its_secret_by_environment_only() -> None:
    settings = Settings(auth=True, cookie_secret=SECRET)
    command = panel_command("0.0.0.0", 5006, True, settings, ["trade.example:443"], True)
    assert command[command.index("--auth-module") + 1] == str(HOOKS)
    assert "--use-xheaders" in command and "trade.example:443" in command
    assert not any(SECRET in part for part in command)
    env = panel_env(settings, True)
    assert env["PANEL_COOKIE_SECRET"] == env["BOKEH_COOKIE_SECRET"] == SECRET
    assert env["WORKBENCH_AUTH"] == "true"
    local = panel_command("127.0.0.1", 5006, False, Settings(), [], False)
    assert "--auth-module" not in local
    assert "PANEL_COOKIE_SECRET" not in panel_env(Settings(), False)


def test_oauth_is_a_setting_that_admits_only_users_added_here(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    settings = Settings(
        auth=True,
        cookie_secret=SECRET,
        oauth_provider="github",
        oauth_key="client-id-1",
        oauth_secret="oauth-client-secret-0123",
        oauth_encryption_key="oauth-encryption-key-0123456789abcdef",
    )
    command = panel_command("0.0.0.0", 5006, True, settings, [], False)
    assert command[command.index("--oauth-provider") + 1] == "github"
    assert "--auth-module" not in command  # Panel's OAuth flow replaces the password page
    assert "oauth-client-secret-0123" not in " ".join(command)  # by environment only
    env = panel_env(settings, True)
    assert env["PANEL_OAUTH_KEY"] == "client-id-1"
    assert env["PANEL_OAUTH_SECRET"] == "oauth-client-secret-0123"
    assert env["PANEL_OAUTH_ENCRYPTION"] == "oauth-encryption-key-0123456789abcdef"

    store = Store.memory()
    accounts = Accounts(store)
    accounts.add_user(User("test", Role.ADMIN), "octocat", "trader", None)  # --oauth
    monkeypatch.setattr(web, "_accounts", accounts)
    assert web.oauth_authorize({"user": "octocat"}, "/dashboard") is True
    assert web.oauth_authorize({"user": "stranger"}, "/dashboard") is False
    assert web.oauth_authorize({}, "/dashboard") is False
    rows = store.audit.frame(action="login_failed")
    assert rows["actor"].tolist() == ["unknown", "stranger"]
    assert rows["reason"].str.contains("not a workbench user").all()
