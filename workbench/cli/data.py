"""`workbench data`: import files, download history, list what is stored."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Annotated

import typer
from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

from workbench.cli.common import (
    DbOption,
    JsonOption,
    console,
    fail,
    print_frame,
    print_json,
    settings_with,
)
from workbench.data import CandleFileError, import_file
from workbench.store import Store
from workbench.timeframes import TimeframeError, timeframe_seconds

app = typer.Typer(help="Candle history: import, download, list.", no_args_is_help=True)

ExchangeOption = Annotated[
    str | None, typer.Option("--exchange", help="exchange name (default: settings)")
]


@app.command("import")
def import_(
    files: Annotated[list[Path], typer.Argument(help="CSV, CSV.gz or Parquet files")],
    exchange: ExchangeOption = None,
    symbol: Annotated[str | None, typer.Option(help="symbol, e.g. ETH/BTC")] = None,
    timeframe: Annotated[str | None, typer.Option(help="timeframe, e.g. 5m")] = None,
    db: DbOption = None,
) -> None:
    """Import candle files; a file with a bad row is reported and nothing of it is written.

    Symbol and timeframe come from names like ETH_BTC-5m.csv.gz unless given.
    """
    settings = settings_with(db, exchange)
    failed = 0
    with Store.open(settings.db) as store:
        for path in files:
            try:
                done = import_file(
                    store, path, exchange=settings.exchange, symbol=symbol, timeframe=timeframe
                )
            except (CandleFileError, TimeframeError) as exc:
                # One bad file is reported and skipped; the others are still imported.
                failed += 1
                console.print(f"[red]{exc}[/]", highlight=False)
                continue
            r = done.result
            console.print(
                f"{path}: {done.rows} rows of {done.exchange} {done.symbol} {done.timeframe}: "
                f"{r.new} new, {r.changed} changed, {r.unchanged} unchanged"
            )
    if failed:
        fail(f"{failed} of {len(files)} files not imported")


@app.command("download")
def download(
    symbol: Annotated[str, typer.Option(help="symbol, e.g. BTC/USDT")],
    timeframe: Annotated[str, typer.Option(help="timeframe, e.g. 1m")],
    since: Annotated[str, typer.Option(help="first bar, e.g. 2024-01-01")],
    until: Annotated[str | None, typer.Option(help="end (exclusive); default: now")] = None,
    exchange: ExchangeOption = None,
    retries: Annotated[int, typer.Option(help="tries per page on network errors")] = 5,
    db: DbOption = None,
    as_json: JsonOption = False,
) -> None:
    """Download history with ccxt fetch_ohlcv, resuming after the newest stored bar."""
    # ccxt costs a second to import: only the commands that talk to an exchange pay it.
    from workbench.data.download import check_exchange_id, download_candles
    from workbench.venue import connect

    settings = settings_with(db, exchange)
    check_exchange_id(settings.exchange)
    timeframe_seconds(timeframe)

    async def run() -> None:
        async with connect(settings.exchange, settings=settings) as clients:
            client = clients.rest
            await client.load_markets()
            with (
                Store.open(settings.db) as store,
                Progress(
                    TextColumn(f"{settings.exchange} {symbol} {timeframe}"),
                    BarColumn(),
                    TextColumn("{task.percentage:>3.0f}% {task.fields[rows]} bars"),
                    TimeRemainingColumn(),
                    console=console,
                    disable=as_json,
                ) as progress,
            ):
                task = progress.add_task("download", total=None, rows=0)
                report = await download_candles(
                    client,
                    store,
                    exchange=settings.exchange,
                    symbol=symbol,
                    timeframe=timeframe,
                    since=since,
                    until=until,
                    max_retries=retries,
                    on_progress=lambda done, total, rows: progress.update(
                        task, completed=done, total=total, rows=rows
                    ),
                )
        summary = {
            "exchange": report.exchange,
            "symbol": report.symbol,
            "timeframe": report.timeframe,
            "start": report.start.isoformat(),
            "end": report.end.isoformat(),
            "fetched": report.fetched,
            "new": report.new,
            "changed": report.changed,
            "pages": report.pages,
            "retries": report.retries,
            "gaps": report.gaps.to_dict(orient="records"),
        }
        if as_json:
            print_json(summary)
            return
        console.print(
            f"{report.fetched} bars fetched in {report.pages} pages ({report.new} new, "
            f"{report.changed} changed, {report.retries} retries) for "
            f"{report.start} → {report.end}"
        )
        if report.gaps.empty:
            console.print("no gaps in the range")
        else:
            print_frame(report.gaps, title="gaps left in the range (the exchange has no bars)")

    asyncio.run(run())


@app.command("list")
def list_(
    exchange: ExchangeOption = None,
    symbol: Annotated[str | None, typer.Option(help="only this symbol")] = None,
    timeframe: Annotated[str | None, typer.Option(help="only this timeframe")] = None,
    db: DbOption = None,
    as_json: JsonOption = False,
) -> None:
    """Print what is stored: first and last bar, count, missing bars and gaps per series."""
    settings = settings_with(db)
    with Store.open(settings.db, read_only=True) as store:
        coverage = store.candles.coverage(exchange, symbol, timeframe)
    if coverage.empty and not as_json:
        console.print(f"no candles in {settings.db}: run `workbench data import` first")
        return
    print_frame(coverage, title=f"candles in {settings.db}", as_json=as_json)
