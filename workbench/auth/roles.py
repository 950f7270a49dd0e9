"""Who may do what: roles, the actions they are checked against, and `authorize`.

Pure logic, no IO: the table below is the whole policy. Roles nest (an admin may do what a
trader may, a trader what a viewer may). The check runs where the action runs
(`workbench.auth.acting`), never only in the widgets that offer it.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from enum import StrEnum

from workbench.errors import WorkbenchError


class Role(StrEnum):
    """What a user is trusted with."""

    VIEWER = "viewer"  # sees everything but secrets
    TRADER = "trader"  # runs strategies and places orders
    ADMIN = "admin"  # users, roles, keys, risk limits


class Action(StrEnum):
    """Every action a user can take on the workbench, each checked by `authorize`."""

    VIEW = "view"
    ADD_STRATEGY = "add_strategy"
    SET_STATE = "set_state"
    PLACE_ORDER = "place_order"
    CANCEL_ORDER = "cancel_order"
    HALT = "halt"
    RESUME = "resume"
    SET_RISK_LIMITS = "set_risk_limits"
    MANAGE_USERS = "manage_users"
    MANAGE_KEYS = "manage_keys"
    VIEW_AUDIT = "view_audit"


_VIEWER = frozenset({Action.VIEW})
_TRADER = _VIEWER | {
    Action.ADD_STRATEGY,
    Action.SET_STATE,
    Action.PLACE_ORDER,
    Action.CANCEL_ORDER,
    Action.HALT,
    Action.RESUME,
}
_ADMIN = frozenset(Action)
PERMISSIONS: dict[Role, frozenset[Action]] = {
    Role.VIEWER: _VIEWER,
    Role.TRADER: frozenset(_TRADER),
    Role.ADMIN: _ADMIN,
}


def least_role(action: Action) -> Role:
    """Give the lowest role allowed to take `action`."""
    return next(role for role in Role if action in PERMISSIONS[role])


@dataclass(frozen=True)
class User:
    """Someone acting on the workbench: a signed-in user (with the end of their session), the
    command line's operator, or the local user of an unauthenticated demo."""

    name: str
    role: Role
    expires_at: dt.datetime | None = None  # UTC, naive; None: no session to expire

    def expired(self, now: dt.datetime | None = None) -> bool:
        now = now or utcnow()
        return self.expires_at is not None and now >= self.expires_at


class NotAuthorized(WorkbenchError):
    """An action refused to a user: who, what, and why."""

    def __init__(self, user: User, action: Action, reason: str) -> None:
        super().__init__(f"{user.name} ({user.role}) may not {action}: {reason}")
        self.user = user
        self.action = action
        self.reason = reason


def refusal(user: User, action: Action, now: dt.datetime | None = None) -> str | None:
    """Give why `user` may not take `action` now, or None when they may."""
    if user.expired(now):
        return "the session has expired; log in again"
    if action not in PERMISSIONS[user.role]:
        return f"needs the {least_role(action)} role"
    return None


def authorize(user: User, action: Action, now: dt.datetime | None = None) -> None:
    """Return when `user` may take `action`; raise NotAuthorized (with the reason) if not."""
    reason = refusal(user, action, now)
    if reason is not None:
        raise NotAuthorized(user, action, reason)


def utcnow() -> dt.datetime:
    """Give the time now in UTC as a naive datetime (as the database stores it)."""
    return dt.datetime.now(dt.UTC).replace(tzinfo=None)
