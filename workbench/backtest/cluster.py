"""Sweeps on Dask: a LocalCluster of worker processes, or a scheduler's address.

What every task of a sweep shares (the spec, the custom indicator kinds it uses, the candles,
the costs) travels once per worker as one scattered `SweepJob`; a task then carries only its
rows of the grid and gives back their statistics. Workers are other processes, possibly on
other machines: they know the built-in indicator kinds, and get the custom ones
(`workbench.strategy.custom.register_indicator`) from the job, so a spec using them sweeps
there as it does here. A custom kind's functions travel by value (`pack_kinds`): the
workers need not be able to import the notebook, script or module they were written in.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections import OrderedDict
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from workbench.backtest.errors import SweepError
from workbench.strategy.custom import install_kinds, pack_kinds
from workbench.strategy.model import Spec

# Specs parsed on this worker, by job: a sweep's tasks parse its spec once per process.
_parsed: OrderedDict[str, Spec] = OrderedDict()
_PARSED_KEPT = 8
_kinds_in_force: bytes | None = None  # the packed kinds installed last on this worker
CONNECT_TIMEOUT_S = 10.0  # for a scheduler address to answer


@dataclass(frozen=True)
class SweepJob:
    """What every task of one sweep shares: sent to each worker once."""

    spec_raw: dict[str, Any]
    kinds: bytes  # the custom indicator kinds the spec uses (`pack_kinds`)
    candles: dict[str, pd.DataFrame]
    settings: Any  # SweepSettings
    token: str  # names the spec and its kinds (`of`): parsed once per worker for all

    @classmethod
    def of(cls, spec: Spec, candles: Mapping[str, pd.DataFrame], settings: Any) -> SweepJob:
        names = {ind.kind for ind in spec.indicators.values()}
        kinds = pack_kinds(names)
        return cls(spec.raw, kinds, dict(candles), settings, _token(spec.raw, kinds))

    def spec(self) -> Spec:
        """Give the job's spec, parsed once per process, with its custom kinds in force
        (indicators find their kind by name when computed: another job's may be there)."""
        global _kinds_in_force
        if _kinds_in_force != self.kinds:
            install_kinds(self.kinds)
            _kinds_in_force = self.kinds
        found = _parsed.get(self.token)
        if found is None:
            from workbench.strategy.loader import load_spec

            found = _parsed[self.token] = load_spec(self.spec_raw)
            while len(_parsed) > _PARSED_KEPT:
                _parsed.popitem(last=False)
        return found


def _token(spec_raw: dict[str, Any], kinds: bytes) -> str:
    """Name a spec and the custom kinds it uses by their content: a worker parses it once
    for every sweep of it (walk-forward windows, Optuna rounds, a benchmark's rounds)."""
    try:
        text = json.dumps(spec_raw, sort_keys=True, allow_nan=True)
    except (TypeError, ValueError):  # not plain JSON: parsed once per sweep
        return uuid.uuid4().hex
    return hashlib.sha256(text.encode() + b"\0" + kinds).hexdigest()


def run_task(job: SweepJob, grid: pd.DataFrame) -> np.ndarray:
    """Give the statistics of ``grid``'s rows (a worker's side of a sweep)."""
    from workbench.backtest.sweep import chunk_stats

    return chunk_stats(job.spec(), job.candles, grid, job.settings)


def sweep_on_dask(
    job: SweepJob,
    grid: pd.DataFrame,
    ranges: Callable[[int], Iterator[tuple[int, int]]],
    stats: np.ndarray,
    workers: int,
    cluster: str | None,
    progress: Callable[[int, int], None] | None,
) -> None:
    """Fill ``stats`` (STAT_COLUMNS x rows) with the grid's statistics, computed on Dask.

    ``cluster`` is a scheduler address; without one, a LocalCluster of ``workers``
    single-threaded processes lives for this sweep. ``ranges(n_workers)`` gives the chunks.
    """
    try:
        from dask.distributed import Client, LocalCluster, as_completed
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise SweepError("--workers/--cluster need dask[distributed] installed") from exc
    local = None
    if cluster:
        try:
            client = Client(cluster, timeout=CONNECT_TIMEOUT_S)
        except OSError as exc:
            raise SweepError(
                f"--cluster {cluster}: no Dask scheduler answers there ({exc})"
            ) from exc
    else:
        local = LocalCluster(
            n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=None
        )
        client = Client(local)
    try:
        n_workers = len(client.scheduler_info().get("workers", {})) or workers
        shared = client.scatter(job, broadcast=True)
        futures = {
            client.submit(run_task, shared, grid.iloc[a:b], pure=False): (a, b)
            for a, b in ranges(max(n_workers, 2))
        }
        done = 0
        for future in as_completed(futures):
            a, b = futures[future]
            stats[:, a:b] = future.result().T
            future.release()
            done += b - a
            if progress:
                progress(done, len(grid))
    finally:
        client.close()
        if local is not None:
            local.close()
