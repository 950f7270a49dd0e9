"""Vectorized rule evaluation: whole ``(combinations, bars)`` arrays, no loop over combinations.

Operands broadcast: constants are scalars, ``$param`` values are ``(C, 1)`` columns, price
fields ``(1, T)`` rows and indicator outputs ``(C, T)``. Semantics are documented in
``rules.py`` and mirrored by ``rules_incremental.py``.
"""

from __future__ import annotations

from typing import Any, Protocol

import numpy as np

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


class VectorEnv(Protocol):
    """Where vectorized rules read their operands for one chunk of combinations."""

    n_cols: int
    n_bars: int

    def series(self, name: str) -> np.ndarray: ...

    def param(self, name: str) -> np.ndarray: ...


def _full(x: Any, n_bars: int) -> np.ndarray:
    arr = np.asarray(x)
    if arr.ndim == 0:
        arr = arr.reshape(1, 1)
    return np.broadcast_to(arr, (arr.shape[0], n_bars))


def shift(x: Any, n: int, n_bars: int) -> np.ndarray:
    """Give x delayed by n bars along time (NaN for the first n bars)."""
    src = _full(np.asarray(x, dtype=float), n_bars)
    out = np.full(src.shape, np.nan)
    if n < n_bars:
        out[:, n:] = src[:, : n_bars - n]
    return out


def _bars(bars: Num | ParamRef, env: VectorEnv) -> np.ndarray:
    if isinstance(bars, Num):
        return np.array([[int(bars.value)]])
    return env.param(bars.name).astype(np.int64)


def _shift_per_column(x: Any, bars: np.ndarray, env: VectorEnv) -> np.ndarray:
    if bars.shape[0] == 1:
        return shift(x, int(bars[0, 0]), env.n_bars)
    src = np.broadcast_to(_full(np.asarray(x, dtype=float), env.n_bars), (env.n_cols, env.n_bars))
    out = np.empty((env.n_cols, env.n_bars))
    col = bars[:, 0]
    for n in np.unique(col):  # loop over distinct lags, not over combinations
        rows = col == n
        out[rows] = shift(src[rows], int(n), env.n_bars)
    return out


def _run_length(cond: np.ndarray) -> np.ndarray:
    """Give, per bar, how many consecutive bars up to it have ``cond`` true."""
    counts = np.cumsum(cond, axis=1, dtype=np.int64)
    resets = np.where(cond, 0, counts)
    return counts - np.maximum.accumulate(resets, axis=1)


def eval_value(node: Any, env: VectorEnv) -> Any:
    """Give a numeric node's values, broadcastable to ``(C, T)``."""
    if isinstance(node, Num):
        return node.value
    if isinstance(node, ParamRef):
        return env.param(node.name)
    if isinstance(node, Series):
        return env.series(node.name)
    if isinstance(node, Ago):
        return _shift_per_column(eval_value(node.arg, env), _bars(node.bars, env), env)
    if isinstance(node, Arith):
        vals = [eval_value(a, env) for a in node.args]
        if node.op == "abs":
            return np.abs(vals[0])
        if node.op == "neg":
            return np.negative(vals[0])
        if node.op == "div":
            num, den = np.broadcast_arrays(np.asarray(vals[0], float), np.asarray(vals[1], float))
            out = np.full(num.shape, np.nan)
            np.divide(num, den, out=out, where=den != 0.0)
            return out
        ufunc = {"add": np.add, "sub": np.subtract, "mul": np.multiply}.get(node.op)
        ufunc = ufunc or {"min": np.minimum, "max": np.maximum}[node.op]
        acc = vals[0]
        for v in vals[1:]:
            acc = ufunc(acc, v)
        return acc
    raise TypeError(f"not a numeric rule node: {node!r}")


def eval_rule(node: Any, env: VectorEnv) -> np.ndarray:
    """Give a boolean node's values as a ``(C, T)`` (or broadcastable) boolean array."""
    if isinstance(node, BoolConst):
        return np.full((1, env.n_bars), node.value)
    if isinstance(node, Compare):
        left, right = eval_value(node.left, env), eval_value(node.right, env)
        ufunc = {"gt": np.greater, "lt": np.less, "ge": np.greater_equal, "le": np.less_equal}
        return _full(ufunc[node.op](left, right), env.n_bars)
    if isinstance(node, Cross):
        a, b = eval_value(node.left, env), eval_value(node.right, env)
        pa, pb = shift(a, 1, env.n_bars), shift(b, 1, env.n_bars)
        if node.op == "crosses_above":
            return np.greater(a, b) & np.less_equal(pa, pb)
        return np.less(a, b) & np.greater_equal(pa, pb)
    if isinstance(node, Logic):
        parts = [eval_rule(a, env) for a in node.args]
        acc = parts[0]
        for p in parts[1:]:
            acc = (acc & p) if node.op == "all" else (acc | p)
        return acc
    if isinstance(node, Not):
        return ~eval_rule(node.arg, env)
    if isinstance(node, Trend):
        x = _full(np.asarray(eval_value(node.arg, env), dtype=float), env.n_bars)
        prev = shift(x, 1, env.n_bars)
        cond = np.greater(x, prev) if node.op == "rising" else np.less(x, prev)
        return _run_length(cond) >= _bars(node.bars, env)
    raise TypeError(f"not a boolean rule node: {node!r}")
