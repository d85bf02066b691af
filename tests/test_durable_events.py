"""Durable jobs run by a scheduler's worker are events on its bus (beat._durable_events).

Every claimed execution is one ``DurableJobClaimed`` then one ``DurableJobFinished`` with its
outcome: a retry, or a re-run after a lease expired, is a claim with ``attempt > 1``. The
scheduler runs on a ``FakeClock`` (heartbeats, durations); the stores on real time, except
where a lease has to expire. Nothing sleeps to see what happens: the tests await results,
the runs' own signals, and shutdown, which delivers every event emitted before it returns.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest

from beat import (
    Backoff,
    DurableJobClaimed,
    DurableJobEvent,
    DurableJobFinished,
    Event,
    JobCancelledError,
    JobFailedError,
    RunFailed,
    Scheduler,
    SchedulerStarted,
    SchedulerStopped,
)
from beat._observers import JobOutcome
from beat.stores import MemoryStore, SQLiteStore, Store
from beat.stores._base import NewJob
from beat.testing import EventRecorder, FakeClock

pytestmark = pytest.mark.asyncio

HEARTBEAT = 10.0  # the worker's default: lease (30 s) / 3


class EpochClock:
    """A store clock (epoch seconds) that moves only when told."""

    def __init__(self) -> None:
        self.now = float(int(time.time()))

    def __call__(self) -> float:
        return self.now


@pytest.fixture(params=["memory", "sqlite"])
def make_store(request: pytest.FixtureRequest, tmp_path: Path) -> Callable[..., Store]:
    def make(clock: Callable[[], float] = time.time) -> Store:
        if request.param == "memory":
            return MemoryStore(clock=clock)
        return SQLiteStore(tmp_path / "jobs.db", clock=clock)

    return make


def claimed(job_id: UUID, task: str, attempt: int) -> DurableJobClaimed:
    return DurableJobClaimed(job_id=job_id, task=task, queue="default", attempt=attempt)


def finished(
    job_id: UUID,
    task: str,
    attempt: int,
    outcome: JobOutcome,
    duration: float = 0.0,
    error: tuple[str, str] | None = None,
) -> DurableJobFinished:
    return DurableJobFinished(
        job_id=job_id,
        task=task,
        queue="default",
        attempt=attempt,
        outcome=outcome,
        duration=duration,
        error_type=None if error is None else error[0],
        error_message=None if error is None else error[1],
    )


def of_job(recorder: EventRecorder, job_id: UUID) -> list[DurableJobEvent]:
    return [e for e in recorder.of(DurableJobEvent) if e.job_id == job_id]


async def test_every_attempt_is_a_claim_then_its_outcome(
    make_store: Callable[..., Store],
) -> None:
    clock = FakeClock()
    scheduler = Scheduler(store=make_store(), clock=clock)
    recorder = EventRecorder(scheduler)
    started: dict[str, asyncio.Event] = {
        "cancel me": asyncio.Event(),
        "release me": asyncio.Event(),
    }
    flaky_calls: list[int] = []

    @scheduler.task(name="ok")
    async def ok(ctx: Any) -> int:
        return 1

    @scheduler.task(name="flaky", retries=1, backoff=Backoff.constant(0))
    async def flaky(ctx: Any) -> str:
        flaky_calls.append(ctx.attempt)
        if ctx.attempt == 1:
            raise ValueError("first time")
        return "second time"

    @scheduler.task(name="doomed", retries=1, backoff=Backoff.constant(0))
    async def doomed(ctx: Any) -> None:
        raise ValueError("always")

    @scheduler.task(name="forever", retries=0)
    async def forever(ctx: Any, key: str) -> None:
        started[key].set()
        await asyncio.Event().wait()

    async with scheduler:
        ok_job = await ok.enqueue()
        flaky_job = await flaky.enqueue()
        doomed_job = await doomed.enqueue()
        assert await ok_job.result(timeout=10) == 1
        assert await flaky_job.result(timeout=10) == "second time"
        with pytest.raises(JobFailedError):
            await doomed_job.result(timeout=10)
        assert flaky_calls == [1, 2]

        cancelled = await forever.enqueue("cancel me")
        released = await forever.enqueue("release me")
        async with asyncio.timeout(10):
            await started["cancel me"].wait()
            await started["release me"].wait()
        await scheduler.client.cancel(cancelled.id)
        await clock.advance(HEARTBEAT)  # the heartbeat that sees the cancel request
        with pytest.raises(JobCancelledError):
            await cancelled.result(timeout=10)
        assert await scheduler.shutdown(timeout=0) == 1  # `released` was still running

    assert of_job(recorder, ok_job.id) == [
        claimed(ok_job.id, "ok", 1),
        finished(ok_job.id, "ok", 1, "succeeded"),
    ]
    assert of_job(recorder, flaky_job.id) == [
        claimed(flaky_job.id, "flaky", 1),
        finished(flaky_job.id, "flaky", 1, "retried", error=("builtins.ValueError", "first time")),
        claimed(flaky_job.id, "flaky", 2),
        # Its claimed record still holds attempt 1's error: not this outcome's.
        finished(flaky_job.id, "flaky", 2, "succeeded"),
    ]
    always = ("builtins.ValueError", "always")
    assert of_job(recorder, doomed_job.id) == [
        claimed(doomed_job.id, "doomed", 1),
        finished(doomed_job.id, "doomed", 1, "retried", error=always),
        claimed(doomed_job.id, "doomed", 2),
        finished(doomed_job.id, "doomed", 2, "dead", error=always),
    ]
    # Both ran from the claim (fake time 0) until the heartbeat (fake time 10): the cancel
    # took effect there, and the release at the shutdown that followed without time moving.
    assert of_job(recorder, cancelled.id) == [
        claimed(cancelled.id, "forever", 1),
        finished(cancelled.id, "forever", 1, "cancelled", HEARTBEAT),
    ]
    assert of_job(recorder, released.id) == [
        claimed(released.id, "forever", 1),
        finished(released.id, "forever", 1, "released", HEARTBEAT),
    ]
    # Nothing else was emitted for durable jobs, and all of it between start and stop.
    assert len(recorder.of(DurableJobEvent)) == 2 + 4 + 4 + 2 + 2
    assert isinstance(recorder.events[0], SchedulerStarted)
    assert isinstance(recorder.events[-1], SchedulerStopped)


async def test_a_re_run_after_a_lease_expired_is_a_claim_with_the_next_attempt(
    make_store: Callable[..., Store],
) -> None:
    store_clock = EpochClock()
    store = make_store(store_clock)
    scheduler = Scheduler(store=store, clock=FakeClock())
    recorder = EventRecorder(scheduler, DurableJobEvent)

    @scheduler.task(name="again")
    async def again(ctx: Any) -> int:
        return int(ctx.attempt)

    async with store:
        # A worker elsewhere claims it and dies: its lease runs out.
        (job,) = await store.enqueue([NewJob(task="again", max_attempts=3)])
        (gone,) = await store.claim(
            "dead worker", queues=["default"], tasks=["again"], limit=1, lease=5
        )
        assert gone.attempt == 1
        store_clock.now += 6
        async with scheduler:
            assert await scheduler.client.result(job.id, timeout=10) == 2

    assert recorder.events == [
        claimed(job.id, "again", 2),
        finished(job.id, "again", 2, "succeeded"),
    ]


async def test_a_job_dead_by_lease_expiry_is_an_end_with_no_claim(
    make_store: Callable[..., Store],
) -> None:
    """Its worker died on its last attempt: the worker whose claim made it ``dead`` emits
    its end (nobody else can), with no claim of its own."""
    store_clock = EpochClock()
    store = make_store(store_clock)
    scheduler = Scheduler(store=store, clock=FakeClock())
    recorder = EventRecorder(scheduler, DurableJobEvent)

    @scheduler.task(name="orphan")
    async def orphan(ctx: Any) -> None: ...

    async with store:
        (job,) = await store.enqueue([NewJob(task="orphan", max_attempts=1)])
        await store.claim("dead worker", queues=["default"], tasks=["orphan"], limit=1, lease=5)
        store_clock.now += 6
        async with scheduler:
            with pytest.raises(JobFailedError) as failed:
                await scheduler.client.result(job.id, timeout=10)
            assert failed.value.error_type == "beat.LeaseExpired"

    expired = ("beat.LeaseExpired", "lease expired after 1 attempt(s)")
    assert recorder.events == [finished(job.id, "orphan", 1, "dead", error=expired)]


async def test_a_subscriber_only_to_finishes_gets_only_finishes(
    make_store: Callable[..., Store],
) -> None:
    scheduler = Scheduler(store=make_store(), clock=FakeClock())
    recorder = EventRecorder(scheduler, DurableJobFinished)

    @scheduler.task(name="ok")
    async def ok(ctx: Any) -> str:
        return "done"

    async with scheduler:
        handle = await ok.enqueue()
        assert await handle.result(timeout=10) == "done"
    assert recorder.events == [finished(handle.id, "ok", 1, "succeeded")]


async def test_the_worker_is_observed_only_while_someone_wants_durable_job_events(
    make_store: Callable[..., Store],
) -> None:
    scheduler = Scheduler(store=make_store(), clock=FakeClock())
    worker = scheduler._worker
    assert worker is not None
    assert worker._observers == []  # nobody listens: the worker's empty-list test, nothing more

    def ignore(event: Event) -> None:
        pass

    others = scheduler.subscribe(ignore, RunFailed)  # other events only (beat.metrics does so)
    assert worker._observers == []
    claims = scheduler.subscribe(ignore, DurableJobClaimed)
    everything = scheduler.subscribe(ignore)
    assert len(worker._observers) == 1  # one observer however many subscribers
    scheduler.unsubscribe(claims)
    assert len(worker._observers) == 1  # `everything` still wants them
    scheduler.unsubscribe(everything)
    assert worker._observers == []
    scheduler.unsubscribe(others)
    assert worker._observers == []


async def test_a_scheduler_without_a_store_subscribes_as_before() -> None:
    scheduler = Scheduler(clock=FakeClock())
    recorder = EventRecorder(scheduler)
    async with scheduler:
        pass
    recorder.close()
    assert [type(e) for e in recorder.events] == [SchedulerStarted, SchedulerStopped]
