"""Optuna search: one row per trial (pruned ones marked), and studies kept in the database."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from shipped import CANDLE_DIR, shipped
from typer.testing import CliRunner

from workbench.backtest.search import optuna_search
from workbench.backtest.sweep import SweepSettings, sweep
from workbench.cli import app
from workbench.data import import_file
from workbench.portfolio.stats import STAT_COLUMNS
from workbench.store import Store, StoreError
from workbench.strategy.loader import load_spec

ROOT = Path(__file__).resolve().parents[2]
SPEC_FILE = ROOT / "data" / "strategies" / "ema_cross_rsi.json"
# Half of these combinations break "fast < slow": the sampler meets pruned trials early.
AXES = {"fast": [10, 20, 30, 40, 50], "slow": [20, 30, 40]}
SETTINGS = SweepSettings(fee_rate=0.001, slippage=0.0005)


@pytest.fixture(scope="module")
def eth() -> dict[str, pd.DataFrame]:
    symbol, frame = shipped(CANDLE_DIR / "ETH_BTC-5m.csv.gz")
    return {symbol: frame}


@pytest.fixture(scope="module")
def spec():
    return load_spec(SPEC_FILE)


def test_every_trial_is_a_row_and_pruned_ones_are_marked(spec, eth) -> None:
    table = optuna_search(
        spec, eth, AXES, trials=12, constraints=["fast < slow"], settings=SETTINGS, batch=4
    )
    assert table["trial"].tolist() == list(range(12))
    broke = (table["fast"] >= table["slow"]).to_numpy()
    assert broke.any() and not broke.all()
    assert table["state"].tolist() == ["pruned" if b else "complete" for b in broke]
    assert table.loc[broke, list(STAT_COLUMNS)].isna().all().all()
    # The complete trials' numbers are a sweep's numbers for the same combinations.
    ran = table.loc[~broke, list(spec.params)].reset_index(drop=True)
    want = sweep(spec, eth, ran, SETTINGS)
    got = table.loc[~broke].reset_index(drop=True)
    for column in STAT_COLUMNS:
        np.testing.assert_allclose(
            got[column].to_numpy(dtype=float), want[column].to_numpy(dtype=float), rtol=1e-12
        )


def test_a_search_goes_on_from_its_history(spec, eth) -> None:
    first = optuna_search(spec, eth, AXES, trials=6, constraints=["fast < slow"], batch=3)
    more = optuna_search(
        spec, eth, AXES, trials=5, constraints=["fast < slow"], batch=3, history=first
    )
    assert more["trial"].tolist() == list(range(11))
    pd.testing.assert_frame_equal(more.iloc[:6], first)
    # Seeded past the history: the new session does not start with the first one's draws.
    fresh = optuna_search(spec, eth, AXES, trials=5, constraints=["fast < slow"], batch=3)
    new = more.iloc[6:][list(AXES)].to_numpy()
    assert not np.array_equal(new, fresh[list(AXES)].to_numpy())
    with pytest.raises(ValueError, match="outside the grid"):
        optuna_search(spec, eth, {"fast": [10, 20], "slow": [30]}, trials=1, history=first)


def test_trials_are_kept_batch_by_batch_so_an_interrupted_search_loses_one_batch_at_most(
    spec, eth, store: Store
) -> None:
    store.studies.begin("interrupted", spec.name, {"grid": AXES})

    def keep(rows: pd.DataFrame) -> None:
        store.studies.add_trials("interrupted", rows, list(spec.params))

    def interrupt(done: int, total: int) -> None:
        if done >= 8:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        optuna_search(spec, eth, AXES, trials=20, batch=4, on_batch=keep, progress=interrupt)
    kept = store.studies.trials("interrupted")
    assert kept["trial"].tolist() == list(range(8))
    history = store.studies.begin("interrupted", spec.name, {"grid": AXES})
    resumed = optuna_search(spec, eth, AXES, trials=4, batch=4, history=history)
    assert resumed["trial"].tolist() == list(range(12))
    with pytest.raises(StoreError, match=r"study 'interrupted' searched something else \(grid"):
        store.studies.begin("interrupted", spec.name, {"grid": {"fast": [10]}})


@pytest.fixture(scope="module", params=["duckdb", "postgres"])
def db(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> str:
    """Give a store holding the shipped ETH/BTC candles, once per backend."""
    if request.param == "postgres":
        target = request.getfixturevalue("pg_server").create_database(f"study_cli_{os.getpid()}")
    else:
        target = str(tmp_path_factory.mktemp("study") / "wb.duckdb")
    with Store.open(target) as store:
        import_file(store, CANDLE_DIR / "ETH_BTC-5m.csv.gz", exchange="local")
    return target


def cli(db: str, *args: str) -> dict:
    result = CliRunner().invoke(app, [*args, "--db", str(db), "--json"])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_the_sweep_command_resumes_a_study_stored_in_the_database(db: str) -> None:
    args = ["sweep", str(SPEC_FILE), "--search", "optuna", "--grid", "fast=10:50:10"]
    args += ["--grid", "slow=20:40:10", "--constraint", "fast<slow", "--study", "ema"]
    first = cli(db, *args, "--trials", "6")
    second = cli(db, *args, "--trials", "4")
    with Store.open(db, read_only=True) as store:
        trials = store.studies.trials("ema")
        rows = store.runs.sweep(second["run_id"], order_by="sharpe")
    assert trials["trial"].tolist() == list(range(10))
    complete = trials[trials["state"] == "complete"]
    # The second run stores every trial of the study; its best is the study's best.
    assert len(rows) == second["trials"] == 10 and second["combinations"] == len(complete)
    assert second["top"][0]["sharpe"] == pytest.approx(complete["sharpe"].max(), rel=1e-12)
    assert first["top"][0]["sharpe"] <= second["top"][0]["sharpe"]
    other = CliRunner().invoke(app, [*args, "--trials", "2", "--fees", "0.002", "--db", str(db)])
    assert other.exit_code == 1 and "fee_rate: 0.001, now 0.002" in other.stderr
    grid_only = CliRunner().invoke(app, ["sweep", str(SPEC_FILE), "--study", "x", "--db", str(db)])
    assert grid_only.exit_code == 1 and "--search optuna" in grid_only.stderr
