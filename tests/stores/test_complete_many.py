"""Store.complete_many: a batch of completions, each fenced like ``complete``, written at once.

Every test runs against the backend's own implementation and against the interface's default
(``Store.complete_many``, one ``complete`` per item), which third-party stores inherit.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from uuid import UUID, uuid4

import pytest

from beat.stores import BatchSerializationError, JobStatus, NewJob, SerializationError, Store

from ._util import add, claim, claim_one, one, parked
from .conftest import Harness

pytestmark = pytest.mark.asyncio

PROMPT = 2.0  # well under the 5 s fallback poll of PostgreSQL

Items = Sequence[tuple[UUID, int, str, object]]
CompleteMany = Callable[[Store, Items], Awaitable[list[bool]]]


async def _native(store: Store, items: Items) -> list[bool]:
    return await store.complete_many(items)


async def _default(store: Store, items: Items) -> list[bool]:
    return await Store.complete_many(store, items)


@pytest.fixture(params=["native", "default"])
def complete_many(request: pytest.FixtureRequest) -> CompleteMany:
    return _native if request.param == "native" else _default


async def _jobs(store: Store, count: int) -> list[UUID]:
    records = await add(store, *(NewJob("t") for _ in range(count)))
    claimed = await claim(store, "w1", limit=count)
    assert len(claimed) == count
    return [r.id for r in records]


async def test_batch_completes_all(store: Store, complete_many: CompleteMany) -> None:
    ids = await _jobs(store, 3)
    results = [{"n": i} for i in range(3)]
    items = [(id, 1, "w1", result) for id, result in zip(ids, results, strict=True)]
    assert await complete_many(store, items) == [True, True, True]
    for id, result in zip(ids, results, strict=True):
        record = await store.get(id)
        assert record is not None
        assert record.status is JobStatus.SUCCEEDED and record.result == result
        assert record.finished_at is not None and record.lease_expires_at is None


async def test_empty_batch(store: Store, complete_many: CompleteMany) -> None:
    assert await complete_many(store, []) == []


async def test_stale_items_are_refused_others_recorded(
    harness: Harness, complete_many: CompleteMany
) -> None:
    store = harness.store
    a, b, c = await _jobs(store, 3)
    # b is taken over by w2 (attempt 2) after its lease expired; w1's attempt 1 is stale.
    await harness.advance(61)
    await store.heartbeat("w1", [(a, 1), (c, 1)], 60)
    taken = await claim_one(store, "w2")
    assert (taken.id, taken.attempt) == (b, 2)
    unknown = uuid4()
    items = [
        (a, 1, "w1", "a"),
        (b, 1, "w1", "late"),
        (c, 2, "w1", "wrong attempt"),
        (unknown, 1, "w1", None),
        (c, 1, "w9", "wrong worker"),
    ]
    assert await complete_many(store, items) == [True, False, False, False, False]
    done_a, running_b, running_c = [await store.get(id) for id in (a, b, c)]
    assert done_a is not None and done_a.status is JobStatus.SUCCEEDED and done_a.result == "a"
    assert running_b is not None and running_b.status is JobStatus.RUNNING
    assert (running_b.worker, running_b.attempt, running_b.result) == ("w2", 2, None)
    assert running_c is not None and running_c.status is JobStatus.RUNNING
    # The same items again: now all refused (written once).
    assert await complete_many(store, [(a, 1, "w1", "again")]) == [False]
    again = await store.get(a)
    assert again is not None and again.result == "a"


async def test_one_execution_twice_in_a_batch_is_written_once(
    store: Store, complete_many: CompleteMany
) -> None:
    [a] = await _jobs(store, 1)
    items = [(a, 1, "w1", "first"), (a, 1, "w1", "second")]
    assert await complete_many(store, items) == [True, False]
    record = await store.get(a)
    assert record is not None and record.result == "first"


async def test_a_stale_and_the_current_attempt_in_one_batch(
    harness: Harness, complete_many: CompleteMany
) -> None:
    store = harness.store
    [a] = await _jobs(store, 1)
    await harness.advance(61)  # w1's lease on attempt 1 expires; w1 itself claims attempt 2
    assert (await claim_one(store, "w1")).attempt == 2
    items = [(a, 1, "w1", "stale"), (a, 2, "w1", "current")]
    assert await complete_many(store, items) == [False, True]
    record = await store.get(a)
    assert record is not None and (record.attempt, record.result) == (2, "current")


async def test_non_json_result_fails_only_its_item(
    store: Store, complete_many: CompleteMany
) -> None:
    a, b, c = await _jobs(store, 3)
    with pytest.raises(BatchSerializationError) as caught:
        await complete_many(store, [(a, 1, "w1", 1), (b, 1, "w1", object()), (c, 1, "w1", 3)])
    error = caught.value
    assert isinstance(error, SerializationError)
    assert error.recorded == [True, False, True]
    assert set(error.errors) == {1}
    assert isinstance(error.errors[1], SerializationError)
    done_a, bad_b, done_c = [await store.get(id) for id in (a, b, c)]
    assert done_a is not None and done_a.status is JobStatus.SUCCEEDED and done_a.result == 1
    assert done_c is not None and done_c.status is JobStatus.SUCCEEDED and done_c.result == 3
    # b was left untouched: still running, its worker can still record its failure.
    assert bad_b is not None and bad_b.status is JobStatus.RUNNING and bad_b.result is None
    assert await store.fail(b, 1, "w1", error_type="beat.SerializationError", message="m")


async def test_waiters_are_woken_across_handles(
    harness: Harness, complete_many: CompleteMany
) -> None:
    store, other = harness.store, await harness.other()
    first, second = await one(store), await one(store)
    async with parked(store, 2):
        waiters = [asyncio.create_task(store.wait_finished(j.id, 30)) for j in (first, second)]
        claimed = await claim(other, "w9")
    assert {r.id for r in claimed} == {first.id, second.id}
    assert not any(w.done() for w in waiters)
    items = [(r.id, r.attempt, "w9", {"id": str(r.id)}) for r in claimed]
    assert await complete_many(other, items) == [True, True]
    for waiter, job in zip(waiters, (first, second), strict=True):
        done = await asyncio.wait_for(waiter, PROMPT)
        assert done.status is JobStatus.SUCCEEDED and done.result == {"id": str(job.id)}


async def test_a_batch_of_hundreds_is_fenced_item_by_item(
    store: Store, complete_many: CompleteMany
) -> None:
    """250 runs (PostgreSQL writes them in several statements, one transaction): a
    heartbeat of all of them keeps the current ones and reports the stale ones lost, and
    a batch completion refuses exactly the stale items, wherever they sit in the batch."""
    jobs = await add(store, *(NewJob("t", args=[i]) for i in range(250)))
    claimed = await claim(store, "w1", limit=250)
    assert len(claimed) == 250
    stale = {5, 120, 249}
    listed = [(r.id, r.attempt + (i in stale)) for i, r in enumerate(claimed)]
    beat = await store.heartbeat("w1", listed, 60)
    assert beat.lost == {claimed[i].id for i in stale} and not beat.cancel_requested
    items = [(r.id, r.attempt, "w9" if i in stale else "w1", i) for i, r in enumerate(claimed)]
    done = await complete_many(store, items)
    assert [i for i, ok in enumerate(done) if not ok] == sorted(stale)
    by_id = {r.id: r for r in await store.list_jobs(limit=1000)}
    assert len(by_id) == len(jobs)
    for i, r in enumerate(claimed):
        record = by_id[r.id]
        assert record.status is (JobStatus.RUNNING if i in stale else JobStatus.SUCCEEDED)
        assert record.result == (None if i in stale else i)
