"""Optuna studies kept in the store, on both backends: begun once, trials told back as they
were written (pruned ones without statistics), a study that searched something else refused."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from workbench.portfolio.stats import STAT_COLUMNS
from workbench.store import Store, StoreError

SETUP = {"grid": {"fast": [10, 20], "slow": [30, 40]}, "metric": "sharpe", "fee_rate": 0.001}


def _trials(first: int) -> pd.DataFrame:
    """Give three trials numbered from `first` as a search gives them: the middle one pruned."""
    stats = {c: [0.5 + first, np.nan, -1.25 + first] for c in STAT_COLUMNS}
    stats["trades"] = pd.array([3, pd.NA, 7], dtype="Int64")
    return pd.DataFrame(
        {
            "trial": np.arange(first, first + 3),
            "state": ["complete", "pruned", "complete"],
            "fast": [10, 20, 10],
            "slow": [30, 20, 40],
            **stats,
        }
    )


def test_trials_come_back_as_they_were_told_pruned_ones_without_statistics(store: Store) -> None:
    assert store.studies.setup("ema") is None
    begun = store.studies.begin("ema", "ema_cross", SETUP)
    assert begun.empty and list(begun.columns[:2]) == ["trial", "state"]
    store.studies.add_trials("ema", _trials(0), ["fast", "slow"])
    store.studies.add_trials("ema", _trials(3), ["fast", "slow"])
    store.studies.add_trials("ema", _trials(0).iloc[:0], ["fast", "slow"])  # nothing: no write
    got = store.studies.begin("ema", "ema_cross", SETUP)
    assert got["trial"].tolist() == list(range(6))
    assert got["state"].tolist() == ["complete", "pruned", "complete"] * 2
    assert got[["fast", "slow"]].to_numpy().tolist() == [[10, 30], [20, 20], [10, 40]] * 2
    assert got.loc[got["state"] == "pruned", list(STAT_COLUMNS)].isna().all().all()
    done = got[got["state"] == "complete"]
    assert done["sharpe"].tolist() == [0.5, -1.25, 3.5, 1.75]
    assert done["trades"].tolist() == [3.0, 7.0, 3.0, 7.0]
    assert store.studies.setup("ema") == SETUP


def test_a_study_that_searched_something_else_is_refused_naming_what_differs(
    store: Store,
) -> None:
    store.studies.begin("ema", "ema_cross", SETUP)
    store.studies.add_trials("ema", _trials(0), ["fast", "slow"])
    with pytest.raises(StoreError, match=r"study 'ema' searched something else \(fee_rate: 0.001"):
        store.studies.begin("ema", "ema_cross", {**SETUP, "fee_rate": 0.002})
    # Refused, it lost nothing.
    assert len(store.studies.trials("ema")) == 3 and store.studies.setup("ema") == SETUP


def test_a_trial_told_twice_is_refused_and_its_batch_not_half_written(store: Store) -> None:
    store.studies.begin("ema", "ema_cross", SETUP)
    store.studies.add_trials("ema", _trials(0), ["fast", "slow"])
    overlapping = pd.concat([_trials(3), _trials(2)], ignore_index=True)
    with pytest.raises(StoreError, match=r"study 'ema' has trial 2 already"):
        store.studies.add_trials("ema", overlapping, ["fast", "slow"])
    assert store.studies.trials("ema")["trial"].tolist() == [0, 1, 2]
