"""`workbench serve`: the dashboard and the research app for a team, login required.

The production entry: auth is on unless WORKBENCH_AUTH=false, which is allowed on a loopback
address only; with auth on the server refuses to start without WORKBENCH_COOKIE_SECRET.
With no user yet, the first admin is created and its one-time password printed once.
`workbench demo` runs the same server on 127.0.0.1, auth off unless asked for.
"""

from __future__ import annotations

import ipaddress
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Annotated

import typer

from workbench.auth.accounts import accounts_for
from workbench.cli.common import DbOption, console, fail, settings_with
from workbench.data.shipped import ensure_shipped, shipped_files
from workbench.settings import Settings
from workbench.store import Store, StoreError

APPS = Path(__file__).resolve().parents[2] / "apps"
APP = APPS / "dashboard.py"
RESEARCH = APPS / "research.py"
# Starts the live engine with the server rather than with the first page.
SETUP = Path(__file__).resolve().parents[1] / "ui" / "server_setup.py"
HOOKS = Path(__file__).resolve().parents[1] / "auth" / "panel_hooks.py"
MIN_SECRET = 32


def is_loopback(address: str) -> bool:
    """Tell whether `address` is reachable from this machine only."""
    if address == "localhost":
        return True
    try:
        return ipaddress.ip_address(address).is_loopback
    except ValueError:
        return False


def check_auth(settings: Settings, address: str, auth: bool) -> None:
    """Refuse what must not run: no auth off the loopback, no auth without a cookie secret."""
    if not auth and not is_loopback(address):
        fail(
            f"refusing to serve on {address} with auth off: anyone who reaches it could trade. "
            "Turn auth on (unset WORKBENCH_AUTH) or bind 127.0.0.1"
        )
    if auth:
        secret = settings.cookie_secret.get_secret_value() if settings.cookie_secret else ""
        if len(secret) < MIN_SECRET:
            fail(
                f"auth is on but WORKBENCH_COOKIE_SECRET is {'too short' if secret else 'unset'}"
                f" (at least {MIN_SECRET} characters): set it, e.g. to the output of "
                "`python -c 'import secrets; print(secrets.token_urlsafe(32))'`"
            )


def panel_command(
    address: str, port: int, auth: bool, settings: Settings, origins: list[str], xheaders: bool
) -> list[str]:
    """Give the `panel serve` command line (no secret on it: they go by environment)."""
    command = [
        sys.executable, "-m", "panel", "serve", str(APP), str(RESEARCH),
        "--setup", str(SETUP), "--address", address, "--port", str(port),
        "--plugins", "workbench.ops.panel_routes",  # /health, /ready, /metrics
    ]  # fmt: skip
    for origin in origins or [f"{address}:{port}", f"localhost:{port}"]:
        command += ["--allow-websocket-origin", origin]
    if xheaders:
        command.append("--use-xheaders")  # behind a reverse proxy: the client's address
    if auth and settings.oauth_provider:
        command += ["--oauth-provider", settings.oauth_provider]
        command += ["--oauth-expiry-days", f"{settings.session_ttl_s / 86400:g}"]
    elif auth:
        command += ["--auth-module", str(HOOKS)]
    return command


def panel_env(settings: Settings, auth: bool) -> dict[str, str]:
    env = {**os.environ, "WORKBENCH_DB": str(settings.db), "WORKBENCH_AUTH": str(auth).lower()}
    if auth and settings.cookie_secret is not None:
        env["PANEL_COOKIE_SECRET"] = env["BOKEH_COOKIE_SECRET"] = (
            settings.cookie_secret.get_secret_value()
        )
    if auth and settings.oauth_provider:
        env["PANEL_OAUTH_KEY"] = settings.oauth_key or ""
        for name, value in (
            ("PANEL_OAUTH_SECRET", settings.oauth_secret),
            ("PANEL_OAUTH_ENCRYPTION", settings.oauth_encryption_key),
        ):
            if value is not None:
                env[name] = value.get_secret_value()
    return env


def run_server(
    settings: Settings,
    *,
    address: str,
    port: int,
    auth: bool,
    origins: list[str] | None = None,
    xheaders: bool = False,
) -> None:
    """Prepare the database, then run `panel serve` until it stops (Ctrl-C stops it cleanly)."""
    check_auth(settings, address, auth)
    if not shipped_files() or not APP.exists() or not RESEARCH.exists():
        fail("the server runs from a clone of the repository (data/candles and apps/ are missing)")
    try:
        with Store.open(settings.db) as store:
            for done in ensure_shipped(store):
                console.print(f"imported {done.symbol} {done.timeframe}: {done.rows} bars")
            first = accounts_for(settings, store).ensure_first_admin() if auth else None
    except StoreError as exc:
        fail(str(exc))
    if first is not None:
        console.print(
            f"[bold]first admin created:[/] name [bold]admin[/], one-time password "
            f"[bold]{first}[/] (shown only now: change it with `workbench users passwd admin`)"
        )
    shown = "localhost" if address in ("127.0.0.1", "::1") else address
    console.print(f"live dashboard: http://{shown}:{port}/dashboard")
    console.print(f"research:       http://{shown}:{port}/research  (Ctrl-C stops both)")
    console.print(
        "login required" if auth else "[bold yellow]auth is off[/]: local use only (127.0.0.1)"
    )
    command = panel_command(address, port, auth, settings, origins or [], xheaders)
    server = subprocess.Popen(command, env=panel_env(settings, auth))
    # A stop request (systemd, a container runtime, `kill`) reaches this process only: pass it
    # on, and wait for the server to stop its engine and let go of the database.
    signal.signal(signal.SIGTERM, lambda *_: server.terminate())
    try:
        code = server.wait()
    except KeyboardInterrupt:
        # Ctrl-C reached the server too: let it stop its engine and write what it holds.
        try:
            code = server.wait(timeout=60)
        except (KeyboardInterrupt, subprocess.TimeoutExpired):
            server.terminate()
            code = server.wait()
    raise typer.Exit(0 if code in (0, -2, -15, 130, 143) else code)


def serve(
    address: Annotated[str, typer.Option(help="address to listen on")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="port")] = 5006,
    allow_origin: Annotated[
        list[str] | None,
        typer.Option(help="host:port browsers reach it at (repeat; default address:port)"),
    ] = None,
    use_xheaders: Annotated[
        bool, typer.Option(help="behind a reverse proxy: trust its X-Forwarded-For")
    ] = False,
    db: DbOption = None,
) -> None:
    """Serve the live dashboard and the research app with login (auth on by default)."""
    settings = settings_with(db)
    auth = settings.auth if settings.auth is not None else True
    run_server(
        settings, address=address, port=port, auth=auth, origins=allow_origin,
        xheaders=use_xheaders,
    )  # fmt: skip
