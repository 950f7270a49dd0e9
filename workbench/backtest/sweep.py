"""Parameter sweeps: every combination of a grid, in memory-bounded chunks, locally or on Dask.

A sweep evaluates the grid chunk by chunk (each chunk is one vectorbt call over
``chunk_size`` combinations), keeps only one row of statistics per combination, and so needs
memory for one chunk per worker whatever the grid size. vectorbt needs roughly 125-285 bytes
per simulated row x combination (NOTES.md); `chunk_size_for` budgets for the worst case.
"""

from __future__ import annotations

import ast
import itertools
import operator
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from workbench.backtest.engine import simulate
from workbench.fills import FillModel
from workbench.strategy.model import Spec

BYTES_PER_CELL = 400  # vectorbt's worst case (~285) plus signals, plan arrays and stats
DEFAULT_MEMORY_MB = 1024


class SweepError(ValueError):
    """A grid or constraint that cannot be swept, with the reason."""


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
    """Give every combination of ``axes`` (others at their default) meeting all constraints."""
    names = list(spec.params)
    values = [list(axes.get(n, [spec.params[n].default])) for n in names]
    grid = pd.DataFrame(list(itertools.product(*values)), columns=names)
    for name in names:
        grid[name] = grid[name].astype(np.int64 if spec.params[name].type is int else np.float64)
    for expression in constraints or []:
        grid = grid[constraint_mask(grid, expression)].reset_index(drop=True)
    return grid


def chunk_size_for(n_bars: int, n_symbols: int, memory_mb: float = DEFAULT_MEMORY_MB) -> int:
    """Give how many combinations one chunk may hold within ``memory_mb`` (2 rows per bar)."""
    per_combination = 2 * n_bars * n_symbols * BYTES_PER_CELL
    return max(1, int(memory_mb * 1024 * 1024 // per_combination))


@dataclass(frozen=True)
class SweepSettings:
    """Costs and cash of every combination in a sweep."""

    cash: float = 10_000.0
    fee_rate: float = 0.001
    slippage: float = 0.0
    shared_cash: bool = True


def run_chunk(
    spec: Spec,
    candles: Mapping[str, pd.DataFrame],
    grid: pd.DataFrame,
    settings: SweepSettings,
    start_bar: int = 0,
) -> pd.DataFrame:
    """Give one row of statistics per combination of ``grid`` (parameters first)."""
    fill_model = FillModel(settings.fee_rate, settings.slippage)
    sim = simulate(
        spec,
        candles,
        grid.reset_index(drop=True),
        fill_model,
        settings.cash,
        settings.shared_cash,
        start_bar,
    )
    return sim.stats()


def _chunks(grid: pd.DataFrame, size: int) -> Iterator[pd.DataFrame]:
    for start in range(0, len(grid), size):
        yield grid.iloc[start : start + size]


def _spec_worker(raw: dict[str, Any]) -> Spec:
    from workbench.strategy.loader import load_spec

    return load_spec(raw)


def _remote_chunk(raw: dict[str, Any], candles: Any, grid: pd.DataFrame, settings: Any) -> Any:
    return run_chunk(_spec_worker(raw), candles, grid, settings)


def sweep(
    spec: Spec,
    candles: Mapping[str, pd.DataFrame],
    grid: pd.DataFrame,
    settings: SweepSettings | None = None,
    chunk_size: int | None = None,
    memory_mb: float = DEFAULT_MEMORY_MB,
    workers: int = 1,
    cluster: str | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> pd.DataFrame:
    """Give statistics for every combination of ``grid``, in grid order.

    ``workers > 1`` starts a Dask LocalCluster of that many single-threaded processes;
    ``cluster`` is a Dask scheduler address to use instead. ``progress(done, total)`` is called
    after each chunk.
    """
    settings = settings or SweepSettings()
    n_bars = len(next(iter(candles.values())))
    size = chunk_size or chunk_size_for(n_bars, len(candles), memory_mb)
    if workers > 1 or cluster:
        # Spread the work: at least two chunks per worker so none sits idle.
        size = max(1, min(size, -(-len(grid) // (2 * max(workers, 1)))))
    total, done, parts = len(grid), 0, []
    if workers <= 1 and not cluster:
        for chunk in _chunks(grid, size):
            parts.append(run_chunk(spec, candles, chunk, settings))
            done += len(chunk)
            if progress:
                progress(done, total)
    else:
        parts = _dask_sweep(spec, candles, grid, settings, size, workers, cluster, progress)
    if not parts:
        return run_chunk(spec, candles, grid, settings).iloc[0:0]
    return pd.concat(parts, ignore_index=True)


def _dask_sweep(
    spec: Spec,
    candles: Mapping[str, pd.DataFrame],
    grid: pd.DataFrame,
    settings: SweepSettings,
    size: int,
    workers: int,
    cluster: str | None,
    progress: Callable[[int, int], None] | None,
) -> list[pd.DataFrame]:
    try:
        from dask.distributed import Client, LocalCluster, as_completed
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise SweepError("--workers/--cluster need dask[distributed] installed") from exc
    local = None
    if cluster:
        client = Client(cluster)
    else:
        local = LocalCluster(
            n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=None
        )
        client = Client(local)
    try:
        data = client.scatter(dict(candles), broadcast=True)
        chunks = list(_chunks(grid, size))
        futures = {
            client.submit(_remote_chunk, spec.raw, data, chunk, settings, pure=False): i
            for i, chunk in enumerate(chunks)
        }
        parts: list[pd.DataFrame | None] = [None] * len(chunks)
        done = 0
        for future in as_completed(futures):
            i = futures[future]
            parts[i] = future.result()
            future.release()
            done += len(chunks[i])
            if progress:
                progress(done, len(grid))
        return [p for p in parts if p is not None]
    finally:
        client.close()
        if local is not None:
            local.close()
