"""wait_for_jobs and wait_finished, also across two handles on one storage."""

from __future__ import annotations

import asyncio
import time
from uuid import uuid4

import pytest

from beat.stores import JobNotFoundError, JobStatus, NewJob

from ._util import claim_one, one, parked
from .conftest import Harness

pytestmark = pytest.mark.asyncio

PROMPT = 2.0  # well under the 5 s fallback poll of PostgreSQL


async def test_wait_for_jobs_is_woken_by_an_enqueue_elsewhere(harness: Harness) -> None:
    other = await harness.other()
    async with parked(harness.store):
        waiter = asyncio.create_task(harness.store.wait_for_jobs(30))
    assert not waiter.done()
    started = time.monotonic()
    await other.enqueue([NewJob("t")])
    await asyncio.wait_for(waiter, PROMPT)
    assert time.monotonic() - started < PROMPT


async def test_wait_for_jobs_times_out(harness: Harness) -> None:
    started = time.monotonic()
    await harness.store.wait_for_jobs(0.3)
    assert time.monotonic() - started >= 0.25


async def test_wait_finished_across_handles(harness: Harness) -> None:
    store, other = harness.store, await harness.other()
    job = await one(store)
    async with parked(store):
        waiter = asyncio.create_task(store.wait_finished(job.id, 30))
        got = await claim_one(other, "w9")
    assert not waiter.done()
    assert await other.complete(job.id, got.attempt, "w9", {"answer": 42})
    done = await asyncio.wait_for(waiter, PROMPT)
    assert done.status is JobStatus.SUCCEEDED and done.result == {"answer": 42}


async def test_wait_finished_sees_cancel_and_dead(harness: Harness) -> None:
    store, other = harness.store, await harness.other()
    a, b = await store.enqueue([NewJob("t"), NewJob("t", max_attempts=1)])
    async with parked(store, 2):
        wait_a = asyncio.create_task(store.wait_finished(a.id, 30))
        wait_b = asyncio.create_task(store.wait_finished(b.id, 30))
    assert not wait_a.done() and not wait_b.done()
    await other.cancel(a.id)
    got = await claim_one(other, "w9")
    assert got.id == b.id
    await other.fail(b.id, 1, "w9", error_type="E", message="m", retry_at=await other.now())
    assert (await asyncio.wait_for(wait_a, PROMPT)).status is JobStatus.CANCELLED
    assert (await asyncio.wait_for(wait_b, PROMPT)).status is JobStatus.DEAD


async def test_wait_finished_edge_cases(harness: Harness) -> None:
    store = harness.store
    job = await one(store)
    with pytest.raises(TimeoutError):
        await store.wait_finished(job.id, 0.2)
    with pytest.raises(JobNotFoundError):
        await store.wait_finished(uuid4(), 1)
    got = await claim_one(store)
    await store.complete(job.id, got.attempt, "w1", "r")
    done = await store.wait_finished(job.id, 0)
    assert done.result == "r"


async def test_wait_for_jobs_wakes_when_a_delayed_job_comes_due(harness: Harness) -> None:
    """Time passing makes a job claimable too: the wait ends when it comes due, not at the
    caller's timeout or a fallback poll."""
    await harness.store.enqueue([NewJob("t", delay=0.5)])
    started = time.monotonic()
    await harness.store.wait_for_jobs(30)
    assert time.monotonic() - started < PROMPT


async def test_wait_for_jobs_wakes_for_the_soonest_job_at_any_priority(
    harness: Harness,
) -> None:
    """The job that comes due first ends the wait whatever its priority or queue, with
    jobs of higher priorities due an hour later stored around it; for a wait limited to
    some queues and tasks, the first of those."""
    store = harness.store
    hour = [NewJob(t, priority=p, queue=q, delay=3600) for t in "ab" for p in (9, 3) for q in "xy"]
    await store.enqueue([*hour[:4], NewJob("a", priority=-1, queue="y", delay=0.4)])
    await store.enqueue([*hour[4:], NewJob("b", priority=-5, queue="x", delay=0.8)])
    started = time.monotonic()
    await store.wait_for_jobs(30)
    first = time.monotonic() - started
    await store.wait_for_jobs(30, queues=["x"], tasks={"b"})
    second = time.monotonic() - started
    assert 0.3 < first < second < PROMPT, (first, second)


async def test_wait_for_jobs_returns_at_once_if_a_job_of_its_kind_is_claimable(
    harness: Harness,
) -> None:
    """A job stored between a worker's claim and its wait is not slept through; a due job
    of another queue or task does not end the wait."""
    await harness.store.enqueue([NewJob("mine", queue="q1"), NewJob("other", queue="q2")])
    started = time.monotonic()
    await harness.store.wait_for_jobs(30, queues=["q1"], tasks={"mine"})
    assert time.monotonic() - started < PROMPT / 4
    started = time.monotonic()
    await harness.store.wait_for_jobs(0.4, queues=["q3"], tasks={"mine", "other"})
    await harness.store.wait_for_jobs(0.4, queues=["q1", "q2"], tasks={"nobody"})
    assert time.monotonic() - started >= 0.7


async def test_waits_counts_the_waits_asleep(harness: Harness) -> None:
    """``store.waits``: a wait counts as parked from its look until it returns, and
    ``until_parked`` returns once the asked-for number has parked since ``since``."""
    store = harness.store
    assert store.waits.parked == 0
    job = await one(store, delay=3600)  # nothing is claimable for an hour
    since = store.waits.total
    claimer = asyncio.create_task(store.wait_for_jobs(30))
    finisher = asyncio.create_task(store.wait_finished(job.id, 30))
    await store.waits.until_parked(since, 2)
    assert store.waits.parked == 2 and not claimer.done() and not finisher.done()
    assert await store.cancel(job.id)
    await asyncio.wait_for(finisher, PROMPT)
    assert store.waits.parked == 1 and not claimer.done()
    await one(store)
    await asyncio.wait_for(claimer, PROMPT)
    assert store.waits.parked == 0
    assert store.waits.total >= since + 2
    await store.waits.until_parked(since, 2)  # already reached: returns at once
