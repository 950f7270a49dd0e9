"""Rule expression trees: the JSON grammar, its parsing and validation (never ``eval``).

Grammar (every operator is a one-key JSON object):

* boolean: ``{"gt"|"lt"|"ge"|"le": [a, b]}``, ``{"crosses_above"|"crosses_below": [a, b]}``,
  ``{"all"|"any": [rule, ...]}``, ``{"not": rule}``, ``{"rising"|"falling": [a, n]}``,
  ``true`` / ``false``.
* numeric: a number, ``"$param"``, a price field (``close``, ``hlc3``, ...), an indicator output
  (``"rsi"``, ``"macd.signal"``), ``{"add"|"mul"|"min"|"max": [a, b, ...]}``,
  ``{"sub"|"div": [a, b]}``, ``{"abs"|"neg": a}``, ``{"ago": [a, n]}`` (value n bars ago).

Semantics, identical in both evaluators: comparisons involving NaN are false (so nothing fires
during warm-up); ``crosses_above(a, b)`` is ``a > b`` now and ``a <= b`` on the previous bar;
``rising(a, n)`` is ``a`` strictly higher than on the bar before, on each of the last n bars;
division by zero gives NaN; ``n`` in ``ago``/``rising``/``falling`` is an integer >= 1 or an
integer ``$param``. "Bars" are the strategy's rows as present (a data gap is not filled).
"""

from __future__ import annotations

import difflib
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import Any

from workbench.strategy.errors import Problem

COMPARE_OPS = ("gt", "lt", "ge", "le")
CROSS_OPS = ("crosses_above", "crosses_below")
LOGIC_OPS = ("all", "any")
TREND_OPS = ("rising", "falling")
NARY_OPS = ("add", "mul", "min", "max")
BINARY_OPS = ("sub", "div")
UNARY_OPS = ("abs", "neg")
BOOL_OPS = (*COMPARE_OPS, *CROSS_OPS, *LOGIC_OPS, "not", *TREND_OPS)
NUM_OPS = (*NARY_OPS, *BINARY_OPS, *UNARY_OPS, "ago")


@dataclass(frozen=True)
class Num:
    value: float


@dataclass(frozen=True)
class ParamRef:
    name: str


@dataclass(frozen=True)
class Series:
    """A price field or an indicator output, by its canonical name (``macd.signal``)."""

    name: str


@dataclass(frozen=True)
class Arith:
    op: str
    args: tuple[Any, ...]


@dataclass(frozen=True)
class Ago:
    arg: Any
    bars: Num | ParamRef


@dataclass(frozen=True)
class Compare:
    op: str
    left: Any
    right: Any


@dataclass(frozen=True)
class Cross:
    op: str
    left: Any
    right: Any


@dataclass(frozen=True)
class Logic:
    op: str
    args: tuple[Any, ...]


@dataclass(frozen=True)
class Not:
    arg: Any


@dataclass(frozen=True)
class Trend:
    op: str
    arg: Any
    bars: Num | ParamRef


@dataclass(frozen=True)
class BoolConst:
    value: bool


@dataclass
class RuleEnv:
    """What a rule may name: series (price fields and indicator outputs) and parameters."""

    series: Mapping[str, str]  # accepted name -> canonical series name
    int_params: Collection[str]
    all_params: Collection[str]
    problems: list[Problem]

    def fail(self, path: str, reason: str) -> None:
        self.problems.append(Problem(path, reason))


def _hint(name: str, options: Collection[str]) -> str:
    close = difflib.get_close_matches(name, list(options), n=1)
    return f"; did you mean {close[0]!r}?" if close else ""


def _op_of(raw: Any, path: str, env: RuleEnv) -> tuple[str, Any] | None:
    if not isinstance(raw, dict) or len(raw) != 1:
        env.fail(path, f"expected an object with exactly one operator key, got {raw!r}")
        return None
    return next(iter(raw.items()))


def _args(op: str, raw: Any, path: str, env: RuleEnv, count: int | None) -> list[Any] | None:
    if not isinstance(raw, list) or (count is not None and len(raw) != count):
        want = f"a list of {count}" if count is not None else "a non-empty list"
        env.fail(f"{path}.{op}", f"'{op}' takes {want} operands, got {raw!r}")
        return None
    if not raw:
        env.fail(f"{path}.{op}", f"'{op}' needs at least one operand")
        return None
    return raw


def _bars(raw: Any, path: str, env: RuleEnv) -> Num | ParamRef | None:
    if isinstance(raw, str) and raw.startswith("$"):
        name = raw[1:]
        if name not in env.all_params:
            env.fail(path, f"unknown parameter {raw!r}{_hint(name, env.all_params)}")
            return None
        if name not in env.int_params:
            env.fail(path, f"bar counts must be integer parameters; {raw!r} is not an integer")
            return None
        return ParamRef(name)
    if isinstance(raw, bool) or not isinstance(raw, int) or raw < 1:
        env.fail(path, f"bar count must be an integer >= 1 or an integer $param, got {raw!r}")
        return None
    return Num(float(raw))


def parse_value(raw: Any, path: str, env: RuleEnv) -> Any:
    """Parse a numeric operand; record problems in ``env`` and give None when invalid."""
    if isinstance(raw, bool):
        env.fail(path, f"expected a number or series, got boolean {raw!r}")
        return None
    if isinstance(raw, int | float):
        return Num(float(raw))
    if isinstance(raw, str):
        if raw.startswith("$"):
            if raw[1:] not in env.all_params:
                env.fail(path, f"unknown parameter {raw!r}{_hint(raw[1:], env.all_params)}")
                return None
            return ParamRef(raw[1:])
        if raw not in env.series:
            env.fail(path, f"unknown operand {raw!r}{_hint(raw, env.series)}")
            return None
        return Series(env.series[raw])
    found = _op_of(raw, path, env)
    if found is None:
        return None
    op, body = found
    sub = f"{path}.{op}"
    if op in NARY_OPS or op in BINARY_OPS:
        items = _args(op, body, path, env, 2 if op in BINARY_OPS else None)
        if items is None:
            return None
        args = [parse_value(a, f"{sub}[{i}]", env) for i, a in enumerate(items)]
        return None if any(a is None for a in args) else Arith(op, tuple(args))
    if op in UNARY_OPS:
        arg = parse_value(body, sub, env)
        return None if arg is None else Arith(op, (arg,))
    if op == "ago":
        items = _args(op, body, path, env, 2)
        if items is None:
            return None
        arg, bars = parse_value(items[0], f"{sub}[0]", env), _bars(items[1], f"{sub}[1]", env)
        return None if arg is None or bars is None else Ago(arg, bars)
    known = "" if op in BOOL_OPS else f"; numeric operators are {', '.join(NUM_OPS)}"
    kind = "a boolean rule where a number is expected" if op in BOOL_OPS else "unknown operator"
    env.fail(path, f"{kind} {op!r}{known}{_hint(op, NUM_OPS) if not known else ''}")
    return None


def parse_rule(raw: Any, path: str, env: RuleEnv) -> Any:
    """Parse a boolean rule; record problems in ``env`` and give None when invalid."""
    if isinstance(raw, bool):
        return BoolConst(raw)
    if not isinstance(raw, dict):
        env.fail(path, f"expected a rule object like {{'gt': [a, b]}} or true/false, got {raw!r}")
        return None
    found = _op_of(raw, path, env)
    if found is None:
        return None
    op, body = found
    sub = f"{path}.{op}"
    if op in COMPARE_OPS or op in CROSS_OPS:
        items = _args(op, body, path, env, 2)
        if items is None:
            return None
        left, right = (
            parse_value(items[0], f"{sub}[0]", env),
            parse_value(items[1], f"{sub}[1]", env),
        )
        if left is None or right is None:
            return None
        return Compare(op, left, right) if op in COMPARE_OPS else Cross(op, left, right)
    if op in LOGIC_OPS:
        items = _args(op, body, path, env, None)
        if items is None:
            return None
        args = [parse_rule(a, f"{sub}[{i}]", env) for i, a in enumerate(items)]
        return None if any(a is None for a in args) else Logic(op, tuple(args))
    if op == "not":
        arg = parse_rule(body, sub, env)
        return None if arg is None else Not(arg)
    if op in TREND_OPS:
        items = _args(op, body, path, env, 2)
        if items is None:
            return None
        arg, bars = parse_value(items[0], f"{sub}[0]", env), _bars(items[1], f"{sub}[1]", env)
        return None if arg is None or bars is None else Trend(op, arg, bars)
    if op in NUM_OPS:
        env.fail(path, f"{op!r} gives a number where a boolean rule is expected; compare it")
    else:
        env.fail(path, f"unknown rule operator {op!r}{_hint(op, BOOL_OPS)}")
    return None


def series_used(node: Any) -> set[str]:
    """Give the canonical series names a rule tree reads."""
    if isinstance(node, Series):
        return {node.name}
    out: set[str] = set()
    for child in _children(node):
        out |= series_used(child)
    return out


def params_used(node: Any) -> set[str]:
    """Give the parameter names a rule tree reads."""
    if isinstance(node, ParamRef):
        return {node.name}
    out: set[str] = set()
    for child in _children(node):
        out |= params_used(child)
    return out


def lookback(node: Any, params: Mapping[str, float]) -> int:
    """Give how many past bars a rule reads beyond the current one, with these parameters."""
    own = 0
    if isinstance(node, Cross):
        own = 1
    elif isinstance(node, Ago | Trend):
        own = int(node.bars.value if isinstance(node.bars, Num) else params[node.bars.name])
    return own + max((lookback(c, params) for c in _children(node)), default=0)


def _children(node: Any) -> tuple[Any, ...]:
    if isinstance(node, Arith | Logic):
        return node.args
    if isinstance(node, Compare | Cross):
        return (node.left, node.right)
    if isinstance(node, Ago | Trend):
        return (node.arg, node.bars)
    if isinstance(node, Not):
        return (node.arg,)
    return ()
