"""list_jobs: filters, derived statuses, stable paging in insertion order."""

from __future__ import annotations

from uuid import uuid4

import pytest

from beat import InvalidJobError
from beat.stores import JobNotFoundError, JobStatus, NewJob, Store

from ._util import claim, one
from .conftest import Harness

pytestmark = pytest.mark.asyncio


async def test_paging_forward_is_stable(store: Store) -> None:
    jobs = await store.enqueue([NewJob("t", args=[i]) for i in range(25)])
    seen = []
    cursor = None
    while True:
        page = await store.list_jobs(limit=10, after=cursor)
        if not page:
            break
        seen.extend(page)
        cursor = page[-1].id
        # Jobs added while paging land at the end, never inside pages already read.
        if len(seen) == 10:
            await store.enqueue([NewJob("t", args=["late"])])
    assert [r.args[0] for r in seen] == [*range(25), "late"]
    assert [r.id for r in seen[:25]] == [j.id for j in jobs]


async def test_paging_backward(store: Store) -> None:
    jobs = await store.enqueue([NewJob("t", args=[i]) for i in range(12)])
    page = await store.list_jobs(limit=5, before=jobs[10].id)
    assert [r.args[0] for r in page] == [5, 6, 7, 8, 9]
    page = await store.list_jobs(limit=5, before=page[0].id)
    assert [r.args[0] for r in page] == [0, 1, 2, 3, 4]
    assert await store.list_jobs(limit=5, before=jobs[0].id) == []
    both = await store.list_jobs(limit=5, after=jobs[2].id, before=jobs[5].id)
    assert [r.args[0] for r in both] == [3, 4]


async def test_filters(harness: Harness) -> None:
    store = harness.store
    a, b, c, d, e = await store.enqueue(
        [
            NewJob("a"),
            NewJob("b", queue="q2"),
            NewJob("a", delay=3600),
            NewJob("t"),
            NewJob("t"),
        ]
    )
    [running] = await claim(store, tasks=("t",), limit=1)
    assert running.id == d.id
    await store.cancel(e.id)

    async def ids(**filters: object) -> list[object]:
        return [r.id for r in await store.list_jobs(**filters)]  # type: ignore[arg-type]

    assert await ids() == [a.id, b.id, c.id, d.id, e.id]
    assert await ids(task="a") == [a.id, c.id]
    assert await ids(queue="q2") == [b.id]
    assert await ids(status="queued") == [a.id, b.id]
    assert await ids(status=JobStatus.SCHEDULED) == [c.id]
    assert await ids(status="running") == [d.id]
    assert await ids(status="cancelled") == [e.id]
    assert await ids(status="succeeded") == []
    assert await ids(status="queued", task="b", queue="q2") == [b.id]
    assert await ids(limit=2) == [a.id, b.id]
    await harness.advance(3601)
    assert await ids(status="queued") == [a.id, b.id, c.id]
    assert await ids(status="scheduled") == []


async def test_bad_arguments(store: Store) -> None:
    await one(store)
    with pytest.raises(JobNotFoundError):
        await store.list_jobs(after=uuid4())
    with pytest.raises(InvalidJobError):
        await store.list_jobs(status="nope")
    with pytest.raises(InvalidJobError):
        await store.list_jobs(limit=0)
