"""Sweeps, searches and the analysis around them."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from shipped import CANDLE_DIR, shipped

from workbench.backtest.engine import backtest
from workbench.backtest.montecarlo import monte_carlo
from workbench.backtest.overfit import deflated_sharpe
from workbench.backtest.search import optuna_search
from workbench.backtest.sweep import (
    SweepError,
    SweepSettings,
    build_grid,
    chunk_size_for,
    constraint_mask,
    parse_grid_arg,
    sweep,
)
from workbench.backtest.walkforward import walk_forward, windows
from workbench.strategy.loader import load_spec

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def eth() -> dict[str, pd.DataFrame]:
    symbol, frame = shipped(CANDLE_DIR / "ETH_BTC-5m.csv.gz")
    return {symbol: frame}


@pytest.fixture(scope="module")
def spec():
    return load_spec(ROOT / "data" / "strategies" / "ema_cross_rsi.json")


def test_grid_ranges_are_inclusive_and_typed(spec) -> None:
    assert parse_grid_arg(spec, "fast=5:20:5") == ("fast", [5, 10, 15, 20])
    assert parse_grid_arg(spec, "slow=30,40") == ("slow", [30, 40])
    with pytest.raises(SweepError, match="NAME"):
        parse_grid_arg(spec, "nope=1:2:1")


def test_constraints_filter_without_evaluating_python(spec) -> None:
    grid = build_grid(spec, {"fast": [5, 30], "slow": [20, 40]}, ["fast < slow"])
    assert list(zip(grid.fast, grid.slow, strict=True)) == [(5, 20), (5, 40), (30, 40)]
    assert constraint_mask(grid, "slow - fast >= 20 and not fast > 10").tolist() == [
        False,
        True,
        False,
    ]
    with pytest.raises(SweepError):
        constraint_mask(grid, "__import__('os')")


def test_sweep_rows_equal_single_backtests_whatever_the_chunking(spec, eth) -> None:
    grid = build_grid(spec, {"fast": [5, 12], "slow": [26, 60]})
    settings = SweepSettings(fee_rate=0.001, slippage=0.0005)
    whole = sweep(spec, eth, grid, settings)
    chunked = sweep(spec, eth, grid, settings, chunk_size=1)
    pd.testing.assert_frame_equal(whole, chunked)
    for row in whole.itertuples():
        single = backtest(
            spec, eth, {"fast": row.fast, "slow": row.slow}, fees=0.001, slippage=0.0005
        )
        assert row.final_equity == pytest.approx(single.stats["final_equity"], rel=1e-12)
        assert row.trades == single.stats["trades"]


def test_chunk_size_bounds_memory() -> None:
    assert chunk_size_for(100_000, 1, memory_mb=1024) == 13
    assert chunk_size_for(10_000_000, 1, memory_mb=1) == 1


def test_optuna_search_is_seeded_and_stays_in_the_space(spec, eth) -> None:
    axes = {"fast": list(range(5, 30, 5)), "slow": list(range(20, 80, 10))}
    first = optuna_search(spec, eth, axes, trials=8, batch=4, seed=7)
    again = optuna_search(spec, eth, axes, trials=8, batch=4, seed=7)
    pd.testing.assert_frame_equal(first, again)
    assert set(first.fast) <= set(axes["fast"]) and len(first) == 8


def test_walk_forward_chains_out_of_sample_windows(spec, eth) -> None:
    grid = build_grid(spec, {"fast": [8, 12], "slow": [26, 40]})
    result = walk_forward(spec, eth, grid, pd.Timedelta("7D"), pd.Timedelta("3D"))
    index = next(iter(eth.values())).index
    assert len(result.windows) == len(windows(index, pd.Timedelta("7D"), pd.Timedelta("3D")))
    assert result.oos_equity.index.is_monotonic_increasing
    assert result.oos_equity.index[0] >= index[0] + pd.Timedelta("7D")
    anchored = windows(index, pd.Timedelta("7D"), pd.Timedelta("3D"), anchored=True)
    assert {a for a, _, _ in anchored} == {0}


def test_monte_carlo_is_reproducible_and_shuffle_keeps_final_equity() -> None:
    pnl = np.array([100.0, -50.0, 30.0, -80.0, 120.0, -10.0])
    one = monte_carlo(pnl, 1000.0, paths=500, method="shuffle", seed=1)
    two = monte_carlo(pnl, 1000.0, paths=500, method="shuffle", seed=1)
    np.testing.assert_array_equal(one.max_drawdown, two.max_drawdown)
    np.testing.assert_allclose(one.final_equity, one.final_equity[0], rtol=1e-12)
    boot = monte_carlo(pnl, 1000.0, paths=500, method="bootstrap", seed=1, loss=0.05)
    assert 0.0 < boot.summary["probability_of_loss"] < 1.0
    block = monte_carlo(pnl, 1000.0, paths=50, method="block", block=2, seed=1)
    assert block.final_equity.shape == (50,)


def test_deflated_sharpe_falls_as_more_combinations_are_tried() -> None:
    rng = np.random.default_rng(0)
    returns = rng.normal(0.001, 0.01, 2000)
    trials = rng.normal(0.0, 0.03, 500)
    few = deflated_sharpe(returns, trials[:5], n_trials=5)["deflated_sharpe"]
    many = deflated_sharpe(returns, trials, n_trials=500)["deflated_sharpe"]
    assert 0.0 <= many < few <= 1.0
