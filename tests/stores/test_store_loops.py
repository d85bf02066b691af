"""A store object belongs to the event loop that opened it (every backend).

Its connections, the hand-backs of its threads, its listeners and its waiters' futures are
that loop's. Used from a later ``asyncio.run`` (or another thread's loop) it used to half
work: reads and enqueues went through, waits failed with a bare ``RuntimeError: Event loop
is closed`` (SQLite, PostgreSQL), or wakes came from the wrong thread (memory). Now every
call there raises :class:`StoreUnavailableError` saying so; ``close`` works from any loop,
and ``open`` on the new loop makes the store usable again.

These tests run their own event loops (``asyncio.run``, a thread's loop): they are plain
functions.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import threading
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from beat.stores import (
    JobStatus,
    MemoryStore,
    NewJob,
    SQLiteStore,
    Store,
    StoreUnavailableError,
)

from .conftest import KINDS

OTHER_LOOP = "opened on another event loop.*close it and open it again on this one"


@pytest.fixture(params=KINDS)
def make(request: pytest.FixtureRequest, tmp_path: Path) -> Callable[..., Store]:
    """A new, unopened store object on one storage (one file, one schema) per test."""
    kind = request.param
    if kind == "memory":
        return lambda poll_interval=0.05: MemoryStore()
    if kind == "sqlite":
        return lambda poll_interval=0.05: SQLiteStore(
            tmp_path / "jobs.db", poll_interval=poll_interval
        )
    from beat.stores import PostgresStore

    dsn = request.getfixturevalue("store_postgres").dsn()
    schema = f"t{uuid.uuid4().hex[:12]}"
    return lambda poll_interval=0.05: PostgresStore(dsn, schema=schema, poll_interval=poll_interval)


async def _must_raise(what: str, call: Callable[[], Awaitable[object]]) -> None:
    async with asyncio.timeout(10):  # never a hang either
        await call()
    raise AssertionError(f"{what} on another loop did not raise")


async def _finish(store: Store) -> None:
    [run] = await store.claim("w", queues=["default"], tasks=["t"], limit=1, lease=60)
    assert await store.complete(run.id, run.attempt, "w", run.args[0])


async def _awaited(store: Store, job: uuid.UUID) -> Any:
    """wait_finished(job), parked before another call finishes it: a wake-up, not a look."""
    since = store.waits.total
    wait = asyncio.create_task(store.wait_finished(job, 30))
    async with asyncio.timeout(10):
        await store.waits.until_parked(since)
    await _finish(store)
    async with asyncio.timeout(10):
        record = await wait
    assert record.status is JobStatus.SUCCEEDED
    return record.result


# PostgreSQL: the connections of the first loop cannot be closed once it has stopped; they
# are dropped, and Python warns when the garbage collector closes their sockets (below).
@pytest.mark.filterwarnings("ignore:unclosed:ResourceWarning")
def test_every_call_on_a_later_loop_is_refused_until_closed_and_opened_there(
    make: Callable[..., Store], caplog: pytest.LogCaptureFixture
) -> None:
    store = make()

    async def first() -> uuid.UUID:
        await store.open()
        jobs = await store.enqueue([NewJob("t", args=[1]), NewJob("t", args=[2])])
        # Everything bound to this loop: a wait's listener or doorbell, the result sweep.
        assert await _awaited(store, jobs[0].id) == 1
        await store.wait_for_jobs(0)
        return jobs[1].id

    second_job = asyncio.run(first())

    async def second() -> None:
        calls: dict[str, Callable[[], Awaitable[object]]] = {
            "open": store.open,
            "now": store.now,
            "get": lambda: store.get(second_job),
            "enqueue": lambda: store.enqueue([NewJob("t")]),
            "claim": lambda: store.claim("w", queues=["default"], tasks=["t"], limit=1, lease=5),
            "list_jobs": store.list_jobs,
            "count_jobs": store.count_jobs,
            "wait_for_jobs": lambda: store.wait_for_jobs(0.01),
            "wait_finished": lambda: store.wait_finished(second_job, 0.01),
            "schedules_version": store.schedules_version,
            "wait_schedules_changed": lambda: store.wait_schedules_changed(0, 0.01),
        }
        for what, call in calls.items():
            with pytest.raises(StoreUnavailableError, match=OTHER_LOOP):
                await _must_raise(what, call)
        with caplog.at_level(logging.WARNING, "beat.stores"):
            async with asyncio.timeout(10):
                await store.close()  # from this loop: releases without waiting on the old one
        dropped = [r for r in caplog.records if "connections are dropped" in r.getMessage()]
        assert len(dropped) == (store.__class__.__name__ == "PostgresStore")
        gc.collect()  # their sockets close now, under this test's warning filter
        await store.open()
        try:
            record = await store.get(second_job)
            assert record is not None and record.status is JobStatus.QUEUED
            assert await _awaited(store, second_job) == 2
        finally:
            await store.close()

    asyncio.run(second())


def test_close_from_another_loop_wakes_the_waits_parked_on_the_loop_that_opened_it(
    make: Callable[..., Store],
) -> None:
    """The opening loop still runs, in another thread: its waiters are woken there (a wait
    for jobs returns, a result wait fails as closed), not left to their 60 s timeouts, and
    nothing is touched from the wrong thread."""
    store = make(poll_interval=60)  # no look of their own before the timeout
    parked = threading.Event()
    outcome: dict[str, object] = {}

    async def opener() -> None:
        await store.open()
        [job] = await store.enqueue([NewJob("t", args=[1], delay=600)])
        since = store.waits.total
        jobs = asyncio.create_task(store.wait_for_jobs(60))
        result = asyncio.create_task(store.wait_finished(job.id, 60))
        await store.waits.until_parked(since, 2)
        parked.set()
        async with asyncio.timeout(30):
            outcome["jobs"] = await asyncio.gather(jobs, return_exceptions=True)
            outcome["result"] = await asyncio.gather(result, return_exceptions=True)

    def run() -> None:
        try:
            asyncio.run(opener())
        except BaseException as exc:  # reported by the test below
            outcome["error"] = exc

    thread = threading.Thread(target=run)
    thread.start()
    try:
        assert parked.wait(30)

        async def close_here() -> None:
            async with asyncio.timeout(10):
                await store.close()

        asyncio.run(close_here())
    finally:
        thread.join(60)
    assert not thread.is_alive()
    assert "error" not in outcome, outcome
    assert outcome["jobs"] == [None]
    [failed] = outcome["result"]  # type: ignore[misc]
    assert isinstance(failed, StoreUnavailableError), failed
    assert "not open" in str(failed)

    async def reopened() -> None:
        async with store:
            assert await store.list_jobs() != []

    asyncio.run(reopened())
