"""Notebooks run under nbval against a scratch database, never the user's."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest


def pytest_configure(config: pytest.Config) -> None:
    # Set before nbval starts the kernels, which inherit the environment.
    scratch = Path(tempfile.mkdtemp(prefix="workbench-notebooks-"))
    os.environ["WORKBENCH_DB"] = str(scratch / "workbench.duckdb")
    os.environ["WORKBENCH_CONFIG"] = str(scratch / "no-such.toml")
