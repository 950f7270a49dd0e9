"""`workbench exchange`: run the local exchange, and steer a running one (faults, state)."""

from __future__ import annotations

import asyncio
import json
import urllib.error
import urllib.request
from pathlib import Path
from typing import Annotated, Any

import typer

from workbench.cli.common import DbOption, console, fail, settings_with
from workbench.fills import DEFAULT_FEE_ASSET
from workbench.store.target import is_postgres_url

app = typer.Typer(
    help="The local exchange: a Binance-protocol server replaying stored candles.",
    no_args_is_help=True,
)

PortOption = Annotated[int | None, typer.Option("--port", help="port (default: settings)")]
DEFAULT_CANDLES_DIR = Path("data/candles")


def _symbols(raw: list[str] | None) -> list[str] | None:
    if not raw:
        return None
    return [s.strip() for item in raw for s in item.split(",") if s.strip()]


@app.command()
def serve(
    port: PortOption = None,
    speed: Annotated[
        float | None, typer.Option("--speed", help="replay speed, x real time (default: settings)")
    ] = None,
    start: Annotated[
        str | None, typer.Option("--start", help="replay start, UTC (default: 1 day in)")
    ] = None,
    symbols: Annotated[
        list[str] | None, typer.Option("--symbols", "--symbol", help="symbols, e.g. ETH/BTC")
    ] = None,
    timeframe: Annotated[str, typer.Option("--timeframe", help="base timeframe")] = "5m",
    db: DbOption = None,
    candles: Annotated[
        Path | None,
        typer.Option("--candles", help="read shipped CSV files from this directory, not the DB"),
    ] = None,
    fee_rate: Annotated[
        float, typer.Option("--fee-rate", help="fee, fraction of notional")
    ] = 0.001,
    slippage: Annotated[float, typer.Option("--slippage", help="market-order slippage")] = 0.0,
    max_volume_fraction: Annotated[
        float | None,
        typer.Option(
            "--max-volume-fraction",
            help="resting orders fill at most this fraction (0-1] of the volume traded "
            "meanwhile, so large ones fill in parts (default: whole or nothing)",
        ),
    ] = None,
    fee_asset: Annotated[
        str,
        typer.Option(
            "--fee-asset",
            help="what commissions are taken in: received (Binance's default: the base on a "
            "buy, the quote on a sell), quote, or bnb (25% off, from a BNB balance; a "
            "BNB/<quote> market values it)",
        ),
    ] = DEFAULT_FEE_ASSET.value,
) -> None:
    """Serve the local exchange until interrupted (Ctrl-C).

    History comes from the DuckDB file (read once, then released) or, with --candles or when
    there is no database yet, from the shipped CSV files in data/candles.
    """
    from workbench.fills import FillModel
    from workbench.localexchange import (
        LOCAL_API_KEY,
        LOCAL_API_SECRET,
        LocalExchange,
        load_csv_history,
        load_history_file,
    )

    settings = settings_with(db)
    wanted = _symbols(symbols)
    try:
        in_store = is_postgres_url(settings.db) or Path(settings.db).exists()
        if candles is not None or not in_store:
            source = candles or DEFAULT_CANDLES_DIR
            history = load_csv_history(source, wanted, timeframe)
        else:
            source = settings.db
            history = load_history_file(source, "local", wanted, timeframe)
    except OSError as exc:
        fail(str(exc))
    try:
        server = LocalExchange(
            history,
            host=settings.local_host,
            port=port if port is not None else settings.local_port,
            speed=speed if speed is not None else settings.local_speed,
            start=start,
            timeframe=timeframe,
            fill_model=FillModel(fee_rate=fee_rate, slippage=slippage),
            max_volume_fraction=max_volume_fraction,
            fee_asset=fee_asset,
        )
    except ValueError as exc:
        fail(str(exc))
    liquidity = (
        "resting orders fill whole"
        if max_volume_fraction is None
        else f"resting orders fill at most {max_volume_fraction:g} of the volume"
    )

    async def run() -> None:
        async with server:
            console.print(
                f"local exchange on {server.url} ({source}): {', '.join(server.symbols)}\n"
                f"speed {getattr(server.clock, 'speed', '-')}x, {liquidity}, "
                f"fees in {server.engine.fill_model.fee_asset.value}, "
                f"api key {LOCAL_API_KEY!r}, secret {LOCAL_API_SECRET!r}; Ctrl-C stops",
                highlight=False,
            )
            await asyncio.Event().wait()

    try:
        asyncio.run(run())
    except KeyboardInterrupt:
        console.print("stopped")
    except OSError as exc:
        fail(f"cannot serve on {settings.local_host}:{server.port}: {exc}")


def _call(method: str, port: int | None, path: str, body: dict[str, Any] | None = None) -> Any:
    settings = settings_with()
    url = f"http://{settings.local_host}:{port or settings.local_port}{path}"
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, method=method)
    request.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return json.loads(response.read())
    except urllib.error.HTTPError as exc:
        try:
            reason = json.loads(exc.read()).get("error", exc.reason)
        except ValueError:
            reason = exc.reason
        fail(f"the local exchange at {url} refused: {reason}")
    except (urllib.error.URLError, OSError) as exc:
        fail(f"no local exchange at {url}: {exc}")


@app.command()
def state(port: PortOption = None) -> None:
    """Show a running local exchange's clock, symbols, connections and faults."""
    typer.echo(json.dumps(_call("GET", port, "/_local/state"), indent=2))


FAULT_HELP = """\
drop_websockets: close every WebSocket (with --duration, refuse new ones);
stall_streams: hold WebSocket messages, then burst;
rate_limit: HTTP 429 (-1003); ban: HTTP 418; server_error: HTTP 5xx (--status);
latency: delay answers (--latency-ms);
answer_lost: carry out an order command (new order, OCO, cancel), then drop its answer
(or hold it --hang seconds);
lookup_failing: order/trade lookups answer 5xx (or hang --hang seconds), the rest works;
clock_skew: the server's clock runs --skew-ms ahead (-1021 on signed requests);
insufficient_balance: new orders rejected with -2010;
clear: end every fault. With neither --duration nor --count a request fault hits once."""


@app.command(help="Inject a fault into a running local exchange (or `clear` them all).")
def fault(
    kind: Annotated[str, typer.Argument(help=FAULT_HELP, show_default=False)],
    duration: Annotated[float | None, typer.Option("--duration", help="seconds")] = None,
    count: Annotated[int | None, typer.Option("--count", help="number of requests")] = None,
    status: Annotated[int | None, typer.Option("--status", help="HTTP status (5xx)")] = None,
    retry_after: Annotated[int, typer.Option("--retry-after", help="Retry-After, s")] = 1,
    latency_ms: Annotated[float, typer.Option("--latency-ms", help="added delay")] = 0.0,
    skew_ms: Annotated[
        int | None,
        typer.Option("--skew-ms", help="clock_skew: ms ahead (negative: behind; default 60000)"),
    ] = None,
    hang: Annotated[
        float,
        typer.Option("--hang", help="answer_lost, lookup_failing: say nothing this many s"),
    ] = 0.0,
    port: PortOption = None,
) -> None:
    if kind == "clear":
        typer.echo(json.dumps(_call("DELETE", port, "/_local/faults")))
        return
    spec: dict[str, Any] = {"kind": kind, "retry_after_s": retry_after, "latency_ms": latency_ms}
    if duration is not None:
        spec["duration_s"] = duration
    if count is not None:
        spec["count"] = count
    if status is not None:
        spec["status"] = status
    if skew_ms is not None:
        spec["skew_ms"] = skew_ms
    if hang:
        spec["hang_s"] = hang
    typer.echo(json.dumps(_call("POST", port, "/_local/faults", spec)))
