"""Incremental rule evaluation: one bar at a time, parameters bound to plain numbers.

Every stateful node (crosses, ago, rising/falling) is stepped on every bar; ``all``/``any``
never short-circuit, otherwise a skipped child would miss a bar of history. Semantics are
those of the compiled kernel (``rules_jit.py``) exactly (NaN compares false, division by zero
is NaN, NaN-propagating min/max).
"""

from __future__ import annotations

import math
import operator
from collections import deque
from collections.abc import Callable, Mapping
from typing import Any

from workbench.strategy.rules import (
    Ago,
    Arith,
    BoolConst,
    Compare,
    Cross,
    Logic,
    Not,
    Num,
    ParamRef,
    Series,
    Trend,
)

NAN = math.nan
Step = Callable[[Mapping[str, float]], Any]


def _div(a: float, b: float) -> float:
    return NAN if b == 0.0 or b != b else a / b


def _min(a: float, b: float) -> float:
    return NAN if a != a or b != b else (b if b < a else a)


def _max(a: float, b: float) -> float:
    return NAN if a != a or b != b else (b if b > a else a)


_BINARY: dict[str, Callable[[float, float], float]] = {
    "add": operator.add,
    "sub": operator.sub,
    "mul": operator.mul,
    "div": _div,
    "min": _min,
    "max": _max,
}
_COMPARE: dict[str, Callable[[float, float], bool]] = {
    "gt": operator.gt,
    "lt": operator.lt,
    "ge": operator.ge,
    "le": operator.le,
}


def _bars(bars: Num | ParamRef, params: Mapping[str, float]) -> int:
    return int(bars.value if isinstance(bars, Num) else params[bars.name])


def _const(node: Num | ParamRef, params: Mapping[str, float]) -> float:
    return node.value if isinstance(node, Num) else float(params[node.name])


def compile_value(node: Any, params: Mapping[str, float]) -> Step:
    """Give a function of the current bar's series values that yields the node's value."""
    if isinstance(node, Num | ParamRef):
        const = _const(node, params)
        return lambda v: const
    if isinstance(node, Series):
        name = node.name
        return lambda v: v[name]
    if isinstance(node, Ago):
        return _ago(compile_value(node.arg, params), _bars(node.bars, params))
    if isinstance(node, Arith):
        steps = [compile_value(a, params) for a in node.args]
        if node.op == "abs":
            return lambda v: abs(steps[0](v))
        if node.op == "neg":
            return lambda v: -steps[0](v)
        fn = _BINARY[node.op]

        def arith(v: Mapping[str, float]) -> float:
            acc = steps[0](v)
            for s in steps[1:]:
                acc = fn(acc, s(v))
            return acc

        return arith
    raise TypeError(f"not a numeric rule node: {node!r}")


def _ago(inner: Step, n: int) -> Step:
    buf: deque[float] = deque(maxlen=n + 1)

    def ago(v: Mapping[str, float]) -> float:
        buf.append(inner(v))
        return buf[0] if len(buf) > n else NAN

    return ago


def compile_rule(node: Any, params: Mapping[str, float]) -> Step:
    """Give a function of the current bar's series values that yields the rule's truth."""
    if isinstance(node, BoolConst):
        const = node.value
        return lambda v: const
    if isinstance(node, Compare):
        cmp = _COMPARE[node.op]
        if isinstance(node.left, Series) and isinstance(node.right, Series):  # kept cheap
            a, b = node.left.name, node.right.name
            return lambda v: cmp(v[a], v[b])
        if isinstance(node.left, Series) and isinstance(node.right, Num | ParamRef):
            name, const = node.left.name, _const(node.right, params)
            return lambda v: cmp(v[name], const)
        left, right = compile_value(node.left, params), compile_value(node.right, params)
        return lambda v: bool(cmp(left(v), right(v)))
    if isinstance(node, Cross):
        return _cross(node.op, compile_value(node.left, params), compile_value(node.right, params))
    if isinstance(node, Logic):
        steps = [compile_rule(a, params) for a in node.args]
        combine = all if node.op == "all" else any
        return lambda v: combine([s(v) for s in steps])  # list: step every child
    if isinstance(node, Not):
        inner = compile_rule(node.arg, params)
        return lambda v: not inner(v)
    if isinstance(node, Trend):
        return _trend(node.op, compile_value(node.arg, params), _bars(node.bars, params))
    raise TypeError(f"not a boolean rule node: {node!r}")


def _cross(op: str, left: Step, right: Step) -> Step:
    prev = [NAN, NAN]
    # Chosen once, not on every bar: above now and not above before (below: mirrored).
    above = op == "crosses_above"
    now, before = (operator.gt, operator.le) if above else (operator.lt, operator.ge)

    def cross(v: Mapping[str, float]) -> bool:
        a, b = left(v), right(v)
        pa, pb = prev
        prev[0], prev[1] = a, b
        return now(a, b) and before(pa, pb)

    return cross


def _trend(op: str, inner: Step, n: int) -> Step:
    state = [NAN, 0]  # previous value, current run length

    def trend(v: Mapping[str, float]) -> bool:
        x = inner(v)
        prev = state[0]
        up = x > prev if op == "rising" else x < prev
        state[0] = x
        state[1] = state[1] + 1 if up else 0
        return state[1] >= n

    return trend
