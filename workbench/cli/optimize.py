"""`workbench sweep | walkforward | montecarlo`: optimization and robustness of strategies."""

from __future__ import annotations

import importlib
from typing import Annotated, Any

import numpy as np
import pandas as pd
import typer

from workbench.cli.backtest_options import (
    CashOpt,
    ConstraintOpt,
    EndOpt,
    ExchangeOpt,
    FeeAssetOpt,
    FeesOpt,
    GridOpt,
    IdealOpt,
    MetricOpt,
    SeparateOpt,
    SlipOpt,
    SpecArg,
    StartOpt,
    SymbolOpt,
    TimeframeOpt,
    fmt,
    json_safe,
    load_inputs,
    load_lot_rules,
    progress_bar,
    save_run,
)
from workbench.cli.common import DbOption, JsonOption, fail, print_frame, print_json, settings_with
from workbench.fills import DEFAULT_FEE_ASSET
from workbench.store import Store, StoreError


def sweep_command(
    spec_path: SpecArg,
    grid: GridOpt = None,
    constraint: ConstraintOpt = None,
    metric: MetricOpt = "sharpe",
    search: Annotated[str, typer.Option("--search", help="grid | optuna")] = "grid",
    trials: Annotated[int, typer.Option("--trials", help="optuna trials")] = 100,
    seed: Annotated[int, typer.Option("--seed")] = 42,
    top: Annotated[int, typer.Option("--top", help="rows to print")] = 10,
    workers: Annotated[int, typer.Option("--workers", help="local processes (Dask)")] = 1,
    cluster: Annotated[str | None, typer.Option("--cluster", help="Dask scheduler")] = None,
    memory_mb: Annotated[float, typer.Option("--memory-mb", help="per chunk")] = 1024.0,
    symbol: SymbolOpt = None,
    timeframe: TimeframeOpt = None,
    start: StartOpt = None,
    end: EndOpt = None,
    cash: CashOpt = 10_000.0,
    fees: FeesOpt = 0.001,
    fee_asset: FeeAssetOpt = DEFAULT_FEE_ASSET,
    slippage: SlipOpt = 0.0,
    separate_cash: SeparateOpt = False,
    ideal_sizes: IdealOpt = False,
    exchange: ExchangeOpt = None,
    db: DbOption = None,
    as_json: JsonOption = False,
) -> None:
    """Sweep a parameter grid (or search it with Optuna); store one row per combination."""
    sw = importlib.import_module("workbench.backtest.sweep")  # the module, not the function
    from workbench.backtest.persist import save_table
    from workbench.backtest.search import optuna_search

    spec, candles, exch, db_path = load_inputs(
        spec_path, symbol, timeframe, start, end, exchange, db
    )
    rules = load_lot_rules(db_path, exch, list(candles), ideal_sizes)
    settings = sw.SweepSettings(cash, fees, slippage, not separate_cash, fee_asset, rules)
    try:
        axes = dict(sw.parse_grid_arg(spec, g) for g in grid or [])
        with progress_bar(f"{search} {spec.name}") as bar:
            task = bar.add_task("run", total=None)

            def tick(done: int, total: int) -> None:
                bar.update(task, completed=done, total=total)

            if search == "optuna":
                table = optuna_search(
                    spec,
                    candles,
                    axes,
                    trials,
                    metric,
                    constraint,
                    settings,
                    seed=seed,
                    progress=tick,
                )
            elif search == "grid":
                combos = sw.build_grid(spec, axes, constraint)
                table = sw.sweep(
                    spec,
                    candles,
                    combos,
                    settings,
                    memory_mb=memory_mb,
                    workers=workers,
                    cluster=cluster,
                    progress=tick,
                )
            else:
                fail(f"--search {search!r}: choose grid or optuna")
    except sw.SweepError as exc:
        fail(str(exc))
    if table.empty:
        fail("no combination meets the constraints")
    if metric not in table.columns:
        fail(f"--metric {metric!r}: choose from {list(table.columns[len(spec.params) :])}")
    ranked = table.sort_values(metric, ascending=False, na_position="last")
    best = ranked.iloc[0].to_dict()
    guard = _deflated(spec, candles, table, best, settings)
    index = next(iter(candles.values())).index
    run_id = save_run(
        db_path,
        save_table,
        "optuna" if search == "optuna" else "sweep",
        spec,
        table,
        best,
        exch,
        list(candles),
        index,
        cash,
        fees,
        slippage,
        not separate_cash,
        {
            "metric": metric,
            "grid": grid or [],
            "constraints": constraint or [],
            "fee_asset": str(fee_asset),
            **guard,
        },
    )
    if as_json:
        print_json(
            {
                "run_id": run_id,
                "combinations": len(table),
                "overfitting": json_safe(guard),
                "top": json_safe(ranked.head(top).to_dict(orient="records")),
            }
        )
        return
    print_frame(ranked.head(top).map(fmt), title=f"top {top} of {len(table)} by {metric}")
    typer.echo(
        f"run {run_id}: {len(table)} combinations tried; deflated Sharpe of the best "
        f"{fmt(guard['deflated_sharpe'])} (P[true Sharpe > best-of-{len(table)} luck])"
    )


def _deflated(spec: Any, candles: Any, table: pd.DataFrame, best: dict, settings: Any) -> dict:
    from workbench.backtest.engine import simulate
    from workbench.backtest.overfit import deflated_sharpe
    from workbench.portfolio.stats import periods_per_year

    params = pd.DataFrame([{k: best[k] for k in spec.params}]).astype(
        {k: np.int64 if p.type is int else np.float64 for k, p in spec.params.items()}
    )
    sim = simulate(
        spec,
        candles,
        params,
        settings.fill_model,
        settings.cash,
        settings.shared_cash,
        lot_rules=settings.lot_rules,
    )
    equity = sim.equity()[:, 0]
    returns = np.diff(np.concatenate([[settings.cash], equity])) / np.concatenate(
        [[settings.cash], equity[:-1]]
    )
    per_bar = table["sharpe"].to_numpy(dtype=float) / np.sqrt(
        periods_per_year(spec.market.timeframe_seconds)
    )
    return deflated_sharpe(returns, per_bar, n_trials=len(table))


def walkforward_command(
    spec_path: SpecArg,
    grid: GridOpt = None,
    constraint: ConstraintOpt = None,
    train: Annotated[str, typer.Option("--train", help="training span, e.g. 30d")] = "30d",
    test: Annotated[str, typer.Option("--test", help="test span, e.g. 7d")] = "7d",
    anchored: Annotated[bool, typer.Option("--anchored")] = False,
    metric: MetricOpt = "sharpe",
    symbol: SymbolOpt = None,
    timeframe: TimeframeOpt = None,
    start: StartOpt = None,
    end: EndOpt = None,
    cash: CashOpt = 10_000.0,
    fees: FeesOpt = 0.001,
    fee_asset: FeeAssetOpt = DEFAULT_FEE_ASSET,
    slippage: SlipOpt = 0.0,
    separate_cash: SeparateOpt = False,
    ideal_sizes: IdealOpt = False,
    exchange: ExchangeOpt = None,
    db: DbOption = None,
    as_json: JsonOption = False,
) -> None:
    """Walk forward: optimize on each training window, trade the next test window."""
    sw = importlib.import_module("workbench.backtest.sweep")  # the module, not the function
    from workbench.backtest.persist import save_table
    from workbench.backtest.walkforward import walk_forward

    spec, candles, exch, db_path = load_inputs(
        spec_path, symbol, timeframe, start, end, exchange, db
    )
    rules = load_lot_rules(db_path, exch, list(candles), ideal_sizes)
    settings = sw.SweepSettings(cash, fees, slippage, not separate_cash, fee_asset, rules)
    try:
        combos = sw.build_grid(
            spec, dict(sw.parse_grid_arg(spec, g) for g in grid or []), constraint
        )
        with progress_bar(f"walk-forward {spec.name}") as bar:
            task = bar.add_task("run", total=None)
            result = walk_forward(
                spec,
                candles,
                combos,
                _span(train),
                _span(test),
                anchored,
                metric,
                settings,
                progress=lambda d, t: bar.update(task, completed=d, total=t),
            )
    except (sw.SweepError, ValueError) as exc:
        fail(str(exc))
    windows = result.windows
    run_id = save_run(
        db_path,
        save_table,
        "walkforward",
        spec,
        windows.assign(**{m: windows[f"oos_{m}"] for m in ("cagr", "total_return")}),
        {**windows.iloc[-1][list(spec.params)].to_dict(), **result.summary},
        exch,
        list(candles),
        result.oos_equity.index,
        cash,
        fees,
        slippage,
        not separate_cash,
        {
            "train": train,
            "test": test,
            "anchored": anchored,
            "metric": metric,
            "fee_asset": str(fee_asset),
        },
        result.oos_equity,
    )
    if as_json:
        print_json(
            {
                "run_id": run_id,
                "summary": json_safe(result.summary),
                "windows": json_safe(windows.astype(str).to_dict(orient="records")),
            }
        )
        return
    print_frame(windows.map(fmt), title=f"walk-forward {spec.name} ({train} / {test})")
    typer.echo(f"run {run_id}: " + ", ".join(f"{k}={fmt(v)}" for k, v in result.summary.items()))


def montecarlo_command(
    run_id: Annotated[str, typer.Argument(help="a stored run (see `workbench runs list`)")],
    paths: Annotated[int, typer.Option("--paths")] = 10_000,
    method: Annotated[str, typer.Option("--method", help="shuffle|bootstrap|block")] = "shuffle",
    block: Annotated[int, typer.Option("--block", help="trades per block")] = 5,
    seed: Annotated[int, typer.Option("--seed")] = 42,
    loss: Annotated[float, typer.Option("--loss", help="loss fraction to price")] = 0.0,
    db: DbOption = None,
    as_json: JsonOption = False,
) -> None:
    """Monte Carlo of a stored run's trades: final equity, drawdown, recovery, P(loss)."""
    from workbench.backtest.montecarlo import monte_carlo

    settings = settings_with(db)
    try:
        with Store.open(settings.db, read_only=True) as store:
            runs = store.runs
            run, trades = runs.get(run_id), runs.trades(run_id)
    except StoreError as exc:
        fail(str(exc))
    closed = trades[trades["exit_reason"] != "open"]
    try:
        result = monte_carlo(
            closed["pnl"].to_numpy(), run["cash"], paths, method, block, seed, loss
        )
    except ValueError as exc:
        fail(str(exc))
    if as_json:
        print_json({"run_id": run_id, **json_safe(result.summary)})
        return
    for key in ("final_equity", "max_drawdown", "recovery_trades"):
        row = result.summary[key]
        typer.echo(f"{key:16s} " + "  ".join(f"{q}={fmt(v)}" for q, v in row.items()))
    typer.echo(
        f"P(final < {1 - loss:.0%} of cash) = {result.summary['probability_of_loss']:.4f}; "
        f"never recovered: {result.summary['never_recovered']:.4f} ({method}, seed {seed})"
    )


def _span(text: str) -> pd.Timedelta:
    # pandas 3 deprecates the lower-case day unit users type ("30d").
    return pd.Timedelta(text[:-1] + "D" if text.endswith("d") else text)
