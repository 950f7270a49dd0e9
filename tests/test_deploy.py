"""The deployment files are true to the code: every command line they run parses with the
real CLI, every WORKBENCH_ variable they set is a setting, ports and routes agree between
the unit, the container, compose and the proxy."""

from __future__ import annotations

import configparser
import re
import shlex
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import typer
import yaml
from shipped import ROOT

from workbench.cli import app
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
    verify = shutil.which("systemd-analyze")
    if verify:
        for path in (DEPLOY / "systemd").glob("*.service"):
            result = subprocess.run([verify, "verify", str(path)], capture_output=True, text=True)
            assert "Unknown key" not in result.stderr, result.stderr


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
