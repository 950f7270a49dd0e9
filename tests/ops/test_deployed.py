"""`workbench serve` run as deploy/ runs it, as far as this machine allows (no Docker engine
here): the command line of deploy/systemd/workbench.service (its executable, port and origin
substituted) under a notify socket the test owns, as systemd gives one to a `Type=notify`
unit with `WatchdogSec=`; and Debian's Caddy in front of it with the repository's Caddyfile
(host and ports substituted, `tls internal`). Checked: READY=1 then WATCHDOG=1 pings from
the server's panel child (hence `NotifyAccess=all`), STOPPING=1 on the unit's stop signal;
/health and /ready public, /metrics to this machine or the token; through https: /health, the
login page, /metrics closed to the world, a logged-in page whose Bokeh websocket runs through
the proxy, and a lockout of the client's address as the proxy forwarded it (`--use-xheaders`)
that reaches the trader's sink (apprise to a local receiver) and the open page, while everyone
else, coming from the proxy's address too, still gets in."""

from __future__ import annotations

import configparser
import http.client
import json
import os
import re
import shlex
import shutil
import signal
import socket
import ssl
import struct
import subprocess
import sys
import threading
import time
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from alert_receiver import Receiver, receiving
from prometheus_client.parser import text_string_to_metric_families
from shipped import ARTIFACTS, ROOT
from ui.conftest import browser, free_port  # noqa: F401  (browser: a fixture)
from ui.pages import STRATEGY_ROWS

from workbench.auth.accounts import Accounts
from workbench.auth.roles import Role, User
from workbench.data.shipped import ensure_shipped
from workbench.store import Store

DEPLOY = ROOT / "deploy"
COOKIE_SECRET = "deploy-test-cookie-secret-0123456789abcdef"
METRICS_TOKEN = "deploy-test-metrics-token-0123456789"
# Planted secrets: an exchange key pair, and the alert sink's password and header token (the
# receiver takes the alert whatever they are).
CANARY_KEY, CANARY_SECRET = "canaryKEY-d3pl0y3d1a2b", "canarySECRET-d3pl0y3d9z8y"
SINK_PASSWORD, SINK_TOKEN = "canarySINKpw-7d6c5b4a", "canarySINKtoken-3e2f1a0b"
SECRETS = (CANARY_KEY, CANARY_SECRET, SINK_PASSWORD, SINK_TOKEN, COOKIE_SECRET, METRICS_TOKEN)


def assert_no_secret(text: str, where: str) -> None:
    for secret in SECRETS:
        assert secret not in text, f"{secret[:12]}... in {where}"


ADMIN = ("ada", "admin password 1")
WATCHDOG_USEC = 1_000_000  # a ping every 0.5 s
CLIENT = "127.0.0.2"  # the browser's address as the proxy sees it (the proxy is 127.0.0.1)


@dataclass
class Notices:
    """What arrived on the notify socket: (monotonic s, sender pid, message)."""

    sock: socket.socket
    got: list[tuple[float, int, str]] = field(default_factory=list)

    def read(self, stop: threading.Event) -> None:
        self.sock.settimeout(0.2)
        while not stop.is_set():
            try:
                data, ancillary, _flags, _addr = self.sock.recvmsg(4096, socket.CMSG_SPACE(12))
            except TimeoutError:
                continue
            pid = -1
            for level, kind, value in ancillary:
                if level == socket.SOL_SOCKET and kind == socket.SCM_CREDENTIALS:
                    pid = struct.unpack("3i", value[:12])[0]
            for line in data.decode().splitlines():
                self.got.append((time.monotonic(), pid, line))

    def messages(self) -> list[str]:
        return [message for _t, _pid, message in self.got]

    def wait(self, message: str, count: int = 1, timeout_s: float = 120) -> None:
        deadline = time.monotonic() + timeout_s
        while self.messages().count(message) < count:
            assert time.monotonic() < deadline, f"no {count} x {message}: {self.messages()}"
            time.sleep(0.05)


@dataclass
class Deployed:
    serve: subprocess.Popen[bytes]
    notices: Notices
    receiver: Receiver
    https: str  # https://127.0.0.1:PORT
    tls: ssl.SSLContext  # trusts Caddy's local CA
    port: int

    direct: str  # http://127.0.0.1:PORT, the server itself (the unit binds the loopback)
    db: Path

    def request(
        self,
        method: str,
        path: str,
        *,
        source: str = "127.0.0.1",
        body: str | None = None,
        direct: bool = False,
        **headers: str,
    ) -> tuple[int, str, dict[str, str]]:
        """Send a request through the proxy from `source` (a loopback address), or straight to
        the server; give status, body and headers (redirects are not followed)."""
        if direct:
            port = int(self.direct.rsplit(":", 1)[1])
            connection: http.client.HTTPConnection = http.client.HTTPConnection(
                "127.0.0.1", port, timeout=30
            )
        else:
            connection = http.client.HTTPSConnection(
                "127.0.0.1", self.port, context=self.tls, timeout=30, source_address=(source, 0)
            )
        if body is not None:
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        try:
            connection.request(method, path, body=body, headers=headers)
            answer = connection.getresponse()
            return answer.status, answer.read().decode(), dict(answer.headers)
        finally:
            connection.close()

    def get(self, path: str, **headers: str) -> tuple[int, str, dict[str, str]]:
        return self.request("GET", path, **headers)  # type: ignore[arg-type]

    def login(self, name: str, password: str, source: str) -> int:
        form = urllib.parse.urlencode({"username": name, "password": password, "next": "/"})
        return self.request("POST", "/login", source=source, body=form)[0]

    def wait_for_alert(self, text: str, timeout_s: float = 30) -> str:
        """Give the first alert title holding `text` (the audit log is read every 5 s)."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            found = [t for t in self.receiver.titles() if text in t]
            if found:
                return found[0]
            time.sleep(0.1)
        raise AssertionError(f"no alert with {text!r}: {self.receiver.titles()}")


def unit_command(executable: str, port: int, origin: str) -> list[str]:
    """Give workbench.service's ExecStart with only the executable, port and origin changed."""
    unit = configparser.ConfigParser(strict=False, interpolation=None)
    unit.read(DEPLOY / "systemd" / "workbench.service")
    argv = shlex.split(unit["Service"]["ExecStart"])
    argv[0] = executable
    argv[argv.index("--port") + 1] = str(port)
    argv[argv.index("--allow-origin") + 1] = origin
    return argv


def caddyfile_for(serve_port: int, https_port: int, http_port: int) -> str:
    """Give deploy/Caddyfile with its host and upstream port substituted and `tls internal`
    (no public certificate here), after global options that keep it off shared ports."""
    text = (DEPLOY / "Caddyfile").read_text()
    site = re.search(r"^(\S+) \{$", text, re.M)
    assert site is not None
    text = text.replace(f"{site.group(1)} {{", f"https://127.0.0.1:{https_port} {{\n\ttls internal")
    text = text.replace("workbench:5006", f"127.0.0.1:{serve_port}")
    options = (
        f"{{\n\tadmin off\n\thttp_port {http_port}\n\tskip_install_trust\n"
        "\tauto_https disable_redirects\n}\n"
    )
    return options + text


def wait_until(check: Any, what: str, process: subprocess.Popen[bytes], timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while True:
        if process.poll() is not None:
            raise AssertionError(f"{what}: the process exited with {process.returncode}")
        try:
            if check():
                return
        except OSError:
            pass
        assert time.monotonic() < deadline, f"{what} within {timeout_s} s"
        time.sleep(0.2)


def stop_unit(serve: subprocess.Popen[bytes]) -> int:
    """Stop the server as systemd stops the unit: KillSignal=SIGINT to every process of its
    control group (here: its process group); give its exit status."""
    os.killpg(serve.pid, signal.SIGINT)
    try:
        return serve.wait(timeout=60)
    except subprocess.TimeoutExpired:
        os.killpg(serve.pid, signal.SIGKILL)
        serve.wait()
        raise


@pytest.fixture(scope="module")
def deployed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployed]:
    caddy = shutil.which("caddy")
    if caddy is None:
        pytest.fail("caddy is missing: `make test` installs Debian's caddy")
    where = tmp_path_factory.mktemp("deployed")
    db = where / "workbench.duckdb"
    with Store.open(db) as store:
        ensure_shipped(store)
        Accounts(store).add_user(User("test", Role.ADMIN), ADMIN[0], "admin", ADMIN[1])
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(where / "notify"))
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 1)
    notices, stop = Notices(sock), threading.Event()
    reader = threading.Thread(target=notices.read, args=(stop,), daemon=True)
    reader.start()
    serve_port, https_port, http_port = free_port(), free_port(), free_port()
    executable = str(Path(sys.executable).with_name("workbench"))
    argv = unit_command(executable, serve_port, f"127.0.0.1:{https_port}")
    ARTIFACTS.mkdir(exist_ok=True)
    with receiving() as receiver, (ARTIFACTS / "deployed-serve.log").open("wb") as log:
        env = {
            **os.environ,
            "WORKBENCH_DB": str(db),
            "WORKBENCH_COOKIE_SECRET": COOKIE_SECRET,
            "WORKBENCH_ALERT_URLS": receiver.url.replace(
                "json://", f"json://alerts:{SINK_PASSWORD}@"
            )
            + f"?+X-Token={SINK_TOKEN}",
            "WORKBENCH_API_KEY": CANARY_KEY,
            "WORKBENCH_API_SECRET": CANARY_SECRET,
            "WORKBENCH_LOCAL_SPEED": "3000",
            "WORKBENCH_LOGIN_MAX_FAILURES": "3",
            "WORKBENCH_METRICS_TOKEN": METRICS_TOKEN,
            # At 3000x a 5m bar lasts 0.1 s: a busy second of this machine is bars of market.
            "WORKBENCH_ALERT_STALE_BARS": "1000",
            "WORKBENCH_READY_MAX_FEED_LAG_BARS": "1000",
            "NOTIFY_SOCKET": str(where / "notify"),
            "WATCHDOG_USEC": str(WATCHDOG_USEC),
        }
        env.pop("WORKBENCH_AUTH", None)
        # systemd sets WATCHDOG_PID to the unit's main process: the shell exec's into it.
        wrapper = ["sh", "-c", 'export WATCHDOG_PID=$$; exec "$0" "$@"', *argv]
        serve = subprocess.Popen(
            wrapper, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
        caddyfile = where / "Caddyfile"
        caddyfile.write_text(caddyfile_for(serve_port, https_port, http_port))
        caddy_env = {
            **os.environ,
            "XDG_DATA_HOME": str(where / "caddy-data"),
            "XDG_CONFIG_HOME": str(where / "caddy-config"),
        }
        proxy = subprocess.Popen(
            [caddy, "run", "--config", str(caddyfile), "--adapter", "caddyfile"],
            env=caddy_env,
            stdout=(ARTIFACTS / "deployed-caddy.log").open("wb"),
            stderr=subprocess.STDOUT,
        )
        root = where / "caddy-data" / "caddy" / "pki" / "authorities" / "local" / "root.crt"
        try:
            wait_until(root.exists, "Caddy's local CA", proxy, 30)
            tls = ssl.create_default_context(cafile=str(root))
            found = Deployed(
                serve, notices, receiver, f"https://127.0.0.1:{https_port}", tls, https_port,
                f"http://127.0.0.1:{serve_port}", db,
            )  # fmt: skip
            wait_until(lambda: found.get("/health")[0] == 200, "/health via Caddy", serve, 120)
            wait_until(lambda: found.get("/health")[0] == 200, "/health via Caddy", proxy, 5)
            yield found
        finally:
            proxy.terminate()
            proxy.wait(timeout=10)
            if serve.poll() is None:
                stop_unit(serve)
            time.sleep(0.3)  # the last datagrams
            stop.set()
            reader.join(timeout=5)
            sock.close()


def test_systemd_hears_ready_then_watchdog_pings_from_the_server(deployed: Deployed) -> None:
    notices = deployed.notices
    notices.wait("READY=1")
    ready_at = next(t for t, _pid, m in notices.got if m == "READY=1")
    count = notices.messages().count("WATCHDOG=1")
    notices.wait("WATCHDOG=1", count + 2, timeout_s=30)
    pings = [(t, pid) for t, pid, m in notices.got if m == "WATCHDOG=1"]
    assert all(t > ready_at for t, _pid in pings)
    senders = {pid for _t, pid, m in notices.got if m in ("READY=1", "WATCHDOG=1")}
    assert len(senders) == 1
    (sender,) = senders
    # `workbench serve` (the unit's main process) runs panel, which sends: NotifyAccess=all.
    stat = Path(f"/proc/{sender}/stat").read_text()
    parent = int(stat.rsplit(")", 1)[1].split()[1])
    assert parent == deployed.serve.pid != sender


def test_health_and_ready_are_public_metrics_are_not(deployed: Deployed) -> None:
    status, body, _ = deployed.request("GET", "/health", direct=True)
    assert status == 200 and json.loads(body)["status"] in ("alive", "starting")
    for _ in range(240):  # the engine warms up with the server
        status, body, _ = deployed.request("GET", "/ready", direct=True)
        if status == 200:
            break
        time.sleep(0.5)
    ready = json.loads(body)
    assert status == 200 and ready["ready"] is True, body
    assert ready["strategies"].get("running", 0) >= 1
    assert ADMIN[0] not in body
    assert_no_secret(body, "/ready")
    assert_no_secret(deployed.request("GET", "/health", direct=True)[1], "/health")
    status, _, headers = deployed.request("GET", "/dashboard", direct=True)
    assert status == 302 and "/login" in headers["Location"]  # the apps need a login
    status, text, headers = deployed.request("GET", "/metrics", direct=True)  # this machine
    assert status == 200 and headers["Content-Type"].startswith("text/plain")
    names = {f.name for f in text_string_to_metric_families(text)}
    assert {
        "workbench_candles",
        "workbench_strategy_equity",
        "workbench_feed_lag_bars",
        "workbench_loop_lag_seconds",
        "workbench_close_to_order_seconds",
    } <= names
    proxied = {"X-Forwarded-For": "203.0.113.5"}
    assert deployed.request("GET", "/metrics", direct=True, **proxied)[0] == 401
    authorized = {**proxied, "Authorization": f"Bearer {METRICS_TOKEN}"}
    assert deployed.request("GET", "/metrics", direct=True, **authorized)[0] == 200
    assert_no_secret(text, "/metrics")


def test_through_the_proxy_health_and_login_answer_metrics_do_not(deployed: Deployed) -> None:
    status, body, _ = deployed.get("/health")
    assert status == 200 and '"status"' in body
    status, body, _ = deployed.get("/login")
    assert status == 200 and 'id="username"' in body and 'id="password"' in body
    assert deployed.get("/metrics")[0] == 403  # the Caddyfile lets only 10.0.0.0/8 through


@pytest.mark.browser
def test_a_page_through_the_proxy_and_a_lockout_of_the_forwarded_address(
    deployed: Deployed,
    browser: Any,  # noqa: F811
) -> None:
    context = browser.new_context(ignore_https_errors=True, viewport={"width": 1400, "height": 900})
    page = context.new_page()
    sockets: list[str] = []
    page.on("websocket", lambda ws: sockets.append(ws.url))
    page.goto(f"{deployed.https}/dashboard")
    page.fill("#username", ADMIN[0])
    page.fill("#password", ADMIN[1])
    page.click("#login")
    page.locator(STRATEGY_ROWS).first.wait_for(timeout=90_000)  # drawn by Bokeh over the socket
    assert any(url.startswith(f"wss://127.0.0.1:{deployed.port}/") for url in sockets), sockets
    # Wrong passwords from another client: the server sees its address, as the proxy
    # forwarded it (--use-xheaders); the third locks out that name and that address only.
    tries = [deployed.login("mallory", "guess", source=CLIENT) for _ in range(3)]
    assert tries == [401, 401, 429]  # 429: locked out, come back after Retry-After
    assert f"from {CLIENT}" in deployed.wait_for_alert("failed login: mallory")
    assert f"from {CLIENT}" in deployed.wait_for_alert("locked out: mallory")
    toast = page.locator(".notyf__message", has_text="locked out: mallory")
    toast.first.wait_for(timeout=30_000)
    page.locator(".bk-tab", has_text="Alerts").click()
    page.locator(".tabulator-cell", has_text="lockout").first.wait_for(timeout=30_000)
    assert_no_secret(page.content(), "the Alerts tab")
    context.close()
    assert_no_secret((ARTIFACTS / "deployed-serve.log").read_text(), "the server's log")
    # Everyone else comes through the same proxy, from its address: still let in.
    assert deployed.login(*ADMIN, source="127.0.0.1") == 302


def test_the_server_says_stopping_on_the_units_stop_signal(deployed: Deployed) -> None:
    deployed.notices.wait("READY=1")
    assert stop_unit(deployed.serve) == 0
    deployed.notices.wait("STOPPING=1", timeout_s=5)
    # Stopped cleanly: the engine and the store closed (DuckDB checkpoints its log away).
    assert "did not stop cleanly" not in (ARTIFACTS / "deployed-serve.log").read_text()
    assert not deployed.db.with_name(deployed.db.name + ".wal").exists()
