"""Work that must not run in the process that trades: worker processes with progress and
cancel, awaited from the event loop without blocking it.

Backtests, sweeps, walk-forward and Monte Carlo are CPU-bound (numba, numpy) and can take
minutes and gigabytes. In the dashboard's process they would share the interpreter lock, the
cores' time and the memory of the live engine; a `JobPool` runs each in a worker process
instead. The workers are pebble's `ProcessPool`, spawned (nothing of the server's threads,
sockets or database connections is inherited); cancelling a running job stops its worker and
pebble starts a fresh one.

Workers never open the database: a DuckDB file is locked by the process that owns it (see
`workbench.store.db`). The caller reads the inputs, sends them with the job and stores what
comes back.

Progress travels through shared memory, one slot (token, pid, done, total) per job, written
by the worker and read by the caller when it polls: no lock that a stopped worker could leave
held. A worker writes only while the slot still holds its job's token, so a cancelled job's
worker, in the moment before it is stopped, cannot write over the next job's progress.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import itertools
import multiprocessing
import os
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any

from pebble import ProcessExpired, ProcessPool

from workbench.errors import WorkbenchError

Report = Callable[[int, int], None]
MAX_JOBS = 64  # jobs submitted and not yet done, across every caller of one pool
_TOKEN, _PID, _DONE, _TOTAL = range(4)
_FIELDS = 4


class JobError(WorkbenchError):
    """A job that gave no result: what it was and why."""


class JobCancelled(JobError):
    """The job was cancelled before it finished."""


class JobFailed(JobError):
    """The job raised, or its worker process died."""


class WorkerError(WorkbenchError):
    """An exception raised by a job, as its type name and message (always picklable)."""


# -- in the worker ---------------------------------------------------------------------
_slots: Any = None


def _start_worker(slots: Any, warm: Sequence[str], nice: int) -> None:
    global _slots
    _slots = slots
    if nice:
        os.nice(nice)
    for name in warm:  # import what the jobs need before the first one arrives
        importlib.import_module(name)


def _run_job(slot: int, token: int, fn: Callable[..., Any], args: tuple[Any, ...]) -> Any:
    base = slot * _FIELDS
    if _slots[base + _TOKEN] == token:
        _slots[base + _PID] = os.getpid()

    def report(done: int, total: int) -> None:
        if _slots[base + _TOKEN] == token:
            _slots[base + _TOTAL] = total
            _slots[base + _DONE] = done

    try:
        return fn(report, *args)
    except Exception as exc:  # the caller gets what and why, whatever the exception holds
        raise WorkerError(f"{type(exc).__name__}: {exc}") from None


def _ready(report: Report) -> int:
    return os.getpid()


# -- in the caller ---------------------------------------------------------------------
@dataclass
class Job:
    """A job submitted to a pool: its progress, the process running it, a way to cancel."""

    label: str
    future: Future[Any]
    _slots: Any
    _slot: int

    @property
    def pid(self) -> int | None:
        """The worker process running the job (None until one has started it)."""
        pid = int(self._slots[self._slot * _FIELDS + _PID])
        return pid or None

    def progress(self) -> tuple[int, int]:
        """Give (done, total) as the job last reported it ((0, 0) before it does)."""
        base = self._slot * _FIELDS
        return int(self._slots[base + _DONE]), int(self._slots[base + _TOTAL])

    def cancel(self) -> bool:
        """Cancel the job: dropped if it waits, its worker stopped if it runs."""
        return self.future.cancel() or self.future.cancelled()

    async def wait(self, on_progress: Report | None = None, poll_s: float = 0.2) -> Any:
        """Give the job's result; raise JobCancelled or JobFailed. Awaiting never blocks the
        loop; `on_progress(done, total)` is called on the loop every `poll_s` seconds.
        Cancelling the awaiting task cancels the job."""
        waiting = asyncio.wrap_future(self.future)
        try:
            while True:
                done, _ = await asyncio.wait({waiting}, timeout=poll_s)
                if on_progress is not None:
                    on_progress(*self.progress())
                if done:
                    break
        except asyncio.CancelledError:
            self.cancel()
            raise
        if self.future.cancelled():
            raise JobCancelled(f"{self.label} was cancelled")
        error = self.future.exception()
        if isinstance(error, WorkerError):
            raise JobFailed(f"{self.label} failed: {error}") from error
        if isinstance(error, ProcessExpired):
            raise JobFailed(
                f"{self.label} failed: its worker process {error.pid} ended with exit code "
                f"{error.exitcode} (out of memory, or killed)"
            ) from error
        if error is not None:  # pickling the inputs or the result, or the pool itself
            raise JobFailed(f"{self.label} failed: {type(error).__name__}: {error}") from error
        return self.future.result()


class JobPool:
    """Worker processes that run `fn(report, *args)` jobs; started on first use.

    `warm` names modules each worker imports as it starts, so that the first job does not
    wait for them; `nice` lowers the workers' CPU priority, so that on a busy machine the
    caller's process (the one trading) gets the cores first. Functions and arguments must
    pickle (module-level functions, plain data).
    """

    def __init__(self, workers: int = 1, warm: Sequence[str] = (), nice: int = 0) -> None:
        if workers < 1:
            raise ValueError(f"workers must be at least 1, got {workers}")
        self.workers = workers
        self.warm = tuple(warm)
        self.nice = nice
        self._context = multiprocessing.get_context("spawn")
        self._slots = self._context.RawArray("q", MAX_JOBS * _FIELDS)
        self._free = list(range(MAX_JOBS))
        self._tokens = itertools.count(1)
        self._lock = threading.Lock()
        self._pool: ProcessPool | None = None

    def _started(self) -> ProcessPool:
        with self._lock:
            if self._pool is None:
                self._pool = ProcessPool(
                    max_workers=self.workers,
                    initializer=_start_worker,
                    initargs=(self._slots, self.warm, self.nice),
                    context=self._context,
                )
            return self._pool

    def submit(self, label: str, fn: Callable[..., Any], *args: Any) -> Job:
        """Queue `fn(report, *args)` for the next free worker; give its Job."""
        pool = self._started()
        with self._lock:
            if not self._free:
                raise JobError(f"{MAX_JOBS} jobs are waiting already: {label} was not started")
            slot, token = self._free.pop(), next(self._tokens)
        base = slot * _FIELDS
        self._slots[base : base + _FIELDS] = [token, 0, 0, 0]
        try:
            future = pool.schedule(_run_job, args=(slot, token, fn, args))
        except BaseException:
            self._release(slot)
            raise
        future.add_done_callback(lambda _f: self._release(slot))
        return Job(label, future, self._slots, slot)

    def _release(self, slot: int) -> None:
        with self._lock:
            self._free.append(slot)

    def start(self) -> Job:
        """Start the workers now (they import `warm`); the Job gives a worker's pid."""
        return self.submit("starting a worker", _ready)

    def close(self, timeout_s: float = 10.0) -> None:
        """Stop the workers (running jobs end cancelled)."""
        with self._lock:
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.stop()
            with contextlib.suppress(TimeoutError):
                pool.join(timeout_s)
