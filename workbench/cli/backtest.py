"""`workbench backtest | sweep | walkforward | montecarlo` and `workbench runs list/show/compare`.

Register with ``register(app)`` (or: ``app.command("backtest")(backtest_command)``,
``app.command("sweep")(sweep_command)``, ``app.command("walkforward")(walkforward_command)``,
``app.command("montecarlo")(montecarlo_command)``, ``app.add_typer(runs_app, name="runs")``).
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Annotated, Any

import numpy as np
import pandas as pd
import typer
from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

from workbench.cli.common import DbOption, JsonOption, fail, print_frame, print_json, settings_with
from workbench.store import Store, StoreError
from workbench.store.runs import RunStore, dumps

SpecArg = Annotated[Path, typer.Argument(help="strategy spec (JSON file)")]
SymbolOpt = Annotated[list[str] | None, typer.Option("--symbol", help="symbol(s); default: spec")]
TimeframeOpt = Annotated[str | None, typer.Option("--timeframe", help="default: the spec's")]
StartOpt = Annotated[str | None, typer.Option("--start", help="first bar (UTC), inclusive")]
EndOpt = Annotated[str | None, typer.Option("--end", help="last bar (UTC), exclusive")]
CashOpt = Annotated[float, typer.Option("--cash", help="initial cash (quote currency)")]
FeesOpt = Annotated[float, typer.Option("--fees", help="fee rate per fill (0.001 = 0.1 %)")]
SlipOpt = Annotated[float, typer.Option("--slippage", help="market-fill slippage fraction")]
SeparateOpt = Annotated[
    bool, typer.Option("--separate-cash", help="each symbol gets cash/n of its own")
]
ExchangeOpt = Annotated[str | None, typer.Option("--exchange", help="default: settings")]
GridOpt = Annotated[list[str] | None, typer.Option("--grid", help="NAME=LO:HI:STEP or NAME=a,b")]
ConstraintOpt = Annotated[list[str] | None, typer.Option("--constraint", help='e.g. "fast<slow"')]
MetricOpt = Annotated[str, typer.Option("--metric", help="statistic to maximize")]


def _spec(path: Path) -> Any:
    from workbench.strategy.errors import SpecError
    from workbench.strategy.loader import load_spec

    try:
        return load_spec(path)
    except SpecError as exc:
        fail(str(exc))


def _inputs(
    spec_path: Path,
    symbol: list[str] | None,
    timeframe: str | None,
    start: str | None,
    end: str | None,
    exchange: str | None,
    db: Path | None,
) -> tuple[Any, dict[str, pd.DataFrame], str, Path]:
    from dataclasses import replace

    from workbench.backtest.persist import load_candles

    spec = _spec(spec_path)
    if timeframe and timeframe != spec.market.timeframe:
        spec = replace(spec, market=replace(spec.market, timeframe=timeframe))
    settings = settings_with(db, exchange)
    symbols = symbol or [spec.market.symbol]
    try:
        with Store.open(settings.db, read_only=True) as store:
            candles = load_candles(
                store, settings.exchange, symbols, spec.market.timeframe, start, end
            )
    except (StoreError, ValueError) as exc:
        fail(str(exc))
    return spec, candles, settings.exchange, settings.db


def _params(spec: Any, pairs: list[str] | None) -> dict[str, Any]:
    out = {}
    for pair in pairs or []:
        name, sep, value = pair.partition("=")
        if not sep or name not in spec.params:
            fail(f"--param {pair!r}: expected NAME=VALUE with NAME in {list(spec.params)}")
        out[name] = spec.params[name].type(float(value))
    return out


def _progress(label: str) -> Progress:
    return Progress(
        TextColumn(label),
        BarColumn(),
        TextColumn("{task.completed}/{task.total}"),
        TimeRemainingColumn(),
        transient=True,
    )


def _save(db: Path, fn: Any, *args: Any, **kwargs: Any) -> str:
    with Store.open(db) as store:
        return fn(store, *args, **kwargs)


def backtest_command(
    spec_path: SpecArg,
    symbol: SymbolOpt = None,
    timeframe: TimeframeOpt = None,
    start: StartOpt = None,
    end: EndOpt = None,
    param: Annotated[list[str] | None, typer.Option("--param", help="NAME=VALUE")] = None,
    cash: CashOpt = 10_000.0,
    fees: FeesOpt = 0.001,
    slippage: SlipOpt = 0.0,
    separate_cash: SeparateOpt = False,
    exchange: ExchangeOpt = None,
    db: DbOption = None,
    as_json: JsonOption = False,
) -> None:
    """Backtest a strategy spec over stored candles and store the run."""
    from workbench.backtest.engine import backtest
    from workbench.backtest.persist import save_backtest

    spec, candles, exch, db_path = _inputs(spec_path, symbol, timeframe, start, end, exchange, db)
    result = backtest(
        spec, candles, _params(spec, param), cash, fees, slippage, shared_cash=not separate_cash
    )
    run_id = _save(db_path, save_backtest, result, exch)
    if as_json:
        trades = result.trades.astype({"entry_time": str, "exit_time": str})
        print_json(
            {
                "run_id": run_id,
                "spec": spec.name,
                "params": result.params,
                "symbols": result.symbols,
                "start": str(result.start),
                "end": str(result.end),
                "stats": _json_safe(result.stats),
                "trades": _json_safe(trades.to_dict(orient="records")),
            }
        )
        return
    stats = pd.DataFrame([{"stat": k, "value": _fmt(v)} for k, v in result.stats.items()])
    print_frame(stats, title=f"{spec.name} {result.params} — run {run_id}")


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
    slippage: SlipOpt = 0.0,
    separate_cash: SeparateOpt = False,
    exchange: ExchangeOpt = None,
    db: DbOption = None,
    as_json: JsonOption = False,
) -> None:
    """Sweep a parameter grid (or search it with Optuna); store one row per combination."""
    sw = importlib.import_module("workbench.backtest.sweep")  # the module, not the function
    from workbench.backtest.persist import save_table
    from workbench.backtest.search import optuna_search

    spec, candles, exch, db_path = _inputs(spec_path, symbol, timeframe, start, end, exchange, db)
    settings = sw.SweepSettings(cash, fees, slippage, not separate_cash)
    try:
        axes = dict(sw.parse_grid_arg(spec, g) for g in grid or [])
        with _progress(f"{search} {spec.name}") as bar:
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
    run_id = _save(
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
        {"metric": metric, "grid": grid or [], "constraints": constraint or [], **guard},
    )
    if as_json:
        print_json(
            {
                "run_id": run_id,
                "combinations": len(table),
                "overfitting": _json_safe(guard),
                "top": _json_safe(ranked.head(top).to_dict(orient="records")),
            }
        )
        return
    print_frame(ranked.head(top).map(_fmt), title=f"top {top} of {len(table)} by {metric}")
    typer.echo(
        f"run {run_id}: {len(table)} combinations tried; deflated Sharpe of the best "
        f"{_fmt(guard['deflated_sharpe'])} (P[true Sharpe > best-of-{len(table)} luck])"
    )


def _deflated(spec: Any, candles: Any, table: pd.DataFrame, best: dict, settings: Any) -> dict:
    from workbench.backtest.engine import simulate
    from workbench.backtest.overfit import deflated_sharpe
    from workbench.fills import FillModel
    from workbench.portfolio.stats import periods_per_year

    params = pd.DataFrame([{k: best[k] for k in spec.params}]).astype(
        {k: np.int64 if p.type is int else np.float64 for k, p in spec.params.items()}
    )
    sim = simulate(
        spec,
        candles,
        params,
        FillModel(settings.fee_rate, settings.slippage),
        settings.cash,
        settings.shared_cash,
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
    slippage: SlipOpt = 0.0,
    separate_cash: SeparateOpt = False,
    exchange: ExchangeOpt = None,
    db: DbOption = None,
    as_json: JsonOption = False,
) -> None:
    """Walk forward: optimize on each training window, trade the next test window."""
    sw = importlib.import_module("workbench.backtest.sweep")  # the module, not the function
    from workbench.backtest.persist import save_table
    from workbench.backtest.walkforward import walk_forward

    spec, candles, exch, db_path = _inputs(spec_path, symbol, timeframe, start, end, exchange, db)
    settings = sw.SweepSettings(cash, fees, slippage, not separate_cash)
    try:
        combos = sw.build_grid(
            spec, dict(sw.parse_grid_arg(spec, g) for g in grid or []), constraint
        )
        with _progress(f"walk-forward {spec.name}") as bar:
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
    run_id = _save(
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
        {"train": train, "test": test, "anchored": anchored, "metric": metric},
        result.oos_equity,
    )
    if as_json:
        print_json(
            {
                "run_id": run_id,
                "summary": _json_safe(result.summary),
                "windows": _json_safe(windows.astype(str).to_dict(orient="records")),
            }
        )
        return
    print_frame(windows.map(_fmt), title=f"walk-forward {spec.name} ({train} / {test})")
    typer.echo(f"run {run_id}: " + ", ".join(f"{k}={_fmt(v)}" for k, v in result.summary.items()))


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
            runs = RunStore(store.con)
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
        print_json({"run_id": run_id, **_json_safe(result.summary)})
        return
    for key in ("final_equity", "max_drawdown", "recovery_trades"):
        row = result.summary[key]
        typer.echo(f"{key:16s} " + "  ".join(f"{q}={_fmt(v)}" for q, v in row.items()))
    typer.echo(
        f"P(final < {1 - loss:.0%} of cash) = {result.summary['probability_of_loss']:.4f}; "
        f"never recovered: {result.summary['never_recovered']:.4f} ({method}, seed {seed})"
    )


runs_app = typer.Typer(help="Stored backtest runs: list, show, compare.", no_args_is_help=True)


@runs_app.command("list")
def runs_list(
    limit: Annotated[int, typer.Option("--limit")] = 50,
    db: DbOption = None,
    as_json: JsonOption = False,
) -> None:
    """List the latest runs."""
    with _runs(db) as runs:
        print_frame(
            runs.list_runs(limit).map(_fmt) if not as_json else runs.list_runs(limit),
            title="runs",
            as_json=as_json,
        )


@runs_app.command("show")
def runs_show(
    run_id: Annotated[str, typer.Argument()],
    trades: Annotated[int, typer.Option("--trades", help="trades to print")] = 20,
    db: DbOption = None,
    as_json: JsonOption = False,
) -> None:
    """Show one run: what was run, its statistics, its trades (or best combinations)."""
    with _runs(db) as runs:
        try:
            run = runs.get(run_id)
        except StoreError as exc:
            fail(str(exc))
        detail = runs.trades(run_id) if run["kind"] == "backtest" else runs.sweep(run_id)
    run.pop("spec")
    if as_json:
        print_json({**_json_safe(run), "rows": _json_safe(detail.astype(str).to_dict("records"))})
        return
    for key, value in run.items():
        typer.echo(f"{key:16s} {dumps(value) if isinstance(value, dict | list) else value}")
    print_frame(detail.head(trades).map(_fmt), title=f"{len(detail)} rows")


@runs_app.command("compare")
def runs_compare(
    run_ids: Annotated[list[str], typer.Argument(help="two or more run ids")],
    db: DbOption = None,
    as_json: JsonOption = False,
) -> None:
    """Compare runs side by side."""
    with _runs(db) as runs:
        try:
            table = runs.compare(run_ids)
        except StoreError as exc:
            fail(str(exc))
    if as_json:
        print_json(_json_safe(table.to_dict()))
        return
    print_frame(table.map(_fmt).reset_index(names="field"), title="runs compared")


class _runs:
    def __init__(self, db: Path | None) -> None:
        self.path = settings_with(db).db

    def __enter__(self) -> RunStore:
        try:
            self.store = Store.open(self.path, read_only=True)
        except StoreError as exc:
            fail(str(exc))
        return RunStore(self.store.con)

    def __exit__(self, *exc: object) -> None:
        self.store.close()


def _span(text: str) -> pd.Timedelta:
    # pandas 3 deprecates the lower-case day unit users type ("30d").
    return pd.Timedelta(text[:-1] + "D" if text.endswith("d") else text)


def _fmt(value: Any) -> str:
    if isinstance(value, float | np.floating):
        return f"{value:.6g}"
    return str(value)


def _json_safe(value: Any) -> Any:
    import json

    return json.loads(dumps(value))


def register(app: typer.Typer) -> None:
    """Add these commands to the main `workbench` app."""
    app.command("backtest")(backtest_command)
    app.command("sweep")(sweep_command)
    app.command("walkforward")(walkforward_command)
    app.command("montecarlo")(montecarlo_command)
    app.add_typer(runs_app, name="runs")
