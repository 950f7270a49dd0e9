"""`workbench live`: run strategies on streaming candles, headless."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from workbench.cli.common import DbOption, console, fail, settings_with
from workbench.live.events import (
    CandleClosed,
    EngineEvent,
    FillBooked,
    Notice,
    OrderChanged,
    OrderRefused,
    StateChanged,
    TaskFailed,
)

app = typer.Typer(help="Live trading: strategies on streaming candles.", no_args_is_help=True)


def _line(event: EngineEvent) -> str | None:
    """Give the log line of an engine event (None for the ones not logged)."""
    match event:
        case FillBooked(fill=f):
            return (
                f"fill    {f.strategy_id} {f.side} {f.amount:.8g} {f.symbol} @ {f.price:.8g} "
                f"fee {f.fee:.8g} {f.fee_currency} ({f.purpose})"
            )
        case OrderChanged(order=o):
            return (
                f"order   {o.strategy_id} {o.client_order_id} {o.side} {o.amount:.8g} {o.state}"
                f" ({o.purpose})"
            )
        case OrderRefused(intent=i, refusal=r):
            return f"refused {i.strategy_id} {i.side} {i.amount:.8g} by {r.rule} {r.detail}"
        case StateChanged(strategy_id=sid, state=state, reason=reason):
            return f"state   {sid} {state}" + (f": {reason.splitlines()[-1]}" if reason else "")
        case Notice(strategy_id=sid, kind=kind, detail=detail):
            return f"{kind:<7} {sid} {detail}"
        case TaskFailed(name=name, error=error, retry_s=retry_s):
            again = f"; again in {retry_s:g}s" if retry_s is not None else ""
            return f"task    {name} died: {error.strip().splitlines()[-1]}{again}"
    return None


def _ask_passphrase(settings: Any) -> str | None:
    """Ask for the key file's passphrase at the terminal when the exchange's keys are only
    in the key file and WORKBENCH_KEYS_PASSPHRASE is not set."""
    from workbench.auth.keys import KeyFile, KeyFileError

    if (
        settings.exchange == "local"
        or (settings.api_key and settings.api_secret)
        or settings.keys_passphrase is not None
        or not sys.stdin.isatty()
    ):
        return None
    try:
        stored = settings.exchange in KeyFile(settings.key_file).exchanges()
    except KeyFileError as exc:
        fail(str(exc))
    if not stored:
        return None
    return str(typer.prompt(f"passphrase of {settings.key_file}", hide_input=True))


@app.command("run")
def run(
    specs: Annotated[list[Path], typer.Argument(help="strategy spec files")],
    paper: Annotated[bool, typer.Option("--paper/--real", help="paper trading")] = True,
    exchange: Annotated[str | None, typer.Option(help="local or a ccxt id")] = None,
    speed: Annotated[float | None, typer.Option(help="local exchange replay speed")] = None,
    start: Annotated[str | None, typer.Option(help="local exchange replay start (UTC)")] = None,
    capital: Annotated[
        float | None, typer.Option(help="cash to split between the strategies (quote)")
    ] = None,
    split: Annotated[
        str, typer.Option(help="how to split the capital: equal or volatility")
    ] = "equal",
    allocation: Annotated[
        float, typer.Option(help="starting cash per strategy when no --capital")
    ] = 1.0,
    serve_local: Annotated[
        bool,
        typer.Option(
            "--serve-local/--connect",
            help="start the local exchange here, or connect to one at the settings' address",
        ),
    ] = True,
    exchange_stops: Annotated[
        bool,
        typer.Option(
            "--exchange-stops/--watched-stops",
            help="with --real: rest stop-loss/take-profit on the exchange, or watch them",
        ),
    ] = True,
    bars: Annotated[int | None, typer.Option(help="stop after this many closed bars")] = None,
    replay_missed: Annotated[
        bool,
        typer.Option(
            "--replay-missed",
            help="paper only: trade bars missed while down as if never down (research)",
        ),
    ] = False,
    db: DbOption = None,
) -> None:
    """Run strategies until Ctrl-C, logging each signal, order and fill.

    A strategy already in the database (same spec name and symbol) resumes with its stored
    state, positions and orders. Bars missed while it was down warm it up and place no order
    (an exit that fell meanwhile is taken late); --replay-missed trades them instead (paper).
    """
    if replay_missed and not paper:
        fail("--replay-missed is for paper trading: real orders never trade missed bars")
    from workbench.live.capital import volatilities_before
    from workbench.live.session import Live
    from workbench.portfolio.allocation import allocate
    from workbench.strategy import load_spec
    from workbench.venue import market_now_ms

    settings = settings_with(db, exchange)
    loaded = [load_spec(path) for path in specs]
    passphrase = _ask_passphrase(settings)

    async def main() -> None:
        done = asyncio.Event()
        closed = 0

        def log(event: EngineEvent) -> None:
            nonlocal closed
            line = _line(event)
            if line:
                console.print(line, highlight=False)
            if isinstance(event, CandleClosed):
                closed += 1
                if bars is not None and closed >= bars:
                    done.set()

        loop = asyncio.get_running_loop()
        loop.add_signal_handler(signal.SIGTERM, done.set)
        loop.add_signal_handler(signal.SIGINT, done.set)
        async with Live(
            settings,
            paper=paper,
            serve_local=serve_local,
            speed=speed,
            start=start,
            exchange_stops=exchange_stops,
            replay_missed=replay_missed,
            passphrase=passphrase,
        ) as live:
            live.engine.subscribe(log)
            ids = [f"{spec.name}-{spec.market.symbol.replace('/', '')}" for spec in loaded]
            shares = dict.fromkeys(ids, allocation)
            if capital is not None:
                vols = None
                if split == "volatility":
                    assert live.store is not None
                    vols = volatilities_before(
                        live.store,
                        live.exchange_name,
                        {
                            sid: (spec.market.symbol, spec.market.timeframe)
                            for sid, spec in zip(ids, loaded, strict=True)
                        },
                        await market_now_ms(live.clients.rest),
                    )
                shares = allocate(capital, ids, split, volatility=vols)
            for sid, spec in zip(ids, loaded, strict=True):
                await live.engine.add_strategy(spec, allocation=shares[sid], strategy_id=sid)
                runner = live.engine.strategies[sid].runner
                pos = runner.portfolio.position(runner.symbol)
                console.print(
                    f"ready   {sid} {runner.state} position {pos.amount:.8g} "
                    f"cash {runner.portfolio.cash:.8g} equity {runner.equity():.8g}",
                    highlight=False,
                )
            await live.engine.start()
            console.print("running (Ctrl-C stops)", highlight=False)
            await done.wait()
        console.print("stopped", highlight=False)

    try:
        asyncio.run(main())
    except KeyboardInterrupt:
        with contextlib.suppress(Exception):
            console.print("stopped")
