"""`workbench keys`: exchange API keys, encrypted in the key file (settings `key_file`).

The key and secret come from prompts, or from WORKBENCH_NEW_API_KEY / WORKBENCH_NEW_API_SECRET
for scripts; the passphrase from WORKBENCH_KEYS_PASSPHRASE or a prompt. With
WORKBENCH_KEY_STORE=keyring they go to the OS keyring instead (no passphrase: the user's login
unlocks it), where the machine has a backend. Nothing prints a key.
Each change is audited (which exchange, never the values) when the database can be opened.
"""

from __future__ import annotations

import os
from typing import Annotated

import typer
from pydantic import SecretStr

from workbench.auth import redact
from workbench.auth.acting import ActingEngine
from workbench.auth.keys import ExchangeKeys, KeyFile, KeyFileError
from workbench.auth.os_keyring import OsKeyring
from workbench.cli.common import (
    DbOption,
    JsonOption,
    ask_secret,
    console,
    fail,
    print_json,
    settings_with,
)
from workbench.cli.users import operator
from workbench.settings import Settings
from workbench.store import Store, StoreError

app = typer.Typer(help="Exchange API keys, stored encrypted.", no_args_is_help=True)
PASSPHRASE_VARIABLE = "WORKBENCH_KEYS_PASSPHRASE"
ExchangeArg = Annotated[str, typer.Argument(help="ccxt exchange id (binance, kraken, ...)")]


def _secret(variable: str, prompt: str) -> str:
    value = os.environ.get(variable) or ask_secret(prompt, variable)
    if not value.strip():
        fail(f"{prompt}: empty; nothing stored")
    return value.strip()


def _passphrase(settings: Settings, keyfile: KeyFile) -> str:
    if settings.keys_passphrase is not None:
        return settings.keys_passphrase.get_secret_value()
    new = not keyfile.path.exists()
    value = ask_secret("key file passphrase", PASSPHRASE_VARIABLE, twice=new)
    if new and len(value) < 10:
        fail("passphrase: at least 10 characters for a new key file")
    return value


def _audit(settings: Settings, exchange: str, op: str) -> None:
    try:
        with Store.open(settings.db, wait_s=2) as store:
            ActingEngine(None, operator(), store.audit).manage_keys(exchange, op)
    except StoreError as exc:
        console.print(f"[yellow]not audited[/] (the database is busy: {exc})")


def _keyring() -> OsKeyring:
    try:
        return OsKeyring()
    except KeyFileError as exc:
        fail(str(exc))


@app.command("set")
def set_keys(exchange: ExchangeArg, db: DbOption = None) -> None:
    """Store (or replace) an exchange's API key and secret, encrypted (or in the OS keyring,
    with WORKBENCH_KEY_STORE=keyring)."""
    settings = settings_with(db)
    keys = ExchangeKeys(
        SecretStr(_secret("WORKBENCH_NEW_API_KEY", "API key")),
        SecretStr(_secret("WORKBENCH_NEW_API_SECRET", "API secret")),
    )
    redact.install([keys.api_key, keys.api_secret])
    if settings.key_store == "keyring":
        store = _keyring()
        try:
            store.set(exchange, keys)
        except KeyFileError as exc:
            fail(str(exc))
        where = f"the OS keyring ({store.backend})"
    else:
        keyfile = KeyFile(settings.key_file)
        try:
            keyfile.set(exchange, keys, _passphrase(settings, keyfile))
        except KeyFileError as exc:
            fail(str(exc))
        where = str(keyfile.path)
    _audit(settings, exchange, "set")
    console.print(f"stored keys of {exchange} in {where}")


@app.command("list")
def list_keys(as_json: JsonOption = False, db: DbOption = None) -> None:
    """List the exchanges with stored keys (names and dates only)."""
    settings = settings_with(db)
    keyring = settings.key_store == "keyring"
    try:
        stored = _keyring().exchanges() if keyring else KeyFile(settings.key_file).exchanges()
    except KeyFileError as exc:
        fail(str(exc))
    if as_json:
        print_json(stored)
        return
    if not stored:
        console.print(f"no keys in {'the OS keyring' if keyring else settings.key_file}")
    for name, when in stored.items():
        console.print(f"{name}  stored {when}")


@app.command("remove")
def remove_keys(exchange: ExchangeArg, db: DbOption = None) -> None:
    """Remove an exchange's keys from the key file (or the OS keyring)."""
    settings = settings_with(db)
    keyring = settings.key_store == "keyring"
    try:
        removed = (
            _keyring().remove(exchange) if keyring else KeyFile(settings.key_file).remove(exchange)
        )
    except KeyFileError as exc:
        fail(str(exc))
    if not removed:
        fail(f"no keys of {exchange} in {'the OS keyring' if keyring else settings.key_file}")
    _audit(settings, exchange, "remove")
    console.print(f"removed keys of {exchange}")
