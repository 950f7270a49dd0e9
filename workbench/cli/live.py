"""`workbench live`: run strategies on streaming candles, headless."""

from __future__ import annotations

import asyncio
import contextlib
import signal
from pathlib import Path
from typing import Annotated, Any

import typer

from workbench.cli.common import DbOption, console, fail, settings_with

app = typer.Typer(help="Live trading: strategies on streaming candles.", no_args_is_help=True)


def _line(kind: str, data: dict[str, Any]) -> str | None:
    """Give the log line of an engine event (None for the ones not logged)."""
    if kind == "fill":
        f = data["fill"]
        return (
            f"fill    {f.strategy_id} {f.side} {f.amount:.8g} {f.symbol} @ {f.price:.8g} "
            f"fee {f.fee:.8g} ({f.purpose})"
        )
    if kind == "order":
        o = data["order"]
        return f"order   {o.strategy_id} {o.client_order_id} {o.side} {o.amount:.8g} {o.state}"
    if kind == "refused":
        i, r = data["intent"], data["refusal"]
        return f"refused {i.strategy_id} {i.side} {i.amount:.8g} by {r.rule} {r.detail}"
    if kind == "state":
        return f"state   {data['strategy_id']} {data['state']}"
    if kind == "signal":
        return f"signal  {data['strategy_id']} {data['what']} at {data['ts']}"
    return None


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
    db: DbOption = None,
) -> None:
    """Run strategies until Ctrl-C, logging each signal, order and fill.

    A strategy already in the database (same spec name and symbol) resumes with its stored
    state, positions and orders.
    """
    from workbench.live.session import Live, LiveError
    from workbench.localexchange import HistoryError
    from workbench.portfolio.allocation import AllocationError, allocate, recent_volatility
    from workbench.strategy import SpecError, load_spec

    settings = settings_with(db, exchange)
    try:
        loaded = [load_spec(path) for path in specs]
    except SpecError as exc:
        fail(str(exc))

    async def main() -> None:
        done = asyncio.Event()
        closed = 0

        def log(kind: str, data: dict[str, Any]) -> None:
            nonlocal closed
            line = _line(kind, data)
            if line:
                console.print(line, highlight=False)
            if kind == "closed":
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
        ) as live:
            live.engine.subscribe(log)
            ids = [f"{spec.name}-{spec.market.symbol.replace('/', '')}" for spec in loaded]
            shares = dict.fromkeys(ids, allocation)
            if capital is not None:
                vols = None
                if split == "volatility":
                    assert live.store is not None
                    vols = {
                        sid: recent_volatility(
                            live.store.candles.read(
                                live.exchange_name, spec.market.symbol, spec.market.timeframe
                            )
                        )
                        for sid, spec in zip(ids, loaded, strict=True)
                    }
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
    except (LiveError, AllocationError, HistoryError) as exc:
        fail(str(exc))
    except KeyboardInterrupt:
        with contextlib.suppress(Exception):
            console.print("stopped")
