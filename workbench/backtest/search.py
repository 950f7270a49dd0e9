"""Bayesian search with Optuna (TPE) over the same parameter space a sweep would cover.

Trials are asked in batches and each batch runs as ONE fused sweep chunk (a small grid), so
the search keeps the sweep's throughput. The sampler is seeded: the same seed gives the same
trials. The result has one row per trial, in trial order: ``trial`` (its number in the
study), ``state`` (``complete``, or ``pruned`` for a trial that breaks a constraint: it is
never run, its statistics are missing), the parameters, then a sweep's statistics, so it is
stored like a sweep.

A search can go on from earlier trials (``history``, a previous result: the command line
keeps it in the database under a study name, see `workbench.store.studies`): they are told to
the sampler before it asks anything, the new trials are numbered after them, and the result
holds them all. The sampler is then seeded with ``seed`` + the number of earlier trials, so
it does not draw again what the first session drew first.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
import pandas as pd

from workbench.backtest.errors import SweepError
from workbench.backtest.stats_nb import INT_STATS, RUN_COLUMNS
from workbench.backtest.sweep import SweepSettings, constraint_mask, run_chunk
from workbench.portfolio.stats import STAT_COLUMNS
from workbench.strategy.model import Spec

COMPLETE = "complete"
PRUNED = "pruned"
# Told to the sampler for a combination whose metric is not a number (no trade, say).
NOT_A_NUMBER_VALUE = -1e12


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
    history: pd.DataFrame | None = None,
    on_batch: Callable[[pd.DataFrame], None] | None = None,
) -> pd.DataFrame:
    """Give one row per trial (``trial``, ``state``, parameters, statistics), in trial order.

    ``trials`` new trials are run after those of ``history`` (an earlier result of this
    function over the same space), which the result repeats first. ``on_batch(rows)`` is
    called with each batch's rows as soon as they are known (to store them as they come).
    """
    try:
        import optuna
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise SweepError("--search optuna needs optuna installed") from exc
    if metric not in STAT_COLUMNS:
        raise SweepError(f"--metric {metric!r}: choose from {list(STAT_COLUMNS)}")
    for name in axes:
        if name not in spec.params:
            raise SweepError(f"--grid {name}: the spec has no such parameter ({list(spec.params)})")
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    settings = settings or SweepSettings()
    earlier = 0 if history is None else len(history)
    # Seeded past the earlier trials: a fresh sampler on the bare seed would draw the very
    # combinations the first session started with.
    sampler = optuna.samplers.TPESampler(seed=seed + earlier)
    study = optuna.create_study(direction="maximize", sampler=sampler)
    distributions = {
        name: optuna.distributions.CategoricalDistribution(list(values))
        for name, values in axes.items()
    }
    parts = []
    if earlier:
        study.add_trials(_earlier_trials(optuna, history, axes, distributions, metric))
        parts.append(history)
    defaults = spec.default_params()
    done = 0
    while done < trials:
        asked = [study.ask(distributions) for _ in range(min(batch, trials - done))]
        grid = pd.DataFrame([{**defaults, **t.params} for t in asked], columns=list(spec.params))
        for name, p in spec.params.items():
            grid[name] = grid[name].astype(np.int64 if p.type is int else np.float64)
        ok = np.ones(len(grid), dtype=bool)
        for expression in constraints or []:
            ok &= constraint_mask(grid, expression)
        ran = run_chunk(spec, candles, grid[ok].reset_index(drop=True), settings)
        rows = _batch_rows(grid, ok, ran, [t.number for t in asked])
        for trial, good, value in zip(asked, ok, rows[metric], strict=True):
            if not good:
                study.tell(trial, state=optuna.trial.TrialState.PRUNED)
            else:
                study.tell(trial, float(value) if np.isfinite(value) else NOT_A_NUMBER_VALUE)
        parts.append(rows)
        if on_batch:
            on_batch(rows)
        done += len(asked)
        if progress:
            progress(done, trials)
    if not parts:
        parts.append(
            _batch_rows(pd.DataFrame(columns=list(spec.params)), np.zeros(0, bool), None, [])
        )
    table = pd.concat(parts, ignore_index=True)
    # History read back from the database comes as JSON numbers: one dtype per column.
    types: dict[str, Any] = {
        n: np.int64 if p.type is int else np.float64 for n, p in spec.params.items()
    }
    types |= {c: np.float64 for c in RUN_COLUMNS} | {c: "Int64" for c in INT_STATS}
    return table.astype(types | {"trial": np.int64})


def _batch_rows(
    grid: pd.DataFrame, ok: np.ndarray, ran: pd.DataFrame | None, numbers: list[int]
) -> pd.DataFrame:
    """Give every asked trial's row: the run ones' statistics, missing ones for the pruned."""
    stats = pd.DataFrame(index=range(len(grid)), columns=list(RUN_COLUMNS), dtype=np.float64)
    if ran is not None and len(ran):
        stats.loc[np.flatnonzero(ok), list(RUN_COLUMNS)] = ran[list(RUN_COLUMNS)].to_numpy(
            dtype=np.float64
        )
    head = pd.DataFrame(
        {
            "trial": np.asarray(numbers, dtype=np.int64),
            "state": np.where(ok, COMPLETE, PRUNED),
        }
    )
    return pd.concat([head, grid.reset_index(drop=True), stats], axis=1)


def _earlier_trials(
    optuna: Any,
    history: pd.DataFrame,
    axes: Mapping[str, list[Any]],
    distributions: Mapping[str, Any],
    metric: str,
) -> list[Any]:
    """Give the history's rows as finished Optuna trials of the same space."""
    out = []
    for row in history.itertuples(index=False):
        values = row._asdict()
        params = {name: _plain(values[name]) for name in axes}
        for name, value in params.items():
            if value not in axes[name]:
                raise SweepError(
                    f"trial {values['trial']} of the study has {name}={value}, outside the "
                    f"grid now given ({axes[name]}): give the study's grid or a new study name"
                )
        if values["state"] == PRUNED:
            state, value = optuna.trial.TrialState.PRUNED, None
        else:
            score = float(values[metric])
            state = optuna.trial.TrialState.COMPLETE
            value = score if np.isfinite(score) else NOT_A_NUMBER_VALUE
        out.append(
            optuna.trial.create_trial(
                params=params, distributions=dict(distributions), value=value, state=state
            )
        )
    return out


def _plain(value: Any) -> Any:
    return value.item() if isinstance(value, np.generic) else value
