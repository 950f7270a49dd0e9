"""`workbench strategy check|schema` and the generated JSON Schema."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest
from strategy.helpers import ROOT, example_specs
from typer.testing import CliRunner

from workbench.cli.strategy import app
from workbench.strategy.schema import strategy_schema

runner = CliRunner()
SCHEMA_FILE = ROOT / "data" / "strategy.schema.json"


def test_check_accepts_the_examples() -> None:
    result = runner.invoke(app, ["check", *map(str, example_specs())])
    assert result.exit_code == 0, result.output
    assert result.output.count("✓") == len(example_specs())


def test_check_prints_every_problem_and_exits_1(tmp_path: Path) -> None:
    doc = json.loads(example_specs()[0].read_text())
    doc["indicators"] = {"x": {"kind": "emma", "period": 0}}
    doc["entry"] = {"gt": ["y", 1]}
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(doc))
    result = runner.invoke(app, ["check", str(bad), "--json"])
    assert result.exit_code == 1
    problems = json.loads(result.stdout)[str(bad)]
    paths = {p["path"] for p in problems}
    assert {"indicators.x.kind", "entry.gt[0]"} <= paths
    human = runner.invoke(app, ["check", str(bad)])
    assert human.exit_code == 1
    assert "indicators.x.kind" in human.output and "unknown indicator kind" in human.output


def test_shipped_schema_file_is_up_to_date() -> None:
    assert json.loads(SCHEMA_FILE.read_text()) == strategy_schema()


def test_schema_command_prints_the_schema() -> None:
    result = runner.invoke(app, ["schema"])
    assert result.exit_code == 0
    assert json.loads(result.stdout)["title"] == "Workbench strategy spec"


@pytest.mark.parametrize("path", example_specs(), ids=lambda p: p.stem)
def test_examples_satisfy_the_schema(path: Path) -> None:
    jsonschema.Draft202012Validator(strategy_schema()).validate(json.loads(path.read_text()))


def test_schema_rejects_an_unknown_kind_argument() -> None:
    doc = json.loads(example_specs()[0].read_text())
    doc["indicators"]["bad"] = {"kind": "rsi", "period": 14, "mult": 2}
    validator = jsonschema.Draft202012Validator(strategy_schema())
    assert not validator.is_valid(doc)
