"""Conformance: meta travels with a job; unique keys (ignore / replace / period / statuses /
derived key), including two processes enqueueing the same keys at once."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

import pytest

from beat import Client, InvalidJobError
from beat.stores import JobStatus, NewJob, PruneRule, SerializationError, Store, Unique

from ._processes import act_in_processes
from ._util import HOUR, claim, claim_one, one, parked
from .conftest import Harness

pytestmark = pytest.mark.asyncio

ALL = frozenset(JobStatus)


# -- meta --------------------------------------------------------------------------------------
async def test_meta_round_trips_through_every_read(store: Store) -> None:
    meta = {"traceparent": "00-abc-def-01", "parent": None, "n": [1, 2.5, {"x": True}]}
    record = await one(store, meta=meta)
    assert record.meta == meta
    assert (await store.get(record.id)).meta == meta  # type: ignore[union-attr]
    assert (await store.list_jobs())[0].meta == meta
    assert (await claim_one(store)).meta == meta
    assert (await one(store)).meta == {}


@pytest.mark.parametrize(
    "meta", [{"x": object()}, {1: "int key"}, {"nan": float("nan")}, ["not", "a", "dict"]]
)
async def test_bad_meta_stores_nothing(store: Store, meta: Any) -> None:
    with pytest.raises(SerializationError, match="meta"):
        await store.enqueue([NewJob("t"), NewJob("t", meta=meta)])
    assert await store.list_jobs() == []


# -- unique ------------------------------------------------------------------------------------
async def test_ignore_returns_the_existing_job_and_stores_nothing(store: Store) -> None:
    first = await one(store, args=[1], unique=Unique(key="k"))
    second = await one(store, args=[2], unique=Unique(key="k"))
    assert not first.conflict and second.conflict
    assert second.id == first.id and second.args == [1] and second.unique_key == "k"
    assert [r.id for r in await store.list_jobs()] == [first.id]
    assert not (await store.get(first.id)).conflict  # type: ignore[union-attr]


async def test_a_later_job_of_the_same_batch_conflicts_with_an_earlier(store: Store) -> None:
    a, b, c = await store.enqueue(
        [NewJob("t", unique=Unique(key="k")), NewJob("t"), NewJob("t", unique=Unique(key="k"))]
    )
    assert c.conflict and c.id == a.id and not b.conflict
    assert len(await store.list_jobs()) == 2


async def test_replace_updates_a_waiting_job(store: Store) -> None:
    first = await one(store, args=[1], meta={"v": 1}, unique=Unique(key="k"))
    later = datetime.now(UTC) + HOUR
    new = NewJob(
        "t",
        args=[2],
        kwargs={"a": 1},
        meta={"v": 2},
        queue="other",
        priority=7,
        max_attempts=9,
        scheduled_at=later,
        unique=Unique(key="k", on_conflict="replace"),
    )
    [replaced] = await store.enqueue([new])
    assert replaced.conflict and replaced.id == first.id
    stored = await store.get(first.id)
    assert stored is not None
    for record in (replaced, stored):
        assert (record.args, record.kwargs, record.meta) == ([2], {"a": 1}, {"v": 2})
        assert (record.queue, record.priority, record.max_attempts) == ("other", 7, 9)
        assert record.scheduled_at == later and record.status is JobStatus.SCHEDULED
    assert len(await store.list_jobs()) == 1


async def test_replace_leaves_a_running_job_alone(store: Store) -> None:
    await one(store, args=[1], unique=Unique(key="k"))
    running = await claim_one(store)
    [got] = await store.enqueue(
        [NewJob("t", args=[2], unique=Unique(key="k", on_conflict="replace"))]
    )
    assert got.conflict and got.id == running.id and got.args == [1]
    assert got.status is JobStatus.RUNNING
    assert (await store.get(running.id)).args == [1]  # type: ignore[union-attr]


async def test_finished_jobs_do_not_conflict_by_default(store: Store) -> None:
    await one(store, unique=Unique(key="k"))
    done = await claim_one(store)
    assert await store.complete(done.id, done.attempt, "w1")
    again = await one(store, unique=Unique(key="k"))
    assert not again.conflict and again.id != done.id
    # ... unless the statuses say so: the newest matching job is returned.
    third = await one(store, unique=Unique(key="k", statuses=ALL))
    assert third.conflict and third.id == again.id
    only_done = await one(store, unique=Unique(key="k", statuses=frozenset({"succeeded"})))  # type: ignore[arg-type]
    assert only_done.conflict and only_done.id == done.id


async def test_scheduled_and_queued_both_mean_waiting(store: Store) -> None:
    due = await one(store, unique=Unique(key="due"))
    later = await one(store, delay=3600, unique=Unique(key="later"))
    scheduled = frozenset({JobStatus.SCHEDULED})
    queued = frozenset({JobStatus.QUEUED})
    assert (await one(store, unique=Unique(key="due", statuses=scheduled))).id == due.id
    assert (await one(store, unique=Unique(key="later", statuses=queued))).id == later.id
    running_only = await one(store, unique=Unique(key="due", statuses=frozenset({"running"})))  # type: ignore[arg-type]
    assert not running_only.conflict


async def test_period_counts_from_creation_on_the_store_clock(harness: Harness) -> None:
    store = harness.store
    first = await one(store, unique=Unique(key="k", period=60))
    await harness.advance(59)
    assert (await one(store, unique=Unique(key="k", period=60))).id == first.id
    await harness.advance(2)
    fresh = await one(store, unique=Unique(key="k", period=60))
    assert not fresh.conflict and fresh.id != first.id
    # Without a period, any age conflicts: the newest matching job is the one returned.
    assert (await one(store, unique=Unique(key="k"))).id == fresh.id


async def test_derived_key_is_task_and_arguments(store: Store) -> None:
    a = await one(store, "t", args=[1, "x"], kwargs={"b": 2, "a": 1}, unique=Unique())
    same = await one(store, "t", args=(1, "x"), kwargs={"a": 1, "b": 2}, unique=Unique())
    other_args = await one(store, "t", args=[2, "x"], kwargs={"a": 1, "b": 2}, unique=Unique())
    other_task = await one(store, "u", args=[1, "x"], kwargs={"a": 1, "b": 2}, unique=Unique())
    assert same.conflict and same.id == a.id
    assert not other_args.conflict and not other_task.conflict
    assert a.unique_key is not None and a.unique_key.startswith("t:")
    assert len({a.unique_key, other_args.unique_key, other_task.unique_key}) == 3
    assert (await one(store)).unique_key is None


@pytest.mark.parametrize(
    ("unique", "match"),
    [
        (Unique(key=""), "key"),
        (Unique(key="a\x00b"), "key"),
        (Unique(period=-1), "period"),
        (Unique(period=float("nan")), "period"),
        (Unique(statuses=frozenset()), "statuses"),
        (Unique(statuses=frozenset({"bogus"})), "bogus"),  # type: ignore[arg-type]
        (Unique(statuses=frozenset({None})), "None is not a JobStatus"),  # type: ignore[arg-type]
        (Unique(statuses=[None]), "None is not a JobStatus"),  # type: ignore[arg-type]
        (Unique(on_conflict="merge"), "merge"),  # type: ignore[arg-type]
        ("k", "Unique"),
    ],
)
async def test_bad_unique_stores_nothing(store: Store, unique: Any, match: str) -> None:
    with pytest.raises(InvalidJobError, match=match):
        await store.enqueue([NewJob("t"), NewJob("t", unique=unique)])
    assert await store.list_jobs() == []


async def test_two_processes_enqueue_each_key_once(harness: Harness) -> None:
    if harness.kind == "memory":
        pytest.skip("a memory store lives in one process")
    store: Any = harness.store
    sqlite = harness.kind == "sqlite"
    target, schema = (str(store.path), "") if sqlite else (store.dsn, store.schema)
    results = await asyncio.to_thread(act_in_processes, harness.kind, target, schema, "unique", 2)
    jobs = await store.list_jobs(limit=1000)
    assert sorted(r.unique_key for r in jobs) == sorted(f"k{i}" for i in range(30))
    ids = {r.unique_key: str(r.id) for r in jobs}
    for seen in results:  # each process got the one stored job for every key
        assert {key: id for key, id, _ in seen} == ids
    conflicts = [conflict for seen in results for _, _, conflict in seen]
    assert conflicts.count(False) == 30 and conflicts.count(True) == 30


async def test_a_replace_that_makes_a_job_due_wakes_a_waiting_worker(harness: Harness) -> None:
    store = harness.store
    later = await one(store, delay=3600, unique=Unique(key="k"))
    async with parked(store):  # nothing is claimable for an hour
        waiter = asyncio.create_task(store.wait_for_jobs(60))
    assert not waiter.done()
    now = NewJob("t", unique=Unique(key="k", on_conflict="replace"))
    [replaced] = await (await harness.other()).enqueue([now])
    assert replaced.id == later.id and replaced.status is JobStatus.QUEUED
    await asyncio.wait_for(waiter, 5)
    assert [r.id for r in await claim(store)] == [later.id]


async def test_a_pruned_job_no_longer_conflicts(store: Store) -> None:
    await one(store, unique=Unique(key="k"))
    done = await claim_one(store)
    assert await store.complete(done.id, done.attempt, "w1")
    assert (await one(store, unique=Unique(key="k", statuses=ALL))).id == done.id
    assert await store.prune([PruneRule(JobStatus.SUCCEEDED, max_count=0)]) == 1
    fresh = await one(store, unique=Unique(key="k", statuses=ALL))
    assert not fresh.conflict and fresh.id != done.id


async def test_concurrent_enqueues_of_one_key_through_two_handles_store_one(
    harness: Harness,
) -> None:
    handles = [harness.store, await harness.other()]
    calls = [
        handles[n % 2].enqueue([NewJob("t", args=[n], unique=Unique(key="k"))]) for n in range(12)
    ]
    results = [record for batch in await asyncio.gather(*calls) for record in batch]
    [stored] = await harness.store.list_jobs()
    assert {r.id for r in results} == {stored.id}
    assert sum(not r.conflict for r in results) == 1


# -- keys are global: another task's job ---------------------------------------------------------
REPLACE = Unique(key="nightly", on_conflict="replace")


async def test_ignore_across_tasks_returns_the_other_tasks_job(store: Store) -> None:
    """An explicit key shared by two tasks: the second enqueue is a plain conflict, and the
    record (and a client's handle) describes the job that holds the key, of the first task."""
    reports = await one(store, "reports.build", args=[2024], unique=Unique(key="nightly"))
    [found] = await store.enqueue([NewJob("emails.send", args=["x"], unique=Unique(key="nightly"))])
    assert found.conflict and found.id == reports.id
    assert (found.task, found.args) == ("reports.build", [2024])
    client = Client(store)
    handle = await client.enqueue_by_name("emails.send", ["y"], unique=Unique(key="nightly"))
    assert handle.conflict and handle.id == reports.id and handle.task == "reports.build"
    [only] = await store.list_jobs()
    assert (only.task, only.args) == ("reports.build", [2024])


async def test_replace_across_tasks_is_refused_and_changes_nothing(store: Store) -> None:
    reports = await one(store, "reports.build", args=[2024], unique=Unique(key="nightly"))
    with pytest.raises(
        InvalidJobError, match=r"'nightly' is held by a job of task 'reports.build'.*'emails.send'"
    ):
        await store.enqueue(
            [NewJob("other"), NewJob("emails.send", args=["x"], delay=60, unique=REPLACE)]
        )
    [only] = await store.list_jobs()  # the batch's first job was not stored either
    assert only.id == reports.id
    assert (only.task, only.args, only.status) == ("reports.build", [2024], JobStatus.QUEUED)
    with pytest.raises(InvalidJobError, match="cannot replace"):
        await Client(store).enqueue_by_name("emails.send", ["y"], unique=REPLACE)
    assert [r.args for r in await store.list_jobs()] == [[2024]]
    # The same task still replaces its own job.
    [mine] = await store.enqueue([NewJob("reports.build", args=[2025], unique=REPLACE)])
    assert mine.conflict and mine.id == reports.id and mine.args == [2025]


async def test_replace_across_tasks_within_one_batch_is_refused(store: Store) -> None:
    with pytest.raises(InvalidJobError, match="cannot replace"):
        await store.enqueue(
            [
                NewJob("reports.build", args=[1], unique=Unique(key="nightly")),
                NewJob("emails.send", args=[2], unique=REPLACE),
            ]
        )
    assert await store.list_jobs() == []


async def test_replace_across_tasks_is_refused_whatever_the_other_job_does(store: Store) -> None:
    """Refused for a running job too (where a same-task replace would leave it alone): the
    outcome of an enqueue does not depend on when a worker picked the other job up."""
    await one(store, "reports.build", unique=Unique(key="nightly"))
    [running] = await claim(store, tasks=("reports.build",))
    with pytest.raises(InvalidJobError, match="cannot replace"):
        await store.enqueue([NewJob("emails.send", unique=REPLACE)])
    assert [r.status for r in await store.list_jobs()] == [JobStatus.RUNNING]
    assert (await store.get(running.id)).args == []  # type: ignore[union-attr]
