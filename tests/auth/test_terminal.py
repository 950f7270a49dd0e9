"""The key file's passphrase typed at a terminal (a real pseudo-terminal, the command in its
own process): `keys set` and `live run` ask for it, a wrong one stops the run before anything
starts, and without a terminal or WORKBENCH_KEYS_PASSPHRASE they refuse, naming the setting."""

from __future__ import annotations

import os
import pty
import select
import subprocess
import sys
import termios
import time
from pathlib import Path

import pytest
from pydantic import SecretStr
from shipped import ROOT
from typer.testing import CliRunner

from workbench.auth.keys import ExchangeKeys, KeyFile
from workbench.cli import app

pytestmark = pytest.mark.slow
SPEC = ROOT / "data" / "strategies" / "sma_cross.json"
PASSPHRASE = "a long passphrase at the terminal"


def hidden_input(fd: int) -> None:
    """Wait until the terminal stops echoing: the prompt then reads a secret (typed sooner,
    it would be echoed, then flushed)."""
    deadline = time.monotonic() + 30
    while termios.tcgetattr(fd)[3] & termios.ECHO:
        assert time.monotonic() < deadline, "the prompt never turned the echo off"
        time.sleep(0.02)


def at_terminal(args: list[str], env: dict[str, str], answer: str | None) -> tuple[int, str]:
    """Run `workbench ARGS` on a new pseudo-terminal (its controlling terminal); type
    `answer` at the first hidden prompt; give the exit code and what the terminal showed."""
    pid, fd = pty.fork()
    if pid == 0:  # the child: the terminal is its stdin, stdout and stderr
        os.execve(sys.executable, [sys.executable, "-m", "workbench", *args], env)
    shown, deadline = b"", time.monotonic() + 90
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([fd], [], [], 0.5)
            if not ready:
                continue
            try:
                chunk = os.read(fd, 4096)
            except OSError:  # the child closed the terminal
                break
            if not chunk:
                break
            shown += chunk
            if answer is not None and shown.rstrip().endswith(b":"):  # a prompt is shown
                hidden_input(fd)
                os.write(fd, answer.encode() + b"\n")
                answer = None
        else:
            os.kill(pid, 9)
    finally:
        os.close(fd)
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status), shown.decode("utf-8", "replace")


@pytest.fixture
def sealed(tmp_path: Path) -> dict[str, str]:
    """A key file holding binance's keys, and an environment with neither a passphrase nor
    exchange keys."""
    keyfile = tmp_path / "keys.json"
    KeyFile(keyfile).set(
        "binance", ExchangeKeys(SecretStr("stored-key-1"), SecretStr("stored-secret-1")), PASSPHRASE
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("WORKBENCH_")}
    return {**env, "WORKBENCH_KEY_FILE": str(keyfile), "WORKBENCH_DB": str(tmp_path / "w.duckdb")}


def test_keys_set_asks_for_the_passphrase_at_a_terminal_and_never_shows_it(
    sealed: dict[str, str],
) -> None:
    env = {**sealed, "WORKBENCH_NEW_API_KEY": "kraken-k", "WORKBENCH_NEW_API_SECRET": "kraken-s"}
    code, shown = at_terminal(["keys", "set", "kraken"], env, PASSPHRASE)
    assert code == 0, shown
    assert "key file passphrase:" in shown and "stored keys of kraken" in shown
    assert PASSPHRASE not in shown  # not echoed
    stored = KeyFile(Path(sealed["WORKBENCH_KEY_FILE"])).get("kraken", PASSPHRASE)
    assert stored is not None and stored.api_secret.get_secret_value() == "kraken-s"


def test_a_live_run_asks_at_a_terminal_and_a_wrong_passphrase_starts_nothing(
    sealed: dict[str, str],
) -> None:
    run = ["live", "run", str(SPEC), "--exchange", "binance", "--paper"]
    code, shown = at_terminal(run, sealed, "not the passphrase")
    assert code == 1, shown
    assert f"passphrase of {sealed['WORKBENCH_KEY_FILE']}:" in shown
    assert "wrong passphrase" in shown and "not the passphrase" not in shown
    assert not Path(sealed["WORKBENCH_DB"]).exists()  # no store opened, nothing started
    # The right passphrase unlocks the keys, and the run goes on to open its database: here a
    # PostgreSQL address where no server listens (the run stops there, before any exchange).
    closed = {**sealed, "WORKBENCH_DB": "postgresql://nobody@127.0.0.1:9/none"}
    code, shown = at_terminal(run, closed, PASSPHRASE)
    assert code == 1, shown
    assert "wrong passphrase" not in shown and "holds keys for binance" not in shown
    assert "127.0.0.1:9" in shown, shown


def test_without_a_terminal_the_passphrase_setting_is_named(sealed: dict[str, str]) -> None:
    run = [sys.executable, "-m", "workbench", "live", "run", str(SPEC), "--exchange", "binance"]
    done = subprocess.run(run, env=sealed, stdin=subprocess.DEVNULL, capture_output=True, text=True)
    assert done.returncode == 1
    assert "WORKBENCH_KEYS_PASSPHRASE" in done.stderr + done.stdout
    assert not Path(sealed["WORKBENCH_DB"]).exists()
    # `keys set` likewise (CliRunner's input is no terminal), and the key file is unchanged.
    before = Path(sealed["WORKBENCH_KEY_FILE"]).read_bytes()
    env = {
        "WORKBENCH_NEW_API_KEY": "k",
        "WORKBENCH_NEW_API_SECRET": "s",
        "WORKBENCH_KEYS_PASSPHRASE": None,
        "WORKBENCH_KEY_FILE": sealed["WORKBENCH_KEY_FILE"],
        "WORKBENCH_DB": sealed["WORKBENCH_DB"],
    }
    setting = CliRunner().invoke(app, ["keys", "set", "kraken"], env=env)
    assert setting.exit_code == 1
    assert "no terminal to ask at; set WORKBENCH_KEYS_PASSPHRASE" in setting.output
    assert Path(sealed["WORKBENCH_KEY_FILE"]).read_bytes() == before
    # And a new password for a user: the setting for scripts is named, nobody is added.
    adding = CliRunner().invoke(
        app,
        ["users", "add", "bob", "--role", "viewer", "--db", sealed["WORKBENCH_DB"]],
        env={"WORKBENCH_NEW_PASSWORD": None},
    )
    assert adding.exit_code == 1
    assert "no terminal to ask at; set WORKBENCH_NEW_PASSWORD" in adding.output
    assert not Path(sealed["WORKBENCH_DB"]).exists()
