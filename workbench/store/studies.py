"""Optuna studies kept in the database, so a search can go on where an earlier one stopped.

Tables come from migration 0009_studies, the same on DuckDB and PostgreSQL. A study is a
name, what it searches (its *setup*: the spec's hash, the grid, the constraints, the metric,
the data and the costs: anything that changes what a trial's number means) and its trials,
written batch by batch as the search tells them to the sampler.
`workbench.backtest.search.optuna_search` takes the trials back as its ``history``.
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pandas as pd

from workbench.portfolio.stats import STAT_COLUMNS
from workbench.store.database import Database
from workbench.store.errors import StoreError
from workbench.store.runs import dumps


class StudyStore:
    """Studies and their trials in a store's database (DuckDB or PostgreSQL)."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def setup(self, study: str) -> dict[str, Any] | None:
        """Give what a stored study searches, or None when there is no such study."""
        row = self.db.fetchone("SELECT setup_json FROM studies WHERE study = ?", [study])
        return None if row is None else json.loads(row[0])

    def begin(self, study: str, spec_name: str, setup: dict[str, Any]) -> pd.DataFrame:
        """Give the trials of ``study`` so far, creating it when new.

        StoreError when the stored study searched something else: it names what differs.
        """
        wanted = json.loads(dumps(setup))
        # Two searches starting one study together: one inserts it, the other compares.
        self.db.execute(
            "INSERT INTO studies (study, spec_name, setup_json) VALUES (?, ?, ?)"
            " ON CONFLICT (study) DO NOTHING",
            [study, spec_name, dumps(wanted)],
        )
        stored = self.setup(study)
        if stored is None:
            raise StoreError(f"study {study!r} was not stored: the database refused the row")
        differ = [k for k in sorted(set(stored) | set(wanted)) if stored.get(k) != wanted.get(k)]
        if differ:
            shown = "; ".join(f"{k}: {stored.get(k)!r}, now {wanted.get(k)!r}" for k in differ)
            raise StoreError(
                f"study {study!r} searched something else ({shown}): give the same spec, grid, "
                f"constraints, metric, data and costs, or a new study name"
            )
        return self.trials(study)

    def add_trials(self, study: str, rows: pd.DataFrame, param_names: list[str]) -> None:
        """Write trials (rows of an `optuna_search` result) in one transaction.

        StoreError when the study holds one of their numbers already (nothing is written).
        """
        if rows.empty:
            return
        stats = [c for c in rows.columns if c not in ("trial", "state", *param_names)]
        frame = pd.DataFrame(
            {
                "study": study,
                "trial": rows["trial"].to_numpy(dtype=np.int64),
                "state": rows["state"].astype(str).to_numpy(),
                "params_json": [dumps(p) for p in rows[param_names].to_dict(orient="records")],
                "stats_json": [
                    dumps({k: v for k, v in s.items() if not pd.isna(v)})
                    for s in rows[stats].to_dict(orient="records")
                ],
            }
        )
        with self.db.transaction() as session:
            # fetchall: a DuckDB cursor with a result left unread takes no frame.
            ((told,),) = session.fetchall(
                "SELECT min(trial) FROM study_trials WHERE study = ? AND trial >= ?",
                [study, int(frame["trial"].min())],
            )
            if told is not None:
                raise StoreError(
                    f"study {study!r} has trial {told} already: another search told it "
                    f"meanwhile; start this one again to go on from every trial stored"
                )
            session.insert_frame("study_trials", frame)

    def trials(self, study: str) -> pd.DataFrame:
        """Give a study's trials in order: trial, state, parameters, statistics."""
        raw = self.db.frame(
            "SELECT trial, state, params_json, stats_json FROM study_trials WHERE study = ?"
            " ORDER BY trial",
            [study],
        )
        params = pd.DataFrame([json.loads(p) for p in raw["params_json"]], index=raw.index)
        stats = pd.DataFrame([json.loads(s) for s in raw["stats_json"]], index=raw.index)
        # A pruned trial stores no statistics: its columns come from the others, or the
        # sweep's columns when no trial ran yet.
        stats = stats.reindex(columns=list(stats.columns) or list(STAT_COLUMNS))
        stats = stats.astype(np.float64)
        head = raw[["trial", "state"]].astype({"trial": np.int64})
        return pd.concat([head, params, stats], axis=1)
