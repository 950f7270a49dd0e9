"""Worker processes for heavy work: results, progress, failures and cancel reach the caller,
and the work never runs in the caller's process."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Iterator
from pathlib import Path

import pool_work
import pytest
from pool_work import gone

from workbench.jobs.pool import JobCancelled, JobFailed, JobPool


@pytest.fixture(scope="module")
def pool() -> Iterator[JobPool]:
    workers = JobPool(workers=1)
    yield workers
    workers.close()


def parent_of(pid: int) -> int:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return int(fields[1])


async def test_a_job_runs_in_a_child_process_and_gives_its_result(pool: JobPool) -> None:
    job = pool.submit("who", pool_work.whoami)
    pid = await job.wait()
    assert pid != os.getpid()
    assert job.pid == pid
    assert parent_of(pid) == os.getpid()


async def test_progress_reaches_the_caller_while_the_job_runs(pool: JobPool) -> None:
    seen: list[tuple[int, int]] = []
    job = pool.submit("count", pool_work.count, 5, 0.1)
    assert await job.wait(lambda done, total: seen.append((done, total)), poll_s=0.02) == 5
    assert seen[-1] == (5, 5)
    assert any(0 < done < 5 and total == 5 for done, total in seen), seen


async def test_a_failing_job_says_what_failed_and_why(pool: JobPool) -> None:
    with pytest.raises(JobFailed, match=r"^grid check failed: ValueError: step: must be positive"):
        await pool.submit("grid check", pool_work.refuse, "step").wait()
    assert await pool.submit("who", pool_work.whoami).wait() > 0  # the worker goes on


async def test_a_running_job_is_cancelled_by_stopping_its_worker(pool: JobPool) -> None:
    job = pool.submit("long count", pool_work.count, 10_000, 0.01)
    waiting = asyncio.create_task(job.wait(poll_s=0.02))
    while job.progress()[0] == 0:
        await asyncio.sleep(0.02)
    worker = job.pid
    assert worker is not None
    assert job.cancel()
    with pytest.raises(JobCancelled, match="long count was cancelled"):
        await waiting
    assert gone(worker), "the cancelled job's worker still runs"
    fresh = await pool.submit("who", pool_work.whoami).wait()
    assert fresh != worker


async def test_cancelling_the_awaiting_task_cancels_the_job(pool: JobPool) -> None:
    job = pool.submit("long count", pool_work.count, 10_000, 0.01)
    waiting = asyncio.create_task(job.wait(poll_s=0.02))
    await asyncio.sleep(0)  # awaiting: a task cancelled before it ever ran never awaited
    while job.pid is None:
        await asyncio.sleep(0.02)
    worker = job.pid
    waiting.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiting
    assert job.future.cancelled()
    assert gone(worker)


async def test_a_worker_that_dies_fails_its_job_and_is_replaced(pool: JobPool) -> None:
    with pytest.raises(JobFailed, match="ended with exit code 3"):
        await pool.submit("crash", pool_work.die, 3).wait()
    assert await pool.submit("who", pool_work.whoami).wait() > 0


def test_a_pool_needs_a_worker() -> None:
    with pytest.raises(ValueError, match="workers must be at least 1"):
        JobPool(workers=0)


@pytest.mark.parametrize(("setting", "lower_by"), [(None, 19), ("0", 0), ("7", 7)])
async def test_research_workers_run_at_the_research_nice_setting(
    setting: str | None, lower_by: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """By default research yields every core to trading (niceness 19); a machine that does
    not trade sets WORKBENCH_RESEARCH_NICE=0."""
    from workbench.jobs import research

    if setting is None:
        monkeypatch.delenv("WORKBENCH_RESEARCH_NICE", raising=False)
    else:
        monkeypatch.setenv("WORKBENCH_RESEARCH_NICE", setting)
    monkeypatch.setattr(research, "_pool", None)
    workers = research.research_pool()
    try:
        nice = await workers.submit("nice", pool_work.niceness).wait()
    finally:
        workers.close()
    assert nice == min(19, os.nice(0) + lower_by)


def test_a_research_nice_out_of_range_is_named() -> None:
    from workbench.settings import Settings

    with pytest.raises(ValueError, match="research_nice"):
        Settings(research_nice=20)
