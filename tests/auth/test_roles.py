"""Every action through the facade: a viewer is refused all but viewing, on the server,
and each refusal is audited with who, what and why; the engine is never reached."""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from workbench.auth.accounts import Accounts
from workbench.auth.acting import ActingEngine
from workbench.auth.roles import PERMISSIONS, Action, NotAuthorized, Role, User, authorize
from workbench.store import Store


class Untouchable:
    """An engine that fails the test if the facade reaches it at all."""

    def __getattr__(self, name: str) -> Any:
        raise AssertionError(f"the engine was reached: {name}")


def _spec() -> dict[str, Any]:
    return {"name": "x"}


# One call per action: the facade method a user's click ends in (users through Accounts).
CALLS: dict[Action, Callable[[ActingEngine, Accounts], Any]] = {
    Action.ADD_STRATEGY: lambda a, _: a.add_strategy(_spec(), allocation=1.0, symbol="ETH/BTC"),
    Action.SET_STATE: lambda a, _: a.set_state("sma-ETHBTC", "paused"),
    Action.PLACE_ORDER: lambda a, _: a.place_order("sma-ETHBTC", "buy", 1.0),
    Action.CANCEL_ORDER: lambda a, _: a.cancel_order("order-1"),
    Action.HALT: lambda a, _: a.halt("test"),
    Action.RESUME: lambda a, _: a.resume(),
    Action.SET_RISK_LIMITS: lambda a, _: a.set_risk_limits({"max_drawdown_fraction": 0.1}),
    Action.MANAGE_USERS: lambda a, accounts: accounts.add_user(a.user, "eve", "admin", "x" * 12),
    Action.MANAGE_KEYS: lambda a, _: a.manage_keys("binance", "set"),
    Action.VIEW_AUDIT: lambda a, _: a.verify_audit(),
}


def test_every_action_but_viewing_has_a_call_in_the_table() -> None:
    assert set(CALLS) == set(Action) - {Action.VIEW}


def call(acting: ActingEngine, accounts: Accounts, action: Action) -> None:
    result = CALLS[action](acting, accounts)
    if asyncio.iscoroutine(result):
        asyncio.run(result)


@pytest.fixture(scope="module")
def shared_store() -> Iterator[Store]:
    store = Store.memory()
    yield store
    store.close()


@pytest.mark.parametrize("role", list(Role))
@pytest.mark.parametrize("action", sorted(set(Action) - {Action.VIEW}))
def test_each_action_is_refused_below_its_role_and_audited(
    shared_store: Store, role: Role, action: Action
) -> None:
    store = shared_store
    user = User(f"someone-{role}", role)
    acting = ActingEngine(Untouchable(), user, store.audit, address="10.1.2.3")
    accounts = Accounts(store)
    if action in PERMISSIONS[role]:
        authorize(user, action)  # allowed: the facade would go on to the engine
        return
    before = store.audit.verify().rows
    with pytest.raises(NotAuthorized, match=f"may not {action}: needs the"):
        call(acting, accounts, action)
    rows = store.audit.frame(limit=None)
    assert len(rows) == before + 1
    row = rows.iloc[0]
    assert (row["actor"], row["action"], row["result"]) == (user.name, str(action), "refused")
    if action is not Action.MANAGE_USERS:
        assert row["address"] == "10.1.2.3"
    assert row["reason"].startswith("needs the ")
    assert store.users.count() == 0  # a refused user change changed nothing


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
