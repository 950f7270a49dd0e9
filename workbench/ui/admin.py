"""Admin views of the dashboard: users and roles, and the audit log.

Built only for admins; every change goes through `Accounts`, which checks the role again
where the change happens and audits it.
"""

from __future__ import annotations

import asyncio
from functools import partial
from typing import Any

import pandas as pd
import panel as pn

from workbench.auth.accounts import AccountError, Accounts
from workbench.auth.acting import ActingEngine
from workbench.auth.passwords import PasswordRejected
from workbench.auth.roles import NotAuthorized, Role

AUDIT_ROWS = 200


class UsersView:
    """The users table and a form to add a user, change a role or remove a user."""

    def __init__(self, accounts: Accounts, acting: ActingEngine) -> None:
        self.accounts = accounts
        self.acting = acting
        self.table = pn.widgets.Tabulator(
            pd.DataFrame(), show_index=False, disabled=True, sizing_mode="stretch_width",
            name="users",
        )  # fmt: skip
        self.name = pn.widgets.TextInput(name="Name", width=200)
        self.role = pn.widgets.Select(name="Role", options=[r.value for r in Role], width=120)
        self.password = pn.widgets.PasswordInput(
            name="Password (new user, or new password)", width=200
        )
        self.add_button = pn.widgets.Button(name="Add user", button_type="primary")
        self.role_button = pn.widgets.Button(name="Set role", button_type="default")
        self.passwd_button = pn.widgets.Button(name="Set password", button_type="default")
        self.remove_button = pn.widgets.Button(name="Remove user", button_type="danger")
        self.message = pn.pane.Markdown("", name="users-message")
        self.add_button.on_click(self._add)
        self.role_button.on_click(self._set_role)
        self.passwd_button.on_click(self._passwd)
        self.remove_button.on_click(self._remove)
        self.refresh()

    def refresh(self) -> None:
        self.table.value = self.accounts.store.users.users()

    async def _add(self, _event: Any = None) -> None:
        await self._do("add")

    async def _set_role(self, _event: Any = None) -> None:
        await self._do("set-role")

    async def _passwd(self, _event: Any = None) -> None:
        await self._do("passwd")

    async def _remove(self, _event: Any = None) -> None:
        await self._do("remove")

    async def _do(self, op: str) -> None:
        actor, name, role = self.acting.user, self.name.value.strip(), self.role.value
        # argon2 is slow on purpose: hash off the loop the engine trades on.
        work: dict[str, tuple[Any, str]] = {
            "add": (
                partial(self.accounts.add_user, actor, name, role, self.password.value),
                f"Added {name} ({role}).",
            ),
            "set-role": (
                partial(self.accounts.set_role, actor, name, role),
                f"{name} is now {role}.",
            ),
            "passwd": (
                partial(self.accounts.set_password, actor, name, self.password.value),
                f"Password of {name} set (their sessions ended).",
            ),
            "remove": (partial(self.accounts.remove_user, actor, name), f"Removed {name}."),
        }
        call, done = work[op]
        try:
            await asyncio.to_thread(call)
        except (AccountError, PasswordRejected, NotAuthorized) as exc:
            self.message.object = f"Not done: {exc}"
            return
        finally:
            self.password.value = ""
        self.message.object = done
        self.refresh()

    def __panel__(self) -> Any:
        return pn.Column(
            "### Users",
            self.table,
            pn.Row(self.name, self.role, self.password),
            pn.Row(self.add_button, self.role_button, self.passwd_button, self.remove_button),
            self.message,
            sizing_mode="stretch_width",
        )


class AuditView:
    """The newest audit rows, filtered, and whether the hash chain holds."""

    def __init__(self, acting: ActingEngine) -> None:
        self.acting = acting
        self.actor = pn.widgets.TextInput(name="Actor", width=160)
        self.action = pn.widgets.TextInput(name="Action", width=160)
        self.result = pn.widgets.Select(
            name="Result", options=["", "allowed", "refused", "failed"], width=120
        )
        self.refresh_button = pn.widgets.Button(name="Refresh", button_type="default")
        self.refresh_button.on_click(lambda _e: self.refresh())
        self.verify_button = pn.widgets.Button(name="Verify chain", button_type="default")
        self.verify_button.on_click(self._verify)
        self.chain = pn.pane.Markdown("", name="audit-chain")
        self.table = pn.widgets.Tabulator(
            pd.DataFrame(), show_index=False, disabled=True, sizing_mode="stretch_width",
            pagination="local", page_size=15, name="audit",
        )  # fmt: skip

    def refresh(self) -> None:
        self.table.value = self.acting.audit_frame(
            actor=self.actor.value.strip() or None,
            action=self.action.value.strip() or None,
            result=self.result.value or None,
            limit=AUDIT_ROWS,
        )

    async def _verify(self, _event: Any = None) -> None:
        # Every row is read and hashed: off the loop the engine trades on.
        try:
            check = await asyncio.to_thread(self.acting.verify_audit)
        except NotAuthorized as exc:
            self.chain.object = f"Not done: {exc}"
            return
        self.chain.object = (
            f"Hash chain holds over {check.rows} rows (head {check.head[:16]}…)."
            if check.ok
            else f"**Hash chain broken at row {check.broken_seq}**: {check.problem}."
        )

    def __panel__(self) -> Any:
        return pn.Column(
            "### Audit log",
            pn.Row(self.actor, self.action, self.result, self.refresh_button, self.verify_button),
            self.chain,
            self.table,
            sizing_mode="stretch_width",
        )
