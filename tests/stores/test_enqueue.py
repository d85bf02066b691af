"""enqueue: what is stored, JSON validation, bad options — nothing stored on any error."""

from __future__ import annotations

import time
from datetime import datetime, timedelta
from uuid import UUID, uuid4

import pytest

from beat import InvalidJobError
from beat.stores import JobStatus, NewJob, SerializationError, Store

from ._util import HOUR, add, one

pytestmark = pytest.mark.asyncio


async def test_job_ids_are_version_7_uuids_in_creation_order(store: Store) -> None:
    """Unguessable (74 random bits) and ordered by their creation millisecond, so new jobs
    land at the end of an id index."""
    start_ms = time.time_ns() // 1_000_000
    first = await add(store, *[NewJob("t") for _ in range(50)])
    last_ms = max(r.id.int >> 80 for r in first)
    while time.time_ns() // 1_000_000 <= last_ms:  # the next job in a later millisecond
        pass
    second = await add(store, NewJob("t"))
    end_ms = time.time_ns() // 1_000_000
    ids: list[UUID] = [r.id for r in first + second]
    assert len(set(ids)) == len(ids)
    for job_id in ids:
        assert job_id.version == 7 and job_id.variant == "specified in RFC 4122"
        assert start_ms <= job_id.int >> 80 <= end_ms
    assert max(i.int for i in ids[:-1]) < ids[-1].int
    assert len({i.int & ((1 << 62) - 1) for i in ids}) == len(ids)  # the random part differs


async def test_enqueue_stores_and_returns_records(store: Store) -> None:
    before = await store.now()
    [a, b] = await add(
        store,
        NewJob("send", args=[1, "x", None], kwargs={"to": "a@b"}),
        NewJob("send", queue="mail", priority=5, max_attempts=2),
    )
    after = await store.now()
    assert a.task == "send" and a.args == [1, "x", None] and a.kwargs == {"to": "a@b"}
    assert (a.queue, a.priority, a.max_attempts) == ("default", 0, 5)
    assert (b.queue, b.priority, b.max_attempts) == ("mail", 5, 2)
    assert a.id != b.id
    for record in (a, b):
        assert record.status is JobStatus.QUEUED
        assert record.attempt == 0
        assert before <= record.created_at <= after
        assert record.scheduled_at == record.created_at
        assert record.started_at is None and record.finished_at is None
        assert record.worker is None and record.lease_expires_at is None
        assert record.result is None and record.error_type is None
        assert record.cancel_requested is False
        assert await store.get(record.id) == record


async def test_empty_batch(store: Store) -> None:
    assert await store.enqueue([]) == []


async def test_json_round_trip(store: Store) -> None:
    value = {"nested": [1, 2.5, True, False, None, {"k": ["ü", "日本"]}], "big": 2**62, "e": ""}
    record = await one(store, args=(1, (2, 3)), kwargs=value)
    assert record.args == [1, [2, 3]]  # tuples come back as lists
    assert record.kwargs == value
    stored = await store.get(record.id)
    assert stored is not None
    assert stored.args == [1, [2, 3]] and stored.kwargs == value


async def test_delayed_and_past_jobs(store: Store) -> None:
    now = await store.now()
    later = await one(store, scheduled_at=now + HOUR)
    delayed = await one(store, delay=7200)
    past = await one(store, scheduled_at=now - HOUR)
    assert later.status is JobStatus.SCHEDULED and later.scheduled_at == now + HOUR
    assert delayed.status is JobStatus.SCHEDULED
    assert delayed.scheduled_at - delayed.created_at == timedelta(hours=2)
    assert past.status is JobStatus.QUEUED and past.scheduled_at == now - HOUR


@pytest.mark.parametrize(
    "bad",
    [
        {"args": [object()]},
        {"args": [float("nan")]},
        {"args": [float("inf")]},
        {"kwargs": {"x": {1, 2}}},
        {"kwargs": {"x": {1: "int key"}}},
        {"kwargs": {"x": b"bytes"}},
        {"kwargs": {"x": "nul\x00"}},
        {"kwargs": {"when": datetime(2026, 1, 1)}},
        {"args": "not a list"},
    ],
)
async def test_non_json_values_store_nothing(store: Store, bad: dict[str, object]) -> None:
    with pytest.raises(SerializationError):
        await add(store, NewJob("ok"), NewJob("bad", **bad))  # type: ignore[arg-type]
    assert await store.list_jobs() == []


async def test_circular_value(store: Store) -> None:
    loop: list[object] = []
    loop.append(loop)
    with pytest.raises(SerializationError):
        await one(store, args=loop)
    assert issubclass(SerializationError, TypeError)


@pytest.mark.parametrize(
    "bad",
    [
        {"task": ""},
        {"queue": ""},
        {"max_attempts": 0},
        {"priority": True},
        {"priority": 2**40},
        {"scheduled_at": datetime(2026, 1, 1)},  # naive
        {"delay": -1},
    ],
)
async def test_bad_options_store_nothing(store: Store, bad: dict[str, object]) -> None:
    job = NewJob(**{"task": "t", **bad})  # type: ignore[arg-type]
    with pytest.raises(InvalidJobError):
        await add(store, NewJob("ok"), job)
    assert await store.list_jobs() == []


async def test_scheduled_at_and_delay_are_exclusive(store: Store) -> None:
    with pytest.raises(InvalidJobError):
        await one(store, scheduled_at=await store.now(), delay=5)


async def test_get_unknown(store: Store) -> None:
    assert await store.get(uuid4()) is None
