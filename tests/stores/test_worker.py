"""The worker against every store: runs, retries, cancels, leases, shutdown and outages.

The store's time is the harness's (a fake epoch clock for memory/SQLite, row shifting for
PostgreSQL); the worker's own waits (heartbeat, timeouts) run on a ``beat.testing.FakeClock``
where a test needs to control them, and on the real clock otherwise (short ``poll``).
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest
import pytest_asyncio

from beat import Backoff
from beat._exceptions import StoreUnavailableError
from beat._tasks import Task, TaskOptions, TaskRegistry
from beat._worker import JobContext, Worker
from beat.stores import JobRecord, JobStatus, MemoryStore, NewJob, Store
from beat.testing import FakeClock
from tests.coordinators.conftest import PostgresServer

from ._util import claim_one, parked, parks_after
from .conftest import Harness

pytestmark = pytest.mark.asyncio

POLL = 0.05


def registry(*tasks: Task[Any]) -> TaskRegistry:
    reg = TaskRegistry()
    for t in tasks:
        reg.add(t)
    return reg


def make_task(fn: Callable[..., Any], name: str, **options: Any) -> Task[Any]:
    return Task(fn, name=name, options=TaskOptions(**options))


async def enqueue(store: Store, task: str, *args: Any, **options: Any) -> JobRecord:
    [record] = await store.enqueue([NewJob(task, args=args, **options)])
    return record


async def eventually(check: Callable[[], Awaitable[bool]], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not await check():
        assert time.monotonic() < deadline, "condition not reached in time"
        await asyncio.sleep(0.01)


async def status_of(store: Store, id: UUID) -> JobRecord:
    record = await store.get(id)
    assert record is not None
    return record


async def failure_of(store: Store, id: UUID) -> tuple[JobStatus, str | None, str | None]:
    """The job's status, error type and error message."""
    record = await status_of(store, id)
    return (record.status, record.error_type, record.error_message)


async def wait_status(store: Store, id: UUID, *statuses: JobStatus) -> JobRecord:
    async def check() -> bool:
        return (await status_of(store, id)).status in statuses

    await eventually(check)
    return await status_of(store, id)


@pytest_asyncio.fixture
async def workers() -> AsyncIterator[list[Worker]]:
    """Workers a test started; stopped (without waiting) at the end."""
    started: list[Worker] = []
    yield started
    for worker in started:
        await worker.stop(0)


async def start(workers: list[Worker], store: Store, tasks: TaskRegistry, **kw: Any) -> Worker:
    kw.setdefault("poll", POLL)
    worker = Worker(store, tasks, **kw)
    await worker.start()
    workers.append(worker)
    return worker


# -------------------------------------------------------------------------------------------
# Running
# -------------------------------------------------------------------------------------------
async def test_runs_jobs_and_records_results(store: Store, workers: list[Worker]) -> None:
    seen: list[tuple[UUID, int, str, str]] = []

    async def add(ctx: JobContext, a: int, b: int = 0) -> int:
        seen.append((ctx.id, ctx.attempt, ctx.worker, ctx.queue))
        return a + b

    def shout(ctx: JobContext, word: str) -> dict[str, Any]:
        assert threading.current_thread() is not threading.main_thread()
        return {"word": word.upper(), "task": ctx.task}

    tasks = registry(make_task(add, "add"), make_task(shout, "shout"))
    jobs = [await enqueue(store, "add", n, kwargs={"b": 1}) for n in range(10)]
    jobs += [await enqueue(store, "shout", f"w{n}") for n in range(5)]
    worker = await start(workers, store, tasks, name="w-main")
    done = [await store.wait_finished(job.id, 10) for job in jobs]
    assert [d.status for d in done] == [JobStatus.SUCCEEDED] * 15
    assert [d.result for d in done[:10]] == [n + 1 for n in range(10)]
    assert done[10].result == {"word": "W0", "task": "shout"}
    assert {d.worker for d in done} == {"w-main"} and {d.attempt for d in done} == {1}
    assert sorted(s[0] for s in seen) == sorted(j.id for j in jobs[:10])
    assert {s[1:] for s in seen} == {(1, "w-main", "default")}
    await eventually(lambda: _true(worker.running == 0))  # outcomes seen, then counted
    stats = worker.stats
    assert (stats.claimed, stats.succeeded, stats.failed, stats.running) == (15, 15, 0, 0)


async def test_concurrency_limit_is_never_exceeded(store: Store, workers: list[Worker]) -> None:
    running = peak = 0

    async def slow(ctx: JobContext) -> None:
        nonlocal running, peak
        running += 1
        peak = max(peak, running)
        await asyncio.sleep(0.02)
        running -= 1

    jobs = [await enqueue(store, "slow") for _ in range(15)]
    worker = await start(workers, store, registry(make_task(slow, "slow")), concurrency=3)
    for job in jobs:
        await store.wait_finished(job.id, 10)
        assert worker.running <= 2 * 3  # executing, plus ended ones awaiting their write
    assert peak == 3  # never more than 3 functions at once
    await eventually(lambda: _true(worker.stats.succeeded == 15))


class SlowCompletions(MemoryStore):
    """A memory store whose ``complete_many`` waits until ``writable`` is set."""

    def __init__(self) -> None:
        super().__init__()
        self.writable = asyncio.Event()

    async def complete_many(self, items: Any) -> list[bool]:
        await self.writable.wait()
        return await super().complete_many(items)


async def test_next_jobs_start_while_outcomes_are_written(workers: list[Worker]) -> None:
    """A slot frees when its function ends: with completions stalled, concurrency=2 starts
    4 jobs (2 ended, awaiting their write, then 2 more), and no more until writes resume."""
    store = SlowCompletions()
    await store.open()
    started: list[int] = []

    async def quick(ctx: JobContext, i: int) -> None:
        started.append(i)

    jobs = [await enqueue(store, "quick", i) for i in range(10)]
    worker = await start(workers, store, registry(make_task(quick, "quick")), concurrency=2)
    try:
        await eventually(lambda: _true(len(started) == 4), timeout=5)
        for _ in range(20):  # give it every chance to claim a fifth
            await asyncio.sleep(0)
        assert len(started) == 4 and worker.running == 4
    finally:
        store.writable.set()
    for job in jobs:
        assert (await store.wait_finished(job.id, 10)).status is JobStatus.SUCCEEDED
    assert sorted(started) == list(range(10))
    await worker.stop(1)
    await store.close()


async def test_a_claimed_job_starts_on_the_loops_next_turn(store: Store) -> None:
    """Between a claim and the job's first line the loop turns once: the execution is not
    queued behind its supervising task or the claim loop's next wait (pickup latency)."""
    started: list[int] = []

    async def quick(ctx: JobContext, i: int) -> None:
        started.append(i)

    await enqueue(store, "quick", 1)
    worker = Worker(store, registry(make_task(quick, "quick")), poll=POLL)
    runs = await worker.start_due()
    assert len(runs) == 1 and started == []
    await asyncio.sleep(0)
    assert started == [1]
    await asyncio.gather(*runs)
    await worker.stop(0)


async def test_a_function_raising_cancelled_error_itself_fails(store: Store) -> None:
    """Not a stop the worker asked for: the attempt fails (here for good) and is reported."""

    async def quits(ctx: JobContext) -> None:
        raise asyncio.CancelledError

    job = await enqueue(store, "quits", max_attempts=1)
    worker = Worker(store, registry(make_task(quits, "quits")), poll=POLL)
    await asyncio.gather(*await worker.start_due())
    record = await status_of(store, job.id)
    assert record.status is JobStatus.DEAD
    assert record.error_type is not None and "CancelledError" in record.error_type
    assert record.error_message == "the task cancelled itself"
    await worker.stop(0)


class Unprintable(Exception):
    def __str__(self) -> str:
        raise RuntimeError("cannot render")


@pytest.mark.parametrize("body", ["async", "sync"])
async def test_sys_exit_and_unprintable_errors_fail_the_attempt_not_the_worker(
    store: Store, body: str
) -> None:
    """A job calling ``sys.exit()`` (CLI code, argparse) used to end the host process, and
    be claimed again after the restart to end it again; an exception whose ``str()`` raises
    left its job ``running`` until the lease expired. Both are the attempt's failure, with
    the real type recorded, and the worker runs the next job."""

    def exits(ctx: JobContext) -> None:
        raise SystemExit(2)

    def unprintable(ctx: JobContext) -> None:
        raise Unprintable

    def ok(ctx: JobContext) -> str:
        return "fine"

    def as_body(fn: Callable[[JobContext], Any]) -> Callable[[JobContext], Any]:
        if body == "sync":
            return fn

        async def run(ctx: JobContext) -> Any:
            return fn(ctx)

        return run

    tasks = registry(*(make_task(as_body(fn), fn.__name__) for fn in (exits, unprintable, ok)))
    first = await enqueue(store, "exits", max_attempts=2)
    second = await enqueue(store, "unprintable", max_attempts=1)
    third = await enqueue(store, "ok")
    worker = Worker(store, tasks, poll=POLL)
    try:
        await asyncio.gather(*await worker.start_due())
        assert await failure_of(store, first.id) == (
            JobStatus.SCHEDULED,
            "builtins.SystemExit",
            "2",
        )
        assert await failure_of(store, second.id) == (
            JobStatus.DEAD,
            f"{__name__}.Unprintable",
            "<Unprintable: str() failed>",
        )
        traceback = (await status_of(store, second.id)).error_traceback
        assert traceback and "raise Unprintable" in traceback
        assert (await store.wait_finished(third.id, 10)).result == "fine"
    finally:
        await worker.stop(0)


async def test_a_plain_function_raising_stop_iteration_or_keyboard_interrupt_fails(
    store: Store,
) -> None:
    """An asyncio future cannot carry ``StopIteration`` (``next(iter([]))`` in a plain
    function): the run never ended and held its slot and lease forever. Now it fails as it
    would in an ``async def`` (PEP 479). A ``KeyboardInterrupt`` raised in a thread is the
    function's own (signals reach the main thread only): a failure, not the process
    stopping."""

    def first_row(ctx: JobContext) -> object:
        return next(iter([]))

    def interrupts(ctx: JobContext) -> None:
        raise KeyboardInterrupt

    tasks = registry(make_task(first_row, "first_row"), make_task(interrupts, "interrupts"))
    rows = await enqueue(store, "first_row", max_attempts=1)
    stop = await enqueue(store, "interrupts", max_attempts=1)
    worker = Worker(store, tasks, poll=POLL)
    try:
        async with asyncio.timeout(10):
            await asyncio.gather(*await worker.start_due())
        assert await failure_of(store, rows.id) == (
            JobStatus.DEAD,
            "builtins.RuntimeError",
            "coroutine raised StopIteration",
        )
        assert await failure_of(store, stop.id) == (
            JobStatus.DEAD,
            "builtins.RuntimeError",
            "the function raised KeyboardInterrupt",
        )
    finally:
        await worker.stop(0)


async def test_a_timed_out_plain_function_holds_its_slot_until_its_thread_returns(
    store: Store,
) -> None:
    """A thread cannot be stopped: after its timeout the attempt fails, but the function
    runs on, and keeps its slot until it returns. Freeing the slot at once let more
    functions run than ``concurrency``, and queued the next job in the thread pool behind
    it, where its own timeout ran out before it ever started."""
    clock = FakeClock()
    started, release = threading.Event(), threading.Event()

    def stuck(ctx: JobContext) -> str:
        started.set()
        release.wait(10)
        return "late"

    async def quick(ctx: JobContext) -> str:
        return "quick"

    tasks = registry(make_task(stuck, "stuck", timeout=5), make_task(quick, "quick"))
    first = await enqueue(store, "stuck", max_attempts=1)
    worker = Worker(store, tasks, concurrency=1, clock=clock, poll=POLL)
    try:
        runs = await worker.start_due()
        await asyncio.get_running_loop().run_in_executor(None, started.wait, 10)
        second = await enqueue(store, "quick")
        await clock.advance(5)
        await asyncio.gather(*runs)
        record = await status_of(store, first.id)
        assert (record.status, record.error_type) == (JobStatus.DEAD, "builtins.TimeoutError")
        assert (worker.stats.running, worker.stats.lingering) == (0, 1)
        assert await worker.start_due() == []  # the one slot is the thread's
        assert (await status_of(store, second.id)).status is JobStatus.QUEUED
        release.set()

        async def returned() -> bool:
            return worker.stats.lingering == 0

        await eventually(returned)
        await asyncio.gather(*await worker.start_due())
        assert (await store.wait_finished(second.id, 10)).result == "quick"
    finally:
        release.set()
        await worker.stop(0)


async def test_cancelling_a_runs_task_stops_its_execution_and_records_nothing(
    store: Store,
) -> None:
    """What tearing the loop down does: the execution is cancelled with its run and no
    outcome is written (the lease's expiry hands the job to another worker)."""
    seen: list[str] = []

    async def waits(ctx: JobContext) -> None:
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            seen.append("cancelled")
            raise

    job = await enqueue(store, "waits")
    worker = Worker(store, registry(make_task(waits, "waits")), poll=POLL)
    [run] = await worker.start_due()
    await asyncio.sleep(0)
    run.cancel()
    with pytest.raises(asyncio.CancelledError):
        await run
    assert seen == ["cancelled"]
    assert (await status_of(store, job.id)).status is JobStatus.RUNNING
    assert worker.running == 0
    await worker.stop(0)


async def test_claims_only_from_its_queues(store: Store) -> None:
    async def t(ctx: JobContext) -> str:
        return ctx.queue

    mine = await enqueue(store, "t", queue="mail")
    other = await enqueue(store, "t", queue="video")
    worker = Worker(store, registry(make_task(t, "t")), queues=["mail"], poll=POLL)
    await asyncio.gather(*await worker.start_due())  # one claim, its runs recorded
    assert await worker.start_due() == []  # the next claim finds nothing either
    assert (await status_of(store, mine.id)).result == "mail"
    assert (await status_of(store, other.id)).status is JobStatus.QUEUED
    await worker.stop(0)


async def test_unknown_task_names_are_never_claimed(store: Store) -> None:
    async def known(ctx: JobContext) -> None:
        return None

    unknown = await enqueue(store, "nobody.knows.me")
    job = await enqueue(store, "known")
    worker = Worker(store, registry(make_task(known, "known")), poll=POLL)
    await asyncio.gather(*await worker.start_due())
    assert await worker.start_due() == []
    assert (await status_of(store, job.id)).status is JobStatus.SUCCEEDED
    await worker.stop(0)
    record = await status_of(store, unknown.id)
    assert (record.status, record.attempt, record.worker) == (JobStatus.QUEUED, 0, None)


async def test_a_job_enqueued_later_wakes_the_worker(store: Store, workers: list[Worker]) -> None:
    async def t(ctx: JobContext) -> int:
        return 7

    # A long poll: only the store's wake-up (NOTIFY, same-process signal) can be this fast.
    async with parked(store):
        await start(workers, store, registry(make_task(t, "t")), poll=30)
    job = await enqueue(store, "t")
    assert (await store.wait_finished(job.id, 10)).result == 7


# -------------------------------------------------------------------------------------------
# Failures
# -------------------------------------------------------------------------------------------
async def test_failing_task_is_retried_with_backoff_then_dead(
    harness: Harness, workers: list[Worker]
) -> None:
    store = harness.store
    calls: list[int] = []

    async def flaky(ctx: JobContext) -> None:
        calls.append(ctx.attempt)
        raise ValueError(f"boom {ctx.attempt}")

    backoff = Backoff.exponential(10, factor=2)
    task = make_task(flaky, "flaky", retries=2, backoff=backoff)
    job = await enqueue(store, "flaky", max_attempts=3)
    worker = await start(workers, store, registry(task))
    for attempt, delay in ((1, 10.0), (2, 20.0)):

        async def failed(attempt: int = attempt) -> bool:
            r = await status_of(store, job.id)
            return r.attempt == attempt and r.status is JobStatus.SCHEDULED

        await eventually(failed)
        record = await status_of(store, job.id)
        assert record.error_type == "builtins.ValueError"
        assert record.error_message == f"boom {attempt}"
        due_in = (record.scheduled_at - await store.now()).total_seconds()
        assert delay - 2 < due_in <= delay
        # Not run again before it is due: the worker's next parked wait follows a claim
        # it made after the failure was stored.
        await parks_after(store, store.waits.total)
        assert calls == list(range(1, attempt + 1))
        await harness.advance(delay)
    record = await wait_status(store, job.id, JobStatus.DEAD)
    assert calls == [1, 2, 3] and record.attempt == 3
    await eventually(lambda: _true(worker.running == 0))
    assert record.error_message == "boom 3"
    assert record.error_traceback is not None
    assert 'raise ValueError(f"boom {ctx.attempt}")' in record.error_traceback
    stats = worker.stats
    assert (stats.failed, stats.retried, stats.dead, stats.succeeded) == (3, 2, 1, 0)


async def test_no_retry_when_the_task_allows_none(store: Store, workers: list[Worker]) -> None:
    def broken(ctx: JobContext) -> None:
        raise KeyError("k")

    job = await enqueue(store, "broken", max_attempts=5)
    await start(workers, store, registry(make_task(broken, "broken", retries=0)))
    record = await wait_status(store, job.id, JobStatus.DEAD)
    assert (record.attempt, record.error_type) == (1, "builtins.KeyError")


async def test_unserializable_result_fails_the_job_and_the_worker_goes_on(
    store: Store, workers: list[Worker], caplog: pytest.LogCaptureFixture
) -> None:
    async def bad(ctx: JobContext) -> object:
        return {"when": object()}

    async def good(ctx: JobContext) -> str:
        return "fine"

    tasks = registry(make_task(bad, "bad"), make_task(good, "good"))
    job = await enqueue(store, "bad", max_attempts=3)
    with caplog.at_level(logging.ERROR, logger="beat.worker"):
        await start(workers, store, tasks)
        record = await wait_status(store, job.id, JobStatus.DEAD)
    assert (record.error_type, record.attempt) == ("beat.SerializationError", 1)
    assert record.error_message is not None and "not JSON" in record.error_message
    assert any("beat.SerializationError" in r.getMessage() for r in caplog.records)
    later = await enqueue(store, "good")
    assert (await store.wait_finished(later.id, 10)).result == "fine"


async def test_task_timeout_cancels_the_attempt(store: Store, workers: list[Worker]) -> None:
    clock = FakeClock()
    stopped: list[str] = []

    async def sleepy(ctx: JobContext) -> None:
        try:
            await ctx.sleep(100)
        except asyncio.CancelledError:
            stopped.append("cancelled")
            raise

    job = await enqueue(store, "sleepy", max_attempts=1)
    await start(workers, store, registry(make_task(sleepy, "sleepy", timeout=5)), clock=clock)
    await wait_status(store, job.id, JobStatus.RUNNING)
    await clock.advance(4.9)
    assert (await status_of(store, job.id)).status is JobStatus.RUNNING
    await clock.advance(0.1)
    record = await wait_status(store, job.id, JobStatus.DEAD)
    assert record.error_type == "builtins.TimeoutError"
    assert record.error_message is not None and "timed out after 5 s" in record.error_message
    assert stopped == ["cancelled"]


# -------------------------------------------------------------------------------------------
# Cancellation
# -------------------------------------------------------------------------------------------
async def test_cancelled_queued_job_never_starts(store: Store) -> None:
    ran: list[UUID] = []

    async def t(ctx: JobContext) -> None:
        ran.append(ctx.id)

    doomed = await enqueue(store, "t")
    other = await enqueue(store, "t")
    assert (await store.cancel(doomed.id)).status is JobStatus.CANCELLED
    worker = Worker(store, registry(make_task(t, "t")), poll=POLL)
    await asyncio.gather(*await worker.start_due())
    assert await worker.start_due() == []
    await worker.stop(0)
    assert ran == [other.id]
    record = await status_of(store, doomed.id)
    assert (record.status, record.attempt) == (JobStatus.CANCELLED, 0)


async def test_running_job_is_cancelled_within_one_heartbeat(
    store: Store, workers: list[Worker]
) -> None:
    clock = FakeClock()
    started = asyncio.Event()
    seen: list[str] = []

    async def forever(ctx: JobContext) -> None:
        started.set()
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            seen.append(f"cancelled, ctx.cancelled={ctx.cancelled}")
            raise

    job = await enqueue(store, "forever")
    worker = await start(
        workers, store, registry(make_task(forever, "forever")), clock=clock, heartbeat=1, lease=30
    )
    await asyncio.wait_for(started.wait(), 10)
    requested = await store.cancel(job.id)
    assert (requested.status, requested.cancel_requested) == (JobStatus.RUNNING, True)
    await clock.advance(1)  # one heartbeat
    record = await store.wait_finished(job.id, 10)
    assert record.status is JobStatus.CANCELLED
    assert seen == ["cancelled, ctx.cancelled=True"]
    await eventually(lambda: _true(worker.stats.cancelled == 1))


async def test_a_job_that_catches_its_cancellation_and_returns_is_said_so(
    store: Store, workers: list[Worker], caplog: pytest.LogCaptureFixture
) -> None:
    """Its result stands (it did finish), but the cancel asked for did not happen: a
    WARNING says so instead of a plain success."""
    clock = FakeClock()
    started = asyncio.Event()

    async def stubborn(ctx: JobContext) -> str:
        started.set()
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            return "finished anyway"
        return "never"

    job = await enqueue(store, "stubborn")
    await start(workers, store, registry(make_task(stubborn, "stubborn")), clock=clock, heartbeat=1)
    await asyncio.wait_for(started.wait(), 10)
    await store.cancel(job.id)
    with caplog.at_level(logging.WARNING, logger="beat.worker"):
        await clock.advance(1)  # one heartbeat: the cancel request reaches the worker
        record = await store.wait_finished(job.id, 10)
    assert (record.status, record.result) == (JobStatus.SUCCEEDED, "finished anyway")
    assert any(
        "returned after its cancellation was requested" in r.getMessage() for r in caplog.records
    )


async def test_sync_job_is_recorded_cancelled_when_it_returns(
    store: Store, workers: list[Worker]
) -> None:
    clock = FakeClock()
    started = threading.Event()

    def polite(ctx: JobContext) -> str:
        started.set()
        deadline = time.monotonic() + 10
        while not ctx.cancelled and time.monotonic() < deadline:
            time.sleep(0.005)
        return "stopped" if ctx.cancelled else "timed out"

    job = await enqueue(store, "polite")
    tasks = registry(make_task(polite, "polite"))
    await start(workers, store, tasks, clock=clock, heartbeat=1, lease=30)
    await asyncio.get_running_loop().run_in_executor(None, started.wait, 10)
    await store.cancel(job.id)
    await clock.advance(1)
    record = await store.wait_finished(job.id, 10)
    assert record.status is JobStatus.CANCELLED


# -------------------------------------------------------------------------------------------
# Leases and fencing
# -------------------------------------------------------------------------------------------
async def test_expired_lease_is_rerun_and_the_stale_owner_is_refused(
    harness: Harness, workers: list[Worker], caplog: pytest.LogCaptureFixture
) -> None:
    store = harness.store
    attempts: list[int] = []

    async def t(ctx: JobContext) -> int:
        attempts.append(ctx.attempt)
        return ctx.attempt

    job = await enqueue(store, "t")
    await claim_one(store, "dead-worker", lease=5)  # claimed, then never renewed
    await start(workers, store, registry(make_task(t, "t")), name="alive")
    assert await store.claim("probe", queues=["default"], tasks=["t"], limit=1, lease=5) == []
    assert attempts == []  # the lease still holds: nothing to claim
    with caplog.at_level(logging.INFO, logger="beat.worker"):
        await harness.advance(6)
        record = await store.wait_finished(job.id, 10)
    # The re-run is logged by the worker that takes it (the dead one cannot).
    assert any(
        f"job {job.id} (t) claimed again, attempt 2 of {record.max_attempts}" in r.getMessage()
        for r in caplog.records
    )
    assert (record.status, record.attempt, record.worker, record.result) == (
        JobStatus.SUCCEEDED,
        2,
        "alive",
        2,
    )
    assert attempts == [2]
    assert await store.complete(job.id, 1, "dead-worker", "late") is False


async def test_worker_whose_job_was_taken_over_is_refused_and_logs(
    harness: Harness, workers: list[Worker], caplog: pytest.LogCaptureFixture
) -> None:
    store = harness.store
    clock = FakeClock()  # no heartbeat happens unless this clock moves
    go = asyncio.Event()
    started = asyncio.Event()

    async def t(ctx: JobContext) -> str:
        started.set()
        await go.wait()
        return "late"

    job = await enqueue(store, "t")
    # One slot, held by the run: the worker cannot re-claim its own expired job before the
    # thief does (it would, with a free slot, on its next poll).
    worker = await start(
        workers, store, registry(make_task(t, "t")), clock=clock, lease=5, concurrency=1
    )
    await asyncio.wait_for(started.wait(), 10)
    await harness.advance(6)
    taken = await claim_one(store, "thief", lease=60)
    assert taken.attempt == 2
    with caplog.at_level(logging.WARNING, logger="beat.worker"):
        go.set()
        await eventually(lambda: _true(worker.stats.lost == 1))
    assert any("late completion refused" in r.getMessage() for r in caplog.records)
    record = await status_of(store, job.id)
    assert (record.status, record.worker, record.attempt) == (JobStatus.RUNNING, "thief", 2)
    assert worker.stats.succeeded == 0


async def test_heartbeat_reporting_lost_stops_the_run(
    harness: Harness, workers: list[Worker]
) -> None:
    store = harness.store
    clock = FakeClock()
    started = asyncio.Event()
    stopped: list[bool] = []

    async def t(ctx: JobContext) -> None:
        started.set()
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            stopped.append(ctx.cancelled)
            raise

    job = await enqueue(store, "t")
    worker = await start(
        workers,
        store,
        registry(make_task(t, "t")),
        clock=clock,
        lease=5,
        heartbeat=1,
        concurrency=1,  # its one slot is busy: it cannot re-claim the job before the thief
    )
    await asyncio.wait_for(started.wait(), 10)
    await harness.advance(6)
    await claim_one(store, "thief", lease=60)
    await clock.advance(1)
    await eventually(lambda: _true(worker.running == 0))
    assert stopped == [True] and worker.stats.lost == 1
    record = await status_of(store, job.id)
    assert (record.status, record.worker) == (JobStatus.RUNNING, "thief")


async def test_heartbeats_keep_a_long_job_owned(harness: Harness, workers: list[Worker]) -> None:
    store = harness.store
    clock = FakeClock()
    go = asyncio.Event()

    async def t(ctx: JobContext) -> str:
        await go.wait()
        return "done"

    job = await enqueue(store, "t")
    await start(workers, store, registry(make_task(t, "t")), clock=clock, lease=5, heartbeat=1)
    await wait_status(store, job.id, JobStatus.RUNNING)
    for _ in range(4):  # 16 s of store time, the lease renewed every 4
        await harness.advance(4)
        before = (await status_of(store, job.id)).lease_expires_at
        await clock.advance(1)

        async def renewed(before: Any = before) -> bool:
            return (await status_of(store, job.id)).lease_expires_at != before

        await eventually(renewed)
    assert await store.claim("thief", queues=["default"], tasks=["t"], limit=1, lease=5) == []
    go.set()
    record = await store.wait_finished(job.id, 10)
    assert (record.status, record.attempt, record.result) == (JobStatus.SUCCEEDED, 1, "done")


# -------------------------------------------------------------------------------------------
# Shutdown
# -------------------------------------------------------------------------------------------
async def test_graceful_stop_releases_unfinished_jobs_to_another_worker(
    store: Store, workers: list[Worker]
) -> None:
    ran: list[tuple[str, int]] = []
    hold = asyncio.Event()

    async def t(ctx: JobContext) -> str:
        ran.append((ctx.worker, ctx.attempt))
        if ctx.worker == "first":
            await hold.wait()
        return ctx.worker

    tasks = registry(make_task(t, "t"))
    jobs = [await enqueue(store, "t") for _ in range(4)]
    first = Worker(store, tasks, name="first", concurrency=2, poll=POLL)
    await first.start()
    await eventually(lambda: _true(len(ran) == 2))
    assert await first.stop(timeout=0.05) == 2
    assert first.stats.released == 2
    records = [await status_of(store, job.id) for job in jobs]
    assert sorted(r.status for r in records) == [JobStatus.QUEUED] * 4
    await start(workers, store, tasks, name="second")
    done = [await store.wait_finished(job.id, 10) for job in jobs]
    assert [d.result for d in done] == ["second"] * 4
    # Released attempts are not charged: still max_attempts - 1 retries left for each.
    assert all(d.attempt < d.max_attempts for d in done)
    assert sorted(a for w, a in ran if w == "second") == [1, 1, 2, 2]


async def test_a_job_failing_as_it_is_stopped_is_handed_back_not_charged(
    store: Store, caplog: pytest.LogCaptureFixture
) -> None:
    """Its cleanup raised on the shutdown's cancellation (a rollback on a closed
    connection): it used to be recorded as a failed attempt, dead on its last one. The
    shutdown is what happened: it is released, its attempt not charged."""
    entered = asyncio.Event()

    async def tx(ctx: JobContext) -> None:
        try:
            entered.set()
            await asyncio.Event().wait()
        finally:
            raise ConnectionError("rollback failed: connection closed")

    job = await enqueue(store, "tx", max_attempts=1)
    worker = Worker(store, registry(make_task(tx, "tx")), poll=POLL)
    await worker.start()
    await asyncio.wait_for(entered.wait(), 10)
    with caplog.at_level(logging.WARNING, logger="beat.worker"):
        assert await worker.stop(timeout=0) == 1
    record = await status_of(store, job.id)
    assert (record.status, record.attempt, record.error_type) == (JobStatus.QUEUED, 1, None)
    assert record.max_attempts == 2  # the released attempt is given back
    assert worker.stats.released == 1 and worker.stats.failed == 0
    assert any(
        "raised builtins.ConnectionError" in r.getMessage() and "(shutdown)" in r.getMessage()
        for r in caplog.records
    )


async def test_stop_does_not_wait_forever_for_a_job_that_ignores_cancellation(
    store: Store, caplog: pytest.LogCaptureFixture
) -> None:
    """A job swallowing every CancelledError held ``stop`` (and the scheduler's shutdown)
    forever. Now ``stop`` gives cancelled executions ``STOP_GRACE`` seconds, then logs the
    one still running and returns, leaving its job to its lease."""
    clock = FakeClock()
    entered = asyncio.Event()
    give_up = False

    async def stubborn(ctx: JobContext) -> str:
        entered.set()
        while True:
            try:
                await asyncio.Event().wait()
            except asyncio.CancelledError:
                if give_up:
                    return "gave up"

    job = await enqueue(store, "stubborn")
    worker = Worker(store, registry(make_task(stubborn, "stubborn")), clock=clock, poll=POLL)
    await worker.start()
    await asyncio.wait_for(entered.wait(), 10)
    [run] = worker._running.values()
    with caplog.at_level(logging.WARNING, logger="beat.worker"):
        stopping = asyncio.create_task(worker.stop(timeout=0))
        for _ in range(200):  # fake seconds, until stop's grace period has run out
            if stopping.done():
                break
            await clock.advance(1)
            await asyncio.sleep(0.005)  # the store's thread, for the claim loop's end
        assert await asyncio.wait_for(stopping, 10) == 1
    assert any("still running 5 s after its cancellation" in r.getMessage() for r in caplog.records)
    assert (await status_of(store, job.id)).status is JobStatus.RUNNING  # not handed back
    give_up = True
    assert run.exec_task is not None and run.main is not None
    run.exec_task.cancel()
    await asyncio.wait_for(asyncio.gather(run.main, return_exceptions=True), 10)


async def test_stop_waits_for_jobs_that_finish_in_time(store: Store) -> None:
    async def t(ctx: JobContext) -> str:
        await asyncio.sleep(0.1)
        return "ok"

    job = await enqueue(store, "t")
    worker = Worker(store, registry(make_task(t, "t")), poll=POLL)
    await worker.start()
    await wait_status(store, job.id, JobStatus.RUNNING)
    assert await worker.stop(timeout=10) == 0
    assert (await status_of(store, job.id)).status is JobStatus.SUCCEEDED
    assert await worker.stop(timeout=10) == 0  # idempotent


# -------------------------------------------------------------------------------------------
# Outages
# -------------------------------------------------------------------------------------------
class FlakyStore(MemoryStore):
    """A memory store whose worker-side calls fail while ``down``."""

    down = False

    def _check(self) -> None:
        if self.down:
            raise StoreUnavailableError("store is down (test)")

    async def claim(self, worker: str, **kw: Any) -> list[JobRecord]:  # type: ignore[override]
        self._check()
        return await super().claim(worker, **kw)

    async def heartbeat(self, *a: Any, **kw: Any) -> Any:  # type: ignore[override]
        self._check()
        return await super().heartbeat(*a, **kw)

    async def complete(self, *a: Any, **kw: Any) -> bool:  # type: ignore[override]
        self._check()
        return await super().complete(*a, **kw)

    async def complete_many(self, *a: Any, **kw: Any) -> list[bool]:  # type: ignore[override]
        self._check()
        return await super().complete_many(*a, **kw)

    async def fail(self, *a: Any, **kw: Any) -> bool:  # type: ignore[override]
        self._check()
        return await super().fail(*a, **kw)

    async def wait_for_jobs(self, timeout: float, **filters: Any) -> None:
        self._check()
        await super().wait_for_jobs(timeout, **filters)


async def test_outage_is_logged_once_and_the_worker_resumes(
    workers: list[Worker], caplog: pytest.LogCaptureFixture
) -> None:
    store = FlakyStore()
    await store.open()
    ran: list[UUID] = []
    finish = asyncio.Event()

    async def t(ctx: JobContext) -> str:
        ran.append(ctx.id)
        if len(ran) == 1:
            await finish.wait()
        return "ok"

    first = await enqueue(store, "t")
    with caplog.at_level(logging.INFO, logger="beat.worker"):
        worker = await start(workers, store, registry(make_task(t, "t")), heartbeat=0.1, lease=1)
        await eventually(lambda: _true(len(ran) == 1))
        store.down = True
        later = [await enqueue(store, "t") for _ in range(3)]
        finish.set()  # finishes during the outage: its completion waits for the store
        await asyncio.sleep(1.2)
        assert (await status_of(store, first.id)).status is JobStatus.RUNNING
        store.down = False
        done = [await store.wait_finished(j.id, 15) for j in [first, *later]]
    assert [d.status for d in done] == [JobStatus.SUCCEEDED] * 4
    assert sorted(ran) == sorted(j.id for j in [first, *later])  # each ran once
    messages = [r.getMessage() for r in caplog.records]
    assert sum("store unavailable" in m for m in messages) == 1
    assert any("store reachable again" in m for m in messages)
    await eventually(lambda: _true(worker.stats.succeeded == 4))


async def test_outcome_not_recordable_is_left_to_lease_expiry(
    workers: list[Worker], caplog: pytest.LogCaptureFixture
) -> None:
    from .conftest import FakeClock as EpochClock

    epoch = EpochClock()
    store = FlakyStore(clock=epoch)
    await store.open()
    clock = FakeClock()  # drives the worker's backoff
    go = asyncio.Event()
    attempts: list[int] = []

    async def t(ctx: JobContext) -> int:
        attempts.append(ctx.attempt)
        if ctx.attempt == 1:
            await go.wait()
        return ctx.attempt

    job = await enqueue(store, "t")
    with caplog.at_level(logging.WARNING, logger="beat.worker"):
        worker = await start(
            workers, store, registry(make_task(t, "t")), clock=clock, lease=10, heartbeat=5
        )
        await eventually(lambda: _true(attempts == [1]))
        store.down = True
        go.set()
        await clock.advance(60)  # every recording try fails
        await eventually(lambda: _true(worker.running == 0))
        assert any("could not record success" in r.getMessage() for r in caplog.records)
        assert (await status_of(store, job.id)).status is JobStatus.RUNNING
        store.down = False
        epoch.now += 11  # the lease expires: the job is claimable again
        await clock.advance(20)  # past the claim loop's backoff
        record = await store.wait_finished(job.id, 10)
    assert (record.status, record.attempt, record.result) == (JobStatus.SUCCEEDED, 2, 2)
    assert attempts == [1, 2]


async def test_spurious_wakeups_do_not_make_a_busy_loop(workers: list[Worker]) -> None:
    from .conftest import FakeClock as EpochClock

    class Counting(MemoryStore):
        claims = 0

        async def claim(self, worker: str, **kw: Any) -> list[JobRecord]:  # type: ignore[override]
            self.claims += 1
            return await super().claim(worker, **kw)

    epoch = EpochClock()
    store = Counting(clock=epoch)
    await store.open()
    # A job of a task this worker does not know, whose worker died: its expired lease makes
    # wait_for_jobs return at once, and the claim finds nothing, again and again.
    await enqueue(store, "someone.elses")
    await store.claim("dead", queues=["default"], tasks=["someone.elses"], limit=1, lease=1)
    epoch.now += 2

    async def t(ctx: JobContext) -> None:
        return None

    await start(workers, store, registry(make_task(t, "t")), poll=5)
    await asyncio.sleep(1.0)
    assert store.claims < 40  # ~10 with the floor; tens of thousands without
    job = await enqueue(store, "t")  # and a real job is still taken promptly
    began = time.monotonic()
    await store.wait_finished(job.id, 5)
    assert time.monotonic() - began < 1.5


@pytest.fixture
def own_postgres() -> Iterator[PostgresServer]:
    import tempfile

    server = PostgresServer.create(Path(tempfile.gettempdir())).start()
    yield server
    server.cleanup()


async def test_postgres_restart_no_job_lost_or_run_twice(
    own_postgres: PostgresServer, workers: list[Worker], caplog: pytest.LogCaptureFixture
) -> None:
    from beat.stores import PostgresStore

    store = PostgresStore(own_postgres.dsn(), timeout=2)
    await store.open()
    runs: list[tuple[UUID, int]] = []

    async def t(ctx: JobContext, n: int) -> int:
        runs.append((ctx.id, ctx.attempt))
        await asyncio.sleep(0.05)
        return n

    jobs = await store.enqueue([NewJob("t", args=[n]) for n in range(60)])
    loop = asyncio.get_running_loop()
    try:
        with caplog.at_level(logging.INFO, logger="beat.worker"):
            await start(workers, store, registry(make_task(t, "t")), concurrency=4, lease=20)
            await eventually(lambda: _true(len(runs) >= 12))
            await loop.run_in_executor(None, own_postgres.stop)
            await asyncio.sleep(1.0)
            await loop.run_in_executor(None, own_postgres.start)
            done = [await store.wait_finished(job.id, 30) for job in jobs]
        assert [d.status for d in done] == [JobStatus.SUCCEEDED] * 60
        assert [d.result for d in done] == list(range(60))
        assert len(runs) == len(set(runs)) == len({id for id, _ in runs}) == 60
        messages = [r.getMessage() for r in caplog.records]
        assert any("store unavailable" in m for m in messages)
        assert any("store reachable again" in m for m in messages)
    finally:
        for worker in workers:
            await worker.stop(0)
        await store.close()


def _true(value: bool) -> Awaitable[bool]:
    future: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
    future.set_result(value)
    return future
