"""Vectorized evaluation: a spec on whole candle arrays, broadcast over a parameter grid.

Each indicator is computed once per distinct combination of the parameters it depends on
(not once per grid row), then gathered to grid columns; the rules run in the spec's compiled
rule kernel (`workbench.strategy.rules_jit`), the one the sweep runs, so a backtest and a sweep
read the same signals. No Python loop runs over combinations. Higher-timeframe indicators run
on HTF bars aggregated from the candles and are aligned so a strategy bar sees only HTF bars
closed by its own close (see ``timeframes``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from workbench.strategy.fields import OHLCV, check_candles, derived_fields
from workbench.strategy.indicators.registry import PRICE_FIELDS, SOURCE
from workbench.strategy.model import IndicatorDef, Spec
from workbench.strategy.params import normalize_params
from workbench.strategy.rules_jit import FLAG_OF_RULE, compile_rules, rule_inputs
from workbench.strategy.timeframes import resample_ohlcv, timeframe_seconds, usable_htf_positions


@dataclass
class Signals:
    """Boolean signal frames (bars x combinations) plus the indicator outputs.

    ``short_entries``/``short_exits`` are None when the spec has no short rules. Indicator
    frames are keyed by canonical output name (``macd.signal``) and have one column per
    distinct value of the parameters that indicator depends on.
    """

    entries: pd.DataFrame
    exits: pd.DataFrame
    short_entries: pd.DataFrame | None
    short_exits: pd.DataFrame | None
    indicators: dict[str, pd.DataFrame]
    params: pd.DataFrame
    warmup_bars: int = 0

    def indicator(self, name: str) -> pd.DataFrame:
        """Give an indicator output by canonical or bare (single-output) name."""
        if name in self.indicators:
            return self.indicators[name]
        matches = [k for k in self.indicators if k.split(".")[0] == name]
        if len(matches) != 1:
            raise KeyError(f"no single output named {name!r}; have {sorted(self.indicators)}")
        return self.indicators[matches[0]]


@dataclass
class _Computed:
    deps: list[str]
    codes: np.ndarray  # grid row -> column of this indicator
    first_rows: np.ndarray  # column -> first grid row having it
    raw: dict[str, np.ndarray]  # output -> (K, T_tf) on the indicator's own timeframe
    pos: np.ndarray | None  # strategy bar -> HTF bar position, None on the strategy timeframe
    aligned: dict[str, np.ndarray] = field(default_factory=dict)

    def output(self, name: str) -> np.ndarray:
        if name not in self.aligned:
            vals = self.raw[name]
            if self.pos is not None:
                vals = np.where(self.pos >= 0, vals[:, np.maximum(self.pos, 0)], np.nan)
            self.aligned[name] = vals
        return self.aligned[name]


def _factorize(grid: pd.DataFrame, deps: list[str]) -> tuple[np.ndarray, np.ndarray]:
    if not deps:
        return np.zeros(len(grid), dtype=np.int64), np.zeros(1, dtype=np.int64)
    codes = grid.groupby(deps, sort=False).ngroup().to_numpy(dtype=np.int64)
    return codes, np.unique(codes, return_index=True)[1]


def price_fields(candles: pd.DataFrame) -> dict[str, np.ndarray]:
    """Give the price fields a rule or an indicator may read, each a (1, bars) float64 array."""
    out = {c: np.ascontiguousarray(candles[c].to_numpy(dtype=np.float64))[None, :] for c in OHLCV}
    out.update(derived_fields(out["open"], out["high"], out["low"], out["close"]))
    return out


def compute_indicators(
    spec: Spec, candles: pd.DataFrame, grid: pd.DataFrame
) -> dict[str, _Computed]:
    """Give every indicator computed over the distinct parameter values it depends on."""
    base_sec = spec.market.timeframe_seconds
    frames: dict[str | None, tuple[dict[str, np.ndarray], np.ndarray | None]] = {
        None: (price_fields(candles), None)
    }
    done: dict[str, _Computed] = {}
    for ind in spec.indicators.values():
        if ind.timeframe not in frames:
            sec = timeframe_seconds(ind.timeframe)
            htf = resample_ohlcv(candles, sec)
            pos = usable_htf_positions(candles.index, base_sec, htf.index, sec)
            frames[ind.timeframe] = (price_fields(htf), pos)
        fields, pos = frames[ind.timeframe]
        done[ind.name] = _compute_one(ind, grid, fields, pos, done, spec)
    return done


def _compute_one(
    ind: IndicatorDef,
    grid: pd.DataFrame,
    fields: dict[str, np.ndarray],
    pos: np.ndarray | None,
    done: dict[str, _Computed],
    spec: Spec,
) -> _Computed:
    kind = ind.spec_kind
    src = done.get(ind.source.split(".")[0]) if ind.source else None
    wanted = ind.param_refs() | set(src.deps if src else ())
    deps = [p for p in spec.params if p in wanted]
    codes, first_rows = _factorize(grid, deps)
    k_cols = len(first_rows)
    args: dict[str, np.ndarray] = {}
    for arg in kind.args:
        raw = ind.args[arg.name]
        dtype = np.int64 if arg.type is int else np.float64
        if isinstance(raw, str):
            args[arg.name] = np.ascontiguousarray(grid[raw].to_numpy()[first_rows], dtype=dtype)
        else:
            args[arg.name] = np.full(k_cols, raw, dtype=dtype)
    inputs: dict[str, np.ndarray] = {}
    for name in kind.inputs:
        if name != SOURCE:
            inputs[name] = fields[name]
        elif ind.source in PRICE_FIELDS:
            inputs[name] = fields[ind.source]
        else:
            assert src is not None and ind.source is not None
            vals = src.raw[ind.source.split(".")[1]]
            inputs[name] = np.ascontiguousarray(vals[src.codes[first_rows]])
    outs = kind.vector(inputs, args, k_cols)
    return _Computed(deps, codes, first_rows, dict(zip(kind.outputs, outs, strict=True)), pos)


def _columns(grid: pd.DataFrame) -> pd.Index:
    if grid.shape[1] == 0:
        return pd.RangeIndex(len(grid), name="combination")
    return pd.MultiIndex.from_frame(grid)


def rule_flags(
    spec: Spec,
    candles: pd.DataFrame,
    grid: pd.DataFrame,
    computed: dict[str, _Computed] | None = None,
) -> np.ndarray:
    """Give the rules' signal bits per combination and bar, uint8 (combinations, bars).

    Bits are `rules_jit.FLAG_OF_RULE`'s; ``grid`` has one column per spec parameter
    (`normalize_params`); ``computed`` is `compute_indicators` of the same grid, if at hand.
    """
    if computed is None:
        computed = compute_indicators(spec, candles, grid)
    inputs = rule_inputs(spec, price_fields(candles), computed, grid)
    flags = np.empty((len(grid), len(candles)), dtype=np.uint8)
    compile_rules(spec)(inputs.series, inputs.codes, inputs.params, flags)
    return flags


def evaluate(spec: Spec, candles: pd.DataFrame, params: Any = None) -> Signals:
    """Give entry/exit signals for every parameter combination, bar by bar.

    ``params``: None (defaults), a mapping of scalars/sequences (cartesian product), or a
    DataFrame of combinations such as ``spec.param_grid()``.
    """
    check_candles(candles)
    grid = normalize_params(spec, params)
    computed = compute_indicators(spec, candles, grid)
    flags = rule_flags(spec, candles, grid, computed)
    results: dict[str, np.ndarray | None] = {}
    for key, rule in spec.rules.items():
        if rule is None and key.startswith("short"):
            results[key] = None
            continue
        results[key] = (flags & FLAG_OF_RULE[key]) != 0
    columns = _columns(grid)

    def frame(arr: np.ndarray | None) -> pd.DataFrame | None:
        if arr is None:
            return None
        return pd.DataFrame(arr.T, index=candles.index, columns=columns, copy=False)

    indicators: dict[str, pd.DataFrame] = {}
    for name, comp in computed.items():
        cols = _columns(grid.iloc[comp.first_rows][comp.deps].reset_index(drop=True))
        for out in comp.raw:
            indicators[f"{name}.{out}"] = pd.DataFrame(
                comp.output(out).T, index=candles.index, columns=cols, copy=False
            )
    warmup = max(spec.warmup_bars(row) for row in _extreme_rows(spec, grid))
    return Signals(
        entries=frame(results["entries"]),
        exits=frame(results["exits"]),
        short_entries=frame(results["short_entries"]),
        short_exits=frame(results["short_exits"]),
        indicators=indicators,
        params=grid,
        warmup_bars=warmup,
    )


def _extreme_rows(spec: Spec, grid: pd.DataFrame) -> list[dict[str, Any]]:
    """Give the combination of per-parameter maxima (warm-up grows with every parameter)."""
    if grid.empty or grid.shape[1] == 0:
        return [{}]
    return [{name: grid[name].max() for name in spec.params}]
