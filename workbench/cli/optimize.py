"""`workbench sweep | walkforward | montecarlo`: optimization and robustness of strategies."""

from __future__ import annotations

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
    progress_bar,
    save_run,
)
from workbench.cli.common import DbOption, JsonOption, fail, print_frame, print_json, settings_with
from workbench.fills import DEFAULT_FEE_ASSET
from workbench.store import Store


def sweep_command(
    spec_path: SpecArg,
    grid: GridOpt = None,
    constraint: ConstraintOpt = None,
    metric: MetricOpt = "sharpe",
    search: Annotated[str, typer.Option("--search", help="grid | optuna")] = "grid",
    trials: Annotated[
        int, typer.Option("--trials", help="optuna trials (more, with --study)")
    ] = 100,
    study: Annotated[
        str | None,
        typer.Option("--study", help="optuna: keep the trials under this name; go on from them"),
    ] = None,
    seed: Annotated[int, typer.Option("--seed")] = 42,
    top: Annotated[int, typer.Option("--top", help="rows to print")] = 10,
    workers: Annotated[
        int, typer.Option("--workers", help="run on a local Dask cluster of this many processes")
    ] = 1,
    cluster: Annotated[
        str | None,
        typer.Option(
            "--cluster", help="run on the Dask scheduler at this address (tcp://host:8786)"
        ),
    ] = None,
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
    """Sweep a parameter grid (or search it with Optuna); store one row per combination.

    With ``--search optuna --study NAME`` the trials are kept in the database as they are
    told; the same command again runs ``--trials`` more, going on from them.
    """
    from workbench.backtest.persist import save_table
    from workbench.backtest.sweep import SweepSettings, build_grid, parse_grid_arg, sweep
    from workbench.portfolio.stats import STAT_COLUMNS

    if search not in ("grid", "optuna"):
        fail(f"--search {search!r}: choose grid or optuna")
    if metric not in STAT_COLUMNS:
        fail(f"--metric {metric!r}: choose from {list(STAT_COLUMNS)}")
    if study is not None and search != "optuna":
        fail("--study keeps an Optuna search: give --search optuna too")
    inputs = load_inputs(spec_path, symbol, timeframe, start, end, exchange, db, ideal_sizes)
    spec, candles, exch, db_path, rules = (
        inputs.spec,
        inputs.candles,
        inputs.exchange,
        inputs.db,
        inputs.lot_rules,
    )
    settings = SweepSettings(cash, fees, slippage, not separate_cash, fee_asset, rules)
    axes = dict(parse_grid_arg(spec, g) for g in grid or [])
    with progress_bar(f"{search} {spec.name}") as bar:
        task = bar.add_task("run", total=None)

        def tick(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total)

        if search == "optuna":
            table = _optuna(
                spec,
                candles,
                axes,
                trials,
                metric,
                constraint,
                settings,
                seed,
                study,
                exch,
                db_path,
                tick,
            )
        else:
            table = sweep(
                spec,
                candles,
                build_grid(spec, axes, constraint),
                settings,
                memory_mb=memory_mb,
                workers=workers,
                cluster=cluster,
                progress=tick,
            )
    tried = table[table["state"] == "complete"] if "state" in table else table
    if tried.empty:
        fail("no combination meets the constraints")
    ranked = tried.sort_values(metric, ascending=False, na_position="last", kind="stable")
    best = {k: v for k, v in ranked.iloc[0].items() if k not in ("trial", "state")}
    guard = _deflated(spec, candles, tried, best, settings)
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
            **({"study": study} if study else {}),
        },
    )
    if as_json:
        print_json(
            {
                "run_id": run_id,
                "combinations": len(tried),
                **({"trials": len(table)} if search == "optuna" else {}),
                "overfitting": json_safe(guard),
                "top": json_safe(ranked.head(top).to_dict(orient="records")),
            }
        )
        return
    print_frame(ranked.head(top).map(fmt), title=f"top {top} of {len(tried)} by {metric}")
    pruned = len(table) - len(tried)
    typer.echo(
        f"run {run_id}: {len(tried)} combinations tried"
        f"{f' ({pruned} trials pruned by the constraints)' if pruned else ''}"
        f"{f', study {study!r} has {len(table)} trials' if study else ''}; deflated Sharpe "
        f"of the best {fmt(guard['deflated_sharpe'])} "
        f"(P[true Sharpe > best-of-{len(tried)} luck])"
    )


def _optuna(
    spec: Any,
    candles: dict[str, pd.DataFrame],
    axes: dict[str, list[Any]],
    trials: int,
    metric: str,
    constraints: list[str] | None,
    settings: Any,
    seed: int,
    study: str | None,
    exchange: str,
    db_path: str,
    progress: Any,
) -> pd.DataFrame:
    """Give an Optuna search's trials; with a study name, going on from (and keeping) them."""
    from dataclasses import asdict

    from workbench.backtest.search import optuna_search
    from workbench.store.runs import spec_hash

    if study is None:
        return optuna_search(
            spec, candles, axes, trials, metric, constraints, settings, seed=seed, progress=progress
        )
    index = next(iter(candles.values())).index
    setup = {
        "spec_hash": spec_hash(spec.raw),
        "grid": axes,
        "constraints": constraints or [],
        "metric": metric,
        "exchange": exchange,
        "symbols": list(candles),
        "timeframe": spec.market.timeframe,
        "bars": [str(index[0]), str(index[-1]), len(index)],
        **asdict(settings),
    }
    with Store.open(db_path) as store:
        history = store.studies.begin(study, spec.name, setup)

    def keep(rows: pd.DataFrame) -> None:
        with Store.open(db_path) as store:
            store.studies.add_trials(study, rows, list(spec.params))

    return optuna_search(
        spec,
        candles,
        axes,
        trials,
        metric,
        constraints,
        settings,
        seed=seed,
        progress=progress,
        history=history,
        on_batch=keep,
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
    from workbench.backtest.persist import save_table
    from workbench.backtest.sweep import SweepSettings, build_grid, parse_grid_arg
    from workbench.backtest.walkforward import walk_forward

    inputs = load_inputs(spec_path, symbol, timeframe, start, end, exchange, db, ideal_sizes)
    spec, candles, exch, db_path, rules = (
        inputs.spec,
        inputs.candles,
        inputs.exchange,
        inputs.db,
        inputs.lot_rules,
    )
    settings = SweepSettings(cash, fees, slippage, not separate_cash, fee_asset, rules)
    combos = build_grid(spec, dict(parse_grid_arg(spec, g) for g in grid or []), constraint)
    spans = _span("--train", train), _span("--test", test)
    with progress_bar(f"walk-forward {spec.name}") as bar:
        task = bar.add_task("run", total=None)
        result = walk_forward(
            spec,
            candles,
            combos,
            *spans,
            anchored,
            metric,
            settings,
            progress=lambda d, t: bar.update(task, completed=d, total=t),
        )
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
    with Store.open(settings.db, read_only=True) as store:
        run, trades = store.runs.get(run_id), store.runs.trades(run_id)
    closed = trades[trades["exit_reason"] != "open"]
    result = monte_carlo(closed["pnl"].to_numpy(), run["cash"], paths, method, block, seed, loss)
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


def _span(option: str, text: str) -> pd.Timedelta:
    # pandas 3 deprecates the lower-case day unit users type ("30d").
    try:
        span = pd.Timedelta(text[:-1] + "D" if text.endswith("d") else text)
    except ValueError as exc:
        fail(f"{option} {text!r}: not a time span such as 30d or 12h ({exc})")
    if span <= pd.Timedelta(0):
        fail(f"{option} {text!r}: must be longer than zero")
    return span
