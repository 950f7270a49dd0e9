"""Exchange keys in the encrypted key file: sealed, bound to their exchange, unlocked with the
passphrase only, handed to the settings; the CLI stores, lists and removes them."""

from __future__ import annotations

import json
import stat
from collections.abc import Iterator
from pathlib import Path

import keyring
import keyring.backends.fail
import keyring.errors
import pytest
from keyring.backend import KeyringBackend
from pydantic import SecretStr
from typer.testing import CliRunner

from workbench.auth.keys import ExchangeKeys, KeyFile, KeyFileError, with_unlocked_keys
from workbench.cli import app
from workbench.settings import Settings
from workbench.store import Store

KEY, SECRET = "AKIA-canary-key-0123456789", "sk-canary-secret-9876543210"
PASSPHRASE = "a long passphrase here"


def pair(key: str = KEY, secret: str = SECRET) -> ExchangeKeys:
    return ExchangeKeys(SecretStr(key), SecretStr(secret))


def test_keys_are_sealed_and_come_back_with_the_passphrase(tmp_path: Path) -> None:
    keyfile = KeyFile(tmp_path / "keys.json")
    keyfile.set("binance", pair(), PASSPHRASE)
    keyfile.set("kraken", pair("kraken-key-123456", "kraken-secret-123456"), PASSPHRASE)
    text = keyfile.path.read_text()
    assert KEY not in text and SECRET not in text and PASSPHRASE not in text
    assert stat.S_IMODE(keyfile.path.stat().st_mode) == 0o600
    back = keyfile.get("binance", PASSPHRASE)
    assert back is not None
    assert (back.api_key.get_secret_value(), back.api_secret.get_secret_value()) == (KEY, SECRET)
    assert KEY not in repr(back) and SECRET not in repr(back)
    assert set(keyfile.exchanges()) == {"binance", "kraken"}
    assert keyfile.get("okx", PASSPHRASE) is None


def test_a_wrong_passphrase_changes_and_reveals_nothing(tmp_path: Path) -> None:
    keyfile = KeyFile(tmp_path / "keys.json")
    keyfile.set("binance", pair(), PASSPHRASE)
    before = keyfile.path.read_bytes()
    with pytest.raises(KeyFileError, match="wrong passphrase") as wrong:
        keyfile.get("binance", "not the passphrase")
    assert KEY not in str(wrong.value)
    with pytest.raises(KeyFileError, match="wrong passphrase"):
        keyfile.set("kraken", pair(), "not the passphrase")
    assert keyfile.path.read_bytes() == before


def test_an_entry_moved_to_another_exchange_does_not_open(tmp_path: Path) -> None:
    keyfile = KeyFile(tmp_path / "keys.json")
    keyfile.set("binance", pair(), PASSPHRASE)
    data = json.loads(keyfile.path.read_text())
    data["entries"]["kraken"] = data["entries"]["binance"]
    keyfile.path.write_text(json.dumps(data))
    with pytest.raises(KeyFileError, match="entry of kraken was altered"):
        keyfile.get("kraken", PASSPHRASE)


def test_the_settings_get_the_keys_of_their_exchange(tmp_path: Path) -> None:
    path = tmp_path / "keys.json"
    KeyFile(path).set("binance", pair(), PASSPHRASE)
    settings = Settings(exchange="binance", key_file=path)
    with pytest.raises(KeyFileError, match="WORKBENCH_KEYS_PASSPHRASE"):
        with_unlocked_keys(settings)
    unlocked = with_unlocked_keys(
        settings.model_copy(update={"keys_passphrase": SecretStr(PASSPHRASE)})
    )
    assert unlocked.api_key is not None and unlocked.api_key.get_secret_value() == KEY
    assert KEY not in json.dumps(unlocked.masked())
    # The environment wins; the local exchange takes no stored keys; other exchanges none.
    env = Settings(exchange="binance", key_file=path, api_key="env-key-1", api_secret="env-s-1")
    assert with_unlocked_keys(env) is env
    assert with_unlocked_keys(Settings(exchange="local", key_file=path)).api_key is None
    assert with_unlocked_keys(Settings(exchange="kraken", key_file=path)).api_key is None


def test_the_cli_stores_lists_and_removes_keys_and_audits_without_values(
    tmp_path: Path, db_path: Path
) -> None:
    runner = CliRunner()
    env = {
        "WORKBENCH_KEY_FILE": str(tmp_path / "keys.json"),
        "WORKBENCH_KEYS_PASSPHRASE": PASSPHRASE,
        "WORKBENCH_NEW_API_KEY": KEY,
        "WORKBENCH_NEW_API_SECRET": SECRET,
    }
    db = ["--db", str(db_path)]
    stored = runner.invoke(app, ["keys", "set", "binance", *db], env=env)
    assert stored.exit_code == 0, stored.output
    listed = runner.invoke(app, ["keys", "list", "--json", *db], env=env)
    assert list(json.loads(listed.output)) == ["binance"]
    assert runner.invoke(app, ["keys", "remove", "binance", *db], env=env).exit_code == 0
    missing = runner.invoke(app, ["keys", "remove", "binance", *db], env=env)
    assert missing.exit_code == 1 and "no keys of binance" in missing.output
    for output in (stored.output, listed.output):
        assert KEY not in output and SECRET not in output
    with Store.open(db_path) as store:
        rows = store.audit.frame()
    assert rows[["action", "target", "result"]].values.tolist() == [
        ["manage_keys", "binance", "allowed"],
        ["manage_keys", "binance", "allowed"],
    ]
    assert KEY not in rows.to_json(date_format="iso") and SECRET not in rows.to_json(
        date_format="iso"
    )


class MemoryKeyring(KeyringBackend):
    """An OS keyring backend kept in memory (this machine has none: headless Linux)."""

    priority = 1  # type: ignore[assignment]

    def __init__(self) -> None:
        super().__init__()
        self.items: dict[tuple[str, str], str] = {}

    def get_password(self, service: str, username: str) -> str | None:
        return self.items.get((service, username))

    def set_password(self, service: str, username: str, password: str) -> None:
        self.items[(service, username)] = password

    def delete_password(self, service: str, username: str) -> None:
        if self.items.pop((service, username), None) is None:
            raise keyring.errors.PasswordDeleteError(username)


@pytest.fixture
def os_keyring() -> Iterator[MemoryKeyring]:
    before = keyring.get_keyring()
    backend = MemoryKeyring()
    keyring.set_keyring(backend)
    yield backend
    keyring.set_keyring(before)


def test_keys_go_to_the_os_keyring_where_it_has_a_backend(
    os_keyring: MemoryKeyring, tmp_path: Path, db_path: Path
) -> None:
    runner = CliRunner()
    env = {
        "WORKBENCH_KEY_STORE": "keyring",
        "WORKBENCH_KEY_FILE": str(tmp_path / "keys.json"),
        "WORKBENCH_NEW_API_KEY": KEY,
        "WORKBENCH_NEW_API_SECRET": SECRET,
        "WORKBENCH_KEYS_PASSPHRASE": None,  # none asked: the user's login unlocks the keyring
    }
    db = ["--db", str(db_path)]
    stored = runner.invoke(app, ["keys", "set", "binance", *db], env=env)
    assert stored.exit_code == 0, stored.output
    assert "the OS keyring (MemoryKeyring)" in stored.output
    assert not (tmp_path / "keys.json").exists()
    assert json.loads(os_keyring.items[("workbench", "binance")]) == {
        "api_key": KEY,
        "api_secret": SECRET,
    }
    listed = runner.invoke(app, ["keys", "list", "--json", *db], env=env)
    assert list(json.loads(listed.output)) == ["binance"]
    settings = Settings(exchange="binance", key_store="keyring", key_file=tmp_path / "keys.json")
    unlocked = with_unlocked_keys(settings)
    assert unlocked.api_key is not None and unlocked.api_key.get_secret_value() == KEY
    assert unlocked.api_secret is not None and unlocked.api_secret.get_secret_value() == SECRET
    assert runner.invoke(app, ["keys", "remove", "binance", *db], env=env).exit_code == 0
    assert ("workbench", "binance") not in os_keyring.items
    assert with_unlocked_keys(settings).api_key is None
    missing = runner.invoke(app, ["keys", "remove", "binance", *db], env=env)
    assert missing.exit_code == 1 and "no keys of binance in the OS keyring" in missing.output
    for output in (stored.output, listed.output):
        assert KEY not in output and SECRET not in output
    with Store.open(db_path) as store:
        ops = [json.loads(a)["op"] for a in store.audit.frame()["after"]]
    assert ops == ["remove", "set"]


def test_without_a_keyring_backend_the_key_file_is_named(tmp_path: Path) -> None:
    before = keyring.get_keyring()
    keyring.set_keyring(keyring.backends.fail.Keyring())
    try:
        settings = Settings(exchange="binance", key_store="keyring")
        with pytest.raises(KeyFileError, match=r"no OS keyring backend.*WORKBENCH_KEY_STORE=file"):
            with_unlocked_keys(settings)
        refused = CliRunner().invoke(app, ["keys", "list"], env={"WORKBENCH_KEY_STORE": "keyring"})
        assert refused.exit_code == 1 and "no OS keyring backend" in refused.output
    finally:
        keyring.set_keyring(before)
