"""Bayesian search with Optuna (TPE) over the same parameter space a sweep would cover.

Trials are asked in batches and each batch runs as ONE fused sweep chunk (a small grid), so
the search keeps the sweep's throughput. The sampler is seeded: the same seed gives the same trials.
Results have the same shape as a sweep's (one row per trial), so they are stored the same way.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
import pandas as pd

from workbench.backtest.sweep import SweepError, SweepSettings, constraint_mask, run_chunk
from workbench.strategy.model import Spec


def optuna_search(
    spec: Spec,
    candles: Mapping[str, pd.DataFrame],
    axes: Mapping[str, list[Any]],
    trials: int = 100,
    metric: str = "sharpe",
    constraints: list[str] | None = None,
    settings: SweepSettings | None = None,
    batch: int = 16,
    seed: int = 42,
    progress: Callable[[int, int], None] | None = None,
) -> pd.DataFrame:
    """Give one row (parameters + statistics) per trial, in trial order."""
    try:
        import optuna
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise SweepError("--search optuna needs optuna installed") from exc
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    settings = settings or SweepSettings()
    study = optuna.create_study(direction="maximize", sampler=optuna.samplers.TPESampler(seed=seed))
    distributions = {
        name: optuna.distributions.CategoricalDistribution(list(values))
        for name, values in axes.items()
    }
    defaults = spec.default_params()
    parts, done = [], 0
    while done < trials:
        asked = [study.ask(distributions) for _ in range(min(batch, trials - done))]
        rows = [{**defaults, **t.params} for t in asked]
        grid = pd.DataFrame(rows, columns=list(spec.params))
        for name, p in spec.params.items():
            grid[name] = grid[name].astype(np.int64 if p.type is int else np.float64)
        ok = np.ones(len(grid), dtype=bool)
        for expression in constraints or []:
            ok &= constraint_mask(grid, expression)
        table = run_chunk(spec, candles, grid[ok].reset_index(drop=True), settings)
        values = iter(table[metric].to_numpy())
        for trial, good in zip(asked, ok, strict=True):
            if not good:
                study.tell(trial, state=optuna.trial.TrialState.PRUNED)
                continue
            value = float(next(values))
            study.tell(trial, value if np.isfinite(value) else -1e12)
        parts.append(table)
        done += len(asked)
        if progress:
            progress(done, trials)
    return pd.concat(parts, ignore_index=True)
