"""Accounts: logging in and out, sessions, and managing users, every step audited.

`login` checks the lockouts first (a locked user name or address is refused without looking
at the password), then the argon2 hash; a session is a random token given to the browser (in
a signed cookie) whose SHA-256 is stored with its expiry, so logging out, a password or role
change, or removing the user ends it on the server at once. Managing users needs the admin
role, checked here, where it happens.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
import secrets
from dataclasses import dataclass
from typing import Any

from workbench.auth.passwords import hash_password, one_time_password, verify_password
from workbench.auth.roles import Action, NotAuthorized, Role, User, refusal, utcnow
from workbench.auth.throttle import LockoutPolicy, after_failure, locked_for_s
from workbench.errors import WorkbenchError
from workbench.settings import Settings
from workbench.store.db import Store
from workbench.store.users import SessionRow, UserRow

NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.@-]{0,63}$")
FIRST_ADMIN = "admin"
# Audit actions of logging in and out (the others are `Action`s).
LOGIN, LOGIN_FAILED, LOGOUT = "login", "login_failed", "logout"


class AccountError(WorkbenchError, ValueError):
    """A user-management request that cannot be done: which field and why."""


class LoginRefused(WorkbenchError):
    """A login that did not succeed; the message is fit to show (it never says which of the
    name or the password was wrong)."""

    def __init__(self, message: str, retry_after_s: float = 0.0) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


@dataclass(frozen=True)
class Session:
    """A successful login: the token for the browser and who it is."""

    token: str
    user: User


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def check_name(name: str) -> str:
    if not NAME.match(name):
        raise AccountError(
            f"name: {name!r} must be 1-64 letters, digits or _ . @ - (starting with a letter "
            "or digit)"
        )
    return name


def check_role(role: str) -> Role:
    try:
        return Role(role)
    except ValueError:
        raise AccountError(
            f"role: {role!r} is not one of {', '.join(r.value for r in Role)}"
        ) from None


class Accounts:
    """Users, sessions and lockouts of one store, with the audit log."""

    def __init__(
        self,
        store: Store,
        *,
        policy: LockoutPolicy | None = None,
        session_ttl_s: float = 12 * 3600,
    ) -> None:
        self.store = store
        self.policy = policy or LockoutPolicy()
        self.session_ttl_s = session_ttl_s

    # -- logging in and out -----------------------------------------------------------------
    def login(self, name: str, password: str, address: str | None = None) -> Session:
        """Check a name and password; give a new session, or raise LoginRefused.

        Slow on purpose (argon2): call it off the event loop.
        """
        users, now = self.store.users, utcnow()
        address = address or "unknown"
        locked = max(
            locked_for_s(users.throttle("user", name), now),
            locked_for_s(users.throttle("address", address), now),
        )
        if locked > 0:
            self._audit(name, LOGIN_FAILED, "refused", address, reason="locked out")
            raise LoginRefused(
                f"Too many failed logins: try again in {int(locked) + 1} s.", retry_after_s=locked
            )
        row = users.user(name)
        if not verify_password(row.password_hash if row else None, password):
            locks = []
            for kind, subject in (("user", name), ("address", address)):
                updated = after_failure(
                    users.throttle(kind, subject), kind, subject, now, self.policy
                )
                users.save_throttle(updated)
                if updated.locked_until is not None and updated.locked_until > now:
                    locks.append((updated.locked_until - now).total_seconds())
            reason = "wrong name or password" + (" (now locked out)" if locks else "")
            self._audit(name, LOGIN_FAILED, "refused", address, reason=reason)
            if locks:
                raise LoginRefused(
                    f"Wrong name or password. Too many failed logins: try again in "
                    f"{int(max(locks)) + 1} s.",
                    retry_after_s=max(locks),
                )
            raise LoginRefused("Wrong name or password.")
        assert row is not None
        users.clear_throttle("user", name)
        users.clear_throttle("address", address)
        users.forget_sessions_before(now - dt.timedelta(days=30))
        token = secrets.token_urlsafe(32)
        expires = now + dt.timedelta(seconds=self.session_ttl_s)
        users.insert_session(SessionRow(token_hash(token), name, address, now, expires, None, None))
        self._audit(name, LOGIN, "allowed", address, after={"expires_at": expires.isoformat()})
        return Session(token, User(name, Role(row.role), expires))

    def user_for(self, token: str | None) -> User | None:
        """Give who holds a session token, or None (unknown, ended, expired, user removed)."""
        if not token:
            return None
        session = self.store.users.session(token_hash(token))
        if session is None or session.ended_at is not None or session.expires_at <= utcnow():
            return None
        row = self.store.users.user(session.user_name)
        if row is None:
            return None
        return User(row.name, Role(row.role), session.expires_at)

    def logout(self, token: str | None, address: str | None = None) -> None:
        """End a session (a token already ended or unknown is no error)."""
        if not token:
            return
        session = self.store.users.session(token_hash(token))
        if session is None:
            return
        if self.store.users.end_sessions(utcnow(), "logout", token_hash=session.token_hash):
            self._audit(session.user_name, LOGOUT, "allowed", address)

    # -- managing users ---------------------------------------------------------------------
    def _check(self, actor: User, target: str, detail: str) -> None:
        reason = refusal(actor, Action.MANAGE_USERS)
        if reason is not None:
            self._audit(
                actor.name,
                Action.MANAGE_USERS,
                "refused",
                target=target,
                reason=reason,
                after={"request": detail},
            )
            raise NotAuthorized(actor, Action.MANAGE_USERS, reason)

    def add_user(self, actor: User, name: str, role: str, password: str | None) -> None:
        """Add a user (password None: signs in through OAuth only)."""
        self._check(actor, name, "add")
        check_name(name)
        role = check_role(role)
        if self.store.users.user(name) is not None:
            raise AccountError(f"name: a user {name!r} already exists")
        hashed = hash_password(password) if password is not None else None
        self.store.users.insert_user(name, str(role), hashed, utcnow())
        self._audit(
            actor.name,
            Action.MANAGE_USERS,
            "allowed",
            target=name,
            after={"op": "add", "role": str(role)},
        )

    def set_role(self, actor: User, name: str, role: str) -> None:
        """Change a user's role; their open sessions end (they log in again with it)."""
        self._check(actor, name, "set-role")
        role = check_role(role)
        row = self._existing(name)
        if row.role == Role.ADMIN and role != Role.ADMIN:
            self._keep_an_admin(name)
        now = utcnow()
        self.store.users.update_user(name, now, role=str(role))
        self.store.users.end_sessions(now, "role changed", user=name)
        self._audit(
            actor.name,
            Action.MANAGE_USERS,
            "allowed",
            target=name,
            before={"role": row.role},
            after={"op": "set-role", "role": str(role)},
        )

    def set_password(self, actor: User, name: str, password: str) -> None:
        """Set a user's password; their open sessions end. A user may change their own."""
        if actor.name != name or actor.expired():
            self._check(actor, name, "passwd")
        self._existing(name)
        hashed = hash_password(password)
        now = utcnow()
        self.store.users.update_user(name, now, password_hash=hashed)
        self.store.users.end_sessions(now, "password changed", user=name)
        self.store.users.clear_throttle("user", name)
        self._audit(actor.name, Action.MANAGE_USERS, "allowed", target=name, after={"op": "passwd"})

    def remove_user(self, actor: User, name: str) -> None:
        """Remove a user and end their sessions (the last admin stays)."""
        self._check(actor, name, "remove")
        row = self._existing(name)
        if row.role == Role.ADMIN:
            self._keep_an_admin(name)
        now = utcnow()
        self.store.users.end_sessions(now, "user removed", user=name)
        self.store.users.delete_user(name)
        self._audit(
            actor.name,
            Action.MANAGE_USERS,
            "allowed",
            target=name,
            before={"role": row.role},
            after={"op": "remove"},
        )

    def ensure_first_admin(self, actor: str = "workbench") -> str | None:
        """Create the first admin when there is no user; give its one-time password (to print
        once, never stored in plain), or None when users exist."""
        if self.store.users.count():
            return None
        password = one_time_password()
        self.store.users.insert_user(
            FIRST_ADMIN, str(Role.ADMIN), hash_password(password), utcnow()
        )
        self._audit(
            actor,
            Action.MANAGE_USERS,
            "allowed",
            target=FIRST_ADMIN,
            after={"op": "add", "role": "admin", "first_admin": True},
        )
        return password

    def _existing(self, name: str) -> UserRow:
        row = self.store.users.user(name)
        if row is None:
            raise AccountError(f"name: no user {name!r}")
        return row

    def _keep_an_admin(self, name: str) -> None:
        users = self.store.users.users()
        admins = users[users["role"] == Role.ADMIN]["name"].tolist()
        if admins == [name]:
            raise AccountError(f"name: {name!r} is the last admin; make another admin first")

    def _audit(
        self,
        actor: str,
        action: str,
        result: str,
        address: str | None = None,
        *,
        target: str | None = None,
        before: Any = None,
        after: Any = None,
        reason: str | None = None,
    ) -> None:
        self.store.audit.append(
            actor=actor,
            action=str(action),
            result=result,
            address=address,
            target=target,
            before=before,
            after=after,
            reason=reason,
        )


def accounts_for(settings: Settings, store: Store) -> Accounts:
    """Give the accounts of `store` with the lockout and session settings in force."""
    policy = LockoutPolicy(
        settings.login_max_failures, settings.login_lockout_s, settings.login_max_lockout_s
    )
    return Accounts(store, policy=policy, session_ttl_s=settings.session_ttl_s)
