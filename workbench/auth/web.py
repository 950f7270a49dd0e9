"""Login for `panel serve`: Bokeh's auth hooks on our own user store.

`workbench serve` (and `workbench demo` with auth on) passes `--auth-module
workbench/auth/panel_hooks.py`, which hands Bokeh `get_user`, the login and logout pages
below, and their URLs. Every page request and every websocket connection goes through
`get_user`, which accepts a browser only with a live session (signed cookie, checked against
the database: not logged out, not expired, user still there). The login page checks the
lockouts and the argon2 hash off the event loop. In a session, `session_user()` gives who is
acting, with their role read from the database at that moment.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import html
import logging
import threading
from typing import Any

import tornado.web
from tornado.web import decode_signed_value

from workbench.auth.accounts import LOGIN_FAILED, Accounts, LoginRefused, accounts_for
from workbench.auth.oauth import NOT_A_USER
from workbench.auth.roles import Role, User
from workbench.settings import load_settings

log = logging.getLogger(__name__)
SESSION_COOKIE = "workbench_session"
USER_COOKIE = "user"  # what Panel reads for `pn.state.user`
LOGIN_URL, LOGOUT_URL = "/login", "/logout"
LOCAL_USER = User("local", Role.ADMIN)  # the unauthenticated demo on 127.0.0.1
_NOBODY = User("nobody", Role.VIEWER, expires_at=dt.datetime(1970, 1, 1))
_lock = threading.Lock()
_accounts: Accounts | None = None


def accounts() -> Accounts:
    """Give this server's accounts, on the process's shared store."""
    global _accounts
    with _lock:
        if _accounts is None:
            from workbench.ui.shared import store

            _accounts = accounts_for(load_settings(), store())
        return _accounts


def _cookie_days() -> float:
    return load_settings().session_ttl_s / 86400


def _token(handler: tornado.web.RequestHandler) -> str | None:
    raw = handler.get_secure_cookie(SESSION_COOKIE, max_age_days=max(_cookie_days(), 1))
    return raw.decode("utf-8") if raw else None


def get_user(handler: tornado.web.RequestHandler) -> str | None:
    """Bokeh's hook: the signed-in user's name, or None (sent to the login page)."""
    user = accounts().user_for(_token(handler))
    return user.name if user else None


def _safe_next(value: str | None) -> str:
    # Only a path on this server: never another host (`//host`, `http://...`).
    if not value or not value.startswith("/") or value.startswith("//") or "\\" in value:
        return "/"
    return value


PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Workbench · {title}</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>
body {{ font-family: system-ui, sans-serif; background: #f3f4f6; margin: 0; }}
main {{ max-width: 360px; margin: 12vh auto; background: white; padding: 28px 32px;
        border-radius: 8px; box-shadow: 0 1px 4px rgba(0,0,0,.15); }}
h1 {{ font-size: 1.3rem; margin: 0 0 18px; color: #1f2937; }}
label {{ display: block; margin: 12px 0 4px; color: #374151; }}
input {{ width: 100%; box-sizing: border-box; padding: 8px; font-size: 1rem; }}
button {{ margin-top: 18px; width: 100%; padding: 9px; font-size: 1rem; background: #1f2937;
          color: white; border: 0; border-radius: 4px; cursor: pointer; }}
.error {{ color: #b91c1c; margin: 10px 0 0; }}
</style></head><body><main>{body}</main></body></html>"""


def login_page(message: str = "", next_url: str = "/") -> str:
    error = f'<p class="error" id="login-error">{html.escape(message)}</p>' if message else ""
    body = f"""<h1>Workbench · log in</h1>
<form method="post" action="{LOGIN_URL}">
<input type="hidden" name="next" value="{html.escape(next_url)}">
<label for="username">Name</label>
<input id="username" name="username" autocomplete="username" required autofocus>
<label for="password">Password</label>
<input id="password" name="password" type="password" autocomplete="current-password" required>
<button type="submit" id="login">Log in</button>
</form>{error}"""
    return PAGE.format(title="log in", body=body)


class LoginHandler(tornado.web.RequestHandler):
    """The login page: the form, and its check (lockouts, then the password)."""

    def get(self) -> None:
        self._no_store()
        self.write(login_page(next_url=_safe_next(self.get_argument("next", "/"))))

    async def post(self) -> None:
        self._no_store()
        name = self.get_body_argument("username", "")[:200]
        password = self.get_body_argument("password", "")
        next_url = _safe_next(self.get_body_argument("next", "/"))
        address = self.request.remote_ip
        try:
            # argon2 and the database, off the loop the engine trades on.
            session = await asyncio.to_thread(accounts().login, name, password, address)
        except LoginRefused as refused:
            self.set_status(429 if refused.retry_after_s else 401)
            if refused.retry_after_s:
                self.set_header("Retry-After", str(int(refused.retry_after_s) + 1))
            self.write(login_page(str(refused), next_url))
            return
        days = max(_cookie_days(), 1 / 86400)
        cookie = {"expires_days": days, "httponly": True, "samesite": "Strict"}
        self.set_secure_cookie(SESSION_COOKIE, session.token, **cookie)
        self.set_secure_cookie(USER_COOKIE, session.user.name, **cookie)
        self.redirect(next_url)

    def _no_store(self) -> None:
        self.set_header("Cache-Control", "no-store")


class LogoutHandler(tornado.web.RequestHandler):
    """Ends the session on the server (its cookie is worthless from now on)."""

    def get(self) -> None:
        accounts().logout(_token(self), self.request.remote_ip)
        for name in (SESSION_COOKIE, USER_COOKIE, "id_token"):
            self.clear_cookie(name)
        self.set_header("Cache-Control", "no-store")
        body = f'<h1>Logged out</h1><p><a id="login-again" href="{LOGIN_URL}">Log in again</a></p>'
        self.write(PAGE.format(title="logged out", body=body))


class SessionUser:
    """Who acts in the current Panel session: call it for the user as stored now.

    With auth off, the local user (admin). Each call checks the session again, so a logout,
    an expiry, a role change or the user's removal takes effect on a page already open (a
    session that ended gives a user whose every action is refused).
    """

    def __init__(self) -> None:
        import panel as pn

        self.settings = load_settings()
        self.oauth_name = str(pn.state.user or "") if self.settings.oauth_provider else ""
        self.token: str | None = None
        context = pn.state.curdoc.session_context if pn.state.curdoc else None
        request = getattr(context, "request", None)
        raw = request.cookies.get(SESSION_COOKIE) if request is not None else None
        secret = self.settings.cookie_secret
        if raw and secret is not None:
            value = decode_signed_value(
                secret.get_secret_value(),
                SESSION_COOKIE,
                raw,
                max_age_days=max(self.settings.session_ttl_s / 86400, 1),
            )
            self.token = value.decode("utf-8") if value else None

    def __call__(self) -> User:
        if not self.settings.auth:
            return LOCAL_USER
        if self.settings.oauth_provider:
            # Panel's OAuth provider signed the user in; the role is ours (users without a
            # row are refused by `oauth_authorize` before they get here).
            row = accounts().store.users.user(self.oauth_name)
            return User(row.name, Role(row.role)) if row else _NOBODY
        return accounts().user_for(self.token) or _NOBODY


def session_user() -> User:
    """Give who acts in the current Panel session, as stored now."""
    return SessionUser()()


def oauth_authorize(user_info: dict[str, Any], path: str) -> bool:
    """Panel's `authorize_callback` under OAuth: only users added with `workbench users add
    NAME --oauth` (or with a password) get in."""
    import panel as pn

    # Who Panel signed in: its signed `user` cookie holds the provider's user key (the
    # provider's own claims in `user_info` carry no "user" of their own).
    name = str(pn.state.user or (user_info or {}).get("user") or "")
    found = accounts().store.users
    if name and found.user(name) is not None:
        return True
    # Signed in at the provider, but no user here (or no longer): refused, and audited like
    # a failed login, on every page asked for.
    accounts().store.audit.append(
        actor=name[:200] or "unknown",
        action=LOGIN_FAILED,
        result="refused",
        address=session_address(),
        target=path or None,
        reason=NOT_A_USER,
    )
    return False


def session_address() -> str | None:
    """Give the client address of the current Panel session, when known."""
    import panel as pn

    context = pn.state.curdoc.session_context if pn.state.curdoc else None
    request = getattr(context, "request", None)
    return getattr(request, "remote_ip", None) if request is not None else None
