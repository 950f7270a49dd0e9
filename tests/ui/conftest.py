"""Browser fixtures: a real `panel serve` process and Debian's chromium driven by Playwright."""

from __future__ import annotations

import http.client
import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import pytest
from shipped import ARTIFACTS, ROOT

from workbench.cli.demo import SETUP
from workbench.data.shipped import ensure_shipped
from workbench.store import Store

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class PortTaken(RuntimeError):
    """Another process took the port between `free_port` and the server's bind."""


def wait_for(
    url: str, process: subprocess.Popen[bytes], timeout_s: float = 90, log: Path | None = None
) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            said = log.read_text(errors="replace") if log is not None else ""
            if "already in use" in said:
                raise PortTaken(f"{url}: the port was taken before panel serve bound it")
            raise RuntimeError(f"panel serve exited with {process.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=5) as response:
                if response.status == 200:
                    return
        except http.client.HTTPException as exc:  # not HTTP: another server holds the port
            raise PortTaken(f"{url} is answered by another process ({exc!r:.80})") from exc
        except OSError:
            time.sleep(0.5)
    raise TimeoutError(f"{url} did not answer within {timeout_s} s")


def worker_log_name(name: str) -> str:
    """Give the log's name for this pytest-xdist worker (``panel-serve-gw1.log``): two test
    files on two workers may serve the same app at once, each to its own log."""
    worker = os.environ.get("PYTEST_XDIST_WORKER")
    if not worker:
        return name
    path = Path(name)
    return f"{path.stem}-{worker}{path.suffix}"


@pytest.fixture(scope="module")
def served_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Give a database holding the shipped candles, as `make demo` prepares it."""
    path = tmp_path_factory.mktemp("served") / "workbench.duckdb"
    with Store.open(path) as store:
        ensure_shipped(store)
    return path


@contextmanager
def serve(
    app: Path,
    db: Path | str,
    log_name: str,
    env: dict[str, str] | None = None,
    *,
    setup: bool = False,
    args: list[str] | None = None,
    also: tuple[Path, ...] = (),
) -> Iterator[str]:
    """Serve one app (and the apps in ``also``) with `panel serve` on 127.0.0.1 against
    ``db``; give the first app's URL (with ``setup``, the live engine starts with the server,
    as `workbench demo` does). A port another process takes between `free_port` and the
    server's bind (a Dask cluster of a test on the other worker, seen) is given up for a
    new one."""
    for _attempt in range(3):
        port = free_port()
        process, log = _start(app, db, log_name, env, port, setup=setup, args=args, also=also)
        url = f"http://127.0.0.1:{port}/{app.stem}"
        try:
            wait_for(f"http://127.0.0.1:{port}/liveness", process, log=Path(log.name))
        except PortTaken:
            _stop(process, log)
            continue
        except BaseException:
            _stop(process, log)
            raise
        try:
            yield url
        finally:
            _stop(process, log)
        return
    raise RuntimeError("three ports in a row were taken before panel serve bound them")


def _start(
    app: Path,
    db: Path | str,
    log_name: str,
    env: dict[str, str] | None,
    port: int,
    *,
    setup: bool,
    args: list[str] | None,
    also: tuple[Path, ...],
) -> tuple[subprocess.Popen[bytes], BinaryIO]:
    ARTIFACTS.mkdir(exist_ok=True)
    log = (ARTIFACTS / worker_log_name(log_name)).open("wb")
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "panel",
            "serve",
            str(app),
            *[str(more) for more in also],
            "--address",
            "127.0.0.1",
            "--port",
            str(port),
            "--allow-websocket-origin",
            f"127.0.0.1:{port}",
            "--liveness",  # answers without opening a session
            *(["--setup", str(SETUP)] if setup else []),
            *(args or []),
        ],
        # Research at the suite's own priority: at niceness 19 (the default, tested in
        # tests/jobs/test_pool.py) its job waited behind the other test processes' work
        # for over a minute on a loaded machine.
        env={**os.environ, "WORKBENCH_DB": str(db), "WORKBENCH_RESEARCH_NICE": "0", **(env or {})},
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    return process, log


def _stop(process: subprocess.Popen[bytes], log: BinaryIO) -> None:
    process.terminate()
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
    log.close()


# The live dashboard trades on the local exchange replaying the shipped candles: fast, so
# that candles stream within seconds.
LIVE_ENV = {"WORKBENCH_LOCAL_SPEED": "3000"}
COOKIE_SECRET = "test-cookie-secret-0123456789abcdefghijkl"


@contextmanager
def serve_with_login(
    db: Path,
    log_name: str,
    users: dict[str, tuple[str, str]],
    env: dict[str, str] | None = None,
) -> Iterator[str]:
    """Serve apps/dashboard.py and apps/research.py with login on (the engine started with
    the server), as `workbench serve` does, for ``users`` (name: (role, password)), added to
    ``db`` first; give the server's base URL."""
    from workbench.auth.accounts import Accounts
    from workbench.auth.roles import Role, User
    from workbench.cli.serve import HOOKS

    with Store.open(db) as store:
        accounts = Accounts(store)
        for name, (role, password) in users.items():
            accounts.add_user(User("test", Role.ADMIN), name, role, password)
    login_env = {
        **LIVE_ENV,
        "WORKBENCH_AUTH": "true",
        "WORKBENCH_COOKIE_SECRET": COOKIE_SECRET,
        "PANEL_COOKIE_SECRET": COOKIE_SECRET,
        "BOKEH_COOKIE_SECRET": COOKIE_SECRET,
        **(env or {}),
    }
    app = ROOT / "apps" / "dashboard.py"
    args = ["--auth-module", str(HOOKS)]
    research = ROOT / "apps" / "research.py"
    with serve(app, db, log_name, login_env, setup=True, args=args, also=(research,)) as url:
        yield url.rsplit("/", 1)[0]


@pytest.fixture(scope="module")
def dashboard(served_db: Path) -> Iterator[str]:
    """Serve apps/dashboard.py with `panel serve` and give its URL."""
    with serve(ROOT / "apps" / "dashboard.py", served_db, "panel-serve.log", LIVE_ENV) as url:
        yield url


@dataclass
class Served:
    """A served app: its URL, its database, and a way to stop it early."""

    url: str
    db: Path
    stop: Callable[[], None]


@pytest.fixture(scope="module")
def live_dashboard(served_db: Path) -> Iterator[Served]:
    """Serve apps/dashboard.py; give its URL, database and `stop()` (to read the file after)."""
    with ExitStack() as stack:
        url = stack.enter_context(
            serve(
                ROOT / "apps" / "dashboard.py",
                served_db,
                "panel-serve-live.log",
                LIVE_ENV,
                setup=True,
            )
        )
        yield Served(url, served_db, stack.close)


@pytest.fixture(scope="module")
def research(served_db: Path) -> Iterator[str]:
    """Serve apps/research.py with `panel serve` and give its URL."""
    with serve(ROOT / "apps" / "research.py", served_db, "panel-serve-research.log") as url:
        yield url


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    """Give a headless Debian chromium under Playwright, for one test module (Playwright's
    sync API keeps an event loop marked running while it lives, which asyncio tests in
    later modules would trip on)."""
    from playwright.sync_api import sync_playwright

    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: `make test` installs Debian's chromium")
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS
        )
        yield launched
        launched.close()
