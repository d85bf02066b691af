"""Schedules that enqueue durable jobs, in one process: Job.cron(...).enqueue(task, ...).

Time is a FakeClock shared by the scheduler and the store, so occurrences come without real
waiting. What holds across OS processes is pinned by tests/test_stored_schedules.py.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio

from beat import (
    DuplicateJobError,
    InvalidJobError,
    Job,
    Scheduler,
    SchedulerStateError,
    SerializationError,
    task,
)
from beat._schedules import PROGRESS_PREFIX, occurrence_key
from beat.stores import JobRecord, MemoryStore, SQLiteStore, Store
from beat.testing import FakeClock

pytestmark = pytest.mark.asyncio

START = datetime(2026, 3, 1, tzinfo=UTC)
MINUTE = timedelta(minutes=1)


@task(name="report")
async def report(ctx: object, year: int, *, kind: str = "full") -> str:
    return f"{kind} {year}"


StoreFactory = Callable[[], Store]


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(START)


@pytest.fixture(params=["memory", "sqlite"])
def make_store(request: pytest.FixtureRequest, tmp_path: Path, clock: FakeClock) -> StoreFactory:
    """A factory of handles on one storage: the same MemoryStore, or a new SQLiteStore on one
    file (a replica's own connection)."""
    if request.param == "memory":
        shared = MemoryStore(clock=clock.time)
        return lambda: shared
    return lambda: SQLiteStore(tmp_path / "jobs.db", clock=clock.time, poll_interval=0.02)


@pytest_asyncio.fixture
async def reader(make_store: StoreFactory) -> AsyncIterator[Store]:
    """A handle to inspect what the schedulers stored."""
    store = make_store()
    await store.open()
    yield store
    await store.close()


async def settle(*schedulers: Scheduler) -> None:
    """Until no occurrence's enqueue is in flight (store I/O is real, not on the fake clock)."""
    async with asyncio.timeout(10):
        # The runs wait on real store I/O: there is no event to await, only the count.
        while any(s.statistics().running for s in schedulers):  # noqa: ASYNC110
            await asyncio.sleep(0.005)


async def tick(clock: FakeClock, delta: timedelta, *schedulers: Scheduler) -> None:
    """Move the fake clock by ``delta`` one fire at a time, letting each fire's store I/O
    finish before time moves on (else a fake-clock timeout would fire during real I/O)."""
    target = clock.now + delta
    await settle(*schedulers)
    while True:
        due = [i.next_fire for s in schedulers for i in s.jobs() if i.next_fire is not None]
        step = min([target, *due]) - clock.now
        await clock.advance(max(step, timedelta(0)))
        await settle(*schedulers)
        if clock.now >= target:
            return


async def jobs_of(store: Store, task_name: str = "report") -> list[JobRecord]:
    return await store.list_jobs(task=task_name, limit=1000)


def instants(records: list[JobRecord]) -> list[datetime]:
    return sorted(r.scheduled_at for r in records)


async def test_each_occurrence_becomes_one_stored_job_keyed_by_schedule_and_instant(
    clock: FakeClock, make_store: StoreFactory, reader: Store
) -> None:
    scheduler = Scheduler(store=make_store(), clock=clock)
    job = Job.cron("* * * * *").schedule("minutely").enqueue(report, 2026, kind="short")
    scheduler.add_job(job)
    async with scheduler:
        await tick(clock, 3 * MINUTE, scheduler)
    records = await jobs_of(reader)
    assert instants(records) == [START + k * MINUTE for k in (1, 2, 3)]
    first = min(records, key=lambda r: r.scheduled_at)
    assert (first.args, first.kwargs) == ([2026], {"kind": "short"})
    assert first.unique_key == occurrence_key("minutely", START + MINUTE)
    assert first.unique_key == "schedule:minutely@2026-03-01T00:01:00+00:00"
    assert first.meta == {"schedule": "minutely", "instant": "2026-03-01T00:01:00+00:00"}
    # the job's own policy comes from the task: retries=3 -> 4 attempts
    assert (first.queue, first.max_attempts) == ("default", 4)


async def test_the_worker_that_knows_the_task_runs_the_enqueued_jobs(
    clock: FakeClock, make_store: StoreFactory, reader: Store
) -> None:
    scheduler = Scheduler(store=make_store(), clock=clock)
    scheduler.add_task(report)
    scheduler.add_job(Job.cron("* * * * *").enqueue(report, 2024))
    async with scheduler:
        await tick(clock, MINUTE, scheduler)
        [record] = await jobs_of(reader)
        assert await scheduler.client.result(record.id, timeout=10) == "full 2024"


async def test_replicas_with_the_same_schedule_enqueue_each_occurrence_once(
    clock: FakeClock, make_store: StoreFactory, reader: Store
) -> None:
    replicas = [Scheduler(store=make_store(), clock=clock) for _ in range(3)]
    for replica in replicas:
        replica.add_job(Job.cron("*/5 * * * *").enqueue(report, 1))
    async with replicas[0], replicas[1], replicas[2]:
        for _ in range(4):
            await tick(clock, 5 * MINUTE, *replicas)
    records = await jobs_of(reader)
    assert instants(records) == [START + k * 5 * MINUTE for k in (1, 2, 3, 4)]
    # every replica fired every occurrence; one stored it, the others found it (kept as reprs)
    results = [r.result for s in replicas for r in s.get_job(s.jobs()[0].id).history]
    assert sum(str(r).startswith("'enqueued ") for r in results) == 4
    assert sum(str(r).startswith("'exists ") for r in results) == 8


async def test_every_lies_on_the_epoch_grid_so_replicas_started_apart_agree(
    clock: FakeClock, make_store: StoreFactory, reader: Store
) -> None:
    early = Scheduler(store=make_store(), clock=clock)
    early.add_job(Job.every(timedelta(seconds=90)).enqueue(report, 1))
    async with early:
        await tick(clock, timedelta(seconds=37), early)
        late = Scheduler(store=make_store(), clock=clock)
        late.add_job(Job.every(timedelta(seconds=90)).enqueue(report, 1))
        async with late:
            await tick(clock, timedelta(minutes=6), early, late)
    got = instants(await jobs_of(reader))
    assert got and all(dt.timestamp() % 90 == 0 for dt in got)
    assert len(got) == len(set(got)) == 4


@pytest.mark.parametrize(
    ("policy", "expected"),
    [
        ("coalesce", [START + 10 * MINUTE]),  # one job, for the latest missed instant
        ("skip", []),  # none
        ("run_all", [START + k * MINUTE for k in range(3, 11)]),  # one per missed instant
    ],
)
async def test_after_downtime_the_misfire_policy_is_applied_once_for_the_cluster(
    clock: FakeClock,
    make_store: StoreFactory,
    reader: Store,
    policy: str,
    expected: list[datetime],
) -> None:
    def schedule() -> Job:
        return Job.cron("* * * * *").schedule("m", misfire=policy).enqueue(report, 1)

    first = Scheduler(store=make_store(), clock=clock)
    first.add_job(schedule())
    async with first:
        await tick(clock, 2 * MINUTE, first)
    assert instants(await jobs_of(reader)) == [START + MINUTE, START + 2 * MINUTE]
    progress = await reader.get_schedule(PROGRESS_PREFIX + "m")
    assert progress is not None and progress.last_instant == START + 2 * MINUTE

    clock.jump(timedelta(minutes=8, seconds=30))  # the whole cluster was down
    replicas = [Scheduler(store=make_store(), clock=clock) for _ in range(3)]
    for replica in replicas:
        replica.add_job(schedule())
    async with replicas[0], replicas[1], replicas[2]:
        await tick(clock, timedelta(seconds=1), *replicas)
        caught_up = instants(await jobs_of(reader))[2:]
        assert caught_up == expected
        await tick(clock, timedelta(seconds=30), *replicas)  # 00:11 runs on time everywhere
    assert instants(await jobs_of(reader))[2 + len(expected) :] == [START + 11 * MINUTE]


async def test_run_all_catch_up_is_bounded_by_misfire_all_limit(
    clock: FakeClock, make_store: StoreFactory, reader: Store
) -> None:
    def schedule() -> Job:
        return (
            Job.cron("* * * * *")
            .schedule("bounded", misfire="all", misfire_all_limit=5)
            .enqueue(report, 1)
        )

    first = Scheduler(store=make_store(), clock=clock)
    first.add_job(schedule())
    async with first:
        await tick(clock, MINUTE, first)
    clock.jump(timedelta(hours=2))
    again = Scheduler(store=make_store(), clock=clock)
    again.add_job(schedule())
    async with again:
        await tick(clock, timedelta(seconds=1), again)
    assert instants(await jobs_of(reader))[1:] == [START + k * MINUTE for k in range(2, 7)]


async def test_an_oneshot_already_enqueued_by_the_cluster_is_not_fired_again(
    clock: FakeClock, make_store: StoreFactory, reader: Store
) -> None:
    at = START + MINUTE
    first = Scheduler(store=make_store(), clock=clock)
    first.add_job(Job.oneshot(at).schedule("once").enqueue(report, 1))
    async with first:
        await tick(clock, 2 * MINUTE, first)
    again = Scheduler(store=make_store(), clock=clock)
    again.add_job(Job.oneshot(at).schedule("once").enqueue(report, 1))
    async with again:
        await tick(clock, timedelta(seconds=1), again)
        assert again.jobs() == []  # removed at start: the cluster had enqueued it
    assert instants(await jobs_of(reader)) == [at]


async def test_a_durable_schedule_needs_a_store() -> None:
    scheduler = Scheduler()
    with pytest.raises(SchedulerStateError, match="store"):
        scheduler.add_job(Job.cron("* * * * *").enqueue(report, 1))
    assert scheduler.jobs() == []


async def test_schedule_names_are_unique_within_a_scheduler(make_store: StoreFactory) -> None:
    scheduler = Scheduler(store=make_store())
    scheduler.add_job(Job.cron("* * * * *").enqueue(report, 1))
    with pytest.raises(DuplicateJobError, match="report"):
        scheduler.add_job(Job.cron("0 * * * *").enqueue(report, 2))
    scheduler.add_job(Job.cron("0 * * * *").schedule("hourly-report").enqueue(report, 2))
    assert sorted(info.name for info in scheduler.jobs()) == ["hourly-report", "report"]


@pytest.mark.parametrize(
    ("build", "error", "match"),
    [
        (lambda: Job.cron("* * * * *").enqueue("t", {1, 2}), SerializationError, "set"),
        (lambda: Job.cron("* * * * *").enqueue("t", k=float("nan")), SerializationError, "NaN"),
        (lambda: Job.cron("* * * * *").schedule("x", overlap="allow"), InvalidJobError, "overlap"),
        (lambda: Job.cron("* * * * *").schedule("x", misfire="later"), InvalidJobError, "later"),
        (lambda: Job.cron("* * * * *").schedule(""), InvalidJobError, "schedule name"),
        (
            lambda: Job.cron("* * * * *").enqueue(report.options(delay=5), 1),
            InvalidJobError,
            "delay",
        ),
        (lambda: Job.cron("* * * * *").enqueue(42), InvalidJobError, "42"),  # type: ignore[call-overload]
    ],
)
async def test_bad_schedules_are_refused_when_built(
    build: Callable[[], Any], error: type[Exception], match: str
) -> None:
    with pytest.raises(error, match=match):
        build()
