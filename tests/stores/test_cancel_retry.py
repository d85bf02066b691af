"""cancel (waiting, running, finished) and retry (dead, cancelled, others refused)."""

from __future__ import annotations

from datetime import timedelta
from uuid import uuid4

import pytest

from beat.stores import InvalidJobStateError, JobNotFoundError, JobStatus, NewJob, Store

from ._util import HOUR, claim, claim_one, one
from .conftest import Harness

pytestmark = pytest.mark.asyncio


async def test_cancel_queued_and_scheduled(store: Store) -> None:
    queued = await one(store)
    later = await one(store, delay=3600)
    for job in (queued, later):
        cancelled = await store.cancel(job.id)
        assert cancelled.status is JobStatus.CANCELLED and cancelled.finished_at is not None
        assert cancelled.cancel_requested is False
    assert await claim(store) == []


async def test_cancel_running_is_a_request_seen_by_heartbeat(store: Store) -> None:
    job = await one(store)
    other = await one(store)
    await claim(store, "w1")
    requested = await store.cancel(job.id)
    assert requested.status is JobStatus.RUNNING and requested.cancel_requested is True
    beat = await store.heartbeat("w1", [(job.id, 1), (other.id, 1)], 60)
    assert beat.cancel_requested == {job.id} and beat.lost == frozenset()
    assert await store.mark_cancelled(job.id, 1, "w1") is True
    done = await store.get(job.id)
    assert done is not None
    assert done.status is JobStatus.CANCELLED and done.finished_at is not None
    assert await store.mark_cancelled(job.id, 1, "w1") is False


async def test_failure_after_cancel_request_does_not_retry(store: Store) -> None:
    job = await one(store)
    await claim_one(store)
    await store.cancel(job.id)
    retry_at = await store.now() - HOUR
    assert await store.fail(
        job.id, 1, "w1", error_type="CancelledError", message="", retry_at=retry_at
    )
    done = await store.get(job.id)
    assert done is not None and done.status is JobStatus.CANCELLED


async def test_completion_wins_over_a_late_cancel_request(store: Store) -> None:
    job = await one(store)
    await claim_one(store)
    await store.cancel(job.id)
    assert await store.complete(job.id, 1, "w1", "done anyway")
    done = await store.get(job.id)
    assert done is not None and done.status is JobStatus.SUCCEEDED


async def test_release_after_cancel_request_cancels(store: Store) -> None:
    job = await one(store)
    await claim_one(store)
    await store.cancel(job.id)
    assert await store.release(job.id, 1, "w1")
    done = await store.get(job.id)
    assert done is not None and done.status is JobStatus.CANCELLED


async def test_expired_lease_with_cancel_request_is_cancelled(harness: Harness) -> None:
    store = harness.store
    job = await one(store)
    await claim_one(store, "w1", lease=30)
    await store.cancel(job.id)
    await harness.advance(31)
    assert await claim(store, "w2") == []
    done = await store.get(job.id)
    assert done is not None and done.status is JobStatus.CANCELLED


async def test_cancel_finished_is_a_no_op(store: Store) -> None:
    job = await one(store)
    await claim_one(store)
    await store.complete(job.id, 1, "w1", 7)
    before = await store.get(job.id)
    assert await store.cancel(job.id) == before
    cancelled = await one(store)
    first = await store.cancel(cancelled.id)
    assert await store.cancel(cancelled.id) == first


async def test_cancel_and_retry_unknown(store: Store) -> None:
    with pytest.raises(JobNotFoundError):
        await store.cancel(uuid4())
    with pytest.raises(JobNotFoundError):
        await store.retry(uuid4())
    assert issubclass(JobNotFoundError, LookupError)


async def test_retry_dead(store: Store) -> None:
    job = await one(store, max_attempts=2, priority=3)
    for attempt in (1, 2):
        await claim_one(store)
        past = await store.now() - timedelta(seconds=1)
        await store.fail(job.id, attempt, "w1", error_type="E", message="m", retry_at=past)
    dead = await store.get(job.id)
    assert dead is not None and dead.status is JobStatus.DEAD
    now = await store.now()
    again = await store.retry(job.id)
    assert again.status is JobStatus.QUEUED
    assert again.scheduled_at >= now and again.finished_at is None and again.worker is None
    assert again.max_attempts == 3 and again.attempt == 2
    assert again.error_message == "m"  # the last error is kept until the next outcome
    got = await claim_one(store, "w2")
    assert (got.id, got.attempt) == (job.id, 3)
    assert await store.complete(job.id, 3, "w2", "third time")


async def test_retry_cancelled(store: Store) -> None:
    job = await one(store)
    await store.cancel(job.id)
    again = await store.retry(job.id)
    assert again.status is JobStatus.QUEUED and again.max_attempts == 5
    assert (await claim_one(store)).attempt == 1


async def test_a_retried_job_is_claimable_after_claims_passed_it_finished(store: Store) -> None:
    """Claims made while it was cancelled find nothing; once retried, the next claim takes
    it (a store may skip finished jobs when claiming, never a retried one)."""
    job = await one(store)
    await store.cancel(job.id)
    assert await claim(store, "w1") == []
    assert await claim(store, "w1") == []
    await store.retry(job.id)
    assert (await claim_one(store, "w2")).id == job.id


async def test_retry_of_other_states_is_refused(store: Store) -> None:
    running, done = await store.enqueue([NewJob("t"), NewJob("t")])
    await claim(store, limit=2)
    queued, scheduled = await store.enqueue([NewJob("t"), NewJob("t", delay=3600)])
    await store.complete(done.id, 1, "w1", None)
    for job, status in (
        (queued, JobStatus.QUEUED),
        (scheduled, JobStatus.SCHEDULED),
        (running, JobStatus.RUNNING),
        (done, JobStatus.SUCCEEDED),
    ):
        with pytest.raises(InvalidJobStateError) as info:
            await store.retry(job.id)
        assert info.value.status == status
