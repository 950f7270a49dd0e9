"""The compiled run equals vectorbt's, piece by piece and row by row.

`vectorbt_simulate(...)` (vectorbt's ``from_signals`` executes and accounts the planned
orders, numpy computes the statistics) is the reference; the compiled run is also checked
against a plain bar-by-bar loop in test_oracle.py. Here: the rule kernel's generated source,
the numba statistics against `workbench.portfolio.stats`, whole sweep
rows and a backtest's equity and trades against vectorbt for every example strategy (all with
stops or ATR stops), on one symbol and on two with shared or separate cash.
"""

from __future__ import annotations

import itertools
import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from shipped import CANDLE_DIR, shipped

from workbench.backtest.engine import align_candles, simulate
from workbench.backtest.fused import stats_table, sweep_stats
from workbench.backtest.reference import vectorbt_simulate
from workbench.backtest.stats_nb import N_STATS, equity_stats_nb, trade_stats_nb
from workbench.backtest.sweep import (
    SweepSettings,
    build_grid,
    plan_chunks,
    sweep,
)
from workbench.fills import FeeAsset, FillModel
from workbench.portfolio.stats import STAT_COLUMNS, equity_stats, trade_stats
from workbench.strategy.loader import load_spec
from workbench.strategy.params import range_values
from workbench.strategy.risk import FixedFraction, Risk
from workbench.strategy.rules_jit import (
    compile_rules,
    kernel_source,
)

ROOT = Path(__file__).resolve().parents[2]
SPEC_FILES = sorted((ROOT / "data" / "strategies").glob("*.json"))
FILL = FillModel(fee_rate=0.001, slippage=0.0005)
REL = 1e-9


@pytest.fixture(scope="module")
def eth() -> dict[str, pd.DataFrame]:
    symbol, frame = shipped(CANDLE_DIR / "ETH_BTC-5m.csv.gz")
    return {symbol: frame}


@pytest.fixture(scope="module")
def pair() -> dict[str, pd.DataFrame]:
    frames = dict(shipped(CANDLE_DIR / n) for n in ("ETH_BTC-5m.csv.gz", "LTC_BTC-5m.csv.gz"))
    return align_candles(frames, "ETH/BTC")


def spread_grid(spec, per_axis: int = 2, limit: int = 8) -> pd.DataFrame:
    """Give a few combinations spread over each parameter's range."""
    axes = {}
    for name, p in spec.params.items():
        values = range_values(p)
        step = max(1, (len(values) - 1) // max(per_axis - 1, 1))
        axes[name] = values[::step][:per_axis]
    grid = build_grid(spec, axes)
    return grid.iloc[np.linspace(0, len(grid) - 1, min(limit, len(grid))).astype(int)]


def assert_rows_equal(got: pd.DataFrame, want: pd.DataFrame) -> None:
    if "refused_orders" not in want:  # vectorbt's run: no market rules
        assert (got.pop("refused_orders") == 0).all()
    assert list(got.columns) == list(want.columns)
    for column in want.columns:
        np.testing.assert_allclose(
            got[column].to_numpy(dtype=float),
            want[column].to_numpy(dtype=float),
            rtol=REL,
            atol=1e-12,
            err_msg=column,
        )


def test_a_spec_name_cannot_write_code_into_the_kernel() -> None:
    raw = json.loads((ROOT / "data" / "strategies" / "sma_cross.json").read_text())
    raw["name"] = 'x"""\nraise SystemExit("injected")\n"""'
    spec = load_spec(raw)
    source = kernel_source(spec)
    assert "\nraise" not in source
    compile_rules(spec)  # imports the generated module: it must not raise


def test_numba_statistics_equal_the_portfolio_definitions() -> None:
    rng = np.random.default_rng(3)
    index = pd.date_range("2024-01-01", periods=3000, freq="5min", tz="UTC")
    for shape in ("walk", "flat_then_loss", "ruin"):
        if shape == "walk":
            equity = 1000.0 * np.exp(np.cumsum(rng.normal(0, 0.003, len(index))))
        elif shape == "flat_then_loss":
            equity = np.full(len(index), 1000.0)
            equity[1500:] = 900.0
        else:
            equity = np.linspace(1000.0, -5.0, len(index))
        row = np.full(N_STATS, np.nan)
        equity_stats_nb(equity, 1000.0, 105120.0, 3000 / 105120, 300, row)
        want = equity_stats(equity, 1000.0, index, 300)
        for name, values in want.items():
            got = row[STAT_COLUMNS.index(name)]
            np.testing.assert_allclose(got, values[0], rtol=1e-12, err_msg=f"{shape} {name}")
    pnl = rng.normal(0, 10, (2, 50))
    counts = np.array([50, 17])
    row = np.full(N_STATS, np.nan)
    trade_stats_nb(pnl, counts, row)
    flat = np.concatenate([pnl[0, :50], pnl[1, :17]])
    want = trade_stats(flat, np.zeros(len(flat), dtype=np.int64), 1)
    for name, values in want.items():
        assert row[STAT_COLUMNS.index(name)] == pytest.approx(values[0], rel=1e-12), name


def with_every_stop(spec):
    """Give the spec with each protective exit it lacks added (stop, target, trailing)."""
    risk = spec.risk
    return replace(
        spec,
        risk=replace(
            risk,
            stop_loss=risk.stop_loss or 0.02,
            take_profit=risk.take_profit or 0.04,
            trailing_stop=risk.trailing_stop or 0.03,
        ),
    )


@pytest.mark.parametrize("stops", ["own", "all"])
@pytest.mark.parametrize("spec_file", SPEC_FILES, ids=lambda p: p.stem)
def test_fused_rows_equal_vectorbt_rows(spec_file: Path, stops: str, eth, pair) -> None:
    spec = load_spec(spec_file)
    if stops == "all":
        spec = with_every_stop(spec)
    grid = spread_grid(spec).reset_index(drop=True)
    for candles, shared in ((eth, True), (pair, True), (pair, False)):
        want = vectorbt_simulate(spec, candles, grid, FILL, 10_000.0, shared).stats()
        got = stats_table(grid, sweep_stats(spec, candles, grid, FILL, 10_000.0, shared))
        assert_rows_equal(got, want)
        assert want["trades"].sum() > 0


@pytest.mark.parametrize("fee_asset", [FeeAsset.RECEIVED, FeeAsset.BNB])
@pytest.mark.parametrize("spec_file", SPEC_FILES, ids=lambda p: p.stem)
def test_fused_rows_equal_vectorbt_rows_for_each_fee_asset(
    spec_file: Path, fee_asset: FeeAsset, eth, pair
) -> None:
    spec = load_spec(spec_file)
    fill = replace(FILL, fee_asset=fee_asset)
    grid = spread_grid(spec, limit=4).reset_index(drop=True)
    for candles, shared in ((eth, True), (pair, False)):
        want = vectorbt_simulate(spec, candles, grid, fill, 10_000.0, shared).stats()
        got = stats_table(grid, sweep_stats(spec, candles, grid, fill, 10_000.0, shared))
        assert_rows_equal(got, want)
        assert want["trades"].sum() > 0


def test_fused_rows_honour_a_warm_up_start(eth) -> None:
    spec = load_spec(ROOT / "data" / "strategies" / "macd_trend_atr.json")
    grid = spread_grid(spec).reset_index(drop=True)
    want = vectorbt_simulate(spec, eth, grid, FILL, 5_000.0, True, start_bar=2000).stats()
    got = stats_table(grid, sweep_stats(spec, eth, grid, FILL, 5_000.0, True, start_bar=2000))
    assert_rows_equal(got, want)


def test_comparison_notices_a_different_fee(eth) -> None:
    """The row comparison can fail: a fee of 0.11 % instead of 0.1 % is caught."""
    spec = load_spec(ROOT / "data" / "strategies" / "ema_cross_rsi.json")
    grid = spread_grid(spec).reset_index(drop=True)
    want = vectorbt_simulate(spec, eth, grid, FILL, 10_000.0, True).stats()
    other = FillModel(fee_rate=0.0011, slippage=FILL.slippage)
    got = stats_table(grid, sweep_stats(spec, eth, grid, other, 10_000.0, True))
    with pytest.raises(AssertionError):
        assert_rows_equal(got, want)


def test_shared_cash_runs_out_and_entries_are_skipped(pair) -> None:
    """All-in sizing on two symbols: the second entry finds no cash; both paths agree."""
    spec = load_spec(ROOT / "data" / "strategies" / "sma_cross.json")
    spec = replace(spec, risk=Risk(stop_loss=0.01, sizing=FixedFraction(1.0)))
    grid = build_grid(spec, {"fast": [5, 10], "slow": [20, 40]})
    sim = simulate(spec, pair, grid, FILL, 10_000.0, True)
    want = vectorbt_simulate(spec, pair, grid, FILL, 10_000.0, True).stats()
    assert_rows_equal(sim.stats(), want)
    got = stats_table(grid, sweep_stats(spec, pair, grid, FILL, 10_000.0, True))
    assert_rows_equal(got, want)
    # The equity of a shared pool starts at the pool's cash, not once per symbol.
    assert sim.equity()[0] == pytest.approx(10_000.0)
    trades = sim.trades()
    both_open = 0
    for _, rows in trades.groupby("combination"):
        a, b = (rows[rows.symbol == s] for s in pair)
        for entry in a.entry_time:
            both_open += ((b.entry_time < entry) & (b.exit_time > entry)).sum()
    assert both_open == 0, "with all cash in one symbol the other cannot open"


def test_sweep_chunks_change_nothing(eth) -> None:
    spec = load_spec(ROOT / "data" / "strategies" / "bollinger_reversion.json")
    grid = build_grid(spec, {"period": [10, 20, 30], "mult": [1.5, 2.5], "rsi_low": [25, 40]})
    settings = SweepSettings(fee_rate=0.001, slippage=0.0005)
    whole = sweep(spec, eth, grid, settings)
    seen: list[tuple[int, int]] = []
    chunked = sweep(
        spec, eth, grid, settings, chunk_size=5, progress=lambda d, t: seen.append((d, t))
    )
    pd.testing.assert_frame_equal(whole, chunked)
    assert seen[-1] == (12, 12) and len(seen) == 3
    want = vectorbt_simulate(spec, eth, grid, FILL, settings.cash, True).stats()
    assert_rows_equal(whole, want)


def test_grid_is_the_cartesian_product_in_order(eth) -> None:
    spec = load_spec(ROOT / "data" / "strategies" / "macd_trend_atr.json")
    axes = {"fast": [6, 8, 10], "signal": [5, 9], "atr_mult": [1.5, 2.0, 3.5]}
    grid = build_grid(spec, axes)
    names = list(spec.params)
    values = [axes.get(n, [spec.params[n].default]) for n in names]
    expected = pd.DataFrame(list(itertools.product(*values)), columns=names)
    pd.testing.assert_frame_equal(grid, expected, check_dtype=False)
    assert grid.dtypes["fast"] == np.int64 and grid.dtypes["atr_mult"] == np.float64


def test_chunks_cover_the_grid_within_the_memory_budget() -> None:
    spec = load_spec(ROOT / "data" / "strategies" / "bollinger_reversion.json")
    grid = build_grid(
        spec, {"period": list(range(5, 200)), "mult": [1.0, 1.5, 2.0, 2.5], "rsi_low": [30, 40]}
    )
    n_bars, budget_mb = 50_000, 64
    ranges = list(plan_chunks(spec, grid, n_bars, 1, budget_mb))
    assert ranges[0][0] == 0 and ranges[-1][1] == len(grid)
    assert all(a == b for (_, a), (b, _) in itertools.pairwise(ranges))
    for a, b in ranges:
        distinct_bands = len(grid.iloc[a:b].groupby(["period", "mult"]))
        cost = (b - a) * n_bars + (distinct_bands * 5 + 1) * 16 * n_bars
        assert cost <= budget_mb * 1024 * 1024 or b - a == 1
    assert len(ranges) > 1


def assert_trades_equal(got: pd.DataFrame, want: pd.DataFrame) -> None:
    assert len(got) == len(want)
    for column in want.columns:
        if want[column].dtype.kind == "f":
            np.testing.assert_allclose(got[column], want[column], rtol=REL, err_msg=column)
        else:
            assert list(got[column]) == list(want[column]), column


@pytest.mark.parametrize("spec_file", SPEC_FILES, ids=lambda p: p.stem)
def test_a_backtest_keeps_vectorbts_equity_and_trades(spec_file: Path, eth, pair) -> None:
    spec = with_every_stop(load_spec(spec_file))
    grid = spread_grid(spec, limit=3).reset_index(drop=True)
    for candles, shared in ((eth, True), (pair, True), (pair, False)):
        got = simulate(spec, candles, grid, FILL, 10_000.0, shared, start_bar=500)
        want = vectorbt_simulate(spec, candles, grid, FILL, 10_000.0, shared, start_bar=500)
        assert_rows_equal(got.stats(), want.stats())
        np.testing.assert_allclose(got.equity(), want.equity(), rtol=REL)
        assert_trades_equal(got.trades(), want.trades())
        assert (got.trades()["exit_reason"] == "open").any() or len(got.trades()) > 0


def test_a_simulation_gives_its_vectorbt_portfolio(eth) -> None:
    spec = load_spec(ROOT / "data" / "strategies" / "sma_cross.json")
    grid = build_grid(spec, {"fast": [10], "slow": [30]})
    sim = simulate(spec, eth, grid, FILL)
    value = np.asarray(sim.portfolio.value()).ravel()
    assert value[-1] == pytest.approx(sim.equity()[-1, 0], rel=REL)
