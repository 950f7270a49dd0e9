"""`workbench doctor`: a deployment's settings checked, each problem with how to fix it.

Every check gives a `Check`: its name, whether it passed, what it found and (when it did not
pass) what to do. `warn` marks what is allowed but worth knowing (auth off on 127.0.0.1,
paper trading without keys); anything else that did not pass is a problem, and the command
exits non-zero.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import shutil
import socket
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from workbench.settings import Settings

MIN_SECRET = 32
MAX_SKEW_MS = 1000.0


@dataclass(frozen=True)
class Check:
    """One thing checked: ok, or what is wrong and how to fix it."""

    name: str
    ok: bool
    found: str
    fix: str = ""
    warn: bool = False

    @property
    def problem(self) -> bool:
        return not self.ok and not self.warn


def check_auth(settings: Settings) -> list[Check]:
    """Login on for `serve` (the default), and a cookie secret long enough to sign with."""
    auth = settings.auth if settings.auth is not None else True
    if not auth:
        return [
            Check(
                "auth",
                False,
                "login is off (WORKBENCH_AUTH=false)",
                "fine on 127.0.0.1 only; `workbench serve` on any other address refuses it",
                warn=True,
            )
        ]
    secret = settings.cookie_secret.get_secret_value() if settings.cookie_secret else ""
    if len(secret) < MIN_SECRET:
        state = "too short" if secret else "unset"
        return [
            Check("auth", True, "login required"),
            Check(
                "cookie secret",
                False,
                f"WORKBENCH_COOKIE_SECRET is {state}",
                f"set it to at least {MIN_SECRET} random characters: python -c 'import "
                "secrets; print(secrets.token_urlsafe(32))'",
            ),
        ]
    return [Check("auth", True, "login required"), Check("cookie secret", True, "set")]


def check_keys(settings: Settings) -> Check:
    """The exchange's keys: from the environment, or a key file the passphrase unlocks."""
    from workbench.auth.keys import KeyFile, KeyFileError, with_unlocked_keys

    if settings.exchange == "local":
        return Check("exchange keys", True, "local exchange: it uses its own key pair")
    if settings.api_key and settings.api_secret:
        return Check("exchange keys", True, f"{settings.exchange}: from the environment")
    keyring = settings.key_store == "keyring"
    try:
        if keyring:
            from workbench.auth.os_keyring import OsKeyring

            stored = settings.exchange in OsKeyring().exchanges()
        else:
            stored = settings.exchange in KeyFile(settings.key_file).exchanges()
        if not stored:
            return Check(
                "exchange keys",
                False,
                f"no keys for {settings.exchange}",
                f"paper trading needs none; for --real: workbench keys set {settings.exchange}",
                warn=True,
            )
        unlocked = with_unlocked_keys(settings)
    except KeyFileError as exc:
        return Check(
            "exchange keys",
            False,
            str(exc),
            "use the key file (WORKBENCH_KEY_STORE=file)"
            if keyring
            else "set WORKBENCH_KEYS_PASSPHRASE to the key file's passphrase",
        )
    if not (unlocked.api_key and unlocked.api_secret):
        return Check(
            "exchange keys",
            False,
            "the key file gave no keys",
            f"workbench keys set {settings.exchange}",
        )
    where = "the OS keyring" if keyring else settings.key_file
    return Check("exchange keys", True, f"{settings.exchange}: unlocked from {where}")


def check_database(settings: Settings) -> Check:
    """The database answers and is at this workbench's schema version."""
    from workbench.store import SchemaTooNew, Store, StoreError, StoreLocked
    from workbench.store.migrations import current_version, latest_version
    from workbench.store.sharing import _alive, _read_owner, owner_file
    from workbench.store.target import PostgresTarget, mask_url, parse_target

    where = mask_url(str(settings.db))
    try:
        target = parse_target(settings.db)
        if not isinstance(target, PostgresTarget) and not Path(target).exists():
            return Check(
                "database",
                False,
                f"{where} does not exist",
                "workbench db migrate (or workbench data import) creates it",
            )
        with Store.open(settings.db, read_only=True, wait_s=0.5, migrate_schema=False) as store:
            version = current_version(store.db)
    except StoreLocked:
        served = _read_owner(owner_file(settings.db))
        if served is not None and _alive(int(str(served["pid"]))):
            return Check(
                "database",
                True,
                f"{where} is held by a running engine (pid {served['pid']}), which serves reads",
            )
        return Check(
            "database",
            False,
            f"{where} is locked by a process that serves no reads",
            "find it (the error names its pid) and stop it",
        )
    except SchemaTooNew as exc:
        return Check("database", False, str(exc), "upgrade the workbench")
    except StoreError as exc:
        return Check("database", False, str(exc), "fix WORKBENCH_DB or the server it names")
    latest = latest_version()
    if version < latest:
        return Check(
            "database",
            False,
            f"{where} is at schema version {version} of {latest}",
            "workbench db migrate",
        )
    return Check("database", True, f"{where}, schema version {version}")


async def _exchange_time(settings: Settings, timeout_s: float) -> tuple[float, float]:
    from workbench.venue import connect

    port = settings.local_port if settings.exchange == "local" else None
    clients = connect(settings.exchange, settings=settings, port=port)
    try:
        sent = time.time()
        async with asyncio.timeout(timeout_s):
            server_ms = await clients.rest.fetch_time()
        back = time.time()
    finally:
        await clients.close()
    return float(server_ms) - (sent + back) / 2 * 1000, (back - sent) * 1000


def _listening(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1.0):
            return True
    except OSError:
        return False


def check_exchange(settings: Settings, timeout_s: float = 10.0) -> list[Check]:
    """The exchange answers, and its clock agrees with ours."""
    if settings.exchange == "local" and not _listening(settings.local_host, settings.local_port):
        return [
            Check(
                "exchange",
                True,
                f"local exchange not running on {settings.local_host}:"
                f"{settings.local_port}: `live run` and `serve` start their own",
            )
        ]
    try:
        skew_ms, round_trip_ms = asyncio.run(_exchange_time(settings, timeout_s))
    except Exception as exc:
        return [
            Check(
                "exchange",
                False,
                f"{settings.exchange} does not answer: {type(exc).__name__}: {str(exc)[:200]}",
                "check the network, WORKBENCH_EXCHANGE and WORKBENCH_SANDBOX",
            )
        ]
    found = [Check("exchange", True, f"{settings.exchange} answers in {round_trip_ms:.0f} ms")]
    if abs(skew_ms) > MAX_SKEW_MS:
        found.append(
            Check(
                "clock skew",
                False,
                f"this machine's clock is {-skew_ms:+.0f} ms off {settings.exchange}'s",
                "enable time sync (chrony or "
                "systemd-timesyncd); signed requests fail past recvWindow",
            )
        )
    else:
        found.append(Check("clock skew", True, f"{skew_ms:+.0f} ms"))
    return found


def check_disk(settings: Settings, min_free_gb: float) -> Check:
    """Free space where the database (or, on PostgreSQL, the backups) live."""
    from workbench.store.target import PostgresTarget, parse_target

    target = parse_target(settings.db)
    folder = (
        Path(settings.backup_dir) if isinstance(target, PostgresTarget) else Path(target).parent
    )
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    usage = shutil.disk_usage(folder)
    free_gb = usage.free / 1e9
    if free_gb < min_free_gb:
        return Check(
            "disk space",
            False,
            f"{free_gb:.1f} GB free in {folder}",
            f"free at least {min_free_gb:g} GB (old backups, logs)",
        )
    return Check("disk space", True, f"{free_gb:.1f} GB free in {folder}")


def check_alerts(settings: Settings, send_test: bool) -> list[Check]:
    """Alert URLs apprise can use, and (with `send_test`) that each takes a test message."""
    from workbench.ops.notify import AlertSinkError, masked_url, sink_of

    if not settings.alert_urls:
        return [
            Check(
                "alert sinks",
                False,
                "none (WORKBENCH_ALERT_URLS is empty): nobody is told when a strategy fails",
                "set WORKBENCH_ALERT_URLS to apprise URLs, e.g. tgram://BOT_TOKEN/CHAT_ID",
            )
        ]
    found = []
    for url in settings.alert_urls:
        name = masked_url(url)
        try:
            sink = sink_of(url)
        except AlertSinkError as exc:
            found.append(Check(f"alert sink {name}", False, str(exc), "fix the URL"))
            continue
        if not send_test:
            found.append(Check(f"alert sink {name}", True, "parsed (not contacted)"))
        elif sink.notify(title="workbench doctor: test alert", body="Alerts reach you."):
            found.append(Check(f"alert sink {name}", True, "took a test message"))
        else:
            found.append(
                Check(
                    f"alert sink {name}",
                    False,
                    "did not take a test message",
                    "check the URL's host, token and the network",
                )
            )
    return found


def check_backups(settings: Settings, now: dt.datetime | None = None) -> Check:
    """A backup newer than `backup_max_age_h` in `backup_dir`."""
    from workbench.ops.backup import newest_backup

    newest = newest_backup(settings.backup_dir) if Path(settings.backup_dir).is_dir() else None
    if newest is None:
        return Check(
            "backups",
            False,
            f"no backup in {settings.backup_dir}",
            "workbench backup (daily, from cron or a systemd timer: deploy/)",
        )
    now = now or dt.datetime.now()
    age_h = (now.timestamp() - newest.stat().st_mtime) / 3600
    if age_h > settings.backup_max_age_h:
        return Check(
            "backups",
            False,
            f"newest backup {newest.name} is {age_h:.0f} h old",
            f"workbench backup; check the timer (older than {settings.backup_max_age_h:g} h)",
        )
    return Check("backups", True, f"{newest.name}, {age_h:.1f} h old")


def check_metrics(settings: Settings) -> Check:
    if settings.metrics_token is None:
        return Check(
            "metrics token",
            False,
            "unset: /metrics is served to this machine only",
            "set WORKBENCH_METRICS_TOKEN to let a Prometheus elsewhere scrape",
            warn=True,
        )
    return Check("metrics token", True, "set: /metrics also with the bearer token")


def run_checks(
    settings: Settings, *, send_test: bool = True, min_free_gb: float = 1.0
) -> list[Check]:
    """Give every check of a deployment's settings, in the order they are printed."""
    checks: list[Check] = []
    checks += check_auth(settings)
    checks.append(check_keys(settings))
    checks.append(check_database(settings))
    checks += check_exchange(settings)
    checks.append(check_disk(settings, min_free_gb))
    checks += check_alerts(settings, send_test)
    checks.append(check_backups(settings))
    checks.append(check_metrics(settings))
    return checks


def as_json(checks: list[Check]) -> list[dict[str, Any]]:
    return [dict(c.__dict__, problem=c.problem) for c in checks]
