"""Exchange keys kept encrypted in a key file, unlocked with a passphrase when a run starts.

The file (settings `key_file`, mode 0600) holds, per exchange, the API key and secret sealed
with AES-256-GCM (cryptography) under a key derived from the passphrase with scrypt; the
exchange's name is bound to its entry (as associated data), so entries cannot be swapped.
One passphrase seals every entry: a check entry refuses a wrong one before anything changes.
Keys in the environment (WORKBENCH_API_KEY / WORKBENCH_API_SECRET) win over the file.
Unlocked keys are handed to `workbench.venue.connect` through the settings, and remembered
by `workbench.auth.redact` so no log line or error shows them.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import os
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.scrypt import Scrypt
from pydantic import SecretStr

from workbench.auth import redact
from workbench.errors import WorkbenchError
from workbench.settings import Settings

FORMAT = "workbench-exchange-keys"
VERSION = 1
SCRYPT = {"n": 2**15, "r": 8, "p": 1}
_CHECK = "__check__"
_CHECK_TEXT = b"workbench exchange keys"


class KeyFileError(WorkbenchError):
    """A key file that cannot be read, unlocked or written: which file and why."""


@dataclass(frozen=True)
class ExchangeKeys:
    """An exchange's API key pair (repr hides both)."""

    api_key: SecretStr
    api_secret: SecretStr


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.b64decode(text.encode("ascii"))


def _derive(passphrase: str, salt: bytes, params: dict[str, int]) -> AESGCM:
    kdf = Scrypt(salt=salt, length=32, n=params["n"], r=params["r"], p=params["p"])
    return AESGCM(kdf.derive(passphrase.encode("utf-8")))


class KeyFile:
    """The encrypted key file at `path`."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)

    def _read(self) -> dict[str, Any] | None:
        if not self.path.exists():
            return None
        try:
            data = json.loads(self.path.read_text())
        except (OSError, ValueError) as exc:
            raise KeyFileError(f"{self.path}: not a readable key file ({exc})") from exc
        if not isinstance(data, dict) or data.get("format") != FORMAT:
            raise KeyFileError(f"{self.path}: not a workbench key file")
        if data.get("version") != VERSION:
            raise KeyFileError(f"{self.path}: key file version {data.get('version')} is unknown")
        return data

    def _cipher(self, data: dict[str, Any], passphrase: str) -> AESGCM:
        kdf = data["kdf"]
        cipher = _derive(passphrase, _unb64(kdf["salt"]), kdf)
        check = data["entries"][_CHECK]
        try:
            cipher.decrypt(_unb64(check["nonce"]), _unb64(check["sealed"]), _CHECK.encode())
        except InvalidTag:
            raise KeyFileError(f"{self.path}: wrong passphrase") from None
        return cipher

    def exchanges(self) -> dict[str, str]:
        """Give the exchanges with stored keys and when each was stored (no passphrase needed)."""
        data = self._read()
        if data is None:
            return {}
        return {k: v["stored_at"] for k, v in data["entries"].items() if k != _CHECK}

    def get(self, exchange: str, passphrase: str) -> ExchangeKeys | None:
        """Give an exchange's keys, or None if the file has none for it."""
        data = self._read()
        if data is None or exchange not in data["entries"]:
            return None
        cipher = self._cipher(data, passphrase)
        entry = data["entries"][exchange]
        try:
            plain = cipher.decrypt(
                _unb64(entry["nonce"]), _unb64(entry["sealed"]), exchange.encode()
            )
        except InvalidTag:
            raise KeyFileError(f"{self.path}: the entry of {exchange} was altered") from None
        pair = json.loads(plain)
        redact.remember(pair["api_key"], pair["api_secret"])
        return ExchangeKeys(SecretStr(pair["api_key"]), SecretStr(pair["api_secret"]))

    def set(self, exchange: str, keys: ExchangeKeys, passphrase: str) -> None:
        """Store (or replace) an exchange's keys; a new file takes `passphrase` as its own."""
        if not exchange or exchange == _CHECK:
            raise KeyFileError(f"exchange: {exchange!r} is not a valid name")
        redact.remember(keys.api_key, keys.api_secret, passphrase)
        data = self._read()
        if data is None:
            salt = secrets.token_bytes(16)
            data = {
                "format": FORMAT,
                "version": VERSION,
                "kdf": {"name": "scrypt", "salt": _b64(salt), **SCRYPT},
                "entries": {},
            }
            cipher = _derive(passphrase, salt, SCRYPT)
            data["entries"][_CHECK] = self._seal(cipher, _CHECK, _CHECK_TEXT)
        else:
            cipher = self._cipher(data, passphrase)
        pair = {
            "api_key": keys.api_key.get_secret_value(),
            "api_secret": keys.api_secret.get_secret_value(),
        }
        data["entries"][exchange] = self._seal(cipher, exchange, json.dumps(pair).encode())
        self._write(data)

    def remove(self, exchange: str) -> bool:
        """Remove an exchange's keys; tell whether there were any."""
        data = self._read()
        if data is None or exchange not in data["entries"] or exchange == _CHECK:
            return False
        del data["entries"][exchange]
        self._write(data)
        return True

    @staticmethod
    def _seal(cipher: AESGCM, name: str, plain: bytes) -> dict[str, str]:
        nonce = secrets.token_bytes(12)
        return {
            "nonce": _b64(nonce),
            "sealed": _b64(cipher.encrypt(nonce, plain, name.encode())),
            "stored_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        }

    def _write(self, data: dict[str, Any]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        partial = self.path.with_name(self.path.name + ".partial")
        partial.unlink(missing_ok=True)
        fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as out:
            json.dump(data, out, indent=2)
            out.flush()
            os.fsync(out.fileno())
        os.replace(partial, self.path)


def with_unlocked_keys(settings: Settings, passphrase: str | None = None) -> Settings:
    """Give the settings with the exchange's keys from the key file (or the OS keyring, with
    `key_store = "keyring"`) when the environment has none (the local exchange uses its own
    pair and takes none).

    The passphrase comes from the argument, else WORKBENCH_KEYS_PASSPHRASE; without either,
    a file entry for the exchange is an error that says so.
    """
    if settings.exchange == "local" or (settings.api_key and settings.api_secret):
        return settings
    if settings.key_store == "keyring":
        from workbench.auth.os_keyring import OsKeyring

        found = OsKeyring().get(settings.exchange)
        if found is None:
            return settings
        return settings.model_copy(
            update={"api_key": found.api_key, "api_secret": found.api_secret}
        )
    keyfile = KeyFile(settings.key_file)
    if settings.exchange not in keyfile.exchanges():
        return settings
    if passphrase is None and settings.keys_passphrase is not None:
        passphrase = settings.keys_passphrase.get_secret_value()
    if not passphrase:
        raise KeyFileError(
            f"{keyfile.path} holds keys for {settings.exchange}: set WORKBENCH_KEYS_PASSPHRASE "
            "to unlock them (or start at a terminal, which asks for it)"
        )
    keys = keyfile.get(settings.exchange, passphrase)
    assert keys is not None
    return settings.model_copy(update={"api_key": keys.api_key, "api_secret": keys.api_secret})
