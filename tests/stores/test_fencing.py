"""Outcomes are fenced by (worker, attempt): a worker that lost its job cannot write it."""

from __future__ import annotations

from uuid import uuid4

import pytest

from beat.stores import JobStatus, Store

from ._util import claim, claim_one, one
from .conftest import Harness

pytestmark = pytest.mark.asyncio


async def test_late_completion_after_reclaim_is_refused(harness: Harness) -> None:
    store = harness.store
    job = await one(store)
    await claim_one(store, "w1", lease=30)
    await harness.advance(31)
    taken = await claim_one(store, "w2", lease=30)
    assert taken.attempt == 2
    assert await store.complete(job.id, 1, "w1", "late") is False
    assert await store.fail(job.id, 1, "w1", error_type="E", message="late") is False
    assert await store.release(job.id, 1, "w1") is False
    assert await store.mark_cancelled(job.id, 1, "w1") is False
    beat = await store.heartbeat("w1", [(job.id, 1)], 30)
    assert beat.lost == {job.id}
    record = await store.get(job.id)
    assert record is not None
    assert (record.status, record.worker, record.attempt) == (JobStatus.RUNNING, "w2", 2)
    assert await store.complete(job.id, 2, "w2", "on time") is True
    done = await store.get(job.id)
    assert done is not None and done.result == "on time"


async def test_wrong_worker_or_attempt_is_refused(store: Store) -> None:
    job = await one(store)
    await claim_one(store, "w1")
    assert await store.complete(job.id, 1, "w2", None) is False
    assert await store.complete(job.id, 2, "w1", None) is False
    assert await store.complete(job.id, 0, "w1", None) is False
    beat = await store.heartbeat("w2", [(job.id, 1)], 30)
    assert beat.lost == {job.id}
    assert await store.complete(job.id, 1, "w1", None) is True


async def test_outcome_is_written_once(store: Store) -> None:
    job = await one(store)
    await claim_one(store, "w1")
    assert await store.complete(job.id, 1, "w1", 1) is True
    assert await store.complete(job.id, 1, "w1", 2) is False
    assert await store.fail(job.id, 1, "w1", error_type="E", message="m") is False
    assert await store.release(job.id, 1, "w1") is False
    done = await store.get(job.id)
    assert done is not None and done.result == 1 and done.status is JobStatus.SUCCEEDED


async def test_unclaimed_or_unknown_jobs_are_refused(store: Store) -> None:
    job = await one(store)
    assert await store.complete(job.id, 0, "w1", None) is False
    unknown = uuid4()
    assert await store.complete(unknown, 1, "w1", None) is False
    beat = await store.heartbeat("w1", [(job.id, 1), (unknown, 1)], 30)
    assert beat.lost == {job.id, unknown}


async def test_owner_may_still_finish_after_expiry_until_reclaimed(harness: Harness) -> None:
    store = harness.store
    job = await one(store)
    await claim_one(store, "w1", lease=30)
    await harness.advance(31)
    # Nobody took it over yet: the execution is still the current one.
    assert await store.complete(job.id, 1, "w1", "ok") is True


async def test_heartbeat_of_mixed_jobs(store: Store) -> None:
    a = await one(store)
    b = await one(store)
    assert len(await claim(store, "w1")) == 2
    assert await store.complete(b.id, 1, "w1", None)
    beat = await store.heartbeat("w1", [(a.id, 1), (b.id, 1)], 30)
    assert beat.lost == {b.id} and beat.cancel_requested == frozenset()
