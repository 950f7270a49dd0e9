"""Jobs for the worker-pool tests: module-level, so that a spawned worker can import them;
and `gone`, how the tests see a worker ended."""

from __future__ import annotations

import os
import time

from workbench.jobs.pool import Report


def whoami(report: Report) -> int:
    return os.getpid()


def count(report: Report, steps: int, pause_s: float) -> int:
    """Report each of `steps` steps, `pause_s` apart; give the steps done."""
    for n in range(1, steps + 1):
        time.sleep(pause_s)
        report(n, steps)
    return steps


def spin(report: Report, seconds: float) -> float:
    """Keep a core busy in pure Python (holding the interpreter lock) for `seconds`."""
    end = time.perf_counter() + seconds
    total = 0.0
    while time.perf_counter() < end:
        total += sum(i * 0.5 for i in range(1000))
    report(1, 1)
    return total


def refuse(report: Report, field: str) -> None:
    raise ValueError(f"{field}: must be positive")


def die(report: Report, code: int) -> None:
    os._exit(code)


def gone(pid: int, within_s: float = 10.0) -> bool:
    """Tell whether process `pid` has ended within `within_s` seconds."""
    deadline = time.monotonic() + within_s
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        time.sleep(0.05)
    return False


def niceness(report: Report) -> int:
    return os.nice(0)
