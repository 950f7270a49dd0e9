"""systemd's notify protocol on a real unix datagram socket: READY=1, and WATCHDOG=1 pinged
from the engine's loop while it runs and never while it is blocked. The whole server under a
notify socket: test_deployed.py."""

from __future__ import annotations

import asyncio
import os
import socket
import threading
import time
from pathlib import Path

import pytest

from workbench.ops import systemd
from workbench.ops.service import OpsService
from workbench.settings import Settings


@pytest.fixture
def notify_socket(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> socket.socket:
    path = tmp_path / "notify"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(path))
    sock.settimeout(5)
    monkeypatch.setenv("NOTIFY_SOCKET", str(path))
    return sock


def test_notify_reaches_the_socket_and_is_silent_without_one(
    notify_socket: socket.socket, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert systemd.notify("READY=1") is True
    assert notify_socket.recv(64) == b"READY=1"
    monkeypatch.delenv("NOTIFY_SOCKET")
    assert systemd.notify("READY=1") is False


def test_the_watchdog_is_for_this_process_or_its_parent(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WATCHDOG_USEC", "30000000")
    for pid in (os.getpid(), os.getppid()):
        monkeypatch.setenv("WATCHDOG_PID", str(pid))
        assert systemd.watchdog_interval_s() == 15.0
    monkeypatch.setenv("WATCHDOG_PID", "1")
    assert systemd.watchdog_interval_s() is None
    monkeypatch.delenv("WATCHDOG_USEC")
    assert systemd.watchdog_interval_s() is None


async def test_the_loop_probe_pings_while_the_loop_runs(
    notify_socket: socket.socket, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("WATCHDOG_USEC", "400000")  # ping every 0.2 s
    monkeypatch.setenv("WATCHDOG_PID", str(os.getpid()))
    notify_socket.setblocking(False)
    ops = OpsService(None, None, Settings())  # the probe needs no engine
    probe = asyncio.get_running_loop().create_task(ops._loop_probe())
    await asyncio.sleep(1.1)
    probe.cancel()
    pings = []
    while True:
        try:
            pings.append(notify_socket.recv(64))
        except BlockingIOError:
            break
    assert pings and set(pings) == {b"WATCHDOG=1"}
    assert len(pings) >= 2
    assert ops.loop_lag_s is not None and ops.loop_lag_s < 1.0


async def test_a_blocked_loop_stops_the_pings_until_it_runs_again(
    notify_socket: socket.socket, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("WATCHDOG_USEC", "200000")  # ping every 0.1 s
    monkeypatch.setenv("WATCHDOG_PID", str(os.getpid()))
    arrived: list[float] = []
    done = threading.Event()

    def read() -> None:  # off the loop: the loop is what gets blocked
        notify_socket.settimeout(0.05)
        while not done.is_set():
            try:
                if notify_socket.recv(64) == b"WATCHDOG=1":
                    arrived.append(time.monotonic())
            except TimeoutError:
                pass

    reader = threading.Thread(target=read)
    reader.start()
    ops = OpsService(None, None, Settings())
    probe = asyncio.get_running_loop().create_task(ops._loop_probe())
    try:
        await asyncio.sleep(0.8)
        blocked_at = time.monotonic()
        time.sleep(1.5)  # a hung loop: systemd would restart the unit after WatchdogSec
        unblocked_at = time.monotonic()
        await asyncio.sleep(0.8)
    finally:
        probe.cancel()
        done.set()
        reader.join()
    before = [t for t in arrived if t < blocked_at]
    during = [t for t in arrived if blocked_at + 0.05 < t < unblocked_at]
    after = [t for t in arrived if t >= unblocked_at]
    assert before and after and during == [], (before, during, after)
