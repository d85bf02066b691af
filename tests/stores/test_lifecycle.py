"""complete / fail / retry-until-dead / heartbeats / lease expiry / release."""

from __future__ import annotations

from datetime import timedelta

import pytest

from beat.stores import Claimed, JobStatus, NewJob, SerializationError, Store

from ._util import HOUR, LEASE, claim, claim_one, one
from .conftest import Harness

pytestmark = pytest.mark.asyncio


async def test_complete(store: Store) -> None:
    job = await one(store)
    got = await claim_one(store)
    assert await store.complete(job.id, got.attempt, "w1", {"sum": [1, 2]}) is True
    done = await store.get(job.id)
    assert done is not None
    assert done.status is JobStatus.SUCCEEDED and done.status.finished
    assert done.result == {"sum": [1, 2]}
    assert done.finished_at is not None and done.lease_expires_at is None
    assert (done.worker, done.attempt) == ("w1", 1)
    assert await claim(store) == []


async def test_non_json_result_is_refused_and_job_stays_running(store: Store) -> None:
    job = await one(store)
    got = await claim_one(store)
    with pytest.raises(SerializationError):
        await store.complete(job.id, got.attempt, "w1", object())
    still = await store.get(job.id)
    assert still is not None and still.status is JobStatus.RUNNING
    assert await store.complete(job.id, got.attempt, "w1", None) is True


async def test_fail_with_retry_goes_back_to_scheduled(harness: Harness) -> None:
    store = harness.store
    job = await one(store, max_attempts=3)
    got = await claim_one(store)
    retry_at = await store.now() + HOUR
    ok = await store.fail(
        job.id, 1, "w1", error_type="ValueError", message="boom", traceback="Traceback...",
        retry_at=retry_at,
    )  # fmt: skip
    assert ok is True
    back = await store.get(job.id)
    assert back is not None
    assert back.status is JobStatus.SCHEDULED
    assert back.scheduled_at == retry_at
    assert (back.error_type, back.error_message, back.error_traceback) == (
        "ValueError",
        "boom",
        "Traceback...",
    )
    assert back.worker is None and back.lease_expires_at is None and back.finished_at is None
    assert back.attempt == got.attempt == 1
    assert await claim(store) == []
    await harness.advance(3601)
    again = await claim_one(store, "w2")
    assert (again.id, again.attempt, again.worker) == (job.id, 2, "w2")


async def test_retry_until_dead(store: Store) -> None:
    job = await one(store, max_attempts=3)
    for attempt in (1, 2, 3):
        got = await claim_one(store)
        assert got.attempt == attempt
        past = await store.now() - timedelta(seconds=1)
        assert await store.fail(
            job.id, attempt, "w1", error_type="E", message=f"#{attempt}", retry_at=past
        )
    dead = await store.get(job.id)
    assert dead is not None
    assert dead.status is JobStatus.DEAD and dead.finished_at is not None
    assert (dead.attempt, dead.error_message) == (3, "#3")
    assert await claim(store) == []


async def test_fail_without_retry_is_dead_at_once(store: Store) -> None:
    job = await one(store, max_attempts=10)
    await claim_one(store)
    assert await store.fail(job.id, 1, "w1", error_type="E", message="no retry")
    dead = await store.get(job.id)
    assert dead is not None and dead.status is JobStatus.DEAD and dead.attempt == 1


async def test_heartbeat_keeps_the_lease(harness: Harness) -> None:
    store = harness.store
    a, b = await store.enqueue([NewJob("t"), NewJob("t")])
    await claim(store, "w1", lease=60)
    await harness.advance(40)
    beat = await store.heartbeat("w1", [(a.id, 1), (b.id, 1)], 60)
    assert beat.lost == frozenset() and beat.cancel_requested == frozenset()
    renewed = await store.get(a.id)
    assert renewed is not None and renewed.lease_expires_at is not None
    assert renewed.lease_expires_at - await store.now() > timedelta(seconds=50)
    await harness.advance(40)  # 80 s after the claim, 40 after the heartbeat
    assert await claim(store, "w2") == []
    await harness.advance(21)
    taken = await claim(store, "w2")
    assert {r.id for r in taken} == {a.id, b.id}
    assert {r.attempt for r in taken} == {2}


async def test_expired_lease_is_reclaimed_with_next_attempt(harness: Harness) -> None:
    store = harness.store
    job = await one(store)
    first = await claim_one(store, "w1", lease=30)
    await harness.advance(10)
    assert await claim(store, "w2") == []
    await harness.advance(25)
    second = await claim_one(store, "w2", lease=30)
    assert (second.id, second.attempt, second.worker) == (job.id, first.attempt + 1, "w2")
    assert second.started_at is not None and first.started_at is not None
    assert second.started_at > first.started_at


async def test_expired_lease_on_last_attempt_is_dead(harness: Harness) -> None:
    store = harness.store
    job = await one(store, max_attempts=2)
    await claim_one(store, "w1", lease=30)
    await harness.advance(31)
    await claim_one(store, "w2", lease=30)
    await harness.advance(31)
    claimed = await claim(store, "w3")
    assert claimed == []
    dead = await store.get(job.id)
    assert dead is not None
    assert dead.status is JobStatus.DEAD and dead.attempt == 2
    assert dead.error_type == "beat.LeaseExpired"
    # The claim that ended it says so: nobody else can (its worker is gone).
    assert isinstance(claimed, Claimed) and claimed.ended == [dead]
    assert await store.complete(job.id, 2, "w2", None) is False
    assert (await claim(store, "w4")).ended == []  # said once


async def test_expired_lease_after_a_cancel_request_is_cancelled_by_the_claim(
    harness: Harness,
) -> None:
    store = harness.store
    job = await one(store)
    await claim_one(store, "w1", lease=30)
    await store.cancel(job.id)  # requested; its worker never acts on it
    await harness.advance(31)
    claimed = await claim(store, "w2")
    cancelled = await store.get(job.id)
    assert cancelled is not None and cancelled.status is JobStatus.CANCELLED
    assert claimed == [] and claimed.ended == [cancelled]


async def test_release_hands_the_job_back_without_using_an_attempt(store: Store) -> None:
    first, second = await store.enqueue([NewJob("t", max_attempts=1), NewJob("t")])
    got = await claim_one(store, "w1")
    assert got.id == first.id
    assert await store.release(first.id, 1, "w1") is True
    back = await store.get(first.id)
    assert back is not None
    assert back.status is JobStatus.QUEUED and back.worker is None
    assert back.scheduled_at == first.scheduled_at  # keeps its place in line
    assert back.max_attempts == 2  # the released attempt does not count
    again = await claim_one(store, "w2")
    assert (again.id, again.attempt) == (first.id, 2)
    assert await store.fail(first.id, 2, "w2", error_type="E", message="m", retry_at=None)
    dead = await store.get(first.id)
    assert dead is not None and dead.status is JobStatus.DEAD
    assert (await claim_one(store, "w2")).id == second.id


async def test_claim_with_expired_lease_ignores_other_tasks(harness: Harness) -> None:
    store = harness.store
    await one(store, "other")
    await claim_one(store, "w1", tasks=("other",), lease=5)
    await harness.advance(LEASE)
    assert await claim(store, "w2", tasks=("t",)) == []
    assert len(await claim(store, "w2", tasks=("other",))) == 1
