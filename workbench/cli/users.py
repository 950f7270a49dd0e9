"""`workbench users`: who may log in, and with which role.

Run by whoever can open the database (the machine's operator), audited as `cli:<login>`. A
new password comes from a prompt, or from WORKBENCH_NEW_PASSWORD for scripts. While a server
holds the database, stop it first (DuckDB allows one writer) or use the dashboard's Users tab.
"""

from __future__ import annotations

import getpass
import os
from typing import Annotated

import typer

from workbench.auth.accounts import AccountError, accounts_for, check_name, check_role
from workbench.auth.passwords import PasswordRejected, check_new_password
from workbench.auth.roles import Role, User
from workbench.cli.common import (
    DbOption,
    JsonOption,
    ask_secret,
    console,
    fail,
    print_frame,
    settings_with,
)
from workbench.store import Store, StoreError

app = typer.Typer(help="Users and roles (viewer, trader, admin).", no_args_is_help=True)
NEW_PASSWORD = "WORKBENCH_NEW_PASSWORD"
RoleArg = Annotated[str, typer.Option("--role", help="viewer, trader or admin")]


def operator() -> User:
    """Give the command line's actor: the machine's user, trusted as an admin."""
    return User(f"cli:{getpass.getuser()}", Role.ADMIN)


def new_password(name: str) -> str:
    """Give a new password from WORKBENCH_NEW_PASSWORD, or asked twice at a prompt."""
    given = os.environ.get(NEW_PASSWORD)
    if given is None:
        given = ask_secret(f"new password for {name}", NEW_PASSWORD, twice=True)
    try:
        return check_new_password(given)
    except PasswordRejected as exc:
        fail(str(exc))


def _run(db: object, work: object) -> None:
    settings = settings_with(db)  # type: ignore[arg-type]
    try:
        with Store.open(settings.db) as store:
            work(accounts_for(settings, store))  # type: ignore[operator]
    except (AccountError, PasswordRejected, StoreError) as exc:
        fail(str(exc))


@app.command("add")
def add(
    name: Annotated[str, typer.Argument(help="login name")],
    role: RoleArg = "viewer",
    oauth: Annotated[bool, typer.Option(help="no password: signs in through OAuth")] = False,
    db: DbOption = None,
) -> None:
    """Add a user with a role and a password."""
    try:  # before asking for a password
        check_name(name)
        check_role(role)
    except AccountError as exc:
        fail(str(exc))
    password = None if oauth else new_password(name)
    _run(db, lambda a: a.add_user(operator(), name, role, password))
    console.print(f"added {name} ({role})")


@app.command("list")
def list_users(as_json: JsonOption = False, db: DbOption = None) -> None:
    """List users and roles (never their password hashes)."""
    _run(db, lambda a: print_frame(a.store.users.users(), "users", as_json))


@app.command("set-role")
def set_role(
    name: Annotated[str, typer.Argument(help="login name")],
    role: Annotated[str, typer.Argument(help="viewer, trader or admin")],
    db: DbOption = None,
) -> None:
    """Change a user's role (their open sessions end)."""
    _run(db, lambda a: a.set_role(operator(), name, role))
    console.print(f"{name} is now {role}")


@app.command("passwd")
def passwd(name: Annotated[str, typer.Argument(help="login name")], db: DbOption = None) -> None:
    """Set a user's password (their open sessions end)."""
    password = new_password(name)
    _run(db, lambda a: a.set_password(operator(), name, password))
    console.print(f"password of {name} changed")


@app.command("remove")
def remove(name: Annotated[str, typer.Argument(help="login name")], db: DbOption = None) -> None:
    """Remove a user (the last admin stays)."""
    _run(db, lambda a: a.remove_user(operator(), name))
    console.print(f"removed {name}")
