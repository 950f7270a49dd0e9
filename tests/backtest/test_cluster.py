"""Sweeps on Dask: a LocalCluster of two worker processes gives the in-process sweep's rows.

One cluster serves the module (starting one costs seconds); the data is one shipped month.
"""

from __future__ import annotations

import json
import math
from collections import deque
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from shipped import CANDLE_DIR, shipped
from typer.testing import CliRunner

from workbench.backtest.sweep import SweepSettings, sweep
from workbench.cli import app
from workbench.data import import_file
from workbench.store import Store
from workbench.strategy.custom import register_indicator, unregister_indicator
from workbench.strategy.loader import load_spec

ROOT = Path(__file__).resolve().parents[2]
SPEC_FILE = ROOT / "data" / "strategies" / "ema_cross_rsi.json"
SETTINGS = SweepSettings(fee_rate=0.001, slippage=0.0005)


def momentum(source: np.ndarray, period: int) -> np.ndarray:
    """Price change over ``period`` bars."""
    out = np.full(len(source), np.nan)
    out[period:] = source[period:] - source[:-period]
    return out


class Momentum:
    def __init__(self, period: int) -> None:
        self.window: deque[float] = deque(maxlen=period + 1)

    def update(self, x: float) -> tuple[float]:
        self.window.append(x)
        full = len(self.window) == self.window.maxlen
        return (x - self.window[0] if full else math.nan,)


@pytest.fixture(scope="module")
def address() -> Iterator[str]:
    from dask.distributed import LocalCluster

    with LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
    ) as cluster:
        yield cluster.scheduler_address


@pytest.fixture(scope="module")
def eth() -> dict[str, pd.DataFrame]:
    symbol, frame = shipped(CANDLE_DIR / "ETH_BTC-5m.csv.gz")
    return {symbol: frame}


@pytest.fixture
def custom_spec() -> Iterator:
    """A spec whose entry needs a custom kind the worker processes never registered."""
    register_indicator(
        "test_cluster_momentum",
        momentum,
        Momentum,
        args={"period": 10},
        first_value=lambda period: period,
        replace=True,
    )
    yield load_spec(
        {
            "name": "ema_momentum",
            "market": {"symbol": "ETH/BTC", "timeframe": "5m"},
            "params": {
                "fast": {"default": 12, "range": [6, 30, 6]},
                "slow": {"default": 40, "range": [30, 60, 10]},
                "lookback": {"default": 12, "range": [6, 24, 6]},
            },
            "indicators": {
                "ema_fast": {"kind": "ema", "period": "$fast"},
                "ema_slow": {"kind": "ema", "period": "$slow"},
                "mom": {"kind": "test_cluster_momentum", "period": "$lookback"},
            },
            "entry": {"all": [{"crosses_above": ["ema_fast", "ema_slow"]}, {"gt": ["mom", 0]}]},
            "exit": {"crosses_below": ["ema_fast", "ema_slow"]},
            "risk": {"stop_loss": 0.03, "sizing": {"method": "fixed_fraction", "fraction": 0.5}},
        }
    )
    unregister_indicator("test_cluster_momentum")


def test_a_sweep_on_two_workers_equals_the_one_in_process_custom_indicator_and_all(
    address: str, custom_spec, eth
) -> None:
    grid = {"fast": [6, 12, 18], "slow": [30, 45], "lookback": [6, 12, 24]}
    here = sweep(custom_spec, eth, grid, SETTINGS, constraints=["fast < slow"])
    seen: list[tuple[int, int]] = []
    there = sweep(
        custom_spec,
        eth,
        grid,
        SETTINGS,
        cluster=address,
        constraints=["fast < slow"],
        progress=lambda done, total: seen.append((done, total)),
    )
    pd.testing.assert_frame_equal(there, here, check_exact=True)
    # The rows were spread over both workers, in more than one chunk each.
    assert len(seen) >= 4 and seen[-1] == (len(here), len(here))
    assert here["trades"].sum() > 0 and here["total_return"].nunique() > 1


def falling(source: np.ndarray, period: int) -> np.ndarray:
    """The momentum kind, redefined: the price's fall over ``period`` bars."""
    return -momentum(source, period)


class Falling(Momentum):
    def update(self, x: float) -> tuple[float]:
        return (-super().update(x)[0],)


def test_a_kind_redefined_between_sweeps_of_one_spec_is_the_new_one_on_the_workers(
    address: str, custom_spec, eth
) -> None:
    """Workers keep a spec parsed for every sweep of it, by its content and its kinds'
    code: a notebook that redefines a kind and sweeps again gets the new one there too."""
    grid = {"fast": [6, 12], "slow": [30, 45], "lookback": [6, 12]}
    first = sweep(custom_spec, eth, grid, SETTINGS, cluster=address)
    again = sweep(custom_spec, eth, grid, SETTINGS, cluster=address)  # the parsed one kept
    pd.testing.assert_frame_equal(again, first, check_exact=True)
    register_indicator(
        "test_cluster_momentum", falling, Falling, args={"period": 10},
        first_value=lambda period: period, replace=True,
    )  # fmt: skip
    redefined = load_spec(custom_spec.raw)
    here = sweep(redefined, eth, grid, SETTINGS)
    there = sweep(redefined, eth, grid, SETTINGS, cluster=address)
    pd.testing.assert_frame_equal(there, here, check_exact=True)
    assert not there["total_return"].equals(first["total_return"])
    register_indicator(
        "test_cluster_momentum", momentum, Momentum, args={"period": 10},
        first_value=lambda period: period, replace=True,
    )  # fmt: skip
    back = sweep(custom_spec, eth, grid, SETTINGS, cluster=address)  # parsed before, kept
    pd.testing.assert_frame_equal(back, first, check_exact=True)


def test_the_sweep_command_runs_on_a_cluster_address(address: str, eth, tmp_path: Path) -> None:
    db = tmp_path / "wb.duckdb"
    with Store.open(db) as store:
        import_file(store, CANDLE_DIR / "ETH_BTC-5m.csv.gz", exchange="local")
    args = ["sweep", str(SPEC_FILE), "--grid", "fast=6:18:6", "--grid", "slow=26,40"]
    # Sized freely, as the in-process sweep below (the store has the market's lot rules).
    args += ["--fees", "0.001", "--slippage", "0.0005", "--ideal-sizes"]
    args += ["--db", str(db), "--json"]
    result = CliRunner().invoke(app, [*args, "--cluster", address])
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    with Store.open(db, read_only=True) as store:
        stored = store.runs.sweep(out["run_id"], order_by="sharpe")
    want = sweep(
        load_spec(SPEC_FILE), eth, {"fast": [6, 12, 18], "slow": [26, 40]}, SETTINGS
    ).sort_values(["sharpe"], ascending=False, kind="stable")
    np.testing.assert_allclose(stored["sharpe"], want["sharpe"], rtol=1e-12)
    assert stored[["fast", "slow"]].values.tolist() == want[["fast", "slow"]].values.tolist()


def test_a_cluster_address_where_no_scheduler_answers_is_named(
    eth, monkeypatch: pytest.MonkeyPatch
) -> None:
    from workbench import WorkbenchError

    monkeypatch.setattr("workbench.backtest.cluster.CONNECT_TIMEOUT_S", 0.5)
    with pytest.raises(WorkbenchError, match=r"tcp://127\.0\.0\.1:9"):
        sweep(load_spec(SPEC_FILE), eth, {"fast": [6]}, cluster="tcp://127.0.0.1:9")
