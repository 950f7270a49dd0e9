"""What the backtest commands share: their options, inputs from the store, output helpers."""

from __future__ import annotations

from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import numpy as np
import pandas as pd
import typer

from workbench.cli.common import fail, settings_with
from workbench.fills import FeeAsset
from workbench.store import Store
from workbench.store.runs import dumps
from workbench.store.target import parse_target

if TYPE_CHECKING:
    from rich.progress import Progress

SpecArg = Annotated[Path, typer.Argument(help="strategy spec (JSON file)")]
SymbolOpt = Annotated[list[str] | None, typer.Option("--symbol", help="symbol(s); default: spec")]
TimeframeOpt = Annotated[str | None, typer.Option("--timeframe", help="default: the spec's")]
StartOpt = Annotated[str | None, typer.Option("--start", help="first bar (UTC), inclusive")]
EndOpt = Annotated[str | None, typer.Option("--end", help="last bar (UTC), exclusive")]
CashOpt = Annotated[float, typer.Option("--cash", help="initial cash (quote currency)")]
FeesOpt = Annotated[float, typer.Option("--fees", help="fee rate per fill (0.001 = 0.1 %)")]
FeeAssetOpt = Annotated[
    FeeAsset,
    typer.Option(
        "--fee-asset",
        help="asset the fee is paid in: quote, received (Binance's default: the asset "
        "bought), bnb (at BNB's discount, valued in quote)",
    ),
]
IdealOpt = Annotated[
    bool,
    typer.Option(
        "--ideal-sizes",
        help="size orders freely: ignore the stored lot step and minimums of the markets",
    ),
]
SlipOpt = Annotated[float, typer.Option("--slippage", help="market-fill slippage fraction")]
SeparateOpt = Annotated[
    bool, typer.Option("--separate-cash", help="each symbol gets cash/n of its own")
]
ExchangeOpt = Annotated[str | None, typer.Option("--exchange", help="default: settings")]
GridOpt = Annotated[list[str] | None, typer.Option("--grid", help="NAME=LO:HI:STEP or NAME=a,b")]
ConstraintOpt = Annotated[list[str] | None, typer.Option("--constraint", help='e.g. "fast<slow"')]
MetricOpt = Annotated[str, typer.Option("--metric", help="statistic to maximize")]


def load_spec_arg(path: Path) -> Any:
    """Give the spec at ``path`` (a `SpecError` lists its problems)."""
    from workbench.strategy.loader import load_spec

    return load_spec(path)


@dataclass(frozen=True)
class Inputs:
    """What a backtest command reads before it runs."""

    spec: Any
    candles: dict[str, pd.DataFrame]
    exchange: str
    db: str
    #: stored market rules by symbol; None with ``--ideal-sizes`` or when none are stored
    lot_rules: Any


def load_inputs(
    spec_path: Path,
    symbol: list[str] | None,
    timeframe: str | None,
    start: str | None,
    end: str | None,
    exchange: str | None,
    db: str | None,
    ideal_sizes: bool,
    store: Store | None = None,
) -> Inputs:
    """Give the spec, candles per symbol and market rules of a backtest command (one read).

    They are read through ``store`` when given (already open on the settings' database),
    else through a read-only store opened for the read.
    """
    from dataclasses import replace

    from workbench.backtest.persist import load_candles

    spec = load_spec_arg(spec_path)
    if timeframe and timeframe != spec.market.timeframe:
        spec = replace(spec, market=replace(spec.market, timeframe=timeframe))
    settings = settings_with(db, exchange)
    symbols = symbol or [spec.market.symbol]
    with nullcontext(store) if store else Store.open(settings.db, read_only=True) as read:
        candles = load_candles(read, settings.exchange, symbols, spec.market.timeframe, start, end)
        rules = None if ideal_sizes else _lot_rules(read, settings.exchange, list(candles))
    return Inputs(spec, candles, settings.exchange, settings.db, rules)


def open_for_run(db: str) -> Store:
    """Give the store a run reads its candles from and is stored in, open read-write.

    A DuckDB file that does not exist is not created: the read-only open says to import
    candles first.
    """
    target = parse_target(db)
    if isinstance(target, Path) and not target.exists():
        return Store.open(target, read_only=True)  # raises: no database there yet
    return Store.open(db)


def _lot_rules(store: Store, exchange: str, symbols: list[str]) -> Any:
    found = {s: store.markets.get(exchange, s) for s in symbols}
    return {s: r for s, r in found.items() if r is not None} or None


def parse_params(spec: Any, pairs: list[str] | None) -> dict[str, Any]:
    out = {}
    for pair in pairs or []:
        name, sep, value = pair.partition("=")
        if not sep or name not in spec.params:
            fail(f"--param {pair!r}: expected NAME=VALUE with NAME in {list(spec.params)}")
        out[name] = spec.params[name].type(float(value))
    return out


def progress_bar(label: str) -> Progress:
    from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

    return Progress(
        TextColumn(label),
        BarColumn(),
        TextColumn("{task.completed}/{task.total}"),
        TimeRemainingColumn(),
        transient=True,
    )


def save_run(db: str, fn: Any, *args: Any, **kwargs: Any) -> str:
    with Store.open(db) as store:
        return fn(store, *args, **kwargs)


def fmt(value: Any) -> str:
    if isinstance(value, float | np.floating):
        return f"{value:.6g}"
    return str(value)


def json_safe(value: Any) -> Any:
    import json

    return json.loads(dumps(value))
