"""Small helpers shared by the conformance tests."""

from __future__ import annotations

from datetime import timedelta

from beat.stores import JobRecord, NewJob, Store

HOUR = timedelta(hours=1)
LEASE = 60.0


async def add(store: Store, *jobs: NewJob) -> list[JobRecord]:
    return await store.enqueue(list(jobs))


async def one(store: Store, task: str = "t", **options: object) -> JobRecord:
    [record] = await store.enqueue([NewJob(task, **options)])  # type: ignore[arg-type]
    return record


async def claim(
    store: Store,
    worker: str = "w1",
    *,
    tasks: tuple[str, ...] = ("t",),
    queues: tuple[str, ...] = ("default",),
    limit: int = 10,
    lease: float = LEASE,
) -> list[JobRecord]:
    return await store.claim(worker, queues=queues, tasks=tasks, limit=limit, lease=lease)


async def claim_one(store: Store, worker: str = "w1", **options: object) -> JobRecord:
    claimed = await claim(store, worker, limit=1, **options)  # type: ignore[arg-type]
    assert len(claimed) == 1, claimed
    return claimed[0]
