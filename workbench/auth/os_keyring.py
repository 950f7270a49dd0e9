"""Exchange keys in the OS keyring (Secret Service, macOS Keychain, Windows Credential
Locker) through `keyring`, for machines that have a backend (`WORKBENCH_KEY_STORE=keyring`).

The keyring keeps each exchange's pair under the service `workbench`, unlocked by the user's
own login: no passphrase is asked. Keyrings cannot list what they hold, so the names of the
exchanges stored (and when) are kept in one more entry. A headless Linux server has no
backend: there, this says so and the encrypted key file (`workbench.auth.keys`) is the way.
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

from pydantic import SecretStr

from workbench.auth import redact
from workbench.auth.keys import ExchangeKeys, KeyFileError

SERVICE = "workbench"
_INDEX = "__exchanges__"


class OsKeyring:
    """The exchange keys in this machine's OS keyring."""

    def __init__(self, service: str = SERVICE) -> None:
        try:
            import keyring
            import keyring.backends.fail
            import keyring.errors
        except ImportError:
            raise KeyFileError(
                "key_store: keyring is not installed (pip install 'workbench[keyring]'), or "
                "use the key file (WORKBENCH_KEY_STORE=file)"
            ) from None
        self._keyring: Any = keyring
        self._errors: Any = keyring.errors
        backend = keyring.get_keyring()
        if isinstance(backend, keyring.backends.fail.Keyring):
            raise KeyFileError(
                "key_store: this machine has no OS keyring backend (a headless Linux server "
                "has none): use the key file (WORKBENCH_KEY_STORE=file)"
            )
        self.service = service
        self.backend = type(backend).__name__

    def _index(self) -> dict[str, str]:
        text = self._keyring.get_password(self.service, _INDEX)
        return dict(json.loads(text)) if text else {}

    def exchanges(self) -> dict[str, str]:
        """Give the exchanges with stored keys and when each was stored."""
        return self._index()

    def get(self, exchange: str) -> ExchangeKeys | None:
        """Give an exchange's keys, or None if the keyring has none for it."""
        text = self._keyring.get_password(self.service, exchange)
        if not text:
            return None
        try:
            pair = json.loads(text)
            key, secret = str(pair["api_key"]), str(pair["api_secret"])
        except (ValueError, KeyError, TypeError):
            raise KeyFileError(
                f"the OS keyring's entry {self.service}/{exchange} is not a workbench key pair"
            ) from None
        redact.remember(key, secret)
        return ExchangeKeys(SecretStr(key), SecretStr(secret))

    def set(self, exchange: str, keys: ExchangeKeys) -> None:
        """Store (or replace) an exchange's keys."""
        if not exchange or exchange == _INDEX:
            raise KeyFileError(f"exchange: {exchange!r} is not a valid name")
        redact.remember(keys.api_key, keys.api_secret)
        pair = {
            "api_key": keys.api_key.get_secret_value(),
            "api_secret": keys.api_secret.get_secret_value(),
        }
        self._keyring.set_password(self.service, exchange, json.dumps(pair))
        index = self._index()
        index[exchange] = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
        self._keyring.set_password(self.service, _INDEX, json.dumps(index))

    def remove(self, exchange: str) -> bool:
        """Remove an exchange's keys; tell whether there were any."""
        index = self._index()
        try:
            self._keyring.delete_password(self.service, exchange)
        except self._errors.PasswordDeleteError:
            found = False
        else:
            found = True
        if exchange in index:
            del index[exchange]
            self._keyring.set_password(self.service, _INDEX, json.dumps(index))
        return found
