"""The project's own files: environment.yml in step with pyproject.toml, top-level layout,
`make lab`, and the docs the code points to."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import tomllib
import urllib.error
import urllib.request
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
# conda-forge names that differ from PyPI's
CONDA_NAMES = {"duckdb": "python-duckdb", "prometheus-client": "prometheus_client"}


def requirement(spec: str) -> tuple[str, str]:
    # Extras (psycopg[binary]) are pip's: conda-forge's package holds them already.
    match = re.match(r"^([A-Za-z0-9_.\-]+)(?:\[[^\]]*\])?\s*(.*)$", spec.strip())
    assert match, spec
    return match.group(1).lower(), match.group(2).replace(" ", "")


def test_environment_yml_lists_the_same_packages_as_pyproject() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    wanted = dict(requirement(s) for s in project["dependencies"])
    wanted |= dict(requirement(s) for s in project["optional-dependencies"]["dev"])
    wanted = {CONDA_NAMES.get(name, name): pins for name, pins in wanted.items()}
    environment = yaml.safe_load((ROOT / "environment.yml").read_text())
    entries = [s for s in environment["dependencies"] if isinstance(s, str) and s != "pip"]
    for section in environment["dependencies"]:
        if isinstance(section, dict):
            entries += section["pip"]  # what conda-forge lacks comes from PyPI
    listed = dict(requirement(s) for s in entries)
    python = listed.pop("python")
    assert python == project["requires-python"].replace(" ", "")
    assert listed == wanted


def test_top_level_layout_is_the_one_users_expect() -> None:
    for name in ("notebooks", "workbench", "data", "apps", "tests", "benchmarks", ".ci"):
        assert (ROOT / name).is_dir(), name
    for name in ("environment.yml", "pyproject.toml", "README.md", "Makefile", ".ci/run"):
        assert (ROOT / name).is_file(), name


def test_the_code_is_ruff_clean() -> None:
    ruff = [sys.executable, "-m", "ruff"]
    for args in (["check", "."], ["format", "--check", "."]):
        result = subprocess.run([*ruff, *args], cwd=ROOT, capture_output=True, text=True)
        assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.slow
def test_make_lab_serves_the_notebooks_on_localhost() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    lab = subprocess.Popen(
        ["make", "-s", "lab", f"LAB_PORT={port}"],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,  # make and jupyter stop together
    )
    try:
        url = None
        deadline = time.monotonic() + 120
        assert lab.stdout is not None
        while url is None and time.monotonic() < deadline:
            line = lab.stdout.readline()
            assert line or lab.poll() is None, "make lab exited"
            found = re.search(rf"http://127\.0\.0\.1:{port}/lab\?token=(\w+)", line)
            url = found and found.group(0)
        assert url is not None, "JupyterLab printed no URL"
        token = url.rsplit("=", 1)[1]
        contents = f"http://127.0.0.1:{port}/api/contents?token={token}"
        listed = None
        while listed is None:  # the URL is printed a moment before the port answers
            try:
                with urllib.request.urlopen(contents, timeout=30) as answer:
                    listed = {item["name"] for item in json.loads(answer.read())["content"]}
            except urllib.error.URLError:
                assert time.monotonic() < deadline and lab.poll() is None, "no answer"
                time.sleep(0.2)
        assert {p.name for p in (ROOT / "notebooks").glob("*.ipynb")} <= listed
    finally:
        if lab.poll() is None:
            os.killpg(lab.pid, signal.SIGTERM)
        lab.wait(timeout=30)


def test_docs_the_code_points_to_are_in_the_repository() -> None:
    mentioned = set()
    for path in (ROOT / "workbench").rglob("*.py"):
        text = path.read_text(encoding="utf-8")
        assert "DESIGN" not in text, f"{path} points to a design file outside the repository"
        mentioned |= set(re.findall(r"docs/[\w./-]+\.md", text))
    assert "docs/architecture.md" in mentioned
    for doc in mentioned:
        assert (ROOT / doc).is_file(), doc


def test_the_modules_the_architecture_page_names_exist() -> None:
    text = (ROOT / "docs" / "architecture.md").read_text(encoding="utf-8")
    named = set(re.findall(r"(?<![\w/.])((?:tests/)?[a-z_]+/[a-z_]+\.py)", text))
    assert len(named) > 20
    missing = [
        n for n in sorted(named) if not ((ROOT / n).is_file() or (ROOT / "workbench" / n).is_file())
    ]
    assert missing == []
