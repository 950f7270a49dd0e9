"""The project's own files: environment.yml in step with pyproject.toml, top-level layout."""

from __future__ import annotations

import re
import subprocess
import sys
import tomllib
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
# conda-forge names that differ from PyPI's
CONDA_NAMES = {"duckdb": "python-duckdb"}


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
