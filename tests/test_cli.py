"""The `workbench` command: help everywhere, settings shown with secrets masked, data verbs."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from shipped import CANDLE_FILES, ROOT
from typer.main import get_command
from typer.testing import CliRunner

from workbench.cli import app


def run(
    *args: str, env: dict[str, str] | None = None, cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "workbench", *args],
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        cwd=cwd,
        timeout=120,
    )


def command_paths() -> list[list[str]]:
    """Every command and subcommand of the CLI, as argument lists."""
    paths: list[list[str]] = []

    def walk(command: object, prefix: list[str]) -> None:
        paths.append(prefix)
        for name, sub in getattr(command, "commands", {}).items():
            walk(sub, [*prefix, name])

    walk(get_command(app), [])
    return paths


@pytest.mark.parametrize("path", command_paths(), ids=lambda p: " ".join(p) or "workbench")
def test_every_subcommand_has_help(path: list[str]) -> None:
    result = CliRunner().invoke(app, [*path, "--help"])
    assert result.exit_code == 0, result.output
    assert "Usage:" in result.output


def test_the_console_script_and_the_module_both_run() -> None:
    script = Path(sys.executable).parent / "workbench"
    for command in ([str(script), "--help"], [sys.executable, "-m", "workbench", "--help"]):
        result = subprocess.run(command, capture_output=True, text=True, timeout=60)
        assert result.returncode == 0 and "data" in result.stdout


def test_config_show_masks_secrets(tmp_path: Path) -> None:
    env = {"WORKBENCH_API_KEY": "k-visible-nowhere", "WORKBENCH_API_SECRET": "s-visible-nowhere"}
    for args in (["config", "show"], ["config", "show", "--json"]):
        result = run(*args, env=env, cwd=tmp_path)
        assert result.returncode == 0, result.stderr
        assert "visible-nowhere" not in result.stdout + result.stderr
    shown = json.loads(run("config", "show", "--json", env=env, cwd=tmp_path).stdout)
    assert shown["api_key"] == "**********"


def show_settings(env: dict[str, str], cwd: Path) -> dict[str, object]:
    """Run `workbench config show --json` with only these WORKBENCH_ variables set."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith("WORKBENCH_")}
    result = subprocess.run(
        [sys.executable, "-m", "workbench", "config", "show", "--json"],
        capture_output=True,
        text=True,
        env={**clean, **env},
        cwd=cwd,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_settings_come_from_env_over_toml_over_defaults(tmp_path: Path) -> None:
    (tmp_path / "workbench.toml").write_text('db = "from-file.duckdb"\nexchange = "kraken"\n')
    shown = show_settings({"WORKBENCH_EXCHANGE": "binance"}, cwd=tmp_path)
    assert (shown["db"], shown["exchange"]) == ("from-file.duckdb", "binance")
    elsewhere = tmp_path / "elsewhere.toml"
    elsewhere.write_text('exchange = "kraken"\n')
    shown = show_settings({"WORKBENCH_CONFIG": str(elsewhere)}, cwd=tmp_path.parent)
    assert shown["exchange"] == "kraken"
    defaults = show_settings({}, cwd=tmp_path.parent)
    assert defaults["db"] == str(ROOT / "data" / "workbench.duckdb")
    assert defaults["exchange"] == "local"


def test_data_import_then_list(tmp_path: Path) -> None:
    db = tmp_path / "w.duckdb"
    result = run("data", "import", "--db", str(db), *map(str, CANDLE_FILES[:2]))
    assert result.returncode == 0, result.stderr
    listed = json.loads(run("data", "list", "--db", str(db), "--json").stdout)
    assert {row["symbol"] for row in listed} == {"ADA/BTC", "DASH/BTC"}
    assert all(row["exchange"] == "local" for row in listed)


def test_data_import_of_a_bad_file_fails_and_names_the_line(tmp_path: Path) -> None:
    bad = tmp_path / "A_B-1m.csv"
    bad.write_text("time,open,high,low,close,volume\n2024-01-01,1,2,0.5,oops,1\n")
    db = tmp_path / "w.duckdb"
    result = run("data", "import", "--db", str(db), str(bad), str(CANDLE_FILES[0]))
    assert result.returncode == 1
    assert "line 2" in result.stdout and "oops" in result.stdout
    listed = json.loads(run("data", "list", "--db", str(db), "--json").stdout)
    assert [row["symbol"] for row in listed] == ["ADA/BTC"]


def test_data_list_without_a_database_says_what_to_do(tmp_path: Path) -> None:
    result = run("data", "list", "--db", str(tmp_path / "none.duckdb"))
    assert result.returncode == 1
    assert "workbench data import" in result.stderr
