"""`workbench live`: run strategies on streaming candles, headless."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from workbench.cli.common import DbOption, ask_secret, console, fail, settings_with
from workbench.live.events import (
    CandleClosed,
    EngineEvent,
    FillBooked,
    HaltChanged,
    LimitsChanged,
    Notice,
    OrderChanged,
    OrderRefused,
    StateChanged,
    TaskFailed,
)
from workbench.ops.logs import setup_logging

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
        case HaltChanged(halt=halt, by=by, reason=reason):
            if halt is None:
                return f"resumed by {by}: {reason}"
            return f"halted  by {by}: {reason}" + (" (flattening)" if halt.flatten else "")
        case LimitsChanged(limits=limits, by=by):
            shown = {k: v for k, v in limits.as_dict().items() if v not in (None, False)}
            return f"limits  set by {by}: {shown}"
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
        or settings.key_store == "keyring"
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
    return ask_secret(f"passphrase of {settings.key_file}", "WORKBENCH_KEYS_PASSPHRASE")


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
    max_open_positions: Annotated[
        int | None, typer.Option(help="account: open positions at once")
    ] = None,
    max_exposure: Annotated[
        float | None, typer.Option(help="account: total position value, quote")
    ] = None,
    daily_loss: Annotated[
        float | None, typer.Option(help="account: loss since the UTC day's start, fraction")
    ] = None,
    max_drawdown: Annotated[
        float | None, typer.Option(help="account: drawdown that halts entries, fraction")
    ] = None,
    max_order_notional: Annotated[
        float | None, typer.Option(help="account: largest single order, quote")
    ] = None,
    replay_missed: Annotated[
        bool,
        typer.Option(
            "--replay-missed",
            help="paper only: trade bars missed while down as if never down (research)",
        ),
    ] = False,
    http_port: Annotated[
        int | None,
        typer.Option(help="serve /health, /ready, /metrics on 127.0.0.1 (WORKBENCH_HTTP_PORT)"),
    ] = None,
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
    # The flags win over the settings' [risk] (WORKBENCH_RISK_*) for the limits they set.
    flags = {
        "max_open_positions": max_open_positions,
        "max_exposure": max_exposure,
        "daily_loss": daily_loss,
        "max_drawdown": max_drawdown,
        "max_order_notional": max_order_notional,
    }
    try:
        risk = settings.risk.model_validate(
            {**settings.risk.model_dump(), **{k: v for k, v in flags.items() if v is not None}}
        )
    except ValueError as exc:
        fail(f"risk limits: {exc}")
    settings = settings.model_copy(update={"risk": risk})
    # JSON lines off a terminal; on one, the lines below say what the engine does.
    setup_logging(settings, exchange=settings.exchange, events_on_terminal=False)
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
            ops="live",
            http_port=http_port if http_port is not None else settings.http_port,
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
            limits = live.engine.account.limits
            shown = {k: v for k, v in limits.as_dict().items() if v not in (None, False)}
            console.print(f"limits  account {shown}", highlight=False)
            if live.engine.halted is not None:
                halt = live.engine.halted
                console.print(f"halted  by {halt.by}: {halt.reason} (live resume ends it)")
            await live.engine.start()
            console.print("running (Ctrl-C stops)", highlight=False)
            await done.wait()
        console.print("stopped", highlight=False)

    try:
        asyncio.run(main())
    except KeyboardInterrupt:
        with contextlib.suppress(Exception):
            console.print("stopped")


def _switch(db: str | None, exchange: str | None, body: dict[str, Any]) -> None:
    """Carry a halt or a resume to the engine running on the database, or store it."""
    from workbench.auth.acting import BadInput
    from workbench.live.control import operator, store_halt
    from workbench.store import Store, StoreError
    from workbench.store.sharing import owned_by_running_process, owner_control

    settings = settings_with(db, exchange)
    body = {**body, "by": operator()}
    try:
        if owned_by_running_process(settings.db):
            answer = owner_control(settings.db, body)
            where = "the running engine"
        else:
            with Store.open(settings.db) as store:
                answer = store_halt(
                    store,
                    settings.exchange,
                    halted=body["action"] == "halt",
                    reason=str(body.get("reason") or ""),
                    by=body["by"],
                    flatten=bool(body.get("flatten")),
                )
            where = "the database: an engine acts on it when it starts or next looks"
    except (StoreError, BadInput) as exc:
        fail(str(exc))
    if answer.get("halted"):
        flat = ", flattening every position" if answer.get("flatten") else ""
        console.print(
            f"halted by {answer['by']}: {answer['reason']}{flat} (in {where})", highlight=False
        )
    else:
        console.print(f"trading, not halted (in {where})", highlight=False)


@app.command("halt")
def halt(
    reason: Annotated[str, typer.Option("--reason", help="why (stored and audited)")],
    flatten: Annotated[
        bool, typer.Option("--flatten", help="also close every position at market")
    ] = False,
    exchange: Annotated[str | None, typer.Option(help="the engine's exchange id")] = None,
    db: DbOption = None,
) -> None:
    """Stop every new entry at once, until `live resume`: resting entry orders are cancelled,
    protection stays; with --flatten every position is closed at market.

    Reaches the engine running on the database (the dashboard's or a `live run`); with none
    running it is stored, and an engine acts on it when it starts.
    """
    _switch(db, exchange, {"action": "halt", "reason": reason, "flatten": flatten})


@app.command("resume")
def resume(
    reason: Annotated[str, typer.Option("--reason", help="why (stored and audited)")] = "resumed",
    exchange: Annotated[str | None, typer.Option(help="the engine's exchange id")] = None,
    db: DbOption = None,
) -> None:
    """End a halt: entries may go out again."""
    _switch(db, exchange, {"action": "resume", "reason": reason})
