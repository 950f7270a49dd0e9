"""Every action through the facade: a viewer is refused all but viewing, on the server,
and each refusal is audited with who, what and why; the engine is never reached."""

from __future__ import annotations

import asyncio
import datetime as dt
import re
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from workbench.auth.accounts import Accounts
from workbench.auth.acting import ActingEngine, BadInput
from workbench.auth.roles import PERMISSIONS, Action, NotAuthorized, Role, User, authorize
from workbench.store import Store


class Untouchable:
    """An engine that fails the test if the facade reaches it at all."""

    def __getattr__(self, name: str) -> Any:
        raise AssertionError(f"the engine was reached: {name}")


def _spec() -> dict[str, Any]:
    return {"name": "x"}


# One call per way in: every public method of the facade (the engine's actions as a user
# takes them) and every user-management method of Accounts, with the action it is checked as.
Call = Callable[[ActingEngine, Accounts], Any]
CALLS: dict[str, tuple[Action, Call]] = {
    "add_strategy": (
        Action.ADD_STRATEGY,
        lambda a, _: a.add_strategy(_spec(), allocation=1.0, symbol="ETH/BTC"),
    ),
    "set_state": (Action.SET_STATE, lambda a, _: a.set_state("sma-ETHBTC", "paused")),
    "place_order": (Action.PLACE_ORDER, lambda a, _: a.place_order("sma-ETHBTC", "buy", 1.0)),
    "cancel_order": (Action.CANCEL_ORDER, lambda a, _: a.cancel_order("order-1")),
    "halt": (Action.HALT, lambda a, _: a.halt("test", flatten=True)),
    "resume": (Action.RESUME, lambda a, _: a.resume()),
    "set_risk_limits": (
        Action.SET_RISK_LIMITS,
        lambda a, _: a.set_risk_limits({"max_drawdown_fraction": 0.1}),
    ),
    "manage_keys": (Action.MANAGE_KEYS, lambda a, _: a.manage_keys("binance", "set")),
    "audit_frame": (Action.VIEW_AUDIT, lambda a, _: a.audit_frame(actor="ada")),
    "verify_audit": (Action.VIEW_AUDIT, lambda a, _: a.verify_audit()),
    "Accounts.add_user": (
        Action.MANAGE_USERS,
        lambda a, accounts: accounts.add_user(a.user, "eve", "admin", "x" * 12),
    ),
    "Accounts.set_role": (
        Action.MANAGE_USERS,
        lambda a, accounts: accounts.set_role(a.user, "eve", "admin"),
    ),
    "Accounts.set_password": (
        Action.MANAGE_USERS,
        lambda a, accounts: accounts.set_password(a.user, "eve", "y" * 12),
    ),
    "Accounts.remove_user": (
        Action.MANAGE_USERS,
        lambda a, accounts: accounts.remove_user(a.user, "eve"),
    ),
}
# What every role may do, so unchecked: reading who acts and whether a control is offered.
FACADE_READS = {"may", "user"}
# Accounts' own ways in: logging in and out, and the first admin (made by the server itself).
ACCOUNT_SESSIONS = {"login", "user_for", "logout", "ensure_first_admin"}


def _public(kind: type) -> set[str]:
    return {name for name in vars(kind) if not name.startswith("_")}


def test_every_way_in_is_in_the_table_and_every_action_has_one() -> None:
    facade = {name for name in CALLS if "." not in name}
    assert _public(ActingEngine) - FACADE_READS == facade
    accounts = {name.split(".", 1)[1] for name in CALLS if name.startswith("Accounts.")}
    assert _public(Accounts) - ACCOUNT_SESSIONS == accounts
    assert {action for action, _ in CALLS.values()} == set(Action) - {Action.VIEW}


def call(acting: ActingEngine, accounts: Accounts, name: str) -> None:
    result = CALLS[name][1](acting, accounts)
    if asyncio.iscoroutine(result):
        asyncio.run(result)


@pytest.fixture(scope="module")
def shared_store() -> Iterator[Store]:
    store = Store.memory()
    yield store
    store.close()


@pytest.mark.parametrize("role", list(Role))
@pytest.mark.parametrize("name", list(CALLS))
def test_each_way_in_is_refused_below_its_role_and_audited(
    shared_store: Store, role: Role, name: str
) -> None:
    store = shared_store
    action = CALLS[name][0]
    user = User(f"someone-{role}", role)
    acting = ActingEngine(Untouchable(), user, store.audit, address="10.1.2.3")
    accounts = Accounts(store)
    if action in PERMISSIONS[role]:
        authorize(user, action)  # allowed: the facade would go on to the engine
        return
    before = store.audit.verify().rows
    with pytest.raises(NotAuthorized, match=f"may not {action}: needs the"):
        call(acting, accounts, name)
    rows = store.audit.frame(limit=None)
    assert len(rows) == before + 1
    row = rows.iloc[0]
    assert (row["actor"], row["action"], row["result"]) == (user.name, str(action), "refused")
    if action is not Action.MANAGE_USERS:
        assert row["address"] == "10.1.2.3"
    assert row["reason"].startswith("needs the ")
    assert store.users.count() == 0  # a refused user change changed nothing


@pytest.mark.parametrize(
    ("limits", "message"),
    [
        ({"max_order_notional": float("nan")}, "max_order_notional must be a finite number"),
        ({"max_exposure": float("inf")}, "max_exposure must be a finite number"),
        ({"max_order_notional": "100"}, "max_order_notional is a number, got '100'"),
        ({"max_open_positions": 2.5}, "max_open_positions is a whole number"),
        ({"daily_loss_fraction": 1.5}, "daily_loss_fraction is a fraction"),
        ({"flatten_on_drawdown": "yes"}, "flatten_on_drawdown is true or false"),
        ({"max_drawdown": 0.1}, "unknown account limits: max_drawdown"),
        ([("max_order_notional", 1.0)], "limits: a mapping of limit to value is needed"),
    ],
)
def test_bad_risk_limits_are_named_audited_and_reach_no_engine(
    shared_store: Store, limits: Any, message: str
) -> None:
    admin = ActingEngine(Untouchable(), User("ada", Role.ADMIN), shared_store.audit)
    with pytest.raises(BadInput, match=re.escape(message)):
        asyncio.run(admin.set_risk_limits(limits))
    row = shared_store.audit.frame().iloc[0]
    assert (row["actor"], row["action"], row["result"]) == ("ada", "set_risk_limits", "failed")
    assert message in row["reason"]


def test_a_viewer_may_view_only_and_an_admin_may_do_everything() -> None:
    assert PERMISSIONS[Role.VIEWER] == {Action.VIEW}
    assert PERMISSIONS[Role.ADMIN] == set(Action)
    assert PERMISSIONS[Role.VIEWER] < PERMISSIONS[Role.TRADER] < PERMISSIONS[Role.ADMIN]
    trader = PERMISSIONS[Role.TRADER]
    for action in ("add_strategy", "set_state", "place_order", "cancel_order", "halt"):
        assert Action(action) in trader
    for action in ("set_risk_limits", "manage_users", "manage_keys", "view_audit"):
        assert Action(action) not in trader


def test_an_expired_session_is_refused_even_for_an_admin() -> None:
    store = Store.memory()
    gone = User("admin", Role.ADMIN, expires_at=dt.datetime(2000, 1, 1))
    acting = ActingEngine(Untouchable(), gone, store.audit)
    with pytest.raises(NotAuthorized, match="session has expired"):
        acting.set_state("s", "paused")
    assert store.audit.frame()["reason"].tolist() == ["the session has expired; log in again"]


def test_the_facade_reads_who_acts_again_at_each_action() -> None:
    store = Store.memory()
    now = {"user": User("tess", Role.TRADER)}
    acting = ActingEngine(Untouchable(), lambda: now["user"], store.audit)
    authorize(acting.user, Action.SET_STATE)
    now["user"] = User("tess", Role.VIEWER)  # demoted while the page is open
    with pytest.raises(NotAuthorized, match=r"tess \(viewer\) may not set_state"):
        acting.set_state("s", "paused")
    assert store.audit.frame()[["actor", "result"]].values.tolist() == [["tess", "refused"]]
