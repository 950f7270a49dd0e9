"""Signing in through Panel's OAuth providers, audited like a password login.

With `WORKBENCH_OAUTH_PROVIDER` set, Panel's own login handler for that provider runs the
OAuth flow (`panel serve --oauth-provider`). `install_audit` swaps it, in Panel's table of
providers, for a subclass that writes the outcome to the audit log: a sign-in of a workbench
user is a `login` row (who, which provider, from which address), a sign-in the provider
refused or of someone who is not a workbench user a `login_failed` row. Who may then see a
page is `oauth_authorize`'s answer (`workbench.auth.web`), on every request.
"""

from __future__ import annotations

import asyncio
from typing import Any

from tornado.web import HTTPError

from workbench.auth.accounts import LOGIN, LOGIN_FAILED, Accounts

NOT_A_USER = "signed in through OAuth but not a workbench user (workbench users add NAME --oauth)"


def record_sign_in(accounts: Accounts, name: str, provider: str, address: str | None) -> bool:
    """Audit a sign-in the provider vouched for; tell whether `name` is a workbench user."""
    known = bool(name) and accounts.store.users.user(name) is not None
    accounts.store.audit.append(
        actor=name[:200] or "unknown",
        action=LOGIN if known else LOGIN_FAILED,
        result="allowed" if known else "refused",
        address=address,
        after={"provider": provider},
        reason=None if known else NOT_A_USER,
    )
    return known


def record_refusal(accounts: Accounts, name: str, provider: str, address: str | None) -> None:
    """Audit a sign-in the provider refused (a wrong password at a `password` provider)."""
    accounts.store.audit.append(
        actor=name[:200] or "unknown",
        action=LOGIN_FAILED,
        result="refused",
        address=address,
        after={"provider": provider},
        reason=f"the OAuth provider ({provider}) refused the sign-in",
    )


def audited(handler: type[Any], provider: str) -> type[Any]:
    """Give a subclass of Panel's login handler `handler` that audits each sign-in."""

    class Audited(handler):  # type: ignore[misc, valid-type]
        # Every provider's sign-in (an authorization code, or a name and password for the
        # `password` provider) gets its tokens here; a refresh passes `refresh_token` and is
        # no sign-in.
        async def _fetch_access_token(self, *args: Any, **kwargs: Any) -> Any:
            from workbench.auth.web import accounts

            address = self.request.remote_ip
            try:
                found = await super()._fetch_access_token(*args, **kwargs)
            except HTTPError:
                if kwargs.get("username") and not kwargs.get("refresh_token"):
                    name = str(kwargs["username"])
                    await asyncio.to_thread(record_refusal, accounts(), name, provider, address)
                raise
            user = found[0] if found else None
            if user and not kwargs.get("refresh_token"):
                await asyncio.to_thread(record_sign_in, accounts(), str(user), provider, address)
            return found

    Audited.__name__ = Audited.__qualname__ = f"Audited{handler.__name__}"
    return Audited


def install_audit(provider: str) -> None:
    """Make Panel's OAuth flow for `provider` audit its sign-ins (call before the server is
    built: `panel serve --setup` runs first)."""
    from panel.auth import AUTH_PROVIDERS

    handler = AUTH_PROVIDERS[provider]
    if not getattr(handler, "_workbench_audited", False):
        wrapped = audited(handler, provider)
        wrapped._workbench_audited = True
        AUTH_PROVIDERS[provider] = wrapped
