"""Unique jobs through the task API, on every store: ``@task(unique=...)``,
``task.options(unique=...)``, ``enqueue_by_name(..., unique=...)`` and ``handle.conflict``.

The store's own enforcement (races, periods, statuses) is pinned by the conformance suite;
here the point is that the options reach it and the handle reports the answer.
"""

from __future__ import annotations

from typing import Any

import pytest

from beat import InvalidJobError, JobHandle, task
from beat._client import Client
from beat.stores import JobStatus, Store, Unique

from ._util import claim_one

pytestmark = pytest.mark.asyncio


@task(name="t", unique=Unique(key="nightly-report"))
async def report(ctx: Any, day: str) -> None:
    pass


@task(name="t")
async def sync_account(ctx: Any, account: int, full: bool = False) -> None:
    pass


async def test_a_task_declared_unique_stores_one_job_per_key(store: Store) -> None:
    client = Client(store)
    first = await client.enqueue(report, "2026-03-01")
    second = await client.enqueue(report, "2026-03-02")
    assert isinstance(second, JobHandle)
    assert (first.conflict, second.conflict) == (False, True)
    assert second.id == first.id
    [stored] = await client.list()
    assert (stored.args, stored.unique_key) == (["2026-03-01"], "nightly-report")


async def test_options_unique_with_a_derived_key_compares_the_arguments(store: Store) -> None:
    client = Client(store)
    once = sync_account.options(unique=Unique())
    a = await client.enqueue(once, 7, full=True)
    again = await client.enqueue(once, 7, full=True)
    other = await client.enqueue(once, 8, full=True)
    assert (a.conflict, again.conflict, other.conflict) == (False, True, False)
    assert again.id == a.id and other.id != a.id
    assert len(await client.list()) == 2


async def test_replace_updates_the_waiting_job(store: Store) -> None:
    client = Client(store)
    latest = sync_account.options(unique=Unique(key="acct-7", on_conflict="replace"))
    first = await client.enqueue(latest, 7)
    second = await client.enqueue(latest, 7, full=True)
    assert second.conflict and second.id == first.id
    record = await client.get(first.id)
    assert (record.args, record.kwargs) == ([7], {"full": True})


async def test_a_finished_job_no_longer_conflicts_by_default(store: Store) -> None:
    client = Client(store)
    first = await client.enqueue(report, "2026-03-01")
    claimed = await claim_one(store)
    assert await store.complete(claimed.id, claimed.attempt, "w1", None)
    later = await client.enqueue(report, "2026-03-02")
    assert not later.conflict and later.id != first.id
    statuses = sorted(r.status.value for r in await client.list())
    assert statuses == [JobStatus.QUEUED.value, JobStatus.SUCCEEDED.value]


async def test_by_name_with_unique(store: Store) -> None:
    client = Client(store)
    one = await client.enqueue_by_name("t", [1], unique=Unique(key="k"))
    two = await client.enqueue_by_name("t", [2], unique=Unique(key="k"))
    assert two.conflict and two.id == one.id


async def test_a_bad_unique_is_refused_at_the_call_and_stores_nothing(store: Store) -> None:
    client = Client(store)
    with pytest.raises(InvalidJobError, match=r"unique must be a beat\.stores\.Unique"):
        await client.enqueue(sync_account.options(unique="k"), 1)  # type: ignore[arg-type]
    with pytest.raises(InvalidJobError, match="unique"):
        task(name="x", unique={"key": "k"})(sync_account.fn)  # type: ignore[arg-type]
    assert await client.list() == []


async def test_scheduler_task_takes_unique_like_beat_task(store: Store) -> None:
    from beat import Scheduler

    scheduler = Scheduler(store=store)

    @scheduler.task(name="sync", unique=Unique(key="account-7"))
    async def sync(ctx: Any, account: int) -> None:
        pass

    assert sync.policy.unique == Unique(key="account-7")
    first = await sync.enqueue(7)
    second = await sync.enqueue(8)  # same key: the stored job is returned
    assert (first.conflict, second.conflict) == (False, True)
    assert second.id == first.id
    assert len(await store.list_jobs(task="sync")) == 1
