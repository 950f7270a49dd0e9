"""Logging in: argon2 hashes, lockouts that back off and hold across restarts, sessions that
expire or end, user management kept to admins and audited."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from workbench.auth.accounts import AccountError, Accounts, LoginRefused
from workbench.auth.passwords import PasswordRejected
from workbench.auth.roles import NotAuthorized, Role, User
from workbench.auth.throttle import LockoutPolicy
from workbench.store import Store

ADMIN = User("root-operator", Role.ADMIN)
PASSWORD = "correct horse battery"


def accounts(store: Store, **policy: float) -> Accounts:
    rules = {"max_failures": 3, "lockout_s": 0.5, "max_lockout_s": 60.0} | policy
    return Accounts(store, policy=LockoutPolicy(**rules), session_ttl_s=60)  # type: ignore[arg-type]


def test_a_user_logs_in_with_the_right_password_only(store: Store, db_path: Path) -> None:
    acc = accounts(store)
    acc.add_user(ADMIN, "alice", "trader", PASSWORD)
    session = acc.login("alice", PASSWORD, "127.0.0.1")
    assert session.user.name == "alice" and session.user.role is Role.TRADER
    assert acc.user_for(session.token) == session.user
    with pytest.raises(LoginRefused, match=r"^Wrong name or password\.$"):
        acc.login("alice", "not it at all", "127.0.0.1")
    with pytest.raises(LoginRefused, match=r"^Wrong name or password\.$"):
        acc.login("nobody", PASSWORD, "127.0.0.1")  # the same answer: no name is confirmed
    stored = store.users.user("alice")
    assert stored is not None and stored.password_hash.startswith("$argon2id$")
    store.con.execute("CHECKPOINT")
    assert PASSWORD.encode() not in db_path.read_bytes()
    assert session.token.encode() not in db_path.read_bytes()  # only its hash is kept
    actions = store.audit.frame()[["actor", "action", "result"]].values.tolist()
    assert actions[:3] == [
        ["nobody", "login_failed", "refused"],
        ["alice", "login_failed", "refused"],
        ["alice", "login", "allowed"],
    ]


def test_failures_lock_the_name_then_the_lockout_ends_and_doubles_next_time(store: Store) -> None:
    acc = accounts(store, max_failures=3, lockout_s=0.4)
    acc.add_user(ADMIN, "bob", "viewer", PASSWORD)
    for _ in range(2):
        with pytest.raises(LoginRefused, match=r"^Wrong name or password\.$"):
            acc.login("bob", "wrong password", "10.0.0.1")
    with pytest.raises(LoginRefused, match="Too many failed logins") as locked:
        acc.login("bob", "wrong password", "10.0.0.1")
    assert 0.3 < locked.value.retry_after_s <= 0.4
    # Locked: even the right password is refused, without being checked.
    with pytest.raises(LoginRefused, match="Too many failed logins"):
        acc.login("bob", PASSWORD, "10.0.0.2")
    time.sleep(0.45)
    for _ in range(2):
        with pytest.raises(LoginRefused, match=r"^Wrong"):
            acc.login("bob", "wrong again", "10.0.0.3")
    with pytest.raises(LoginRefused, match="Too many") as second:
        acc.login("bob", "wrong again", "10.0.0.3")
    assert 0.7 < second.value.retry_after_s <= 0.8  # the second lockout in a row: twice as long
    time.sleep(0.85)
    assert acc.login("bob", PASSWORD, "10.0.0.3").user.name == "bob"
    assert store.users.throttle("user", "bob") is None  # a success clears the count


def test_an_address_that_fails_on_many_names_is_locked_out(store: Store) -> None:
    acc = accounts(store, max_failures=3, lockout_s=30)
    acc.add_user(ADMIN, "carol", "viewer", PASSWORD)
    for name in ("a1", "a2", "a3"):
        with pytest.raises(LoginRefused):
            acc.login(name, "guess guess", "203.0.113.9")
    with pytest.raises(LoginRefused, match="Too many failed logins"):
        acc.login("carol", PASSWORD, "203.0.113.9")
    assert acc.login("carol", PASSWORD, "198.51.100.1").user.name == "carol"


def test_a_lockout_holds_across_a_restart(db_path: Path) -> None:
    with Store.open(db_path) as store:
        acc = accounts(store, max_failures=2, lockout_s=30)
        acc.add_user(ADMIN, "dave", "viewer", PASSWORD)
        for _ in range(2):
            with pytest.raises(LoginRefused):
                acc.login("dave", "wrong password", "10.0.0.1")
    with Store.open(db_path) as store, pytest.raises(LoginRefused, match=r"in (29|30) s"):
        accounts(store, max_failures=2, lockout_s=30).login("dave", PASSWORD, "10.9.9.9")


def test_sessions_expire_and_end_on_logout_role_or_password_change(store: Store) -> None:
    acc = Accounts(store, session_ttl_s=0.3)
    acc.add_user(ADMIN, "erin", "trader", PASSWORD)
    short = acc.login("erin", PASSWORD)
    assert acc.user_for(short.token) is not None
    time.sleep(0.35)
    assert acc.user_for(short.token) is None
    assert short.user.expired()

    acc = Accounts(store, session_ttl_s=60)
    first, second = acc.login("erin", PASSWORD), acc.login("erin", PASSWORD)
    acc.logout(first.token, "127.0.0.1")
    assert acc.user_for(first.token) is None and acc.user_for(second.token) is not None
    acc.set_role(ADMIN, "erin", "viewer")
    assert acc.user_for(second.token) is None  # logs in again, with the new role
    third = acc.login("erin", PASSWORD)
    assert third.user.role is Role.VIEWER
    acc.set_password(ADMIN, "erin", "a brand new password")
    assert acc.user_for(third.token) is None
    acc.remove_user(ADMIN, "erin")
    with pytest.raises(LoginRefused):
        acc.login("erin", "a brand new password")
    assert acc.user_for("made-up-token") is None and acc.user_for(None) is None


def test_user_management_checks_its_input_and_keeps_an_admin(store: Store) -> None:
    acc = accounts(store)
    with pytest.raises(AccountError, match="name: 'bad name' must be"):
        acc.add_user(ADMIN, "bad name", "viewer", PASSWORD)
    with pytest.raises(AccountError, match="role: 'root' is not one of viewer, trader, admin"):
        acc.add_user(ADMIN, "frank", "root", PASSWORD)
    with pytest.raises(PasswordRejected, match="at least 10 characters"):
        acc.add_user(ADMIN, "frank", "viewer", "short")
    assert store.users.count() == 0
    acc.add_user(ADMIN, "frank", "admin", PASSWORD)
    with pytest.raises(AccountError, match="already exists"):
        acc.add_user(ADMIN, "frank", "viewer", PASSWORD)
    with pytest.raises(AccountError, match="last admin"):
        acc.set_role(ADMIN, "frank", "viewer")
    with pytest.raises(AccountError, match="last admin"):
        acc.remove_user(ADMIN, "frank")
    with pytest.raises(AccountError, match="no user 'ghost'"):
        acc.set_role(ADMIN, "ghost", "viewer")
    # A user may change their own password, and only their own.
    acc.add_user(ADMIN, "gina", "viewer", PASSWORD)
    gina = acc.login("gina", PASSWORD).user
    acc.set_password(gina, "gina", "gina's new password")
    with pytest.raises(NotAuthorized):
        acc.set_password(gina, "frank", "taken over now")
    assert acc.login("frank", PASSWORD).user.role is Role.ADMIN


def test_the_first_admin_gets_a_one_time_password_printed_once(store: Store) -> None:
    acc = accounts(store)
    password = acc.ensure_first_admin()
    assert password is not None and len(password) >= 16
    assert acc.login("admin", password).user.role is Role.ADMIN
    assert acc.ensure_first_admin() is None  # users exist: nothing new, nothing shown


def test_the_users_command_adds_lists_changes_and_removes_users(db_path: Path) -> None:
    import typer
    from click.testing import CliRunner

    from workbench.cli import app

    runner, command = CliRunner(), typer.main.get_command(app)  # built once: it costs ~1 s
    db = ["--db", str(db_path)]
    env = {"WORKBENCH_NEW_PASSWORD": PASSWORD}

    def users(*args: str, **extra: str | None) -> tuple[int, str]:
        done = runner.invoke(command, ["users", *args, *db], env={**env, **extra})
        return done.exit_code, done.output

    assert users("add", "ada", "--role", "admin") == (0, "added ada (admin)\n")
    assert users("add", "tess", "--role", "trader")[0] == 0
    code, out = users("add", "eve", "--role", "root")
    assert code == 1 and "role: 'root' is not one of viewer, trader, admin" in out
    code, out = users("list", "--json")
    listed = {row["name"]: row["role"] for row in json.loads(out)}
    assert code == 0 and listed == {"ada": "admin", "tess": "trader"}
    assert "argon2" not in out and PASSWORD not in out  # never the hashes
    assert users("set-role", "tess", "viewer")[0] == 0
    assert users("passwd", "tess", WORKBENCH_NEW_PASSWORD="tess's new password")[0] == 0
    assert users("remove", "tess")[0] == 0
    with Store.open(db_path) as store:
        acc = Accounts(store)
        assert acc.login("ada", PASSWORD).user.role is Role.ADMIN
        with pytest.raises(LoginRefused):
            acc.login("tess", "tess's new password")
        rows = store.audit.frame(action="manage_users").iloc[::-1]
    ops = [json.loads(after)["op"] for after in rows["after"]]
    assert ops == ["add", "add", "set-role", "passwd", "remove"]
    assert rows["actor"].str.startswith("cli:").all()
    assert list(rows["target"]) == ["ada", "tess", "tess", "tess", "tess"]


async def test_the_users_tab_sets_a_password_for_admins_only(store: Store) -> None:
    from workbench.auth.acting import ActingEngine
    from workbench.ui.admin import UsersView

    acc = accounts(store)
    acc.add_user(ADMIN, "tess", "trader", PASSWORD)
    old = acc.login("tess", PASSWORD)
    view = UsersView(acc, ActingEngine(None, ADMIN, store.audit))
    view.name.value, view.password.value = "tess", "tess's new password"
    await view._passwd()
    assert view.message.object == "Password of tess set (their sessions ended)."
    assert acc.user_for(old.token) is None and view.password.value == ""
    assert acc.login("tess", "tess's new password").user.name == "tess"
    trader = UsersView(acc, ActingEngine(None, User("tess", Role.TRADER), store.audit))
    trader.name.value, trader.password.value = "root-operator", "taken over now!"
    await trader._passwd()  # a crafted click: the tab is built for admins only
    assert trader.message.object.startswith("Not done: tess (trader) may not manage_users")
