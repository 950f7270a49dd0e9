"""A planted key and secret never show: not in `config show`, a log line, a traceback, the
text of a forced exchange error, the database file, or a live run's output."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import traceback
from pathlib import Path

import ccxt
import pytest
from shipped import CANDLE_DIR, live_run
from typer.testing import CliRunner

from workbench.auth import redact
from workbench.cli import app
from workbench.localexchange import LocalExchange, load_csv_history
from workbench.settings import Settings
from workbench.venue import connect

CANARY_KEY = "canaryKEY-7f3a9c1e5b2d4a6f8e0c"
CANARY_SECRET = "canarySECRET-e4b1d8a2c6f09371ab5d"
CANARIES = (CANARY_KEY, CANARY_SECRET)
ENV = {
    "WORKBENCH_API_KEY": CANARY_KEY,
    "WORKBENCH_API_SECRET": CANARY_SECRET,
    "WORKBENCH_COOKIE_SECRET": "canaryCOOKIE-0b9e8d7c6b5a49382716",
    "WORKBENCH_KEYS_PASSPHRASE": "canaryPASS-1a2b3c4d5e6f7a8b9c0d",
}


def assert_clean(text: str | bytes, where: str) -> None:
    for canary in (*CANARIES, ENV["WORKBENCH_COOKIE_SECRET"], ENV["WORKBENCH_KEYS_PASSPHRASE"]):
        needle = canary.encode() if isinstance(text, bytes) else canary
        assert needle not in text, f"{canary[:12]}... in {where}"


def test_config_show_masks_every_secret() -> None:
    runner = CliRunner()
    table = runner.invoke(app, ["config", "show"], env=ENV)
    shown = runner.invoke(app, ["config", "show", "--json"], env=ENV)
    assert table.exit_code == shown.exit_code == 0
    assert_clean(table.output, "config show")
    assert_clean(shown.output, "config show --json")
    assert json.loads(shown.output)["api_key"] == "**********"


def test_log_lines_and_tracebacks_are_redacted(caplog: pytest.LogCaptureFixture) -> None:
    redact.install(redact.settings_secrets(Settings(**{k[10:].lower(): v for k, v in ENV.items()})))
    log = logging.getLogger("workbench.test.canary")
    with caplog.at_level(logging.INFO):
        log.warning("connecting with key %s and secret %r", CANARY_KEY, CANARY_SECRET)
        try:
            raise RuntimeError(f"signature with {CANARY_SECRET} failed")
        except RuntimeError:
            log.exception("the call failed")
    assert_clean(caplog.text, "captured log lines")
    assert caplog.text.count(redact.MASK) == 3
    assert "Traceback" in caplog.text and "the call failed" in caplog.text
    uncaught = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys; from workbench.auth import redact; redact.install(sys.argv[1:]); "
            "raise RuntimeError('bad key ' + sys.argv[1])",
            *CANARIES,
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert "RuntimeError: bad key [redacted]" in uncaught.stderr
    assert_clean(uncaught.stderr, "an uncaught traceback")


async def test_forced_exchange_errors_carry_no_key(caplog: pytest.LogCaptureFixture) -> None:
    redact.install(CANARIES)
    history = load_csv_history(CANDLE_DIR, ["ETH/BTC"])
    log = logging.getLogger("workbench.test.canary")
    texts: list[str] = []
    async with LocalExchange(
        history, speed=600, api_key=CANARY_KEY, api_secret=CANARY_SECRET
    ) as server:
        wrong = connect("local", port=server.port, api_key=CANARY_KEY, secret="wrong-secret-123")
        right = connect("local", port=server.port, api_key=CANARY_KEY, secret=CANARY_SECRET)
        try:
            await right.load_markets()
            attempts = [
                (lambda: wrong.rest.fetch_balance(), ccxt.AuthenticationError),
                (
                    lambda: right.rest.create_order("ETH/BTC", "market", "buy", 10_000),
                    ccxt.InsufficientFunds,
                ),
                (lambda: right.rest.cancel_order("999999", "ETH/BTC"), ccxt.OrderNotFound),
                (lambda: right.rest.fetch_order("999999", "ETH/BTC"), ccxt.OrderNotFound),
            ]
            for call, kind in attempts:
                with caplog.at_level(logging.INFO), pytest.raises(kind) as raised:
                    await call()
                texts.append(str(raised.value))
                texts.append("".join(traceback.format_exception(raised.value)))
                log.error("exchange call failed: %s", raised.value, exc_info=raised.value)
        finally:
            await wrong.close()
            await right.close()
    for n, text in enumerate(texts):
        assert_clean(text, f"forced error {n}")
    assert_clean(caplog.text, "the error log")


def test_a_live_run_leaves_no_key_in_its_output_or_database(tmp_path: Path) -> None:
    db = tmp_path / "canary.duckdb"
    run = subprocess.run(
        live_run("--bars", "3"),
        capture_output=True,
        text=True,
        timeout=240,
        env={**os.environ, **ENV, "WORKBENCH_DB": str(db)},
    )
    assert run.returncode == 0, run.stderr[-2000:]
    assert "running" in run.stdout
    assert_clean(run.stdout + run.stderr, "the live run's output")
    for path in tmp_path.iterdir():
        assert_clean(path.read_bytes(), path.name)
