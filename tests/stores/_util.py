"""Small helpers shared by the conformance tests."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from datetime import timedelta

from beat.stores import Claimed, JobRecord, NewJob, Store

HOUR = timedelta(hours=1)
LEASE = 60.0
PARK_LIMIT = 10.0  # a wait that has not parked by then is broken


@contextlib.asynccontextmanager
async def parked(store: Store, count: int = 1) -> AsyncIterator[None]:
    """Start waits in the body; leave once ``count`` waits of ``store`` have parked since it
    began (looked, now asleep), so a change made after the block reaches them only through a
    wake-up. Replaces sleeping "long enough" for the waiter to get there."""
    since = store.waits.total
    yield
    await parks_after(store, since, count)


async def parks_after(store: Store, since: int, count: int = 1) -> None:
    """Until ``count`` waits of ``store`` have parked since its ``waits.total`` was
    ``since``."""
    async with asyncio.timeout(PARK_LIMIT):
        await store.waits.until_parked(since, count)


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
) -> Claimed:
    return await store.claim(worker, queues=queues, tasks=tasks, limit=limit, lease=lease)


async def claim_one(store: Store, worker: str = "w1", **options: object) -> JobRecord:
    claimed = await claim(store, worker, limit=1, **options)  # type: ignore[arg-type]
    assert len(claimed) == 1, claimed
    return claimed[0]
