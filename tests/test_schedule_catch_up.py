"""The catch-up of a schedule defined in code survives a store that fails at start.

A code-defined durable schedule reads its progress row (``~code:<name>``) to catch up the
instants the cluster missed. If that read fails, the schedule waits (fires nothing) while the
read is retried with backoff, then catches up as at start: every missed occurrence is stored
once, including those that fell while it waited. Time is a FakeClock shared by the scheduler
and a MemoryStore, so the retries' pauses pass without real waiting.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from beat import Job, Scheduler
from beat._schedules import PROGRESS_PREFIX, progress_spec
from beat.stores import MemoryStore, ScheduleRecord, StoreUnavailableError
from beat.testing import FakeClock

pytestmark = pytest.mark.asyncio

LAST = datetime(2026, 3, 1, 0, 2, tzinfo=UTC)  # the cluster's last enqueued instant
MINUTE = timedelta(minutes=1)


class FailingReads(MemoryStore):
    """A MemoryStore whose next ``reads_to_fail`` reads of a progress row fail (a store
    outage as the catch-up sees it); everything else works, so a regular fire could advance
    the row."""

    reads_to_fail = 0
    reads_failed = 0

    async def get_schedule(self, name: str) -> ScheduleRecord | None:
        if name.startswith(PROGRESS_PREFIX) and self.reads_to_fail > 0:
            self.reads_to_fail -= 1
            self.reads_failed += 1
            raise StoreUnavailableError("injected outage")
        return await super().get_schedule(name)


async def history(store: FailingReads, name: str = "code") -> FailingReads:
    """Give ``store`` the progress row of schedule ``name`` as a run that ended at LAST."""
    await store.open()
    await store.put_schedule(progress_spec(name, "t"))
    assert await store.advance_schedule(PROGRESS_PREFIX + name, LAST)
    return store


def code_schedule() -> Job:
    return Job.cron("* * * * *").schedule("code", misfire="all").enqueue("t")


async def instants(store: MemoryStore) -> list[datetime]:
    """The instants of schedule ``code`` stored so far (the store opened again if the
    scheduler's shutdown closed it)."""
    await store.open()
    records = await store.list_jobs(limit=1000)
    return sorted(r.scheduled_at for r in records if r.meta.get("schedule") == "code")


def catch_up_logs(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [
        r
        for r in caplog.records
        if r.name == "beat.schedules" and r.getMessage().startswith("catch-up of schedule code")
    ]


async def test_a_failed_catch_up_at_start_is_retried_and_stores_every_missed_instant_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    # The scheduler starts 5 s before 00:11; the first 8 reads fail, which takes at least
    # 0.125+0.25+0.5+1+2+3*2.5 = 11.4 s of backoff: the regular 00:11 falls in the outage.
    clock = FakeClock(datetime(2026, 3, 1, 0, 10, 55, tzinfo=UTC))
    store = await history(FailingReads(clock=clock.time))
    store.reads_to_fail = 8
    ticks: list[float] = []

    async def other_job(ctx: object) -> None:
        ticks.append(clock.time())

    scheduler = Scheduler(store=store, clock=clock)
    scheduler.add_job(code_schedule())
    scheduler.add_job(Job.every(timedelta(seconds=1)).do(other_job))
    with caplog.at_level(logging.INFO, logger="beat.schedules"):
        async with scheduler:  # the start does not wait for the catch-up
            await clock.advance(10)  # 00:11:05: still failing
            assert store.reads_failed < 8
            # the schedule waits: 00:11 was not fired, so the row still says where the
            # cluster stopped (a fire would have advanced it past the missed instants)
            assert await instants(store) == []
            progress = await MemoryStore.get_schedule(store, PROGRESS_PREFIX + "code")  # no fault
            assert progress is not None and progress.last_instant == LAST
            assert len(ticks) >= 9  # the scheduler's other jobs go on
            await clock.advance(45)  # 00:11:50: the store answered long ago
            assert store.reads_failed == 8
            caught_up = await instants(store)
            assert caught_up == [LAST + k * MINUTE for k in range(1, 10)]  # 00:03 .. 00:11
            await clock.advance(15)  # 00:12:05: on time again
            await scheduler.shutdown(timeout=0)
    stored = await instants(store)
    assert stored == [LAST + k * MINUTE for k in range(1, 11)]  # each once, none missing
    logs = catch_up_logs(caplog)
    failures = [r for r in logs if "failed (try" in r.getMessage()]
    assert len(failures) == 8  # every failed try is logged, the first as a WARNING
    assert [r.levelno for r in failures] == [logging.WARNING] + [logging.INFO] * 7
    assert sum("done after 8 failed tries" in r.getMessage() for r in logs) == 1


async def test_a_schedule_added_to_a_running_scheduler_retries_its_catch_up_too(
    caplog: pytest.LogCaptureFixture,
) -> None:
    clock = FakeClock(datetime(2026, 3, 1, 0, 10, 30, tzinfo=UTC))
    store = await history(FailingReads(clock=clock.time))
    scheduler = Scheduler(store=store, clock=clock)
    with caplog.at_level(logging.INFO, logger="beat.schedules"):
        async with scheduler:
            await clock.advance(1)
            store.reads_to_fail = 3
            scheduler.add_job(code_schedule())
            await clock.advance(10)  # 00:10:41
            assert store.reads_failed == 3
            caught_up = await instants(store)
            assert caught_up == [LAST + k * MINUTE for k in range(1, 9)]  # 00:03 .. 00:10
            await scheduler.shutdown(timeout=0)
    assert sum("failed (try" in r.getMessage() for r in catch_up_logs(caplog)) == 3


async def store_down_at_start() -> tuple[FakeClock, FailingReads, Scheduler, Any]:
    """A scheduler with the code schedule, on a store whose reads keep failing."""
    clock = FakeClock(datetime(2026, 3, 1, 0, 10, 30, tzinfo=UTC))
    store = await history(FailingReads(clock=clock.time))
    store.reads_to_fail = 10**6
    scheduler = Scheduler(store=store, clock=clock)
    return clock, store, scheduler, scheduler.add_job(code_schedule())


async def test_a_scheduler_stopping_while_the_store_is_down_gives_up_and_says_so(
    caplog: pytest.LogCaptureFixture,
) -> None:
    clock, store, scheduler, job_id = await store_down_at_start()
    with caplog.at_level(logging.INFO, logger="beat.schedules"):
        async with scheduler:
            await clock.advance(60)
            assert scheduler.job_info(job_id).next_fire is None  # waiting for its catch-up
            await scheduler.shutdown(timeout=0)
    assert await instants(store) == []
    [abandoned] = [r for r in catch_up_logs(caplog) if "abandoned" in r.getMessage()]
    assert abandoned.levelno == logging.WARNING
    # released: the job has its pending instant back (as if it had never waited)
    assert scheduler.job_info(job_id).next_fire is not None


async def test_removing_a_waiting_schedule_ends_its_retries(
    caplog: pytest.LogCaptureFixture,
) -> None:
    clock, store, scheduler, job_id = await store_down_at_start()
    with caplog.at_level(logging.INFO, logger="beat.schedules"):
        async with scheduler:
            await clock.advance(3)
            scheduler.remove_job(job_id)
            await clock.advance(10)
            failed = store.reads_failed
            await clock.advance(60)
            assert store.reads_failed == failed  # no more tries
            await scheduler.shutdown(timeout=0)
    assert sum("dropped" in r.getMessage() for r in catch_up_logs(caplog)) == 1
    assert await instants(store) == []
