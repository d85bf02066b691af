"""A task's function may be any callable: it runs on the loop when calling it makes a
coroutine (a coroutine function, a ``functools.partial`` of one, an object whose
``__call__`` is async — as the scheduler's own jobs do), in a worker thread otherwise."""

from __future__ import annotations

import functools
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from beat import JobContext, Scheduler, Task, task
from beat.stores import JobStatus, MemoryStore, SQLiteStore, Store
from beat.testing import drain

pytestmark = pytest.mark.asyncio


@pytest.fixture(params=["memory", "sqlite"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Store:
    return MemoryStore() if request.param == "memory" else SQLiteStore(tmp_path / "jobs.db")


class Doubler:
    async def __call__(self, ctx: JobContext, x: int) -> int:
        return x * 2


class SyncDoubler:
    def __call__(self, ctx: JobContext, x: int) -> int:
        return x * 2


async def add(ctx: JobContext, a: int, b: int) -> int:
    return a + b


@pytest.mark.parametrize(
    ("fn", "is_async"),
    [
        (Doubler(), True),
        (functools.partial(add, b=21), True),
        (SyncDoubler(), False),
    ],
    ids=["async-call", "partial", "sync-call"],
)
async def test_a_callable_object_runs_as_what_its_call_is(
    store: Store, fn: Callable[..., Any], is_async: bool
) -> None:
    """The job succeeds with the function's value: an async ``__call__`` is awaited, not
    run in a thread that returns an unawaited coroutine (the job then died with "the
    result is not JSON: coroutine")."""
    await store.open()
    scheduler = Scheduler(store=store)
    calc: Task[Any] = scheduler.add_task(task(fn, name="calc", retries=0))
    assert calc.is_async is is_async
    handle = await calc.enqueue(21)
    assert await drain(scheduler) == 1
    assert await handle.result(timeout=0) == 42
    assert (await scheduler.client.get(handle.id)).status is JobStatus.SUCCEEDED
    await store.close()
