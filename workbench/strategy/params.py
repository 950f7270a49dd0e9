"""Strategy parameters as ``param.Parameterized`` classes and cartesian sweep grids."""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

if TYPE_CHECKING:
    import param

    from workbench.strategy.model import ParamDef, Spec


def _class_name(spec_name: str) -> str:
    words = re.split(r"[^A-Za-z0-9]+", spec_name)
    return "".join(w[:1].upper() + w[1:] for w in words if w) + "Params"


def make_param_class(spec: Spec) -> type[param.Parameterized]:
    """Give a Parameterized subclass: Integer/Number parameters with the spec's bounds and step."""
    import param  # for widgets and notebooks: a backtest does not need it loaded

    attrs: dict[str, Any] = {}
    for p in spec.params.values():
        bounds = (p.low, p.high) if p.low is not None else None
        cls = param.Integer if p.type is int else param.Number
        attrs[p.name] = cls(default=p.default, bounds=bounds, step=p.step, doc=p.doc or None)
    return type(_class_name(spec.name), (param.Parameterized,), attrs)


def range_values(p: ParamDef) -> list[int | float]:
    """Give every value of a parameter's range [low, high] by step (its default if no range)."""
    if p.low is None or p.high is None or p.step is None:
        return [p.default]
    count = int(np.floor((p.high - p.low) / p.step + 1e-9)) + 1
    if p.type is int:
        return [int(p.low + k * p.step) for k in range(count)]
    return [float(round(p.low + k * p.step, 12)) for k in range(count)]


def param_grid(spec: Spec, use_ranges: bool = True, **values: Any) -> pd.DataFrame:
    """Give the cartesian product of parameter values as a DataFrame, one row per combination."""
    unknown = set(values) - set(spec.params)
    if unknown:
        raise KeyError(f"unknown parameter(s) {sorted(unknown)}; spec has {sorted(spec.params)}")
    axes: list[list[int | float]] = []
    for name, p in spec.params.items():
        if name in values:
            given = values[name]
            seq = list(given) if _is_seq(given) else [given]
            axes.append([p.type(v) for v in seq])
        else:
            axes.append(range_values(p) if use_ranges else [p.default])
    rows = list(itertools.product(*axes))
    grid = pd.DataFrame(rows, columns=list(spec.params))
    for name, p in spec.params.items():
        grid[name] = grid[name].astype(np.int64 if p.type is int else np.float64)
    return grid


def normalize_params(spec: Spec, params: Any) -> pd.DataFrame:
    """Give a one-row-per-combination DataFrame from None, a mapping or a DataFrame.

    None gives the defaults; a mapping of scalars or sequences gives their cartesian product
    (other parameters at their default); a DataFrame is taken as the combinations themselves.
    """
    if params is None:
        return param_grid(spec, use_ranges=False)
    if isinstance(params, pd.DataFrame):
        unknown = set(params.columns) - set(spec.params)
        if unknown:
            raise KeyError(f"unknown parameter(s) {sorted(unknown)}")
        grid = params.reset_index(drop=True).copy()
        for name, p in spec.params.items():
            col = grid.get(name, p.default)
            grid[name] = pd.Series(col, index=grid.index).astype(
                np.int64 if p.type is int else np.float64
            )
        return grid[list(spec.params)]
    return param_grid(spec, use_ranges=False, **dict(params))


def _is_seq(value: Any) -> bool:
    return isinstance(value, Iterable) and not isinstance(value, str | bytes)
