"""Conformance: progress is fenced and kept; logs per attempt are ordered, truncated, and
refused for unknown jobs; count_jobs tells scheduled from queued."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import uuid4

import pytest

from beat import InvalidJobError
from beat.stores import (
    MAX_LOG_MESSAGE,
    JobNotFoundError,
    JobStatus,
    LogEntry,
    SerializationError,
    Store,
)

from ._util import claim_one, one
from .conftest import Harness

pytestmark = pytest.mark.asyncio

T0 = datetime(2026, 1, 2, 3, 4, 5, 678901, tzinfo=UTC)


def entry(attempt: int, message: str, *, level: str = "INFO", seconds: int = 0) -> LogEntry:
    return LogEntry(attempt, T0 + timedelta(seconds=seconds), level, "app.jobs", message)


# -- progress ----------------------------------------------------------------------------------
async def test_progress_is_fenced_and_kept_after_the_job_finishes(harness: Harness) -> None:
    store = harness.store
    job = await one(store)
    assert not await store.set_progress(job.id, 0, "w1", 1)  # not running
    run = await claim_one(store)
    assert await store.set_progress(run.id, run.attempt, "w1", {"done": 3, "of": 10})
    assert not await store.set_progress(run.id, run.attempt, "w2", "other worker")
    assert not await store.set_progress(run.id, run.attempt + 1, "w1", "other attempt")
    assert (await store.get(run.id)).progress == {"done": 3, "of": 10}  # type: ignore[union-attr]
    await harness.advance(61)  # the lease expires; a new attempt takes over
    second = await claim_one(store, "w2")
    assert not await store.set_progress(run.id, run.attempt, "w1", "late")
    assert await store.set_progress(second.id, second.attempt, "w2", 0.5)
    assert await store.complete(second.id, second.attempt, "w2")
    assert (await store.get(run.id)).progress == 0.5  # type: ignore[union-attr]


@pytest.mark.parametrize("bad", [object(), {1: 2}, float("inf"), b"bytes"])
async def test_non_json_progress_writes_nothing(store: Store, bad: Any) -> None:
    await one(store)
    run = await claim_one(store)
    assert await store.set_progress(run.id, run.attempt, "w1", "before")
    with pytest.raises(SerializationError, match="progress"):
        await store.set_progress(run.id, run.attempt, "w1", bad)
    assert (await store.get(run.id)).progress == "before"  # type: ignore[union-attr]


# -- logs --------------------------------------------------------------------------------------
async def test_logs_come_back_by_attempt_then_insertion(store: Store) -> None:
    job = await one(store)
    await store.add_logs(job.id, 2, [entry(2, "b1", seconds=-5), entry(2, "b2")])
    await store.add_logs(job.id, 1, [entry(1, "a1", level="WARNING", seconds=9)])
    await store.add_logs(job.id, 2, [entry(2, "b3", seconds=-9)])
    await store.add_logs(job.id, 1, [])
    logs = await store.get_logs(job.id)
    assert [e.message for e in logs] == ["a1", "b1", "b2", "b3"]
    assert logs[0] == LogEntry(1, T0 + timedelta(seconds=9), "WARNING", "app.jobs", "a1")
    assert [e.message for e in await store.get_logs(job.id, attempt=2)] == ["b1", "b2", "b3"]
    assert await store.get_logs(job.id, attempt=3) == []
    assert await store.get_logs((await one(store)).id) == []


async def test_logs_are_not_fenced(store: Store) -> None:
    job = await one(store)
    run = await claim_one(store)
    assert await store.complete(run.id, run.attempt, "w1")
    await store.add_logs(job.id, run.attempt, [entry(run.attempt, "written after the end")])
    assert [e.message for e in await store.get_logs(job.id)] == ["written after the end"]


async def test_long_messages_are_cut_and_nul_replaced(store: Store) -> None:
    job = await one(store)
    await store.add_logs(job.id, 1, [entry(1, "x" * (MAX_LOG_MESSAGE + 100)), entry(1, "a\x00b")])
    long, nul = await store.get_logs(job.id)
    assert long.message == "x" * MAX_LOG_MESSAGE
    assert nul.message == "a\ufffdb"


async def test_logs_of_an_unknown_job(store: Store) -> None:
    missing = uuid4()
    with pytest.raises(JobNotFoundError, match=str(missing)):
        await store.get_logs(missing)
    with pytest.raises(JobNotFoundError, match=str(missing)):
        await store.add_logs(missing, 1, [entry(1, "lost")])


@pytest.mark.parametrize(
    ("attempt", "entries", "match"),
    [
        (1, [entry(2, "other attempt")], "attempt"),
        (-1, [], "attempt"),
        (1, ["text"], "LogEntry"),
        (1, [LogEntry(1, datetime(2026, 1, 1), "INFO", "l", "naive")], "aware"),
        (1, [LogEntry(1, T0, "INFO", "l", 42)], "message"),  # type: ignore[arg-type]
        (1, "not a list", "sequence"),
    ],
)
async def test_bad_log_batches_store_nothing(
    store: Store, attempt: Any, entries: Any, match: str
) -> None:
    job = await one(store)
    if isinstance(entries, list):  # a good entry first: the batch is refused as a whole
        entries = [entry(1, "good"), *entries]
    with pytest.raises(InvalidJobError, match=match):
        await store.add_logs(job.id, attempt, entries)
    assert await store.get_logs(job.id) == []


# -- counts ------------------------------------------------------------------------------------
async def test_count_jobs_by_queue_and_derived_status(harness: Harness) -> None:
    store = harness.store
    assert await store.count_jobs() == {}
    await one(store)
    await one(store)
    await one(store, delay=30)
    await one(store, queue="mail", delay=30)
    run = await claim_one(store)
    assert await store.complete(run.id, run.attempt, "w1")
    await claim_one(store)
    assert await store.count_jobs() == {
        "default": {JobStatus.SUCCEEDED: 1, JobStatus.RUNNING: 1, JobStatus.SCHEDULED: 1},
        "mail": {JobStatus.SCHEDULED: 1},
    }
    await harness.advance(31)
    counts = await store.count_jobs()
    assert counts["default"][JobStatus.QUEUED] == 1 and JobStatus.SCHEDULED not in counts["default"]
    assert counts["mail"] == {JobStatus.QUEUED: 1}
