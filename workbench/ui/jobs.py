"""A research session's job runner: one job at a time, in a worker process, with a status
line, a progress bar and a Cancel button.

The page reads a job's inputs from the store in a thread of this process (the one that owns
the database), sends them to a worker process (`workbench.jobs`) and awaits the result on the
server's event loop without blocking it, so the live engine served by the same process keeps
trading while a sweep runs.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import panel as pn
import param

from workbench.jobs.pool import Job, JobCancelled, JobError, JobPool


class Jobs(param.Parameterized):
    """Runs one job at a time in a worker process, with status, progress and cancel."""

    busy = param.Boolean(default=False)
    message = param.String(default="Ready.")
    worker_pid = param.Integer(
        default=None, allow_None=True, doc="the process running the current (or last) job"
    )

    def __init__(self, pool: JobPool | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._pool = pool
        self._job: Job | None = None
        self.progress = pn.indicators.Progress(
            value=0, max=100, active=False, sizing_mode="stretch_width", height=18
        )
        self.status = pn.pane.Alert(self.message, alert_type="light", name="status", margin=(5, 5))
        self.cancel_button = pn.widgets.Button(
            label="Cancel", color="warning", disabled=True, width=90
        )
        self.cancel_button.on_click(lambda _e: self.cancel())

    @property
    def pool(self) -> JobPool:
        if self._pool is None:
            from workbench.jobs.research import research_pool

            self._pool = research_pool()
        return self._pool

    async def run(
        self,
        label: str,
        work: Callable[..., Any],
        inputs: Callable[[], tuple[Any, ...]] = tuple,
    ) -> Any:
        """Give ``work(report, *inputs())``, computed in a worker process; None if it failed,
        was cancelled, or another job of this session was running.

        ``inputs`` runs first in a thread of this process (it may read the store); ``work``
        must be a module-level function of picklable arguments.
        """
        if self.busy:
            self._show(f"Busy: wait for the running job before starting {label}.", "warning")
            return None
        self.busy = True
        self.cancel_button.disabled = False
        self.progress.value, self.progress.active = -1, True
        self._show(f"Running {label}…", "info")
        try:
            args = await asyncio.to_thread(inputs)
            self._job = self.pool.submit(label, work, *args)
            result = await self._job.wait(self._step)
        except JobCancelled:
            self._show(f"{label} cancelled.", "warning")
            return None
        except JobError as exc:
            self._show(str(exc), "danger")
            return None
        except Exception as exc:  # bad input: shown to the user, who can fix it and retry
            self._show(f"{label} failed: {type(exc).__name__}: {exc}", "danger")
            return None
        finally:
            if self._job is not None:
                self.worker_pid = self._job.pid
            self._job = None
            self.busy = False
            self.cancel_button.disabled = True
            self.progress.active = False
        self.progress.value = 100
        self._show(f"{label} done.", "success")
        return result

    async def run_here(self, label: str, work: Callable[[], Any]) -> Any:
        """Give ``work()`` run in a thread of this process (store writes: this process owns
        the database); None if it failed."""
        try:
            return await asyncio.to_thread(work)
        except Exception as exc:
            self._show(f"{label} failed: {type(exc).__name__}: {exc}", "danger")
            return None

    def cancel(self) -> bool:
        """Cancel the running job (its worker process is stopped); False if none runs."""
        job = self._job
        if job is None:
            return False
        self._show(f"Cancelling {job.label}…", "warning")
        return job.cancel()

    def _step(self, done: int, total: int) -> None:
        if self._job is not None and self.worker_pid != self._job.pid:
            self.worker_pid = self._job.pid
        if total:
            self.progress.value = int(100 * done / total)

    def _show(self, text: str, kind: str) -> None:
        self.message = text
        self.status.object, self.status.alert_type = text, kind

    def view(self) -> pn.Column:
        return pn.Column(
            self.status,
            pn.Row(self.progress, self.cancel_button, sizing_mode="stretch_width"),
            sizing_mode="stretch_width",
        )
