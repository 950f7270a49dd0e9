"""Invalid specs are rejected with every problem, each at its JSON path with a reason."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest

from workbench.strategy import FixedRisk, SpecError, load_spec

BASE = {
    "name": "t",
    "market": {"symbol": "ETH/BTC", "timeframe": "5m"},
    "params": {"fast": {"default": 12, "range": [5, 50, 1]}},
    "indicators": {
        "ema_fast": {"kind": "ema", "period": "$fast"},
        "rsi": {"kind": "rsi", "period": 14},
        "macd": {"kind": "macd"},
    },
    "entry": {"all": [{"crosses_above": ["close", "ema_fast"]}, {"lt": ["rsi", 70]}]},
    "exit": {"crosses_below": ["macd.macd", "macd.signal"]},
}


def problems(doc: dict) -> dict[str, str]:
    with pytest.raises(SpecError) as info:
        load_spec(doc)
    return {p.path: p.reason for p in info.value.problems}


def changed(**edits) -> dict:
    doc = copy.deepcopy(BASE)
    for dotted, value in edits.items():
        *parents, last = dotted.split("__")
        node = doc
        for key in parents:
            node = node[key]
        node[last] = value
    return doc


def test_base_spec_is_valid() -> None:
    spec = load_spec(BASE)
    assert list(spec.indicators) == ["ema_fast", "rsi", "macd"]


def test_unknown_indicator_kind_is_reported_at_its_path() -> None:
    found = problems(changed(indicators__rsi={"kind": "rsii", "period": 14}))
    assert "did you mean 'rsi'" in found["indicators.rsi.kind"]


def test_period_below_one_is_reported() -> None:
    found = problems(changed(indicators__rsi={"kind": "rsi", "period": 0}))
    assert found["indicators.rsi.period"] == "period must be >= 1, got 0"


def test_parameter_range_reaching_below_one_is_reported() -> None:
    found = problems(changed(params__fast={"default": 12, "range": [0, 50, 1]}))
    assert "can go below" in found["indicators.ema_fast.period"]


def test_missing_parameter_is_reported() -> None:
    found = problems(changed(indicators__ema_fast={"kind": "ema", "period": "$fastt"}))
    assert "unknown parameter '$fastt'" in found["indicators.ema_fast.period"]


def test_rule_naming_a_missing_indicator_is_reported_with_a_hint() -> None:
    found = problems(changed(entry={"gt": ["ema_fst", "close"]}))
    assert found["entry.gt[0]"] == "unknown operand 'ema_fst'; did you mean 'ema_fast'?"


def test_multi_output_indicator_needs_an_output_name_in_rules() -> None:
    found = problems(changed(exit={"gt": ["macd", 0]}))
    assert "unknown operand 'macd'" in found["exit.gt[0]"]


def test_cycle_between_indicators_is_reported() -> None:
    doc = changed(
        indicators__a={"kind": "sma", "source": "b", "period": 3},
        indicators__b={"kind": "ema", "source": "a", "period": 3},
    )
    found = problems(doc)
    assert any("cycle between indicators" in r for r in found.values())


def test_indicator_on_indicator_is_accepted_and_ordered() -> None:
    doc = changed(indicators__smooth={"kind": "sma", "source": "rsi", "period": 3})
    doc["indicators"] = {"smooth": doc["indicators"].pop("smooth"), **doc["indicators"]}
    spec = load_spec(doc)
    assert list(spec.indicators).index("rsi") < list(spec.indicators).index("smooth")


def test_every_problem_is_listed_not_just_the_first() -> None:
    doc = changed(
        indicators__rsi={"kind": "rsi", "period": -3},
        entry={"gt": ["nope", 1]},
        market={"symbol": "ETHBTC", "timeframe": "5min"},
        risk={"stop_loss": 2, "sizing": {"method": "fixed_risk"}},
        extra=1,
    )
    with pytest.raises(SpecError) as info:
        load_spec(doc)
    paths = [p.path for p in info.value.problems]
    for expected in (
        "indicators.rsi.period",
        "entry.gt[0]",
        "market.symbol",
        "market.timeframe",
        "risk.stop_loss",
        "risk.sizing.risk_fraction",
        "extra",
    ):
        assert expected in paths
        assert expected in str(info.value)


def test_higher_timeframe_must_be_a_multiple() -> None:
    found = problems(changed(indicators__rsi={"kind": "rsi", "timeframe": "7m"}))
    assert "multiple of 5m" in found["indicators.rsi.timeframe"]


def test_bar_counts_must_be_positive_integers() -> None:
    found = problems(changed(entry={"rising": ["close", 0]}))
    assert "integer >= 1" in found["entry.rising[1]"]


def test_numeric_node_where_rule_expected_is_explained() -> None:
    found = problems(changed(entry={"add": [1, 2]}))
    assert "gives a number" in found["entry"]


def test_default_outside_range_is_reported() -> None:
    found = problems(changed(params__fast={"default": 60, "range": [5, 50, 1]}))
    assert "outside range" in found["params.fast.default"]


def test_bad_json_file_is_a_spec_error(tmp_path: Path) -> None:
    path = tmp_path / "bad.json"
    path.write_text("{not json")
    with pytest.raises(SpecError, match="not valid JSON"):
        load_spec(path)


def test_risk_values_are_typed(tmp_path: Path) -> None:
    doc = changed(
        risk={
            "stop_loss": 0.02,
            "trailing_stop": 0.05,
            "sizing": {"method": "fixed_risk", "risk_fraction": 0.01, "atr_multiple": 3},
        }
    )
    path = tmp_path / "ok.json"
    path.write_text(json.dumps(doc))
    risk = load_spec(path).risk
    assert (risk.stop_loss, risk.take_profit, risk.trailing_stop) == (0.02, None, 0.05)
    assert risk.sizing == FixedRisk(risk_fraction=0.01, atr_period=14, atr_multiple=3.0)
    assert risk.sizing.method == "fixed_risk"


def test_duplicate_keys_are_reported(tmp_path: Path) -> None:
    path = tmp_path / "dup.json"
    text = json.dumps(BASE)
    path.write_text(text.replace('"name": "t"', '"name": "t", "name": "u"'))
    with pytest.raises(SpecError, match="'name' appears twice"):
        load_spec(path)


def test_the_risk_blocks_live_limits_are_fractions_of_equity() -> None:
    spec = load_spec(changed(risk={"max_position": 0.5, "daily_loss": 0.03, "max_drawdown": 1}))
    risk = spec.risk
    assert (risk.max_position, risk.daily_loss, risk.max_drawdown) == (0.5, 0.03, 1.0)
    found = problems(changed(risk={"max_position": 1.5, "daily_loss": "3%", "max_drawdown": 0}))
    assert found["risk.max_position"].startswith("a fraction of the strategy's equity")
    assert "got 1.5" in found["risk.max_position"]
    assert "got '3%'" in found["risk.daily_loss"]
    assert "got 0" in found["risk.max_drawdown"]
