"""Child jobs: ``ctx.enqueue`` from inside a run and ``ctx.wait`` for the child, on every store.

The rule under test (docs/worker.md, "Child jobs"): a parent awaiting a child holds its
worker slot. With a free slot (concurrency >= 2) the child runs beside the waiting parent;
with none (concurrency 1) the wait can only time out — so a parent there enqueues its
children plus a follow-up job and returns, and nothing ever waits for a slot it holds.
"""

from __future__ import annotations

from typing import Any

import pytest

from beat import JobFailedError
from beat._client import Client
from beat._worker import JobContext, Worker
from beat.stores import JobStatus, Store

from .test_worker import enqueue, make_task, registry, start, workers

__all__ = ["workers"]  # the fixture, imported for the tests below

pytestmark = pytest.mark.asyncio


async def test_a_parent_spawns_children_and_awaits_them_with_a_free_slot(
    store: Store, workers: list[Worker]
) -> None:
    async def square(ctx: JobContext, n: int) -> int:
        if n < 0:
            raise ValueError(f"negative: {n}")
        return n * n

    square_task = make_task(square, "square", retries=0)

    async def parent(ctx: JobContext, numbers: list[int]) -> dict[str, Any]:
        handles = [await ctx.enqueue(square_task, n) for n in numbers]
        results = []
        for handle in handles:
            try:
                results.append(await ctx.wait(handle, timeout=10))
            except JobFailedError as exc:
                results.append(exc.error_message)
        return {"results": results, "children": [str(h.id) for h in handles]}

    job = await enqueue(store, "parent", [1, 2, -3])
    tasks = registry(square_task, make_task(parent, "parent"))
    await start(workers, store, tasks, concurrency=2)
    client = Client(store)
    done = await client.result(job.id, timeout=20)
    assert done["results"] == [1, 4, "negative: -3"]
    for child_id in done["children"]:
        child = await client.get(child_id)
        assert child.meta["parent"] == str(job.id)
        assert child.task == "square"


async def test_at_concurrency_one_a_waiting_parent_can_only_time_out(
    store: Store, workers: list[Worker]
) -> None:
    """Breaking the rule: the only slot is held by the waiter, so the child cannot run
    until the wait gives up; the wait is bounded, so nothing hangs."""

    async def child(ctx: JobContext) -> str:
        return "late"

    async def impatient(ctx: JobContext) -> str:
        handle = await ctx.enqueue("child")
        try:
            return str(await ctx.wait(handle.id, timeout=0.3))
        except TimeoutError:
            return f"gave up on {handle.id}"

    job = await enqueue(store, "impatient")
    tasks = registry(make_task(child, "child"), make_task(impatient, "impatient"))
    await start(workers, store, tasks, concurrency=1)
    client = Client(store)
    answer = await client.result(job.id, timeout=10)
    assert answer.startswith("gave up on ")
    child_id = answer.removeprefix("gave up on ")
    assert await client.result(child_id, timeout=10) == "late"  # ran once the slot was free


async def test_at_concurrency_one_following_the_rule_never_waits_on_a_held_slot(
    store: Store, workers: list[Worker]
) -> None:
    """The rule: enqueue the children and a follow-up job, and return. The follow-up runs
    after the children (enqueued after them) and waits briefly: a child's function has
    returned, though its outcome may still be being written."""

    async def part(ctx: JobContext, n: int) -> int:
        return n * 10

    async def collect(ctx: JobContext, ids: list[str]) -> int:
        return sum([await ctx.wait(id, timeout=5) for id in ids])

    async def split(ctx: JobContext, n: int) -> list[str]:
        ids = [str((await ctx.enqueue("part", i)).id) for i in range(n)]
        await ctx.enqueue("collect", ids)
        return ids

    job = await enqueue(store, "split", 4)
    tasks = registry(
        make_task(part, "part"), make_task(collect, "collect"), make_task(split, "split")
    )
    await start(workers, store, tasks, concurrency=1)
    client = Client(store)
    await client.result(job.id, timeout=10)
    [follow_up] = await client.list(task="collect")
    done = await store.wait_finished(follow_up.id, 10)
    assert (done.status, done.result, done.attempt) == (JobStatus.SUCCEEDED, 60, 1)
    assert follow_up.meta["parent"] == str(job.id)
