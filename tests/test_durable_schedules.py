"""Schedules that enqueue durable jobs, in one process: Job.cron(...).enqueue(task, ...).

Time is a FakeClock shared by the scheduler and the store, so occurrences come without real
waiting. What holds across OS processes is pinned by tests/test_stored_schedules.py.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio

from beat import (
    Client,
    CronSyntaxError,
    DuplicateJobError,
    InvalidJobError,
    InvalidScheduleError,
    Job,
    JobNotFoundError,
    ScheduleProblem,
    Scheduler,
    SchedulerStateError,
    SerializationError,
    StoreUnavailableError,
    task,
)
from beat._schedules import PROGRESS_PREFIX, occurrence_key
from beat.stores import (
    JobRecord,
    JobStatus,
    MemoryStore,
    ScheduleRecord,
    ScheduleSpec,
    SQLiteStore,
    Store,
)
from beat.testing import EventRecorder, FakeClock

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


# -------------------------------------------------------------------------------------------
# Stored schedules (client.schedules) in one process; across processes: test_stored_schedules
# -------------------------------------------------------------------------------------------
async def synced(scheduler: Scheduler, after: int) -> None:
    """Until the scheduler's sync loop has reconciled more than ``after`` times."""
    sync = scheduler._schedules
    async with asyncio.timeout(10):
        while sync.syncs <= after:
            sync.synced.clear()
            await sync.synced.wait()


async def change(scheduler: Scheduler, action: Awaitable[Any]) -> Any:
    """Run ``action`` (a store change) and wait until ``scheduler`` has synced it."""
    before = scheduler._schedules.syncs
    result = await action
    await synced(scheduler, before)
    return result


def names(scheduler: Scheduler) -> dict[str, bool]:
    """The scheduler's jobs: name -> paused."""
    return {info.name: info.paused for info in scheduler.jobs()}


async def test_a_stored_schedule_runs_in_a_running_scheduler_and_follows_every_change(
    clock: FakeClock, make_store: StoreFactory, reader: Store
) -> None:
    scheduler = Scheduler(store=make_store(), clock=clock)
    scheduler.add_task(report)
    schedules = Client(reader).schedules
    async with scheduler:
        await synced(scheduler, 0)
        added = await change(
            scheduler,
            schedules.add(ScheduleSpec(name="s", task="report", cron="*/2 * * * *", args=[7])),
        )
        assert names(scheduler) == {"s": False}
        await tick(clock, 2 * MINUTE, scheduler)
        [first] = await jobs_of(reader)
        assert (first.args, first.unique_key) == ([7], occurrence_key("s", START + 2 * MINUTE))
        record = await schedules.get("s")
        assert record is not None and record.last_instant == START + 2 * MINUTE
        assert record.version == added.version  # progress is not a change

        await change(scheduler, schedules.pause("s"))
        assert names(scheduler) == {"s": True}
        await tick(clock, 4 * MINUTE, scheduler)
        assert len(await jobs_of(reader)) == 1  # paused: nothing enqueued

        await change(scheduler, schedules.resume("s"))
        await tick(clock, 2 * MINUTE, scheduler)  # resumed: from the next instant, no catch-up
        assert instants(await jobs_of(reader)) == [START + 2 * MINUTE, START + 8 * MINUTE]

        await change(scheduler, schedules.update("s", cron=None, every=60.0, args=[8]))
        await tick(clock, MINUTE, scheduler)
        newest = max(await jobs_of(reader), key=lambda r: r.scheduled_at)
        assert (newest.scheduled_at, newest.args) == (START + 9 * MINUTE, [8])

        assert await change(scheduler, schedules.remove("s")) is True
        assert names(scheduler) == {}
        await tick(clock, 3 * MINUTE, scheduler)
        assert len(await jobs_of(reader)) == 3  # none after the removal
        assert await schedules.list() == []


async def test_stored_schedules_survive_a_restart_and_catch_up_once(
    clock: FakeClock, make_store: StoreFactory, reader: Store
) -> None:
    await Client(reader).schedules.add(
        ScheduleSpec(name="s", task="report", every=60.0, args=[1], misfire="coalesce")
    )
    first = Scheduler(store=make_store(), clock=clock)
    async with first:
        await synced(first, 0)
        await tick(clock, 2 * MINUTE, first)
    clock.jump(timedelta(minutes=10, seconds=30))
    again = Scheduler(store=make_store(), clock=clock)
    async with again:
        await synced(again, 0)
        await tick(clock, timedelta(seconds=1), again)
    assert instants(await jobs_of(reader)) == [START + k * MINUTE for k in (1, 2, 12)]


async def test_a_task_no_local_worker_knows_is_enqueued_and_reported_once(
    clock: FakeClock, make_store: StoreFactory, reader: Store
) -> None:
    scheduler = Scheduler(store=make_store(), clock=clock)
    recorder = EventRecorder(scheduler, ScheduleProblem)
    schedules = Client(reader).schedules
    async with scheduler:
        await synced(scheduler, 0)
        await change(scheduler, schedules.add(ScheduleSpec(name="x", task="elsewhere", every=60)))
        await change(scheduler, schedules.update("x", args=[2]))  # still unknown: no new report
        await tick(clock, MINUTE, scheduler)
        [problem] = await recorder.wait_for(ScheduleProblem)
    assert (problem.schedule, problem.problem) == ("x", "unknown_task")
    assert "elsewhere" in problem.detail
    [job] = await jobs_of(reader, "elsewhere")
    assert job.status is JobStatus.QUEUED  # waiting for a worker that knows the task


async def test_a_name_defined_in_code_wins_over_a_stored_schedule(
    clock: FakeClock, make_store: StoreFactory, reader: Store
) -> None:
    schedules = Client(reader).schedules
    await schedules.add(ScheduleSpec(name="nightly", task="stored-task", every=60))
    scheduler = Scheduler(store=make_store(), clock=clock)
    recorder = EventRecorder(scheduler, ScheduleProblem)
    scheduler.add_job(Job.cron("* * * * *").schedule("nightly").enqueue("code-task"))
    async with scheduler:
        await synced(scheduler, 0)
        await tick(clock, MINUTE, scheduler)
        [problem] = await recorder.wait_for(ScheduleProblem)
        await change(scheduler, schedules.add(ScheduleSpec(name="other", task="t", every=60)))
        with pytest.raises(DuplicateJobError, match="other"):  # a stored schedule's name
            scheduler.add_job(Job.cron("* * * * *").schedule("other").enqueue("t"))
    assert problem.problem == "name_taken" and problem.schedule == "nightly"
    assert len(await jobs_of(reader, "code-task")) == 1
    assert await jobs_of(reader, "stored-task") == []


@pytest.mark.parametrize(
    ("spec", "error", "match"),
    [
        (ScheduleSpec(name="b", task="t", cron="61 * * * *"), CronSyntaxError, "61"),
        (ScheduleSpec(name="b", task="t", cron="* * * * *", every=5), InvalidScheduleError, "one"),
        (ScheduleSpec(name="b", task="t"), InvalidScheduleError, "exactly one"),
        (ScheduleSpec(name="b", task="t", every=-1), InvalidScheduleError, "-1"),
        (
            ScheduleSpec(name="b", task="t", every=1, timezone="Mars/Base"),
            InvalidScheduleError,
            "Mars",
        ),
        (ScheduleSpec(name="b", task="t", every=1, args=[{1}]), SerializationError, "set"),
        (ScheduleSpec(name="b", task="t", every=1, misfire="later"), InvalidScheduleError, "later"),  # type: ignore[arg-type]
        (ScheduleSpec(name="b", task="", every=1), InvalidJobError, "task"),
        (
            ScheduleSpec(name=PROGRESS_PREFIX + "b", task="t", every=1),
            InvalidScheduleError,
            "reserved",
        ),
        (
            ScheduleSpec(name="b", task="t", at=datetime(2026, 1, 1)),
            InvalidScheduleError,
            "aware",
        ),
    ],
)
async def test_bad_stored_specs_are_typed_errors_that_change_nothing(
    reader: Store, spec: ScheduleSpec, error: type[Exception], match: str
) -> None:
    schedules = Client(reader).schedules
    version = await reader.schedules_version()
    with pytest.raises(error, match=match):
        await schedules.add(spec)
    with pytest.raises(error, match=match):
        await schedules.put(spec)
    assert await reader.list_schedules() == []
    assert await reader.schedules_version() == version


async def test_updates_of_unknown_schedules_and_fields_are_refused(reader: Store) -> None:
    schedules = Client(reader).schedules
    with pytest.raises(JobNotFoundError, match="nope"):
        await schedules.update("nope", every=5)
    with pytest.raises(JobNotFoundError, match="nope"):
        await schedules.pause("nope")
    await schedules.add(ScheduleSpec(name="s", task="t", every=60))
    with pytest.raises(DuplicateJobError, match="s"):
        await schedules.add(ScheduleSpec(name="s", task="t", every=30))
    with pytest.raises(InvalidJobError, match="colour"):
        await schedules.update("s", colour="red")
    with pytest.raises(CronSyntaxError):
        await schedules.update("s", every=None, cron="not cron")
    [record] = await schedules.list()
    assert record.every == 60 and record.cron is None
    assert await schedules.remove("s") is True
    assert await schedules.remove("s") is False


class FlakyStore(MemoryStore):
    """A MemoryStore whose schedule reads fail while ``down`` (a store outage as the sync
    loop sees it; jobs still work, so the scheduler's other work goes on)."""

    down = False

    async def _check_up(self) -> None:
        if self.down:
            raise StoreUnavailableError("injected outage")

    async def schedules_version(self) -> int:
        await self._check_up()
        return await super().schedules_version()

    async def wait_schedules_changed(self, version: int, timeout: float) -> int:
        await self._check_up()
        return await super().wait_schedules_changed(version, timeout)

    async def list_schedules(self) -> list[ScheduleRecord]:
        await self._check_up()
        return await super().list_schedules()


async def test_the_sync_loop_survives_a_store_outage_and_catches_up_after_it(
    clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    store = FlakyStore(clock=clock.time)
    scheduler = Scheduler(store=store, clock=clock)
    scheduler.add_job(Job.cron("* * * * *").schedule("code").enqueue("t"))
    async with scheduler:
        await synced(scheduler, 0)
        store.down = True
        await store.put_schedule(ScheduleSpec(name="during", task="t", every=60))
        with caplog.at_level(logging.WARNING, logger="beat.schedules"):
            await tick(clock, 3 * MINUTE, scheduler)  # retries back off on the fake clock
            assert "during" not in names(scheduler)
            store.down = False
            await tick(clock, timedelta(seconds=6), scheduler)  # past the longest pause
            await synced(scheduler, scheduler._schedules.syncs - 1)
        assert set(names(scheduler)) == {"code", "during"}
        assert len(await jobs_of(store, "t")) == 3  # the code schedule ran through the outage
    outage_logs = [r.getMessage() for r in caplog.records if r.name == "beat.schedules"]
    assert sum("sync failed" in m for m in outage_logs) == 1  # one WARNING for the outage
    assert sum("back after" in m for m in outage_logs) == 1


async def test_a_stored_oneshot_enqueues_once_even_across_changes_and_restarts(
    clock: FakeClock, make_store: StoreFactory, reader: Store
) -> None:
    schedules = Client(reader).schedules
    at = START + MINUTE
    await schedules.add(ScheduleSpec(name="once", task="t", at=at))
    first = Scheduler(store=make_store(), clock=clock)
    async with first:
        await synced(first, 0)
        await tick(clock, 2 * MINUTE, first)
        assert names(first) == {}  # fired, then retired
        await change(first, schedules.pause("once"))
        await change(first, schedules.resume("once"))  # seen again: already enqueued
        await tick(clock, MINUTE, first)
        assert names(first) == {}
    again = Scheduler(store=make_store(), clock=clock)
    async with again:
        await synced(again, 0)
        await tick(clock, MINUTE, again)
        assert names(again) == {}
    assert [r.scheduled_at for r in await jobs_of(reader, "t")] == [at]
