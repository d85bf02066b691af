"""Durable jobs through the scheduler: Scheduler(store=...), @scheduler.task, enqueue, result.

The stores' own behaviour is pinned by tests/stores/ (every store, one suite); here the
point is the wiring: tasks registered on a scheduler run on its worker, the client follows
them, and shutdown hands unfinished work back.
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import pytest

from beat import (
    InvalidJobError,
    JobFailedError,
    Scheduler,
    SchedulerStateError,
    SerializationError,
    task,
)
from beat.stores import JobStatus, MemoryStore, SQLiteStore, Store
from beat.stores._base import NewJob

pytestmark = pytest.mark.asyncio


@pytest.fixture(params=["memory", "sqlite"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Store:
    if request.param == "memory":
        return MemoryStore()
    return SQLiteStore(tmp_path / "jobs.db")


async def test_a_task_enqueued_through_the_scheduler_runs_and_returns_its_result(
    store: Store,
) -> None:
    scheduler = Scheduler(store=store)

    @scheduler.task(name="add")
    async def add(ctx: object, a: int, b: int) -> int:
        return a + b

    async with scheduler:
        handle = await add.enqueue(2, 3)
        assert await handle.result(timeout=10) == 5
        record = await scheduler.client.get(handle.id)
        assert (record.status, record.attempt, record.result) == (JobStatus.SUCCEEDED, 1, 5)


async def test_a_sync_task_runs_in_a_thread(store: Store) -> None:
    scheduler = Scheduler(store=store)

    @scheduler.task(name="upper")
    def upper(ctx: object, text: str) -> str:
        return text.upper()

    async with scheduler:
        assert await (await upper.enqueue("abc")).result(timeout=10) == "ABC"


async def test_a_failing_task_is_retried_then_dead_with_its_error(store: Store) -> None:
    from beat import Backoff

    scheduler = Scheduler(store=store)
    attempts: list[int] = []

    @scheduler.task(name="flaky", retries=2, backoff=Backoff.constant(0.01))
    async def flaky(ctx: object) -> None:
        attempts.append(getattr(ctx, "attempt"))  # noqa: B009 - the JobContext
        raise ValueError("nope")

    async with scheduler:
        handle = await flaky.enqueue()
        with pytest.raises(JobFailedError) as failed:
            await handle.result(timeout=10)
    assert attempts == [1, 2, 3]
    assert failed.value.error_type is not None and "ValueError" in failed.value.error_type
    assert "nope" in (failed.value.error_message or "")


async def test_a_job_enqueued_by_another_process_s_client_runs_here(tmp_path: Path) -> None:
    """The producer (a web server, say) only has a store; the scheduler's worker runs it."""
    path = tmp_path / "jobs.db"
    scheduler = Scheduler(store=SQLiteStore(path))
    seen: list[str] = []

    @scheduler.task(name="greet")
    async def greet(ctx: object, who: str) -> str:
        seen.append(who)
        return f"hello {who}"

    from beat import Client

    async with scheduler, Client(SQLiteStore(path)) as producer:
        handle = await producer.enqueue_by_name("greet", ["ada"])
        assert await handle.result(timeout=10) == "hello ada"
    assert seen == ["ada"]


async def test_a_worker_never_claims_a_task_it_does_not_know(store: Store) -> None:
    scheduler = Scheduler(store=store)

    @scheduler.task(name="known")
    async def known(ctx: object) -> str:
        return "ok"

    async with scheduler:
        (unknown,) = await store.enqueue([NewJob(task="somebody.elses")])
        assert await (await known.enqueue()).result(timeout=10) == "ok"
        record = await scheduler.client.get(unknown.id)
        assert record.status is JobStatus.QUEUED  # still waiting for a worker that knows it


async def test_bad_arguments_are_refused_at_enqueue_and_nothing_is_stored(store: Store) -> None:
    scheduler = Scheduler(store=store)

    @scheduler.task(name="echo")
    async def echo(ctx: object, value: object) -> object:
        return value

    async with scheduler:
        with pytest.raises(SerializationError, match="set"):
            await echo.enqueue({1, 2})
        assert await scheduler.client.list() == []


async def test_without_a_store_tasks_cannot_enqueue_and_there_is_no_client() -> None:
    scheduler = Scheduler()

    @scheduler.task(name="nowhere")
    async def nowhere(ctx: object) -> None:
        pass

    with pytest.raises(SchedulerStateError, match="no store"):
        scheduler.client  # noqa: B018 - the property raises
    with pytest.raises(InvalidJobError, match="not bound to a store"):
        await nowhere.enqueue()


async def test_tasks_built_apart_can_be_added_and_names_stay_unique(store: Store) -> None:
    scheduler = Scheduler(store=store)

    @task(name="apart")
    async def apart(ctx: object) -> str:
        return "here"

    scheduler.add_task(apart)
    with pytest.raises(Exception, match="already registered"):

        @scheduler.task(name="apart")
        async def clash(ctx: object) -> None:
            pass

    async with scheduler:
        assert await (await apart.enqueue()).result(timeout=10) == "here"


async def test_shutdown_hands_unfinished_jobs_back_to_the_queue(tmp_path: Path) -> None:
    path = tmp_path / "jobs.db"
    scheduler = Scheduler(store=SQLiteStore(path))
    started = asyncio.Event()

    @scheduler.task(name="slow")
    async def slow(ctx: object) -> None:
        started.set()
        await asyncio.sleep(3600)

    async with scheduler:
        handle = await slow.enqueue()
        await asyncio.wait_for(started.wait(), 10)
        cancelled = await scheduler.shutdown(timeout=0)
    assert cancelled == 1
    async with SQLiteStore(path) as store:
        record = await store.get(handle.id)
    assert record is not None and record.status is JobStatus.QUEUED  # back for another worker


async def test_a_task_on_a_queue_this_worker_does_not_serve_is_said_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Its jobs wait for a worker of that queue; a typo in a queue name must not be a
    silent "never runs". Tasks of served queues are registered quietly."""
    scheduler = Scheduler(store=MemoryStore(), queues=["default", "reports"])
    with caplog.at_level(logging.INFO, logger="beat.scheduler"):

        @scheduler.task(name="mail.send", queue="mail")
        async def send(ctx: object) -> None: ...

        @scheduler.task(name="reports.build", queue="reports")
        async def build(ctx: object) -> None: ...

    said = [r.getMessage() for r in caplog.records if r.name == "beat.scheduler"]
    assert said == [
        "task mail.send: its queue 'mail' is not one this scheduler's worker serves"
        " ('default', 'reports'); its jobs run on workers that serve 'mail'"
    ]
