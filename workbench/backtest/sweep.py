"""Parameter sweeps: every combination of a grid, in memory-bounded chunks, locally or on Dask.

A sweep runs the fused simulation (`workbench.backtest.fused`) chunk by chunk and keeps one row
of statistics per combination (15 numbers), so its memory is one chunk's working set per worker
plus that compact table, whatever the grid size. A chunk's working set is one byte of signal
flags per combination x symbol x bar plus the indicator arrays of the distinct parameter values
it holds; `plan_chunks` sizes chunks so that the two stay within ``memory_mb``.
Rows equal ``simulate(...).stats()`` (and vectorbt's, `workbench.backtest.reference`).
"""

from __future__ import annotations

import ast
import operator
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from workbench.backtest.engine import CandlesLike, align_candles
from workbench.backtest.errors import SweepError
from workbench.backtest.fused import stats_table, sweep_stats
from workbench.backtest.stats_nb import RUN_COLUMNS
from workbench.fills import DEFAULT_FEE_ASSET, FeeAsset, FillModel
from workbench.lots import LotRules
from workbench.strategy.model import Spec
from workbench.strategy.params import normalize_params

BYTES_PER_CELL = 400  # vectorbt's worst case (~285) plus signals, plan arrays and stats
FLAG_BYTES = 1  # the fused sweep's working set per combination x symbol x bar
INDICATOR_BYTES = 16  # per distinct indicator output x bar: the output and a gathered copy
DEFAULT_MEMORY_MB = 1024
CHUNKS_PER_WORKER = 4  # on Dask, at least this many chunks per worker


def parse_grid_arg(spec: Spec, text: str) -> tuple[str, list[int | float]]:
    """Give (name, values) for ``name=lo:hi:step`` (inclusive), ``name=a,b,c`` or ``name=v``."""
    name, sep, values = text.partition("=")
    name = name.strip()
    if not sep or name not in spec.params:
        raise SweepError(
            f"--grid {text!r}: expected NAME=LO:HI:STEP with NAME in {list(spec.params)}"
        )
    kind = spec.params[name].type
    try:
        if ":" in values:
            parts = [float(v) for v in values.split(":")]
            if len(parts) != 3 or parts[2] <= 0 or parts[1] < parts[0]:
                raise ValueError("need LO:HI:STEP with STEP > 0 and HI >= LO")
            lo, hi, step = parts
            count = int(np.floor((hi - lo) / step + 1e-9)) + 1
            seq = [lo + i * step for i in range(count)]
        else:
            seq = [float(v) for v in values.split(",") if v.strip()]
    except ValueError as exc:
        raise SweepError(f"--grid {text!r}: {exc}") from exc
    if not seq:
        raise SweepError(f"--grid {text!r}: no values")
    return name, [kind(round(v, 12)) if kind is float else round(v) for v in seq]


def grid_size(spec: Spec, axes: Mapping[str, list[Any]]) -> int:
    """Give the number of combinations before constraints (other params at their default)."""
    return int(np.prod([len(v) for v in axes.values()])) if axes else 1


_BINARY = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
    ast.Mod: operator.mod,
}
_COMPARE = {
    ast.Lt: operator.lt,
    ast.LtE: operator.le,
    ast.Gt: operator.gt,
    ast.GtE: operator.ge,
    ast.Eq: operator.eq,
    ast.NotEq: operator.ne,
}


def constraint_mask(grid: pd.DataFrame, expression: str) -> np.ndarray:
    """Give which rows satisfy a constraint such as ``fast < slow and slow - fast >= 10``.

    Only parameter names, numbers, + - * / %, comparisons (chains too), and/or/not are
    allowed: the text is parsed, never evaluated as Python.
    """

    def value(node: ast.AST) -> Any:
        if isinstance(node, ast.Expression):
            return value(node.body)
        if isinstance(node, ast.Name):
            if node.id not in grid.columns:
                raise SweepError(f"constraint {expression!r}: unknown parameter {node.id!r}")
            return grid[node.id].to_numpy()
        if isinstance(node, ast.Constant) and isinstance(node.value, int | float):
            return node.value
        if isinstance(node, ast.BinOp) and type(node.op) in _BINARY:
            return _BINARY[type(node.op)](value(node.left), value(node.right))
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
            return -value(node.operand)
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.Not):
            return ~np.asarray(value(node.operand), dtype=bool)
        if isinstance(node, ast.Compare):
            left, out = value(node.left), np.ones(len(grid), dtype=bool)
            for op, right_node in zip(node.ops, node.comparators, strict=True):
                if type(op) not in _COMPARE:
                    raise SweepError(f"constraint {expression!r}: unsupported comparison")
                right = value(right_node)
                out &= np.asarray(_COMPARE[type(op)](left, right), dtype=bool)
                left = right
            return out
        if isinstance(node, ast.BoolOp):
            parts = [np.asarray(value(v), dtype=bool) for v in node.values]
            combine = np.logical_and if isinstance(node.op, ast.And) else np.logical_or
            return combine.reduce(parts)
        raise SweepError(f"constraint {expression!r}: unsupported element {type(node).__name__}")

    try:
        tree = ast.parse(expression, mode="eval")
    except SyntaxError as exc:
        raise SweepError(f"constraint {expression!r}: {exc.msg}") from exc
    return np.broadcast_to(np.asarray(value(tree), dtype=bool), (len(grid),)).copy()


def build_grid(
    spec: Spec, axes: Mapping[str, list[Any]], constraints: list[str] | None = None
) -> pd.DataFrame:
    """Give every combination of ``axes`` (others at their default) meeting all constraints.

    Rows come in ``itertools.product`` order (the last parameter varies fastest), built by
    index arithmetic on numpy arrays: 8 bytes per parameter and combination, no Python tuples.
    """
    unknown = [name for name in axes if name not in spec.params]
    if unknown:
        raise SweepError(f"grid: no parameter(s) {unknown} in the spec ({list(spec.params)})")
    names = list(spec.params)
    values = [list(axes.get(n, [spec.params[n].default])) for n in names]
    total = int(np.prod([len(v) for v in values]))
    columns: dict[str, np.ndarray] = {}
    inner = total
    for name, vals in zip(names, values, strict=True):
        dtype = np.int64 if spec.params[name].type is int else np.float64
        inner //= len(vals)
        # Each value repeats for every combination of the parameters after it, and that block
        # repeats for every combination of the parameters before it.
        pattern = np.repeat(np.asarray(vals, dtype=dtype), inner)
        columns[name] = np.tile(pattern, total // max(len(pattern), 1))
    grid = pd.DataFrame(columns, columns=names)
    for expression in constraints or []:
        grid = grid[constraint_mask(grid, expression)].reset_index(drop=True)
    return grid


GridLike = pd.DataFrame | Mapping[str, Any]


def as_grid(spec: Spec, grid: GridLike, constraints: list[str] | None = None) -> pd.DataFrame:
    """Give the combinations to run, typed, meeting every constraint.

    ``grid`` is a DataFrame of combinations (missing parameters at their default) or a
    mapping of parameter -> values (a scalar or a sequence; `build_grid`'s product).
    """
    if isinstance(grid, pd.DataFrame):
        try:
            frame = normalize_params(spec, grid)
        except KeyError as exc:
            raise SweepError(f"grid: {exc.args[0]}; the spec has {list(spec.params)}") from exc
    else:
        axes = {
            name: list(values)
            if isinstance(values, Iterable) and not isinstance(values, str)
            else [values]
            for name, values in grid.items()
        }
        frame = build_grid(spec, axes)
    for expression in constraints or []:
        frame = frame[constraint_mask(frame, expression)].reset_index(drop=True)
    return frame


def plan_chunks(
    spec: Spec,
    grid: pd.DataFrame,
    n_bars: int,
    n_symbols: int,
    memory_mb: float = DEFAULT_MEMORY_MB,
    max_rows: int | None = None,
) -> Iterator[tuple[int, int]]:
    """Give (start, stop) row ranges whose working set stays within ``memory_mb``.

    The working set of rows a:b is their signal flags plus the indicator outputs of the
    distinct parameter values among them (an indicator depending on no swept parameter counts
    once). A range that would exceed the budget is halved until it fits (or is one row).
    """
    budget = memory_mb * 1024 * 1024
    per_row = FLAG_BYTES * n_bars * n_symbols
    limit = max(1, int(budget // per_row))
    if max_rows is not None:
        limit = max(1, min(limit, max_rows))
    # Per indicator: which distinct parameter values each row needs, and how many outputs.
    keys: list[tuple[np.ndarray, int]] = []
    for ind in spec.indicators.values():
        deps = [p for p in spec.params if p in ind.param_refs()]
        n_out = len(ind.outputs)
        if not deps or grid.empty:
            keys.append((np.zeros(len(grid), dtype=np.int64), n_out))
        else:
            codes = grid.groupby(deps, sort=False).ngroup().to_numpy(dtype=np.int64)
            keys.append((codes, n_out))
    start, total = 0, len(grid)
    while start < total:
        size = min(limit, total - start)
        while size > 1:
            distinct = sum(len(np.unique(c[start : start + size])) * o for c, o in keys)
            cost = size * per_row + distinct * INDICATOR_BYTES * n_bars * n_symbols
            if cost <= budget:
                break
            size //= 2
        yield start, start + size
        start += size


def chunk_size_for(n_bars: int, n_symbols: int, memory_mb: float = DEFAULT_MEMORY_MB) -> int:
    """Give how many combinations one vectorbt call may hold within ``memory_mb`` (2 rows/bar).

    For `workbench.backtest.engine.simulate` over many combinations; sweeps use `plan_chunks`.
    """
    per_combination = 2 * n_bars * n_symbols * BYTES_PER_CELL
    return max(1, int(memory_mb * 1024 * 1024 // per_combination))


@dataclass(frozen=True)
class SweepSettings:
    """Costs and cash of every combination in a sweep."""

    cash: float = 10_000.0
    fee_rate: float = 0.001
    slippage: float = 0.0
    shared_cash: bool = True
    fee_asset: FeeAsset = DEFAULT_FEE_ASSET
    #: the markets' order-size rules by symbol (`workbench.lots`); None: any size (idealized)
    lot_rules: Mapping[str, LotRules] | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "fee_asset", FeeAsset(self.fee_asset))

    @property
    def fill_model(self) -> FillModel:
        """Give the fill model these settings describe."""
        return FillModel(self.fee_rate, self.slippage, self.fee_asset)


def chunk_stats(
    spec: Spec,
    candles: Mapping[str, pd.DataFrame],
    grid: pd.DataFrame,
    settings: SweepSettings,
    start_bar: int = 0,
) -> np.ndarray:
    """Give the statistics of ``grid``'s combinations, (rows, RUN_COLUMNS) float64."""
    return sweep_stats(
        spec,
        candles,
        grid.reset_index(drop=True),
        settings.fill_model,
        settings.cash,
        settings.shared_cash,
        start_bar,
        settings.lot_rules,
    )


def run_chunk(
    spec: Spec,
    candles: Mapping[str, pd.DataFrame],
    grid: pd.DataFrame,
    settings: SweepSettings,
    start_bar: int = 0,
) -> pd.DataFrame:
    """Give one row of statistics per combination of ``grid`` (parameters first)."""
    grid = grid.reset_index(drop=True)
    return stats_table(grid, chunk_stats(spec, candles, grid, settings, start_bar))


def sweep(
    spec: Spec,
    candles: CandlesLike,
    grid: GridLike,
    settings: SweepSettings | None = None,
    chunk_size: int | None = None,
    memory_mb: float = DEFAULT_MEMORY_MB,
    workers: int = 1,
    cluster: str | None = None,
    progress: Callable[[int, int], None] | None = None,
    constraints: list[str] | None = None,
) -> pd.DataFrame:
    """Give statistics for every combination of ``grid``, in grid order.

    ``candles``: one symbol's candles (the spec's symbol) or a mapping symbol -> candles;
    ``grid``: combinations or parameter -> values (see `as_grid`), kept where every one of
    ``constraints`` (such as ``"fast < slow"``) holds. Chunks hold at most ``chunk_size``
    combinations (default: as many as ``memory_mb`` allows, see `plan_chunks`).
    ``workers > 1`` starts a Dask LocalCluster of that many single-threaded processes;
    ``cluster`` is a Dask scheduler address to use instead. ``progress(done, total)`` is
    called after each chunk.
    """
    settings = settings or SweepSettings()
    candles = align_candles(candles, spec.market.symbol)
    grid = as_grid(spec, grid, constraints)
    n_bars = len(next(iter(candles.values())))
    total = len(grid)

    def ranges(n_workers: int) -> Iterator[tuple[int, int]]:
        rows = chunk_size
        if n_workers > 1:
            # Spread the work so that a worker slowed down (by a neighbour's load, a slower
            # machine) leaves at most a small last chunk to wait for: the scheduler hands the
            # next chunk to whichever worker is free. A chunk costs next to nothing beyond its
            # rows (benchmarks/bench_dask.py), so several per worker are cheap.
            spread = max(1, -(-total // (CHUNKS_PER_WORKER * n_workers)))
            rows = min(rows or spread, spread)
        return plan_chunks(spec, grid, n_bars, len(candles), memory_mb, rows)

    # One contiguous row per statistic: the table is built from them without a copy.
    stats = np.empty((len(RUN_COLUMNS), total))
    if workers <= 1 and not cluster:
        for a, b in ranges(1):
            stats[:, a:b] = chunk_stats(spec, candles, grid.iloc[a:b], settings).T
            if progress:
                progress(b, total)
    else:
        from workbench.backtest.cluster import SweepJob, sweep_on_dask

        job = SweepJob.of(spec, candles, settings)
        sweep_on_dask(job, grid, ranges, stats, workers, cluster, progress)
    return stats_table(grid, stats.T)
