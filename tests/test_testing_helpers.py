"""beat.testing for durable jobs: assert_enqueued and drain, on a MemoryStore and a FakeClock."""

from __future__ import annotations

import time
from datetime import timedelta
from typing import Any

import pytest

from beat import Backoff, InvalidJobError, JobContext, Scheduler, Worker, task
from beat._tasks import TaskRegistry
from beat.stores import JobStatus, MemoryStore
from beat.testing import FakeClock, assert_enqueued, drain

pytestmark = pytest.mark.asyncio


@task(name="emails.send")
async def send_email(ctx: JobContext, to: str, subject: str = "hi") -> str:
    return f"sent {subject} to {to}"


async def setup() -> tuple[FakeClock, MemoryStore, Scheduler]:
    clock = FakeClock()
    store = MemoryStore(clock=clock.time)
    await store.open()  # a scheduler opens it when started; these tests do not start one
    return clock, store, Scheduler(store=store, clock=clock)


# -- assert_enqueued ---------------------------------------------------------------------------
async def test_assert_enqueued_returns_the_matching_jobs() -> None:
    clock, store, scheduler = await setup()
    scheduler.add_task(send_email)
    await send_email.enqueue("ada@example.com")
    await send_email.options(delay=3600).enqueue("bob@example.com", subject="later")
    [ada] = await assert_enqueued(store, send_email, args=("ada@example.com",))
    assert ada.args == ["ada@example.com"]
    later = await assert_enqueued(
        scheduler.client,
        "emails.send",
        kwargs={"subject": "later"},
        scheduled_after=clock.now + timedelta(minutes=59),
        scheduled_before=clock.now + timedelta(minutes=61),
        count=1,
    )
    assert later[0].args == ["bob@example.com"]
    assert len(await assert_enqueued(scheduler, send_email, count=2)) == 2


async def test_a_failed_assertion_lists_what_was_enqueued() -> None:
    _, store, scheduler = await setup()
    scheduler.add_task(send_email)
    await send_email.enqueue("ada@example.com", subject="welcome")
    with pytest.raises(AssertionError) as failed:
        await assert_enqueued(store, send_email, args=["bob@example.com"])
    message = str(failed.value)
    assert "at least one job(s) matching task 'emails.send', args=['bob@example.com']" in message
    assert "0 matched" in message
    assert "Enqueued (1):" in message
    assert "emails.send('ada@example.com', subject='welcome')" in message
    assert "status=queued" in message
    with pytest.raises(AssertionError, match=r"exactly 2 job.*1 matched"):
        await assert_enqueued(store, send_email, count=2)


async def test_nothing_enqueued_says_so() -> None:
    _, store, _ = await setup()
    with pytest.raises(AssertionError, match="Nothing was enqueued"):
        await assert_enqueued(store, "emails.send")
    assert await assert_enqueued(store, "emails.send", count=0) == []


async def test_bad_criteria_are_typed_errors() -> None:
    _, store, _ = await setup()
    with pytest.raises(InvalidJobError, match="aware"):
        await assert_enqueued(store, "t", scheduled_after=FakeClock().now.replace(tzinfo=None))
    with pytest.raises(InvalidJobError, match="count"):
        await assert_enqueued(store, "t", count=-1)
    with pytest.raises(InvalidJobError, match="Store, Client"):
        await assert_enqueued(object(), "t")  # type: ignore[arg-type]


# -- drain ---------------------------------------------------------------------------------------
async def test_drain_runs_what_is_queued_and_what_those_jobs_enqueue() -> None:
    _, store, scheduler = await setup()
    order: list[str] = []

    @scheduler.task(name="leaf")
    async def leaf(ctx: JobContext, n: int) -> int:
        order.append(f"leaf {n}")
        return n

    @scheduler.task(name="fan_out")
    async def fan_out(ctx: JobContext, n: int) -> None:
        order.append("fan_out")
        for i in range(n):
            await ctx.enqueue(leaf, i)

    await fan_out.enqueue(3)
    assert await drain(scheduler) == 4
    assert order == ["fan_out", "leaf 0", "leaf 1", "leaf 2"]
    records = await store.list_jobs()
    assert [r.status for r in records] == [JobStatus.SUCCEEDED] * 4
    parent = records[0].id
    assert [r.meta.get("parent") for r in records[1:]] == [str(parent)] * 3


async def test_drain_carries_runs_that_sleep_on_the_fake_clock_without_waiting() -> None:
    clock, _, scheduler = await setup()

    @scheduler.task(name="nap")
    async def nap(ctx: JobContext) -> str:
        await ctx.sleep(3600)
        return "rested"

    @scheduler.task(name="count")
    def count(ctx: JobContext, n: int) -> int:  # a plain function, in a thread
        return n + 1

    handle = await nap.enqueue()
    other = await count.enqueue(41)
    began, start = time.monotonic(), clock.monotonic()
    assert await drain(scheduler) == 2
    assert time.monotonic() - began < 5  # an hour of fake time, no hour of real time
    assert clock.monotonic() - start >= 3600
    assert await handle.result(timeout=0) == "rested"
    assert await other.result(timeout=0) == 42


async def test_drain_leaves_later_jobs_unless_asked_to_advance() -> None:
    clock, _, scheduler = await setup()
    attempts: list[int] = []

    @scheduler.task(name="flaky", retries=2, backoff=Backoff.constant(60))
    async def flaky(ctx: JobContext) -> str:
        attempts.append(ctx.attempt)
        if ctx.attempt < 3:
            raise RuntimeError("not yet")
        return "done"

    handle = await flaky.enqueue()
    assert await drain(scheduler) == 1
    assert (await scheduler.client.get(handle.id)).status is JobStatus.SCHEDULED
    assert await drain(scheduler, advance=True) == 2
    assert attempts == [1, 2, 3]
    assert await handle.result(timeout=0) == "done"
    assert clock.monotonic() >= 120


async def test_drain_stops_a_job_that_keeps_enqueuing_itself() -> None:
    _, _, scheduler = await setup()

    @scheduler.task(name="again")
    async def again(ctx: JobContext) -> None:
        await ctx.enqueue("again")

    await again.enqueue()
    with pytest.raises(AssertionError, match="keep enqueuing itself"):
        await drain(scheduler, max_jobs=20)


async def test_drain_takes_a_bare_worker_and_refuses_a_scheduler_without_store() -> None:
    clock = FakeClock()
    store = MemoryStore(clock=clock.time)
    await store.open()
    tasks = TaskRegistry()
    tasks.add(send_email)
    worker = Worker(store, tasks, clock=clock)
    [record] = await store.enqueue([_job("emails.send", "x@y.z")])
    assert await drain(worker) == 1
    done = await store.get(record.id)
    assert done is not None and done.result == "sent hi to x@y.z"
    await worker.stop()
    with pytest.raises(InvalidJobError, match=r"Scheduler\(store=\.\.\.\)"):
        await drain(Scheduler(clock=clock))


def _job(name: str, *args: Any) -> Any:
    from beat.stores import NewJob

    return NewJob(name, args=args)


async def test_drain_works_beside_a_started_scheduler_s_own_claims() -> None:
    _, _, scheduler = await setup()
    scheduler.add_task(send_email)
    async with scheduler:
        handles = [await send_email.enqueue(f"{n}@example.com") for n in range(5)]
        await drain(scheduler)
        for n, handle in enumerate(handles):
            assert await handle.result(timeout=0) == f"sent hi to {n}@example.com"
