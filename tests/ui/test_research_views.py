"""The research app's views without a browser: each analysis gives what the library gives."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from workbench.backtest.engine import backtest
from workbench.backtest.montecarlo import monte_carlo
from workbench.store import Store
from workbench.ui.backtest_charts import closed_trades, monte_carlo_bands
from workbench.ui.research import ResearchApp


@pytest.fixture
def app(served_db: Path) -> ResearchApp:
    return ResearchApp(served_db)


def candles(db: Path, symbol: str = "ETH/BTC") -> pd.DataFrame:
    with Store.open(db, read_only=True) as store:
        return store.candles.read("local", symbol, "5m")


async def test_backtest_view_runs_the_chosen_spec_params_and_costs(
    app: ResearchApp, served_db: Path
) -> None:
    app.setup.params.fast = 9
    app.setup.fee_rate = 0.002
    result = await app.backtest.run()
    assert result is not None and app.jobs.message == "backtest done."
    # The app sizes orders by the market's stored rules (lot step, minimums) unless told not to.
    rules = app.setup.lot_rules()
    assert rules is not None
    direct = backtest(
        app.setup.spec(), candles(served_db), {"fast": 9}, fees=0.002, lot_rules=rules
    )
    assert result.stats == direct.stats
    app.setup.market_rules = False
    ideal = await app.backtest.run()
    assert (
        ideal.stats == backtest(app.setup.spec(), candles(served_db), {"fast": 9}, fees=0.002).stats
    )


async def test_a_clicked_sweep_cell_shows_the_backtest_of_that_row(app: ResearchApp) -> None:
    app.sweep.x_values, app.sweep.y_values = "5:15:5", "30,60"
    table = await app.sweep.run()
    assert table is not None and len(table) == 6
    await app.sweep.show(4)
    row = table.iloc[4]
    shown = app.sweep.detail[1][0][1][1].value  # the stats table of the detail panel
    direct = backtest(
        app.setup.spec(), app.setup.candles(), {"fast": row["fast"], "slow": row["slow"]}
    )
    assert shown.set_index("stat").loc["trades", "value"] == str(direct.stats["trades"])
    assert np.isclose(direct.stats["sharpe"], row["sharpe"])


async def test_walk_forward_uses_the_sweep_grid(app: ResearchApp) -> None:
    app.sweep.x_values, app.sweep.y_values = "5,10", "30,60"
    result = await app.walk_forward.run()
    assert result is not None
    assert result.summary["combinations_per_window"] == 4
    assert len(app.walk_forward.body) == 2


async def test_monte_carlo_resamples_the_latest_backtest(app: ResearchApp) -> None:
    assert await app.monte_carlo.run() is None  # nothing to resample yet
    result = await app.backtest.run()
    mc = await app.monte_carlo.run()
    pnl = closed_trades(result.trades)["pnl"].to_numpy()
    direct = monte_carlo(pnl, result.cash, paths=2_000, seed=42)
    np.testing.assert_array_equal(mc.max_drawdown, direct.max_drawdown)
    bands = monte_carlo_bands(pnl, result.cash, paths=2_000, seed=42)
    assert np.isclose(bands["p50"].iloc[-1], direct.summary["final_equity"]["p50"])


async def test_saved_runs_are_listed_and_compared(app: ResearchApp) -> None:
    await app.backtest.run()
    await app.backtest._save()
    first = app.backtest.saved_run
    app.setup.params.fast = 20
    await app.backtest.run()
    await app.backtest._save()
    second = app.backtest.saved_run
    listed = app.runs.table.value
    assert {first, second} <= set(listed["run_id"])
    # Shown as traders read them; the frame the view keeps holds the numbers.
    shown, stored = (f.set_index("run_id").loc[second] for f in (listed, app.runs.runs))
    assert shown["total_return"] == f"{100 * stored['total_return']:+.2f}%"
    assert shown["sharpe"] == f"{stored['sharpe']:.2f}"
    table = app.runs.compare([first, second])
    assert list(table.columns) == [first, second]
    assert table.loc["params", second] == '{"fast": 20, "rsi_max": 70, "slow": 26}'


async def test_another_symbol_and_timeframe_are_backtested_on_their_own_data(
    app: ResearchApp, served_db: Path
) -> None:
    app.setup.series = "local · LTC/BTC · 5m"
    app.setup.timeframe = "1h"
    result = await app.backtest.run()
    with Store.open(served_db, read_only=True) as store:
        hourly = store.candles.resample("local", "LTC/BTC", "5m", "1h")
    assert result.symbols == ["LTC/BTC"] and len(result.equity) == len(hourly)


def test_changing_strategy_rebuilds_parameters_and_sweep_axes(app: ResearchApp) -> None:
    app.setup.strategy = "bollinger_reversion"
    names = list(app.setup.spec().params)
    assert list(app.setup.param_values()) == names
    assert app.sweep.x == names[0]
