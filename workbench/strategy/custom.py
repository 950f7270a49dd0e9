"""Custom indicators: add your own kind to the catalogue, usable in any spec by its name.

An indicator kind needs two forms that agree value for value: a vectorized one (whole arrays,
for backtests and sweeps) and an incremental one (one value at a time, for live trading)::

    import numpy as np
    from workbench.strategy.custom import register_indicator

    def momentum(source: np.ndarray, period: int) -> np.ndarray:   # whole series in, series out
        out = np.full(len(source), np.nan)
        out[period:] = source[period:] - source[:-period]
        return out

    class Momentum:                                                  # one value at a time
        def __init__(self, period: int) -> None:
            self.period, self.seen = period, []
        def update(self, x: float) -> tuple[float]:
            self.seen = [*self.seen, x][-(self.period + 1):]
            return (x - self.seen[0] if len(self.seen) > self.period else float("nan"),)

    register_indicator("momentum", momentum, Momentum, args={"period": 10},
                       first_value=lambda period: period, doc="price change over n bars")

Then ``{"kind": "momentum", "period": "$n"}`` works in a spec like a built-in kind, and
``check_parity("momentum", candles, period=10)`` measures how far the two forms disagree.

Conventions (the same as the built-in kinds, see ``workbench/strategy/README.md``):

* ``compute(*inputs, **args)`` receives 1-D float arrays in the order of ``inputs`` (``"source"``
  is the spec's ``source``: a price field or another indicator's output; other names are
  price fields such as ``"high"``) and gives one array per output (a tuple when several).
  It is called once per distinct value of the arguments, not once per sweep combination.
* ``incremental(**args)`` builds an object whose ``update(*inputs)`` gives a tuple with one
  float per output. Keep its state bounded (a ring buffer, not the whole history).
* Leading NaN inputs (a source indicator still warming up) are skipped for you in both forms:
  neither form sees them and the outputs stay NaN there, as the built-in kinds do.
* ``first_value(**args)`` = the bar index of the first non-NaN output on a fresh series;
  ``settle(**args)`` = extra bars a recursive smoother needs to forget its seed (0 for windows).
  Together they give the warm-up a live runner seeds from.

Registration is per process: register before loading specs that use the kind. A sweep on
Dask sends the kinds its spec uses to the workers (`custom_kinds`, `install_kinds`).
"""

from __future__ import annotations

import math
import sys
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import numpy as np
import pandas as pd

from workbench.errors import WorkbenchError
from workbench.strategy.indicators.registry import (
    KINDS,
    PRICE_FIELDS,
    SOURCE,
    ArgDef,
    IndicatorKind,
)

ArgSpec = Mapping[str, int | float | ArgDef]


class IndicatorRegistrationError(WorkbenchError, ValueError):
    """A custom indicator that cannot be registered, with the reason."""


def _arg_defs(args: ArgSpec) -> tuple[ArgDef, ...]:
    out = []
    for name, value in args.items():
        if isinstance(value, ArgDef):
            out.append(value)
        elif isinstance(value, bool) or not isinstance(value, int | float):
            raise IndicatorRegistrationError(f"argument {name!r}: default must be a number")
        elif isinstance(value, int):
            out.append(ArgDef(name, int, value, 1))
        else:
            out.append(ArgDef(name, float, value, 0.0))
    return tuple(out)


def _typed(defs: tuple[ArgDef, ...], values: Mapping[str, Any]) -> dict[str, int | float]:
    return {a.name: a.type(values[a.name]) for a in defs}


def _as_tuple(result: Any, n_outputs: int, name: str) -> tuple[np.ndarray, ...]:
    parts = result if isinstance(result, tuple | list) else (result,)
    if len(parts) != n_outputs:
        raise IndicatorRegistrationError(
            f"indicator {name!r} gave {len(parts)} outputs, declared {n_outputs}"
        )
    return tuple(np.asarray(p, dtype=np.float64) for p in parts)


def _first_valid(rows: list[np.ndarray]) -> int:
    valid = np.ones(len(rows[0]), dtype=bool)
    for row in rows:
        valid &= ~np.isnan(row)
    hits = np.flatnonzero(valid)
    return int(hits[0]) if len(hits) else len(valid)


def _vector(
    name: str,
    compute: Callable[..., Any],
    defs: tuple[ArgDef, ...],
    inputs: tuple[str, ...],
    n_outputs: int,
) -> Callable[[Mapping[str, np.ndarray], Mapping[str, np.ndarray], int], tuple[np.ndarray, ...]]:
    """Wrap a per-series function into the registry's (K, T) column layout."""

    def vector(
        arrays: Mapping[str, np.ndarray], params: Mapping[str, np.ndarray], k_cols: int
    ) -> tuple[np.ndarray, ...]:
        n_bars = arrays[inputs[0]].shape[1]
        outs = tuple(np.full((k_cols, n_bars), np.nan) for _ in range(n_outputs))
        for c in range(k_cols):
            rows = [arrays[i][c if arrays[i].shape[0] > 1 else 0] for i in inputs]
            start = _first_valid(rows)
            if start >= n_bars:
                continue
            args = {a.name: a.type(params[a.name][c]) for a in defs}
            parts = _as_tuple(compute(*(r[start:] for r in rows), **args), n_outputs, name)
            for out, part in zip(outs, parts, strict=True):
                if part.shape != (n_bars - start,):
                    raise IndicatorRegistrationError(
                        f"indicator {name!r} gave shape {part.shape}, expected {(n_bars - start,)}"
                    )
                out[c, start:] = part
        return outs

    return vector


class _SkipLeadingNaN:
    """Feeds the user's object only from the first bar whose inputs are all numbers."""

    def __init__(self, inner: Any, n_outputs: int) -> None:
        self.inner = inner
        self.started = False
        self.nans = (math.nan,) * n_outputs

    def update(self, *values: float) -> tuple[float, ...]:
        if not self.started:
            if any(v != v for v in values):
                return self.nans
            self.started = True
        out = self.inner.update(*values)
        return tuple(out) if isinstance(out, tuple | list) else (out,)


def register_indicator(
    name: str,
    compute: Callable[..., Any],
    incremental: Callable[..., Any],
    *,
    args: ArgSpec | None = None,
    inputs: tuple[str, ...] = (SOURCE,),
    outputs: tuple[str, ...] = ("value",),
    first_value: Callable[..., int],
    settle: Callable[..., int] | None = None,
    default_source: str | None = "close",
    doc: str = "",
    replace: bool = False,
) -> IndicatorKind:
    """Give the new kind after adding it to the catalogue under ``name``.

    ``args`` maps argument names to defaults (an int default makes an integer argument with
    minimum 1, a float one a float with minimum 0) or to full ``ArgDef``s. ``replace=True``
    lets a re-run notebook cell register the same name again; built-in kinds are never replaced.
    """
    if not name.isidentifier():
        raise IndicatorRegistrationError(f"kind name {name!r} must be an identifier")
    existing = KINDS.get(name)
    if existing is not None and (not replace or getattr(existing, "_builtin", True)):
        raise IndicatorRegistrationError(f"kind {name!r} already exists")
    for field in inputs:
        if field != SOURCE and field not in PRICE_FIELDS:
            raise IndicatorRegistrationError(
                f"input {field!r} must be 'source' or a price field {PRICE_FIELDS}"
            )
    if not outputs or len(set(outputs)) != len(outputs):
        raise IndicatorRegistrationError("outputs must be distinct names, at least one")
    defs = _arg_defs(args or {})
    settle_fn = settle or (lambda **_: 0)
    kind = _CustomKind(
        name=name,
        doc=doc or (compute.__doc__ or "").strip().split("\n")[0] or f"custom indicator {name}",
        args=defs,
        inputs=inputs,
        outputs=outputs,
        vector=_vector(name, compute, defs, inputs, len(outputs)),
        incremental=lambda a: _SkipLeadingNaN(incremental(**_typed(defs, a)), len(outputs)),
        first=lambda a: int(first_value(**_typed(defs, a))),
        settle=lambda a: int(settle_fn(**_typed(defs, a))),
        default_source=default_source if SOURCE in inputs else None,
    )
    KINDS[name] = kind
    origins = (compute, incremental, first_value, settle)
    _ORIGINS[name] = {m for f in origins if f is not None and (m := getattr(f, "__module__", None))}
    return kind


def unregister_indicator(name: str) -> None:
    """Remove a custom kind (built-in kinds stay)."""
    kind = KINDS.get(name)
    if isinstance(kind, _CustomKind):
        del KINDS[name]
        _ORIGINS.pop(name, None)


class _CustomKind(IndicatorKind):
    """An IndicatorKind registered at run time (the only kind ``replace`` may overwrite)."""

    _builtin = False


# Per custom kind: the modules its user functions were written in (see `pack_kinds`).
_ORIGINS: dict[str, set[str]] = {}


def pack_kinds(names: Iterable[str]) -> bytes:
    """Give the registered custom kinds among ``names``, pickled for another process.

    The user's functions travel by value, with what they use from their modules, so a
    process that cannot import those modules (a Dask worker elsewhere, or one started
    without the notebook's path) runs them all the same.
    """
    import cloudpickle

    kinds = [KINDS[n] for n in sorted(set(names)) if isinstance(KINDS.get(n), _CustomKind)]
    modules = {m for kind in kinds for m in _ORIGINS.get(kind.name, ())}
    registered = []
    try:
        for name in sorted(modules):
            module = sys.modules.get(name)
            if module is not None and name != "__main__":  # __main__ goes by value anyway
                cloudpickle.register_pickle_by_value(module)
                registered.append(module)
        return cloudpickle.dumps(kinds)
    finally:
        for module in registered:
            cloudpickle.unregister_pickle_by_value(module)


def install_kinds(packed: bytes) -> None:
    """Register the custom kinds another process packed, over this process's of those names.

    A built-in kind is never replaced: a name clash with one raises.
    """
    import pickle

    for kind in pickle.loads(packed):  # bytes from this sweep's own client
        existing = KINDS.get(kind.name)
        if existing is not None and getattr(existing, "_builtin", True):
            raise IndicatorRegistrationError(f"kind {kind.name!r} is built in here")
        KINDS[kind.name] = kind


def check_parity(name: str, candles: pd.DataFrame, source: str = "close", **args: Any) -> float:
    """Give the largest absolute difference between the two forms of a kind over ``candles``.

    0.0 means bit-identical; NaN positions must match too (a mismatch gives ``inf``).
    """
    from workbench.strategy.fields import derived_fields

    kind = KINDS[name]
    values = {a.name: args.get(a.name, a.default) for a in kind.args}
    fields = {c: candles[c].to_numpy(dtype=np.float64) for c in ("open", "high", "low", "close")}
    fields["volume"] = candles["volume"].to_numpy(dtype=np.float64)
    fields.update(derived_fields(fields["open"], fields["high"], fields["low"], fields["close"]))
    names = [source if i == SOURCE else i for i in kind.inputs]
    arrays = {i: fields[n][None, :] for i, n in zip(kind.inputs, names, strict=True)}
    params = {k: np.array([v]) for k, v in values.items()}
    vector = [o[0] for o in kind.vector(arrays, params, 1)]
    live = kind.incremental(values)
    stepped = np.array([live.update(*(fields[n][t] for n in names)) for t in range(len(candles))])
    worst = 0.0
    for j, vec in enumerate(vector):
        inc = stepped[:, j]
        if not np.array_equal(np.isnan(vec), np.isnan(inc)):
            return math.inf
        both = ~np.isnan(vec)
        if both.any():
            worst = max(worst, float(np.max(np.abs(vec[both] - inc[both]))))
    return worst
