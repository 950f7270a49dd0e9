"""systemd's notify protocol (sd_notify), without libsystemd: one datagram per message.

Under `Type=notify` systemd sets NOTIFY_SOCKET; `READY=1` says the service is up, and with
`WatchdogSec=` it expects `WATCHDOG=1` at least that often or restarts the service. The
ops service sends WATCHDOG=1 from a timer on the engine's event loop, so a loop that hangs
stops the pings and systemd restarts the process. Elsewhere (no NOTIFY_SOCKET) nothing is
sent.
"""

from __future__ import annotations

import os
import socket


def notify(message: str) -> bool:
    """Send `message` (e.g. "READY=1") to systemd; tell whether there was a socket to send to."""
    address = os.environ.get("NOTIFY_SOCKET")
    if not address:
        return False
    if address.startswith("@"):  # an abstract socket
        address = "\0" + address[1:]
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
        sock.connect(address)
        sock.sendall(message.encode())
    return True


def watchdog_interval_s() -> float | None:
    """Give how often to ping the watchdog (half of WATCHDOG_USEC), or None without one.

    The watchdog is for systemd's main process; `workbench serve` runs `panel serve` as its
    child, which pings for it (the unit says NotifyAccess=all).
    """
    usec = os.environ.get("WATCHDOG_USEC")
    pid = os.environ.get("WATCHDOG_PID")
    if not usec or (pid and int(pid) not in (os.getpid(), os.getppid())):
        return None
    return int(usec) / 1e6 / 2
