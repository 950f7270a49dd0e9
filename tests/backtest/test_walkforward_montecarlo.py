"""Walk-forward and Monte Carlo against plain loops that share nothing with them but inputs.

Walk-forward: the oracle cuts the calendar windows itself, picks each window's parameters
from vectorbt's run of the training bars (`workbench.backtest.reference`, not the compiled
sweep), and trades the next window with the plain bar-by-bar loop of test_oracle.py, warmed
up on the training bars and starting from the equity the previous window ended with.
Monte Carlo: the oracle draws the documented random numbers and then compounds, tracks peaks
and drawdowns, finds recoveries and interpolates percentiles with plain Python per path.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from backtest.test_oracle import oracle
from shipped import CANDLE_DIR, shipped

from workbench.backtest.engine import backtest
from workbench.backtest.montecarlo import PERCENTILES, monte_carlo
from workbench.backtest.reference import vectorbt_simulate
from workbench.backtest.sweep import SweepSettings, build_grid
from workbench.backtest.walkforward import walk_forward
from workbench.fills import FillModel
from workbench.strategy.loader import load_spec
from workbench.strategy.vectorized import evaluate

ROOT = Path(__file__).resolve().parents[2]
SETTINGS = SweepSettings(cash=10_000.0, fee_rate=0.001, slippage=0.0005)
FILLS = FillModel(fee_rate=SETTINGS.fee_rate, slippage=SETTINGS.slippage)


@pytest.fixture(scope="module")
def eth() -> pd.DataFrame:
    return shipped(CANDLE_DIR / "ETH_BTC-5m.csv.gz")[1]


def plain_walk_forward(spec, candles: pd.DataFrame, grid: pd.DataFrame, train, test, anchored):
    """Give (chosen parameters per window, stitched out-of-sample equity) by plain loops."""
    times = candles.index
    chosen, pieces, equity_now = [], [], SETTINGS.cash
    test_start = times[0] + train
    while True:
        test_end = test_start + test
        train_start = times[0] if anchored else test_start - train
        training = candles[(times >= train_start) & (times < test_start)]
        testing = candles[(times >= test_start) & (times < test_end)]
        if len(testing) < 2:
            break
        scores = vectorbt_simulate(
            spec, {"ETH/BTC": training}, grid, FILLS, SETTINGS.cash, True
        ).stats()["sharpe"]
        best, best_score = None, -math.inf
        for params, score in zip(grid.to_dict(orient="records"), scores, strict=True):
            if not math.isnan(score) and score > best_score:  # the first of equals wins
                best, best_score = params, score
        assert best is not None
        chosen.append(best)
        # Trade it on training + test bars, acting only from the test window on: a signal on
        # the last training bar fills at the first test bar's open.
        span = pd.concat([training, testing])
        signals = evaluate(spec, span, best)
        warm = len(training) - 1
        for frame in (signals.entries, signals.short_entries):
            if frame is not None:
                frame.iloc[:warm] = False
        _, equity = oracle(spec, span, signals, FILLS, equity_now)
        piece = pd.Series(equity[len(training) :], index=testing.index)
        pieces.append(piece)
        equity_now = piece.iloc[-1]
        test_start = test_end
    return chosen, pd.concat(pieces)


@pytest.mark.parametrize("anchored", [False, True], ids=["rolling", "anchored"])
def test_walk_forward_equals_a_plain_loop_choice_by_choice_and_bar_by_bar(
    eth: pd.DataFrame, anchored: bool
) -> None:
    spec = load_spec(ROOT / "data" / "strategies" / "ema_cross_rsi.json")
    axes = {"fast": [6, 12], "slow": [26, 50]}
    train, test = pd.Timedelta("8D"), pd.Timedelta("5D")
    ours = walk_forward(spec, eth, axes, train, test, anchored, "sharpe", SETTINGS)
    grid = build_grid(spec, axes)
    chosen, equity = plain_walk_forward(spec, eth, grid, train, test, anchored)

    assert len(chosen) >= 3  # several windows, so choices can differ between them
    assert ours.windows[list(grid.columns)].to_dict(orient="records") == chosen
    assert len({tuple(c.values()) for c in chosen}) > 1 or anchored
    pd.testing.assert_index_equal(ours.oos_equity.index, equity.index)
    np.testing.assert_allclose(ours.oos_equity.to_numpy(), equity.to_numpy(), rtol=1e-9)
    assert ours.summary["oos_total_return"] == pytest.approx(
        equity.iloc[-1] / SETTINGS.cash - 1, rel=1e-9
    )


def plain_draws(method: str, n: int, paths: int, block: int, seed: int) -> list[list[int]]:
    """Give each path's trade order from the random numbers montecarlo documents drawing."""
    rng = np.random.default_rng(seed)
    if method == "shuffle":
        keys = rng.random((paths, n)).tolist()
        return [sorted(range(n), key=row.__getitem__) for row in keys]
    if method == "bootstrap":
        return rng.integers(0, n, size=(paths, n)).tolist()
    size = max(1, min(block, n))
    starts = rng.integers(0, n - size + 1, size=(paths, -(-n // size))).tolist()
    return [[s + k for s in row for k in range(size)][:n] for row in starts]


def plain_percentile(values: list[float], q: float) -> float:
    """Give the q-th percentile with linear interpolation between closest ranks."""
    ordered = sorted(values)
    rank = (len(ordered) - 1) * q / 100
    low = math.floor(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (rank - low) * (ordered[high] - ordered[low])


def plain_monte_carlo(pnl: list[float], cash: float, orders: list[list[int]], loss: float):
    before, returns = cash, []
    for p in pnl:  # each trade's return on the equity it started from
        returns.append(p / before)
        before += p
    finals, drawdowns, recoveries = [], [], []
    for order in orders:
        equity, peak, path = cash, cash, []
        worst, trough, trough_peak = 0.0, None, None
        for k, i in enumerate(order):
            equity *= 1 + returns[i]
            peak = max(peak, equity)
            path.append(equity)
            fall = 1 - equity / peak
            if fall > worst:
                worst, trough, trough_peak = fall, k, peak
        finals.append(equity)
        drawdowns.append(worst)
        if trough is None:
            recoveries.append(0.0)
        else:
            back = [k for k in range(trough, len(path)) if path[k] >= trough_peak]
            recoveries.append(float(back[0] - trough) if back else math.nan)
    recovered = [r for r in recoveries if not math.isnan(r)]
    return {
        "final_equity": {f"p{q}": plain_percentile(finals, q) for q in PERCENTILES},
        "max_drawdown": {f"p{q}": plain_percentile(drawdowns, q) for q in PERCENTILES},
        "recovery_trades": {
            f"p{q}": plain_percentile(recovered, q) if recovered else None for q in PERCENTILES
        },
        "never_recovered": (len(recoveries) - len(recovered)) / len(recoveries),
        "probability_of_loss": sum(f < cash * (1 - loss) for f in finals) / len(finals),
    }


@pytest.mark.parametrize("method", ["shuffle", "bootstrap", "block"])
def test_monte_carlo_summary_equals_a_plain_loop_for_a_fixed_seed(
    eth: pd.DataFrame, method: str
) -> None:
    spec = load_spec(ROOT / "data" / "strategies" / "sma_cross.json")
    result = backtest(spec, eth, cash=SETTINGS.cash, fees=SETTINGS.fee_rate)
    closed = result.trades[result.trades["exit_reason"] != "open"]
    pnl = closed["pnl"].tolist()
    assert len(pnl) >= 30
    paths, block, seed, loss = 400, 4, 11, 0.02
    ours = monte_carlo(result, paths=paths, method=method, block=block, seed=seed, loss=loss)
    orders = plain_draws(method, len(pnl), paths, block, seed)
    want = plain_monte_carlo(pnl, result.cash, orders, loss)
    for key in ("final_equity", "max_drawdown", "recovery_trades"):
        for q, value in want[key].items():
            got = ours.summary[key][q]
            assert (got is None) == (value is None), (key, q)
            if value is not None:
                assert got == pytest.approx(value, rel=1e-12, abs=1e-12), (key, q)
    assert ours.summary["never_recovered"] == pytest.approx(want["never_recovered"])
    assert ours.summary["probability_of_loss"] == pytest.approx(want["probability_of_loss"])
    # A different seed draws other paths (the comparison can fail).
    other = plain_monte_carlo(
        pnl, result.cash, plain_draws(method, len(pnl), paths, block, 12), loss
    )
    assert other["max_drawdown"] != want["max_drawdown"]
