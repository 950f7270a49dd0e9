"""`workbench backtest` and `workbench runs list/show/compare` (the optimization commands
are in `workbench.cli.optimize`)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated

import pandas as pd
import typer

from workbench.cli.backtest_options import (
    CashOpt,
    EndOpt,
    ExchangeOpt,
    FeeAssetOpt,
    FeesOpt,
    IdealOpt,
    SeparateOpt,
    SlipOpt,
    SpecArg,
    StartOpt,
    SymbolOpt,
    TimeframeOpt,
    json_safe,
    load_inputs,
    open_for_run,
    parse_params,
)
from workbench.cli.common import DbOption, JsonOption, print_frame, print_json, settings_with
from workbench.fills import DEFAULT_FEE_ASSET
from workbench.store import Store
from workbench.store.runs import RunStore, dumps
from workbench.ui.formats import format_stat, format_stats, run_quote


def backtest_command(
    spec_path: SpecArg,
    symbol: SymbolOpt = None,
    timeframe: TimeframeOpt = None,
    start: StartOpt = None,
    end: EndOpt = None,
    param: Annotated[list[str] | None, typer.Option("--param", help="NAME=VALUE")] = None,
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
    """Backtest a strategy spec over stored candles and store the run."""
    from workbench.backtest.engine import backtest
    from workbench.backtest.persist import save_backtest

    # One read-write open for the read and the write: a second open of the file costs
    # a cold start more than the write lock held over one backtest.
    with open_for_run(settings_with(db, exchange).db) as store:
        inputs = load_inputs(
            spec_path, symbol, timeframe, start, end, exchange, db, ideal_sizes, store
        )
        spec = inputs.spec
        result = backtest(
            spec,
            inputs.candles,
            parse_params(spec, param),
            cash,
            fees,
            slippage,
            shared_cash=not separate_cash,
            fee_asset=fee_asset,
            lot_rules=inputs.lot_rules,
        )
        run_id = save_backtest(store, result, inputs.exchange)
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
                "stats": json_safe(result.stats),
                "trades": json_safe(trades.to_dict(orient="records")),
            }
        )
        return
    shown = format_stats(result.stats, run_quote(result.symbols))
    stats = pd.DataFrame({"stat": list(shown), "value": list(shown.values())})
    print_frame(stats, title=f"{spec.name} {result.params} — run {run_id}")


runs_app = typer.Typer(help="Stored backtest runs: list, show, compare.", no_args_is_help=True)


@runs_app.command("list")
def runs_list(
    limit: Annotated[int, typer.Option("--limit")] = 50,
    db: DbOption = None,
    as_json: JsonOption = False,
) -> None:
    """List the latest runs."""
    with _runs(db) as runs:
        listed = runs.list_runs(limit)
    if not as_json:  # as traders read them; --json keeps the raw numbers
        quotes = [run_quote(s.split(", ")) for s in listed["symbols"]]
        listed = _shown(listed, quotes)
    print_frame(listed, title="runs", as_json=as_json)


@runs_app.command("show")
def runs_show(
    run_id: Annotated[str, typer.Argument()],
    trades: Annotated[int, typer.Option("--trades", help="trades to print")] = 20,
    db: DbOption = None,
    as_json: JsonOption = False,
) -> None:
    """Show one run: what was run, its statistics, its trades (or best combinations)."""
    with _runs(db) as runs:
        run = runs.get(run_id)
        detail = runs.trades(run_id) if run["kind"] == "backtest" else runs.sweep(run_id)
    run.pop("spec")
    if as_json:
        print_json({**json_safe(run), "rows": json_safe(detail.astype(str).to_dict("records"))})
        return
    quote = run_quote(run["symbols"])
    for key, value in run.items():
        if key == "stats":
            value = format_stats(value, quote)
        typer.echo(f"{key:16s} {dumps(value) if isinstance(value, dict | list) else value}")
    shown = detail.head(trades)
    print_frame(_shown(shown, [quote] * len(shown)), title=f"{len(detail)} rows")


@runs_app.command("compare")
def runs_compare(
    run_ids: Annotated[list[str], typer.Argument(help="two or more run ids")],
    db: DbOption = None,
    as_json: JsonOption = False,
) -> None:
    """Compare runs side by side."""
    with _runs(db) as runs:
        table = runs.compare(run_ids)
    if as_json:
        print_json(json_safe(table.to_dict()))
        return
    shown = {
        run_id: [format_stat(str(name), v, run_quote(str(column["symbols"]).split(", ")))
                 for name, v in column.items()]
        for run_id, column in table.items()
    }  # fmt: skip
    frame = pd.DataFrame(shown, index=table.index)
    print_frame(frame.reset_index(names="field"), title="runs compared")


def _shown(frame: pd.DataFrame, quotes: list[str | None]) -> pd.DataFrame:
    """Give a frame's values as traders read them, each column by its name."""
    return pd.DataFrame(
        {c: [format_stat(str(c), v, q) for v, q in zip(frame[c], quotes, strict=True)]
         for c in frame.columns}
    )  # fmt: skip


@contextmanager
def _runs(db: str | None) -> Iterator[RunStore]:
    with Store.open(settings_with(db).db, read_only=True) as store:
        yield store.runs
