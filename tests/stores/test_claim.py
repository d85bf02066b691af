"""claim: order, filters, due times, limits, and no job handed out twice."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest

from beat.stores import JobStatus, NewJob, Store

from ._util import HOUR, LEASE, add, claim, one
from .conftest import Harness

pytestmark = pytest.mark.asyncio


async def test_claim_marks_running(store: Store) -> None:
    job = await one(store)
    now = await store.now()
    [got] = await claim(store, "w1", lease=30)
    assert got.id == job.id
    assert got.status is JobStatus.RUNNING
    assert (got.attempt, got.worker) == (1, "w1")
    assert got.started_at is not None and got.lease_expires_at is not None
    assert got.started_at >= now
    assert got.lease_expires_at - got.started_at == timedelta(seconds=30)
    assert await store.get(job.id) == got
    assert await claim(store, "w2") == []


async def test_priority_then_fifo(store: Store) -> None:
    now = await store.now()
    jobs = await add(
        store,
        NewJob("t", args=["low-old"], priority=0, scheduled_at=now - 3 * HOUR),
        NewJob("t", args=["high-new"], priority=9, scheduled_at=now - HOUR),
        NewJob("t", args=["mid-1"], priority=5, scheduled_at=now - 2 * HOUR),
        NewJob("t", args=["mid-2"], priority=5, scheduled_at=now - 2 * HOUR),
        NewJob("t", args=["high-old"], priority=9, scheduled_at=now - 2 * HOUR),
        NewJob("t", args=["neg"], priority=-3, scheduled_at=now - 9 * HOUR),
        NewJob("t", args=["mid-0"], priority=5, scheduled_at=now - 3 * HOUR),
    )
    assert len(jobs) == 7
    order = [r.args[0] for r in await claim(store, limit=3)]
    order += [r.args[0] for r in await claim(store, limit=10)]
    assert order == ["high-old", "high-new", "mid-0", "mid-1", "mid-2", "low-old", "neg"]


async def test_jobs_due_later_never_hide_due_ones(store: Store) -> None:
    """Each priority level also holds jobs due later (stored first, at higher priorities
    too): claims take exactly the due jobs, by priority, then due time, whatever number of
    later jobs sits between them; due jobs of another queue or task stay."""
    now = await store.now()
    second = timedelta(seconds=1)
    later = [
        NewJob("t", args=[f"later {p}"], priority=p, scheduled_at=now + HOUR + i * second)
        for p in (9, 5, 2, 0, -4)
        for i in range(4)
    ]
    due = [
        NewJob("t", args=[f"due {p} {i}"], priority=p, scheduled_at=now - HOUR + i * second)
        for p in (-4, 5, 0)
        for i in (1, 0)
    ]
    others = [NewJob("u", priority=7), NewJob("t", queue="q2", priority=7)]
    await add(store, *later, *others, *due)
    order = [r.args[0] for r in await claim(store, limit=3)]
    order += [r.args[0] for r in await claim(store, limit=10)]
    assert order == ["due 5 0", "due 5 1", "due 0 0", "due 0 1", "due -4 0", "due -4 1"]
    assert await claim(store) == []


async def test_fifo_by_insertion_within_one_instant(store: Store) -> None:
    at = await store.now() - HOUR
    jobs = await add(store, *(NewJob("t", args=[i], scheduled_at=at) for i in range(12)))
    claimed = [r.id for r in await claim(store, limit=5)] + [r.id for r in await claim(store)]
    assert claimed == [j.id for j in jobs]


async def test_queue_and_task_filters(store: Store) -> None:
    await add(
        store,
        NewJob("a"),
        NewJob("b"),
        NewJob("a", queue="q2"),
        NewJob("c", queue="q3"),
    )
    got = await claim(store, tasks=("a",), queues=("default",))
    assert [(r.task, r.queue) for r in got] == [("a", "default")]
    assert await claim(store, tasks=("zzz",), queues=("default", "q2", "q3")) == []
    assert await claim(store, tasks=(), queues=("default",)) == []
    assert await claim(store, tasks=("a", "b", "c"), queues=()) == []
    got = await claim(store, tasks=("a", "b", "c"), queues=("q2", "q3"))
    assert sorted((r.task, r.queue) for r in got) == [("a", "q2"), ("c", "q3")]
    got = await claim(store, tasks={"b"}, queues=["default"])  # type: ignore[arg-type]
    assert [r.task for r in got] == ["b"]


async def test_limit(store: Store) -> None:
    await add(store, *(NewJob("t") for _ in range(5)))
    assert len(await claim(store, limit=2)) == 2
    assert len(await claim(store, limit=2)) == 2
    assert len(await claim(store, limit=2)) == 1
    assert await claim(store, limit=2) == []


async def test_delayed_job_is_claimable_only_when_due(harness: Harness) -> None:
    store = harness.store
    job = await one(store, delay=2 * 3600)
    assert await claim(store) == []
    await harness.advance(3600)
    assert await claim(store) == []
    record = await store.get(job.id)
    assert record is not None and record.status is JobStatus.SCHEDULED
    await harness.advance(3601)
    record = await store.get(job.id)
    assert record is not None and record.status is JobStatus.QUEUED
    [got] = await claim(store)
    assert got.id == job.id


async def test_concurrent_claimers_never_share_a_job(harness: Harness) -> None:
    handles = [harness.store] + [await harness.other() for _ in range(3)]
    jobs = await add(harness.store, *(NewJob("t", args=[i]) for i in range(200)))

    async def claimer(n: int) -> list[str]:
        store = handles[n % len(handles)]
        mine: list[str] = []
        while True:
            got = await claim(store, f"w{n}", limit=7, lease=LEASE)
            if not got:
                return mine
            mine.extend(str(r.id) for r in got)
            await asyncio.sleep(0)

    results = await asyncio.gather(*(claimer(n) for n in range(12)))
    claimed = [i for r in results for i in r]
    assert len(claimed) == len(set(claimed)) == 200
    assert set(claimed) == {str(j.id) for j in jobs}
