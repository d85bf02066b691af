"""The scheduler core: registration, firing order, waking, re-entrancy, isolation, shutdown."""

from __future__ import annotations

import asyncio
import threading
import uuid
from datetime import UTC, datetime, timedelta

import pytest

from beat import (
    Context,
    Cycle,
    DuplicateJobError,
    InvalidJobError,
    Job,
    JobLookupError,
    Outcome,
    RunCancelled,
    RunFailed,
    Scheduler,
    SchedulerStateError,
)
from beat.testing import EventRecorder, FakeClock

from .conftest import START

pytestmark = pytest.mark.asyncio

S = timedelta(seconds=1)


class Calls:
    """Records (job name, ctx.when) for every run."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, datetime]] = []

    async def __call__(self, ctx: Context) -> None:
        self.seen.append((ctx.name, ctx.when))

    def whens(self, name: str | None = None) -> list[datetime]:
        return [w for n, w in self.seen if name is None or n == name]


async def test_cycle_job_fires_on_its_grid(scheduler: Scheduler, clock: FakeClock) -> None:
    calls = Calls()
    scheduler.add_job(Job.cycle(START + 10 * S, 10 * S).do(calls, name="c"))
    await clock.advance(35 * S)
    assert calls.whens() == [START + 10 * S, START + 20 * S, START + 30 * S]


async def test_removed_job_never_fires(scheduler: Scheduler, clock: FakeClock) -> None:
    calls = Calls()
    keep = scheduler.add_job(Job.every(5 * S).do(calls, name="keep"))
    gone = scheduler.add_job(Job.every(5 * S).do(calls, name="gone"))
    await clock.advance(5 * S)
    scheduler.remove_job(gone)
    await clock.advance(60 * S)
    assert calls.whens("gone") == [START + 5 * S]
    assert len(calls.whens("keep")) == 13
    assert scheduler.get_job(keep).name == "keep"
    with pytest.raises(JobLookupError, match=str(gone)):
        scheduler.get_job(gone)


async def test_readded_id_fires_once_per_instant(scheduler: Scheduler, clock: FakeClock) -> None:
    calls = Calls()
    job = Job.cycle(START + 10 * S, 10 * S).do(calls, name="r")
    for _ in range(3):  # leaves two stale entries for the same id and instant
        scheduler.add_job(job)
        scheduler.remove_job(job.id)
    scheduler.add_job(job)
    await clock.advance(30 * S)
    assert calls.whens() == [START + 10 * S, START + 20 * S, START + 30 * S]


async def test_equal_instants_fire_in_insertion_order(
    scheduler: Scheduler, clock: FakeClock
) -> None:
    calls = Calls()
    for i in range(20):
        scheduler.add_job(Job.oneshot(START + 5 * S).do(calls, name=f"j{i:02}"))
    await clock.advance(5 * S)
    assert [n for n, _ in calls.seen] == [f"j{i:02}" for i in range(20)]


async def test_adding_a_sooner_job_wakes_the_sleeping_loop(
    scheduler: Scheduler, clock: FakeClock
) -> None:
    calls = Calls()
    scheduler.add_job(Job.oneshot(START + timedelta(hours=1)).do(calls, name="late"))
    await clock.advance(S)  # the loop now sleeps until min(1 h, max_sleep=60 s)
    assert scheduler._sleeping_until is not None
    scheduler.add_job(Job.oneshot(START + 3 * S).do(calls, name="soon"))
    await clock.advance(2 * S)
    assert calls.whens("soon") == [START + 3 * S]
    assert clock.now == START + 3 * S


async def test_jobs_add_and_remove_jobs_from_inside_a_run(
    scheduler: Scheduler, clock: FakeClock
) -> None:
    calls = Calls()

    async def spawner(ctx: Context) -> None:
        ctx.scheduler.add_job(Job.oneshot(ctx.when + S).do(calls, name="child"))
        ctx.scheduler.remove_job(ctx.job_id)  # itself, after its first run

    scheduler.add_job(Job.every(10 * S).do(spawner, name="spawner"))
    await clock.advance(60 * S)
    assert calls.whens("child") == [START + 11 * S]
    assert [j.name for j in scheduler.jobs()] == []


async def test_sync_job_can_manage_jobs_from_its_thread(
    scheduler: Scheduler, clock: FakeClock
) -> None:
    added = threading.Event()
    calls = Calls()

    def sync_spawner(ctx: Context) -> str:
        assert threading.current_thread() is not threading.main_thread()
        ctx.scheduler.add_job(Job.oneshot(ctx.when + S).do(calls, name="from-thread"))
        ctx.scheduler.remove_job(ctx.job_id)
        added.set()
        return "ok"

    job_id = scheduler.add_job(Job.every(10 * S).do(sync_spawner, name="sync"))
    job = scheduler.get_job(job_id)
    waiter = asyncio.ensure_future(scheduler.wait_next_run(job_id))
    await clock.advance(10 * S)
    record = await waiter
    assert record.outcome is Outcome.SUCCEEDED and record.result == "'ok'"
    assert added.is_set() and job.running == 0
    await clock.advance(30 * S)
    assert calls.whens("from-thread") == [START + 11 * S]
    assert [r.when for r in job.history] == [START + 10 * S]


async def test_raising_job_does_not_stop_others(scheduler: Scheduler, clock: FakeClock) -> None:
    calls = Calls()
    recorder = EventRecorder(scheduler)

    async def boom(ctx: Context) -> None:
        raise RuntimeError("kaboom")

    bad = scheduler.add_job(Job.every(S).do(boom, name="boom"))
    scheduler.add_job(Job.every(S).do(calls, name="fine"))
    await clock.advance(5 * S)
    assert len(calls.whens("fine")) == 5
    failures = recorder.of(RunFailed)
    assert len(failures) == 5 and all("kaboom" in f.error for f in failures)
    assert [r.outcome for r in scheduler.get_job(bad).history] == [Outcome.FAILED] * 5
    assert scheduler.running


async def test_blocking_sync_job_does_not_delay_an_async_job(
    scheduler: Scheduler, clock: FakeClock
) -> None:
    release = threading.Event()
    calls = Calls()

    def blocker(ctx: Context) -> None:
        release.wait(10)

    scheduler.add_job(Job.oneshot(START + S).do(blocker, name="blocker"))
    scheduler.add_job(Job.oneshot(START + 2 * S).do(calls, name="async"))
    await clock.advance(2 * S)
    try:
        assert calls.whens("async") == [START + 2 * S]
        assert scheduler.statistics().running == 1  # the blocker is still in its thread
    finally:
        release.set()


async def test_shutdown_waits_for_running_jobs_up_to_the_timeout(clock: FakeClock) -> None:
    finished: list[str] = []
    scheduler = Scheduler(clock=clock)
    recorder = EventRecorder(scheduler)

    async def quick(ctx: Context) -> None:
        await ctx.sleep(3)
        finished.append("quick")

    async def slow(ctx: Context) -> None:
        await ctx.sleep(100)
        finished.append("slow")

    scheduler.add_job(Job.oneshot(START + S).do(quick, name="quick"))
    scheduler.add_job(Job.oneshot(START + S).do(slow, name="slow"))
    scheduler.start()
    await clock.advance(S)
    assert scheduler.statistics().running == 2
    stopping = asyncio.ensure_future(scheduler.shutdown(timeout=5))
    await clock.advance(4 * S)
    assert finished == ["quick"] and not stopping.done()
    await clock.advance(S)
    await stopping
    assert finished == ["quick"]
    assert scheduler.statistics().running == 0
    cancelled = recorder.of(RunCancelled)
    assert [(e.name, e.reason) for e in cancelled] == [("slow", "shutdown")]
    with pytest.raises(SchedulerStateError):
        scheduler.add_job(Job.every(S).do(quick))


async def test_cycle_stays_on_grid_when_a_run_is_late(clock: FakeClock) -> None:
    calls = Calls()
    scheduler = Scheduler(clock=clock, misfire_threshold=5)
    scheduler.add_job(Job.cycle(START + 10 * S, 10 * S).do(calls, name="grid"))
    async with scheduler:
        await clock.advance(10 * S)
        clock.jump(3 * S)  # the next wake happens 3 s late by the wall clock
        await clock.advance(10 * S)
        await clock.advance(10 * S)
    assert (
        calls.whens()
        == [START + 10 * S, START + 20 * S, START + 30 * S, START + 40 * S][: len(calls.whens())]
    )
    assert calls.whens()[:3] == [START + 10 * S, START + 20 * S, START + 30 * S]


async def test_duplicate_and_unknown_ids_are_rejected_without_change(
    scheduler: Scheduler,
) -> None:
    job = Job.every(S).do(Calls())
    scheduler.add_job(job)
    before = scheduler.statistics()
    with pytest.raises(DuplicateJobError, match=str(job.id)):
        scheduler.add_job(job)
    other = Job.every(S).do(Calls(), id=job.id)
    with pytest.raises(DuplicateJobError, match=str(job.id)):
        scheduler.add_job(other)
    unknown = uuid.uuid4()
    with pytest.raises(JobLookupError, match=str(unknown)):
        scheduler.remove_job(unknown)
    with pytest.raises(InvalidJobError, match="takes a Job"):
        scheduler.add_job("not a job")  # type: ignore[arg-type]
    assert scheduler.statistics() == before


async def test_listing_orders_by_next_fire(scheduler: Scheduler) -> None:
    a = scheduler.add_job(Job.oneshot(START + 30 * S).do(Calls(), name="a"))
    b = scheduler.add_job(Job.oneshot(START + 10 * S).do(Calls(), name="b"))
    infos = scheduler.jobs()
    assert [i.id for i in infos] == [b, a]
    assert infos[0].next_fire == START + 10 * S


async def test_add_and_remove_from_another_thread(scheduler: Scheduler, clock: FakeClock) -> None:
    calls = Calls()
    result: list[uuid.UUID] = []

    def worker() -> None:
        job_id = scheduler.add_job(Job.oneshot(START + 2 * S).do(calls, name="t"))
        result.append(job_id)
        try:
            scheduler.remove_job(uuid.uuid4())
        except JobLookupError as exc:
            result.append(exc)  # type: ignore[arg-type]

    thread = threading.Thread(target=worker)
    thread.start()
    await asyncio.to_thread(thread.join)  # the thread waits for the loop to apply its calls
    assert isinstance(result[0], uuid.UUID) and isinstance(result[1], JobLookupError)
    await clock.advance(2 * S)
    assert calls.whens("t") == [START + 2 * S]


async def test_start_requires_a_running_loop() -> None:
    scheduler = Scheduler(clock=FakeClock())

    def start_outside() -> None:
        scheduler.start()

    error: list[BaseException] = []
    thread = threading.Thread(target=lambda: _capture(start_outside, error))
    thread.start()
    thread.join()
    assert isinstance(error[0], SchedulerStateError)
    assert "event loop" in str(error[0])


def _capture(fn: object, into: list[BaseException]) -> None:
    try:
        fn()  # type: ignore[operator]
    except BaseException as exc:
        into.append(exc)


async def test_statistics_count_fires(scheduler: Scheduler, clock: FakeClock) -> None:
    scheduler.add_job(Job.every(S).do(Calls()))
    await clock.advance(10 * S)
    assert scheduler.statistics().fires == 10


async def test_scheduler_started_twice_is_an_error(scheduler: Scheduler) -> None:
    with pytest.raises(SchedulerStateError, match="running"):
        scheduler.start()


async def test_constructor_rejects_bad_settings() -> None:
    with pytest.raises(InvalidJobError, match="max_sleep"):
        Scheduler(max_sleep=0)
    with pytest.raises(InvalidJobError, match="-1"):
        Scheduler(misfire_threshold=-1)


async def test_ctx_carries_fire_key_and_attempt(scheduler: Scheduler, clock: FakeClock) -> None:
    seen: list[Context] = []

    async def capture(ctx: Context) -> None:
        seen.append(ctx)

    scheduler.add_job(Job.oneshot(datetime(2026, 1, 1, 0, 0, 5, tzinfo=UTC)).do(capture, name="k"))
    await clock.advance(5 * S)
    (ctx,) = seen
    assert ctx.fire_key == "k@2026-01-01T00:00:05+00:00"
    assert ctx.attempt == 1 and ctx.when == START + 5 * S


async def test_cycle_with_end_at_stops(scheduler: Scheduler, clock: FakeClock) -> None:
    calls = Calls()
    scheduler.add_job(Job.cycle(START + S, S).end_at(START + 3 * S).do(calls))
    await clock.advance(10 * S)
    assert calls.whens() == [START + S, START + 2 * S, START + 3 * S]
    assert scheduler.jobs() == []  # an exhausted timer's job is unregistered


async def test_cycle_object_is_a_timer() -> None:
    c = Cycle(START, 10 * S)
    assert c.next_after(START) == START + 10 * S
    assert c.next_after(START - S) == START
