"""`workbench doctor` on a good deployment and on broken ones: each problem named with its
fix, exit status 1. The exchange is a real local exchange on a port; alert sinks are a local
receiver (and a port nobody listens on)."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest
from alert_receiver import Receiver
from pydantic import SecretStr
from typer.testing import CliRunner

from workbench.auth import keys as key_module
from workbench.auth.keys import ExchangeKeys, KeyFile
from workbench.cli import app
from workbench.localexchange import LocalExchange
from workbench.localexchange.faults import FaultKind
from workbench.ops.doctor import check_keys
from workbench.settings import Settings
from workbench.store import Store
from workbench.store.migrations import migrate

SECRET = "c" * 40


@pytest.fixture(autouse=True)
def light_scrypt(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(key_module, "SCRYPT", {"n": 2**10, "r": 8, "p": 1})  # new files only


@pytest.fixture
def deployment(tmp_path: Path, receiver: Receiver) -> Iterator[dict[str, str]]:
    """A good deployment's environment: migrated database, fresh backup, cookie secret, a
    reachable alert sink, the local exchange at the settings' port (started by the test)."""
    db = tmp_path / "prod.duckdb"
    Store.open(db).close()
    backups = tmp_path / "backups"
    backups.mkdir()
    (backups / "workbench-20240101-000000.duckdb").write_bytes(b"x")
    env = {
        "WORKBENCH_DB": str(db),
        "WORKBENCH_COOKIE_SECRET": SECRET,
        "WORKBENCH_ALERT_URLS": receiver.url,
        "WORKBENCH_BACKUP_DIR": str(backups),
        "WORKBENCH_METRICS_TOKEN": "t" * 32,
        "WORKBENCH_KEY_FILE": str(tmp_path / "keys.json"),
    }
    yield env


def doctor(env: dict[str, str], *args: str) -> tuple[int, list[dict[str, object]]]:
    saved = dict(os.environ)
    os.environ.update(env)
    try:
        result = CliRunner().invoke(app, ["doctor", "--json", *args])
    finally:
        os.environ.clear()
        os.environ.update(saved)
    return result.exit_code, json.loads(result.stdout)


def failing(checks: list[dict[str, object]]) -> dict[str, str]:
    return {str(c["name"]): f"{c['found']} / {c.get('fix', '')}" for c in checks if c["problem"]}


async def test_a_good_deployment_passes_every_check(
    deployment: dict[str, str], receiver: Receiver, eth: pd.DataFrame
) -> None:
    async with LocalExchange({"ETH/BTC": eth.iloc[:600]}, speed=60) as server:
        env = {**deployment, "WORKBENCH_LOCAL_PORT": str(server.port)}
        code, checks = await _in_thread(doctor, env)
    assert failing(checks) == {}
    assert code == 0
    names = [c["name"] for c in checks]
    assert {"auth", "cookie secret", "exchange keys", "database", "exchange", "clock skew",
            "disk space", "backups", "metrics token"} <= set(names)  # fmt: skip
    assert receiver.wait_for(1) and "test alert" in str(receiver.posts[0]["title"])


async def _in_thread(fn: object, *args: object) -> tuple[int, list[dict[str, object]]]:
    import asyncio

    return await asyncio.to_thread(fn, *args)  # type: ignore[arg-type]


async def test_each_broken_setting_is_named_with_its_fix(
    deployment: dict[str, str], tmp_path: Path, eth: pd.DataFrame
) -> None:
    old = tmp_path / "old.duckdb"
    with Store.open(old, migrate_schema=False) as store:
        migrate(store.db, target=3)  # a database the upgrade has not migrated
    keys = ExchangeKeys(SecretStr("k" * 20), SecretStr("s" * 40))
    KeyFile(Path(deployment["WORKBENCH_KEY_FILE"])).set("binance", keys, "right")
    backups = Path(deployment["WORKBENCH_BACKUP_DIR"])
    os.utime(backups / "workbench-20240101-000000.duckdb", (0, 0))  # from 1970
    async with LocalExchange({"ETH/BTC": eth.iloc[:600]}, speed=60) as server:
        await server.inject_fault(FaultKind.CLOCK_SKEW, duration_s=60)
        env = {
            **deployment,
            "WORKBENCH_LOCAL_PORT": str(server.port),
            "WORKBENCH_COOKIE_SECRET": "short",
            "WORKBENCH_DB": str(old),
            "WORKBENCH_ALERT_URLS": "json://127.0.0.1:9/nobody,nonsense://x",
        }
        code, checks = await _in_thread(doctor, env, "--min-free-gb", "1e9")
        assert code == 1
        found = failing(checks)
        assert "too short" in found["cookie secret"] and "token_urlsafe" in found["cookie secret"]
        assert "schema version 3 of" in found["database"] and "db migrate" in found["database"]
        assert "clock is" in found["clock skew"] and "time sync" in found["clock skew"]
        assert "GB free" in found["disk space"]
        assert "h old" in found["backups"]
        assert "did not take a test message" in found["alert sink json://…"]
        assert "not a URL apprise knows" in found["alert sink nonsense://…"]
    # Keys for a real exchange (checked alone: the test reaches no real exchange).
    keyfile = Path(deployment["WORKBENCH_KEY_FILE"])
    wrong = check_keys(Settings(exchange="binance", key_file=keyfile, keys_passphrase="wrong"))
    assert wrong.problem and "passphrase" in wrong.fix
    right = check_keys(Settings(exchange="binance", key_file=keyfile, keys_passphrase="right"))
    assert right.ok and "unlocked" in right.found
    missing = check_keys(Settings(exchange="binance", key_file=keyfile))
    assert missing.problem and "WORKBENCH_KEYS_PASSPHRASE" in missing.found


def test_settings_that_do_not_load_are_reported(deployment: dict[str, str]) -> None:
    code, checks = doctor({**deployment, "WORKBENCH_LOG_FORMAT": "xml"})
    assert code == 1
    assert "log_format" in str(checks[0]["found"])


def test_no_database_and_no_backups_fail(tmp_path: Path) -> None:
    env = {
        "WORKBENCH_DB": str(tmp_path / "none.duckdb"),
        "WORKBENCH_COOKIE_SECRET": SECRET,
        "WORKBENCH_BACKUP_DIR": str(tmp_path / "nothing"),
    }
    code, checks = doctor(env, "--no-send-test")
    found = failing(checks)
    assert code == 1
    assert "does not exist" in found["database"]
    assert "no backup" in found["backups"]
    assert "WORKBENCH_ALERT_URLS" in found["alert sinks"]
