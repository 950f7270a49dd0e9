"""JSON Schema (draft 2020-12) of strategy specs, generated from the indicator catalogue.

Editors use it for completion and early errors; ``load_spec`` remains the authority (it also
checks references, cycles and parameter ranges, which a schema cannot express).
"""

from __future__ import annotations

from typing import Any

from workbench.strategy.indicators.registry import KINDS, PRICE_FIELDS, SOURCE
from workbench.strategy.risk import SIZING_METHODS
from workbench.strategy.rules import (
    BINARY_OPS,
    COMPARE_OPS,
    CROSS_OPS,
    LOGIC_OPS,
    NARY_OPS,
    TREND_OPS,
    UNARY_OPS,
)

SCHEMA_ID = "https://workbench.local/strategy.schema.json"
PARAM_REF = {"type": "string", "pattern": "^\\$[A-Za-z_][A-Za-z0-9_]*$"}
NAME = "^[A-Za-z_][A-Za-z0-9_]*$"
TIMEFRAME = {"type": "string", "pattern": "^[1-9][0-9]*[smhdw]$"}


def _one_key(op: str, body: dict[str, Any]) -> dict[str, Any]:
    return {
        "type": "object",
        "properties": {op: body},
        "required": [op],
        "additionalProperties": False,
    }


def _pair(item: str) -> dict[str, Any]:
    return {"type": "array", "prefixItems": [{"$ref": item}] * 2, "minItems": 2, "maxItems": 2}


def _rules() -> dict[str, Any]:
    bars = {"oneOf": [{"type": "integer", "minimum": 1}, PARAM_REF]}
    value_then_bars = {
        "type": "array",
        "prefixItems": [{"$ref": "#/$defs/value"}, bars],
        "minItems": 2,
        "maxItems": 2,
    }
    rule = [{"type": "boolean"}]
    rule += [_one_key(op, _pair("#/$defs/value")) for op in (*COMPARE_OPS, *CROSS_OPS)]
    listed = {"type": "array", "items": {"$ref": "#/$defs/rule"}, "minItems": 1}
    rule += [_one_key(op, listed) for op in LOGIC_OPS]
    rule += [_one_key("not", {"$ref": "#/$defs/rule"})]
    rule += [_one_key(op, value_then_bars) for op in TREND_OPS]
    value: list[dict[str, Any]] = [
        {"type": "number"},
        {"type": "string", "description": "$param, price field, indicator or indicator.output"},
    ]
    many = {"type": "array", "items": {"$ref": "#/$defs/value"}, "minItems": 1}
    value += [_one_key(op, many) for op in NARY_OPS]
    value += [_one_key(op, _pair("#/$defs/value")) for op in BINARY_OPS]
    value += [_one_key(op, {"$ref": "#/$defs/value"}) for op in UNARY_OPS]
    value += [_one_key("ago", value_then_bars)]
    return {"rule": {"anyOf": rule}, "value": {"anyOf": value}}


def _indicator(kind_name: str) -> dict[str, Any]:
    kind = KINDS[kind_name]
    props: dict[str, Any] = {"kind": {"const": kind.name}, "timeframe": TIMEFRAME}
    for arg in kind.args:
        num = {"type": "integer" if arg.type is int else "number", "minimum": arg.minimum}
        props[arg.name] = {"oneOf": [num, PARAM_REF], "default": arg.default}
    if SOURCE in kind.inputs:
        props[SOURCE] = {
            "type": "string",
            "default": kind.default_source,
            "description": f"price field ({', '.join(PRICE_FIELDS)}) or indicator[.output]",
        }
    return {
        "type": "object",
        "description": f"{kind.doc} Outputs: {', '.join(kind.outputs)}.",
        "properties": props,
        "required": ["kind"],
        "additionalProperties": False,
    }


def _sizing() -> dict[str, Any]:
    options = []
    for method, (_, fields) in SIZING_METHODS.items():
        props: dict[str, Any] = {"method": {"const": method}}
        for key, (ftype, _required, low, high) in fields.items():
            spec: dict[str, Any] = {"type": "integer" if ftype is int else "number"}
            spec["exclusiveMinimum"] = low
            if high is not None:
                spec["maximum"] = high
            props[key] = spec
        required = ["method", *[k for k, f in fields.items() if f[1]]]
        options.append({"properties": props, "required": required, "additionalProperties": False})
    return {"type": "object", "oneOf": options}


def strategy_schema() -> dict[str, Any]:
    """Give the JSON Schema of a strategy spec document."""
    fraction = {"type": "number", "exclusiveMinimum": 0}
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": SCHEMA_ID,
        "title": "Workbench strategy spec",
        "type": "object",
        "required": ["name", "market", "entry"],
        "additionalProperties": False,
        "properties": {
            "name": {"type": "string", "minLength": 1},
            "description": {"type": "string"},
            "market": {
                "type": "object",
                "required": ["symbol", "timeframe"],
                "additionalProperties": False,
                "properties": {
                    "symbol": {"type": "string", "pattern": "/"},
                    "timeframe": TIMEFRAME,
                },
            },
            "params": {
                "type": "object",
                "propertyNames": {"pattern": NAME},
                "additionalProperties": {
                    "type": "object",
                    "required": ["default"],
                    "additionalProperties": False,
                    "properties": {
                        "default": {"type": "number"},
                        "range": {
                            "type": "array",
                            "items": {"type": "number"},
                            "minItems": 3,
                            "maxItems": 3,
                            "description": "[low, high, step]",
                        },
                        "type": {"enum": ["int", "float"]},
                        "doc": {"type": "string"},
                    },
                },
            },
            "indicators": {
                "type": "object",
                "propertyNames": {"pattern": NAME, "not": {"enum": list(PRICE_FIELDS)}},
                "additionalProperties": {"$ref": "#/$defs/indicator"},
            },
            "entry": {"$ref": "#/$defs/rule"},
            "exit": {"$ref": "#/$defs/rule"},
            "short_entry": {"$ref": "#/$defs/rule"},
            "short_exit": {"$ref": "#/$defs/rule"},
            "risk": {
                "type": "object",
                "additionalProperties": False,
                "properties": {
                    "stop_loss": {**fraction, "exclusiveMaximum": 1},
                    "take_profit": fraction,
                    "trailing_stop": {**fraction, "exclusiveMaximum": 1},
                    "max_position": {**fraction, "maximum": 1},
                    "daily_loss": {**fraction, "maximum": 1},
                    "max_drawdown": {**fraction, "maximum": 1},
                    "sizing": _sizing(),
                },
            },
        },
        "$defs": {
            "indicator": {"oneOf": [{"$ref": f"#/$defs/indicator_{k}"} for k in KINDS]},
            **{f"indicator_{k}": _indicator(k) for k in KINDS},
            **_rules(),
        },
    }
