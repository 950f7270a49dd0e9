"""The deployment files are true to the code: every command line they run parses with the
real CLI, every WORKBENCH_ variable they set is a setting, ports and routes agree between
the unit, the container, compose and the proxy."""

from __future__ import annotations

import configparser
import re
import shlex
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import pytest
import typer
import yaml
from shipped import ROOT

from workbench.cli import app
from workbench.cli.serve import APP, RESEARCH
from workbench.data.shipped import shipped_files
from workbench.ops.panel_routes import ROUTES
from workbench.risk.settings import RiskSettings
from workbench.settings import Settings

DEPLOY = ROOT / "deploy"
DOCS = [ROOT / "docs" / "deploy.md", ROOT / "README.md"]
# Read by the workbench but not settings: the config file's path, the demo's strategy count,
# the one-off variables of `workbench keys set`.
NOT_SETTINGS = {
    "WORKBENCH_CONFIG",
    "WORKBENCH_DEMO_STRATEGIES",
    "WORKBENCH_NEW_API_KEY",
    "WORKBENCH_NEW_API_SECRET",
}
SETTINGS = {f"WORKBENCH_{name.upper()}" for name in Settings.model_fields} | {
    f"WORKBENCH_RISK_{name.upper()}" for name in RiskSettings.model_fields
}


def parse(argv: list[str]) -> Any:
    """Parse a `workbench ...` command line with the real CLI (options checked, not run)."""
    assert Path(argv[0]).name == "workbench", argv
    command: Any = typer.main.get_command(app)
    ctx = command.make_context("workbench", list(argv[1:]), resilient_parsing=False)
    while hasattr(command, "get_command"):  # a group (typer vendors its own click)
        # A group keeps the subcommand and what follows it (click 8.2+: `_protected_args`).
        remaining = [*getattr(ctx, "_protected_args", []), *ctx.args]
        if not remaining:
            break
        name, *rest = remaining
        sub = command.get_command(ctx, name)
        assert sub is not None, f"no command {name!r} in {argv}"
        ctx = sub.make_context(name, rest, parent=ctx)
        command = sub
    return ctx


def units() -> dict[str, configparser.ConfigParser]:
    found = {}
    for path in sorted((DEPLOY / "systemd").glob("*.service")):
        parser = configparser.ConfigParser(strict=False, interpolation=None)
        parser.optionxform = str  # type: ignore[assignment,method-assign]
        parser.read(path)
        found[path.name] = parser
    return found


def commands() -> list[list[str]]:
    found = [shlex.split(u["Service"]["ExecStart"]) for u in units().values()]
    compose = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
    found.append(compose["services"]["workbench"]["command"])
    cmd = re.search(r"^CMD (\[.*\])$", (DEPLOY / "Containerfile").read_text(), re.M)
    assert cmd is not None
    found.append(yaml.safe_load(cmd.group(1)))
    return found


def test_every_command_line_parses_with_the_cli() -> None:
    lines = commands()
    assert len(lines) >= 5
    for argv in lines:
        parse(argv)  # raises on an unknown option or command
    with pytest.raises(Exception, match="No such option"):
        parse(["workbench", "serve", "--no-such-option"])  # the check can fail


def test_every_workbench_variable_named_is_a_setting() -> None:
    texts = [p.read_text() for p in DEPLOY.rglob("*") if p.is_file()]
    texts += [p.read_text() for p in DOCS]
    named = set()
    for text in texts:
        named |= set(re.findall(r"\bWORKBENCH_[A-Z0-9_]+\b", text))
    unknown = sorted(named - SETTINGS - NOT_SETTINGS)
    assert unknown == [], f"not settings: {unknown}"
    example = (DEPLOY / "workbench.env.example").read_text()
    values = dict(
        line.split("=", 1) for line in example.splitlines() if line.startswith("WORKBENCH_")
    )
    Settings(**{k.removeprefix("WORKBENCH_").lower(): v for k, v in values.items()})


def test_units_restart_on_failure_and_use_the_watchdog() -> None:
    for name, unit in units().items():
        service = unit["Service"]
        if service.get("Type") == "oneshot":
            continue
        assert service["Type"] == "notify", name
        assert service["Restart"] == "on-failure", name
        assert int(service["WatchdogSec"]) > 0, name
    serve = units()["workbench.service"]["Service"]
    assert serve["NotifyAccess"] == "all"  # panel serve, a child of `workbench serve`, pings


def verify_units(folder: Path) -> subprocess.CompletedProcess[str]:
    verify = shutil.which("systemd-analyze")
    if verify is None:
        pytest.fail("systemd-analyze is missing: `make test` installs Debian's systemd")
    paths = sorted(str(p) for p in folder.iterdir())
    return subprocess.run([verify, "verify", *paths], capture_output=True, text=True, timeout=60)


def test_units_pass_systemd_analyze_verify(tmp_path: Path) -> None:
    # As installed: the unit's executable is this checkout's (docs/deploy.md puts the venv
    # at /opt/workbench/.venv); nothing else is changed.
    executable = str(Path(sys.executable).with_name("workbench"))
    for path in (DEPLOY / "systemd").iterdir():
        text = path.read_text().replace("/opt/workbench/.venv/bin/workbench", executable)
        (tmp_path / path.name).write_text(text)
    result = verify_units(tmp_path)
    assert (result.returncode, result.stderr) == (0, ""), result.stderr
    broken = tmp_path / "workbench.service"
    broken.write_text(broken.read_text().replace("Restart=", "Restrat="))
    assert "Unknown key" in verify_units(tmp_path).stderr  # the check can fail


def test_the_container_and_compose_name_only_what_exists() -> None:
    """The container file and compose cannot be built here (no Docker engine): every path,
    program and setting they name must exist in the repository and the CLI."""
    container = (DEPLOY / "Containerfile").read_text()
    for source in re.findall(r"^COPY (?:--\S+ )*(\S+) ", container, re.M):
        assert (ROOT / source).exists(), source
    assert "pip install --no-cache-dir -e ." in container and (ROOT / "pyproject.toml").exists()
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    assert "workbench" in scripts  # the CMD's and compose's program
    workdir = re.search(r"^WORKDIR (\S+)$", container, re.M)
    assert workdir is not None
    # `workbench serve` serves apps/ and the shipped candles from the clone it was copied from.
    assert APP.is_file() and RESEARCH.is_file() and shipped_files()
    backups = re.search(r"WORKBENCH_BACKUP_DIR=(\S+)", container)
    assert backups is not None and f"mkdir -p {backups.group(1)}" in container
    compose = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
    build = compose["services"]["workbench"]["build"]
    context = (DEPLOY / build["context"]).resolve()
    assert context == ROOT and (context / build["dockerfile"]).is_file()
    assert compose["services"]["workbench"]["env_file"] == ".env"
    assert "cp deploy/workbench.env.example deploy/.env" in (DEPLOY / "compose.yaml").read_text()
    assert (DEPLOY / "workbench.env.example").is_file()
    for name, service in compose["services"].items():
        for volume in service.get("volumes", []):
            source, target = volume.split(":")[:2]
            if source.startswith("."):
                assert (DEPLOY / source).is_file(), (name, source)
            else:
                assert source in compose["volumes"], (name, source)
            if name == "workbench":
                assert target.startswith(workdir.group(1) + "/"), target
    env = compose["services"]["workbench"]["environment"]
    assert env["PGPASSWORD"] == "${POSTGRES_PASSWORD}"  # pg_dump's, for `workbench backup`
    assert compose["services"]["workbench"]["depends_on"]["db"]["condition"] == "service_healthy"


def test_ports_routes_and_origins_agree() -> None:
    served = parse(commands()[-1])  # the container's `workbench serve`
    port = served.params["port"]
    compose = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
    workbench = compose["services"]["workbench"]
    assert parse(workbench["command"]).params["port"] == port
    assert f"127.0.0.1:{port}/ready" in " ".join(workbench["healthcheck"]["test"])
    assert workbench["environment"]["WORKBENCH_DB"].startswith("postgresql://")
    assert "@db:5432/" in workbench["environment"]["WORKBENCH_DB"] and "db" in compose["services"]
    assert f"127.0.0.1:{port}/health" in (DEPLOY / "Containerfile").read_text()
    caddy = (DEPLOY / "Caddyfile").read_text()
    assert f"reverse_proxy workbench:{port}" in caddy
    host = re.search(r"^(\S+) \{", caddy, re.M)
    assert host is not None
    assert served.params["allow_origin"] == [f"{host.group(1)}:443"]
    assert served.params["use_xheaders"] is True
    paths = {path for path, _handler in ROUTES}
    assert paths == {r"/health", r"/ready", r"/metrics"}
    assert "/metrics" in caddy
