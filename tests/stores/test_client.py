"""beat.Client over every store: enqueue, follow, manage, and typed errors for bad input.

The worker side is played by calling the store's claim/complete/fail directly.
"""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import UUID, uuid4

import pytest

from beat import InvalidJobError
from beat._client import Client, JobRequest
from beat._exceptions import (
    BeatError,
    InvalidJobStateError,
    JobCancelledError,
    JobFailedError,
    JobNotFoundError,
    JobOutcomeError,
    SerializationError,
    StoreConfigError,
    StoreUnavailableError,
)
from beat._tasks import TaskOptions, task
from beat.stores import JobRecord, JobStatus, SQLiteStore, Store, Unique
from tests.coordinators.conftest import PostgresServer

from ._processes import claim_in_processes
from ._util import claim, claim_one, parked
from .conftest import Harness

pytestmark = pytest.mark.asyncio

PROMPT = 2.0  # well under the 5 s fallback poll of PostgreSQL


@task(name="t", retries=2)
async def add(ctx: Any, a: int, b: int = 0) -> int:
    return a + b


@task(name="t", queue="other")
def elsewhere(ctx: Any, x: str) -> None:
    pass


async def _nothing_stored(store: Store) -> None:
    assert await store.list_jobs() == []


# -- enqueue -------------------------------------------------------------------------------
async def test_enqueue_a_task_maps_its_policy(store: Store) -> None:
    client = Client(store)
    handle = await client.enqueue(add, 1, b=2)
    assert handle.task == "t" and isinstance(handle.id, UUID)
    record = await client.get(handle.id)
    assert record.args == [1] and record.kwargs == {"b": 2}
    assert record.max_attempts == 3  # retries=2 -> 3 attempts
    assert record.queue == "default" and record.priority == 0
    assert record.status is JobStatus.QUEUED
    assert await handle.record() == record

    other = await client.enqueue(elsewhere, "x")
    assert (await client.get(other.id)).queue == "other"


async def test_bound_task_enqueues_through_the_client(store: Store) -> None:
    client = Client(store)
    bound = task(name="t", retries=0)(add.fn)
    assert bound.bind(client) is bound
    handle = await bound.enqueue(4)
    record = await client.get(handle.id)
    assert record.args == [4] and record.max_attempts == 1
    delayed = await bound.options(delay=3600, priority=7, queue="q").enqueue(5)
    record = await client.get(delayed.id)
    assert record.status is JobStatus.SCHEDULED and record.priority == 7 and record.queue == "q"
    assert record.scheduled_at - record.created_at == timedelta(hours=1)


async def test_enqueue_task_options_and_at(store: Store) -> None:
    client = Client(store)
    at = datetime(2031, 5, 6, 7, 8, 9, tzinfo=UTC)
    handle = await client.enqueue(add.options(at=at, retries=0), 1)
    record = await client.get(handle.id)
    assert record.scheduled_at == at and record.max_attempts == 1
    assert record.status is JobStatus.SCHEDULED


async def test_enqueue_by_name(harness: Harness) -> None:
    client = Client(harness.store)
    plain = await client.enqueue("reports.build", 2024, month=5)
    record = await client.get(plain.id)
    assert record.task == "reports.build" and record.args == [2024]
    assert record.kwargs == {"month": 5} and record.max_attempts == 4  # default retries=3

    handle = await client.enqueue_by_name(
        "reports.build",
        [2024],
        {"month": 6},
        queue="reports",
        priority=-3,
        retries=0,
        delay=timedelta(minutes=5),
    )
    assert handle.task == "reports.build"
    record = await client.get(handle.id)
    assert (record.queue, record.priority, record.max_attempts) == ("reports", -3, 1)
    assert record.args == [2024] and record.kwargs == {"month": 6}
    assert record.status is JobStatus.SCHEDULED
    await harness.advance(301)
    assert (await client.get(handle.id)).status is JobStatus.QUEUED

    at = datetime(2030, 1, 1, 12, tzinfo=UTC)
    later = await client.enqueue_by_name("reports.build", at=at)
    assert (await client.get(later.id)).scheduled_at == at


async def test_enqueue_many_in_order(store: Store) -> None:
    client = Client(store)
    handles = await client.enqueue_many(
        [
            JobRequest.of(add, 1),
            JobRequest.of(add.options(queue="q2"), 2, b=3),
            JobRequest.of("named", "x"),
            JobRequest.by_name("named", ["y"], {"k": None}, retries=0),
        ]
    )
    records = [await client.get(h.id) for h in handles]
    assert [r.task for r in records] == ["t", "t", "named", "named"]
    assert [r.args for r in records] == [[1], [2], ["x"], ["y"]]
    assert records[1].queue == "q2" and records[1].kwargs == {"b": 3}
    assert records[3].kwargs == {"k": None} and records[3].max_attempts == 1
    assert [r.id for r in await store.list_jobs()] == [h.id for h in handles]
    assert await client.enqueue_many([]) == []


async def test_enqueue_many_of_one_task_keeps_each_jobs_arguments(store: Store) -> None:
    """A batch of one task and options (stored by PostgreSQL with the shared fields once)
    still gives every job its own arguments and due time, in order."""
    client = Client(store)
    later = add.options(delay=60, priority=3)
    handles = await client.enqueue_many([JobRequest.of(later, i, b=10 * i) for i in range(5)])
    records = [await client.get(h.id) for h in handles]
    assert [(r.args, r.kwargs) for r in records] == [([i], {"b": 10 * i}) for i in range(5)]
    for r in records:
        assert (r.task, r.queue, r.priority, r.max_attempts) == ("t", "default", 3, 3)
        assert r.status is JobStatus.SCHEDULED
        assert abs((r.scheduled_at - r.created_at) - timedelta(seconds=60)) < timedelta(
            milliseconds=1
        )
    assert [r.id for r in await store.list_jobs()] == [h.id for h in handles]
    when = datetime(2031, 5, 6, 7, 8, 9, 123456, tzinfo=UTC)
    fixed = await client.enqueue_many([JobRequest.of(add.options(at=when), i) for i in range(3)])
    assert [(await client.get(h.id)).scheduled_at for h in fixed] == [when] * 3


async def test_enqueue_many_takes_a_generator_of_requests_each_with_its_options(
    store: Store,
) -> None:
    client = Client(store)
    requests = (
        JobRequest("t", [i], {}, TaskOptions(queue=f"q{i}", priority=i, delay=i % 2))
        for i in range(40)
    )
    handles = await client.enqueue_many(requests)
    records = [await client.get(h.id) for h in handles]
    assert [(r.args, r.queue, r.priority) for r in records] == [
        ([i], f"q{i}", i) for i in range(40)
    ]


async def test_a_store_without_its_own_prepared_enqueue(tmp_path: Path) -> None:
    """``Store.enqueue_prepared`` has a default, through ``enqueue``: a store of one's own
    that implements only the abstract methods serves a client, unique keys included."""

    class Plain(SQLiteStore):
        enqueue_prepared = Store.enqueue_prepared  # the base class's, not SQLite's

    async with Client(Plain(tmp_path / "plain.db")) as client:
        unique = add.options(unique=Unique(key="k"), delay=5)
        handles = await client.enqueue_many(
            [JobRequest.of(unique, 1), JobRequest.of(add, 2, b=1), JobRequest.of(unique, 3)]
        )
        assert [h.conflict for h in handles] == [False, False, True]
        assert handles[2].id == handles[0].id
        first, second = [await client.get(h.id) for h in handles[:2]]
        assert (first.args, first.unique_key, first.status) == ([1], "k", JobStatus.SCHEDULED)
        assert (second.args, second.kwargs, second.max_attempts) == ([2], {"b": 1}, 3)
        assert len(await client.list()) == 2


async def test_enqueue_many_is_atomic(store: Store) -> None:
    client = Client(store)
    good = JobRequest.of(add, 1)
    with pytest.raises(SerializationError, match=r"\[1\] 't' args\[0\].*set"):
        await client.enqueue_many([good, JobRequest.of("t", {1, 2}), good])
    naive = TaskOptions(at=datetime(2030, 1, 1))  # not validated until enqueued
    with pytest.raises(InvalidJobError, match=r"\[2\] 't': at must be an aware"):
        await client.enqueue_many([good, good, JobRequest("t", [1], {}, naive)])
    with pytest.raises(InvalidJobError, match=r"requests\[1\] is a tuple"):
        await client.enqueue_many([good, ("t", [1])])  # type: ignore[list-item]
    with pytest.raises(InvalidJobError, match="priority must fit"):
        await client.enqueue_many([good, JobRequest.by_name("t", priority=2**40)])
    await _nothing_stored(store)


# -- result ----------------------------------------------------------------------------------
async def test_result_of_a_succeeded_job(store: Store) -> None:
    client = Client(store)
    handle = await client.enqueue(add, 1, b=2)
    async with parked(store):
        waiter = asyncio.create_task(handle.result(timeout=30))
        got = await claim_one(store, "w1")
    assert not waiter.done()
    assert await store.complete(got.id, got.attempt, "w1", {"sum": [3]})
    assert await asyncio.wait_for(waiter, PROMPT) == {"sum": [3]}
    assert await client.result(str(handle.id)) == {"sum": [3]}  # ids as text too
    assert await client.result(handle.id, timeout=0) == {"sum": [3]}


async def test_result_of_a_dead_job(store: Store) -> None:
    client = Client(store)
    handle = await client.enqueue(add.options(retries=1), 1)
    now = await store.now()
    for attempt in (1, 2):
        got = await claim_one(store, "w1")
        assert got.attempt == attempt
        assert await store.fail(
            got.id,
            attempt,
            "w1",
            error_type="builtins.ValueError",
            message=f"bad {attempt}",
            traceback="Traceback...\nValueError: bad",
            retry_at=now,
        )
    with pytest.raises(JobFailedError) as info:
        await client.result(handle.id, timeout=5)
    error = info.value
    assert isinstance(error, JobOutcomeError) and isinstance(error, BeatError)
    assert error.id == handle.id and error.task == "t"
    assert error.error_type == "builtins.ValueError" and error.error_message == "bad 2"
    assert error.error_traceback == "Traceback...\nValueError: bad"
    assert error.attempts == 2 and error.record.status is JobStatus.DEAD
    assert "bad 2" in str(error) and "2 attempt" in str(error)


async def test_result_of_a_cancelled_job(store: Store) -> None:
    client = Client(store)
    waiting = await client.enqueue(add, 1)
    running = await client.enqueue(add, 2)
    await client.cancel(waiting.id)
    with pytest.raises(JobCancelledError) as info:
        await waiting.result(timeout=1)
    assert info.value.id == waiting.id and info.value.record.status is JobStatus.CANCELLED

    got = await claim_one(store, "w1")
    assert got.id == running.id
    async with parked(store):
        waiter = asyncio.create_task(client.result(running.id, timeout=30))
        requested = await client.cancel(running.id)
    assert requested.status is JobStatus.RUNNING and requested.cancel_requested
    assert not waiter.done()
    assert await store.mark_cancelled(got.id, got.attempt, "w1")
    with pytest.raises(JobCancelledError):
        await asyncio.wait_for(waiter, PROMPT)


async def test_result_timeout(store: Store) -> None:
    client = Client(store)
    handle = await client.enqueue(add, 1)
    started = time.monotonic()
    with pytest.raises(TimeoutError):
        await client.result(handle.id, timeout=0.2)
    assert time.monotonic() - started >= 0.15
    with pytest.raises(TimeoutError, match=f"job {handle.id} is still queued after 0 s"):
        await handle.result(timeout=0)  # every store says which job and where it stands
    with pytest.raises(TimeoutError):
        await client.result(handle.id, timeout=timedelta(milliseconds=50))
    with pytest.raises(InvalidJobError, match="timeout"):
        await client.result(handle.id, timeout=-1)
    with pytest.raises(JobNotFoundError):
        await client.result(uuid4(), timeout=1)
    # No limit: waits until the job finishes.
    async with parked(store):
        waiter = asyncio.create_task(client.result(handle.id))
    got = await claim_one(store)
    await store.complete(got.id, got.attempt, "w1", 7)
    assert await asyncio.wait_for(waiter, PROMPT) == 7


async def test_result_woken_by_another_connection(harness: Harness) -> None:
    client = Client(harness.store)
    other = await harness.other()
    handle = await client.enqueue(add, 1)
    async with parked(harness.store):
        waiter = asyncio.create_task(client.result(handle.id))
        got = await claim_one(other, "w9")
    assert not waiter.done()
    started = time.monotonic()
    assert await other.complete(got.id, got.attempt, "w9", "from elsewhere")
    assert await asyncio.wait_for(waiter, PROMPT) == "from elsewhere"
    assert time.monotonic() - started < PROMPT


async def test_result_woken_by_another_process(harness: Harness) -> None:
    if harness.kind == "memory":
        pytest.skip("a memory store lives in one process")
    store: Any = harness.store
    client = Client(store)
    handles = await client.enqueue_many([JobRequest.of(add, i) for i in range(3)])
    waiters = [asyncio.create_task(h.result(timeout=60)) for h in handles]
    sqlite = harness.kind == "sqlite"
    target, schema = (str(store.path), "") if sqlite else (store.dsn, store.schema)
    [done] = await asyncio.to_thread(claim_in_processes, harness.kind, target, schema, 1)
    assert sorted(done) == sorted(str(h.id) for h in handles)
    assert await asyncio.wait_for(asyncio.gather(*waiters), PROMPT) == ["p0"] * 3


# -- get / cancel / retry / list -----------------------------------------------------------
async def test_get(store: Store) -> None:
    client = Client(store)
    handle = await client.enqueue(add, 1)
    record = await client.get(handle.id)
    assert record.id == handle.id and await client.get(str(handle.id)) == record
    with pytest.raises(JobNotFoundError, match=r"no job with id"):
        await client.get(uuid4())
    assert await client.get_record(uuid4()) is None


async def test_cancel_and_retry(store: Store) -> None:
    client = Client(store)
    handle = await client.enqueue(add.options(retries=0), 1)
    cancelled = await client.cancel(handle.id)
    assert cancelled.status is JobStatus.CANCELLED
    assert (await client.cancel(handle.id)).status is JobStatus.CANCELLED  # unchanged
    again = await client.retry(str(handle.id))
    assert again.status is JobStatus.QUEUED and again.max_attempts >= 1
    with pytest.raises(InvalidJobStateError) as info:
        await client.retry(handle.id)
    assert info.value.status == "queued"
    got = await claim_one(store)
    await store.fail(got.id, got.attempt, "w1", error_type="E", message="m")
    assert (await client.get(handle.id)).status is JobStatus.DEAD
    assert (await client.retry(handle.id)).status is JobStatus.QUEUED
    for call in (client.cancel, client.retry):
        with pytest.raises(JobNotFoundError):
            await call(uuid4())


async def test_list_filters_and_paging(store: Store) -> None:
    client = Client(store)
    handles = await client.enqueue_many([JobRequest.of(add, i) for i in range(7)])
    other = await client.enqueue("other.task", queue_is_an_argument="yes")
    await client.cancel(handles[0].id)

    async def ids(**filters: Any) -> list[UUID]:
        return [r.id for r in await client.list(**filters)]

    assert await ids() == [h.id for h in handles] + [other.id]
    assert await ids(task=add) == [h.id for h in handles]
    assert await ids(task="other.task") == [other.id]
    assert await ids(status="cancelled") == [handles[0].id]
    assert await ids(status=JobStatus.QUEUED, task="t") == [h.id for h in handles[1:]]
    assert await ids(queue="nope") == []

    pages: list[list[UUID]] = []
    cursor: UUID | str | None = None
    while page := await ids(task="t", limit=3, after=cursor):
        pages.append(page)
        cursor = str(page[-1])  # a cursor as text works too
    assert pages == [[h.id for h in handles[i : i + 3]] for i in (0, 3, 6)]
    assert await ids(before=handles[5].id, limit=2) == [handles[3].id, handles[4].id]
    with pytest.raises(JobNotFoundError):
        await client.list(after=uuid4())
    with pytest.raises(InvalidJobError):
        await client.list(status="nope")
    with pytest.raises(InvalidJobError):
        await client.list(limit=0)


# -- bad input -------------------------------------------------------------------------------
class Thing:
    pass


@pytest.mark.parametrize(
    ("args", "kwargs", "match"),
    [
        ((Thing(),), {}, r"'t' args\[0\]: Thing is not JSON.*the value: <"),
        ((1, {"a": [float("nan")]}), {}, r"args\[1\]\['a'\]\[0\]: nan is not JSON"),
        ((), {"when": datetime.now(UTC)}, r"kwargs\['when'\]: datetime is not JSON"),
        (({1: "int key"},), {}, r"dict key 1 is not a plain string"),
        ((b"bytes",), {}, r"bytes is not JSON.*the value: b'bytes'"),
    ],
)
async def test_non_json_arguments_store_nothing(
    store: Store, args: tuple[Any, ...], kwargs: dict[str, Any], match: str
) -> None:
    client = Client(store)
    with pytest.raises(SerializationError, match=match):
        await client.enqueue("t", *args, **kwargs)
    with pytest.raises(SerializationError, match=match):
        await client.enqueue_by_name("t", args, kwargs)
    bound = task(name="t")(add.fn).bind(client)
    with pytest.raises(SerializationError, match=match):
        await bound.enqueue(*args, **kwargs)
    await _nothing_stored(store)


async def test_bad_options_names_and_ids(store: Store) -> None:
    client = Client(store)
    with pytest.raises(InvalidJobError, match=r"unknown task option\(s\) \['qeue'\]"):
        await client.enqueue(add.options(qeue="x"), 1)
    with pytest.raises(InvalidJobError, match=r"unknown enqueue option\(s\) \['qeue'\]"):
        await client.enqueue_by_name("t", qeue="x")  # type: ignore[call-arg]
    with pytest.raises(InvalidJobError, match="unknown enqueue option"):
        await client.enqueue_by_name("t", timeout=5)  # type: ignore[call-arg]
    naive = datetime(2030, 1, 1)
    with pytest.raises(InvalidJobError, match=r"at must be an aware datetime.*2030"):
        await client.enqueue_by_name("t", at=naive)
    with pytest.raises(InvalidJobError, match="aware"):
        await client.enqueue(add.options(at=naive), 1)
    with pytest.raises(InvalidJobError, match="delay or at"):
        await client.enqueue_by_name("t", at=datetime.now(UTC), delay=1)
    with pytest.raises(InvalidJobError, match="retries"):
        await client.enqueue_by_name("t", retries=-1)
    with pytest.raises(InvalidJobError, match="delay"):
        await client.enqueue_by_name("t", delay=-5)
    with pytest.raises(InvalidJobError, match="queue"):
        await client.enqueue_by_name("t", queue="")
    with pytest.raises(InvalidJobError, match="task name"):
        await client.enqueue("", 1)
    with pytest.raises(InvalidJobError, match="expected a beat Task"):
        await client.enqueue(add.fn, 1)  # type: ignore[call-overload]
    with pytest.raises(SerializationError, match="args must be a list or tuple, got str"):
        await client.enqueue_by_name("t", "abc")
    with pytest.raises(SerializationError, match="kwargs must be a dict"):
        await client.enqueue_by_name("t", [], [("a", 1)])  # type: ignore[arg-type]
    await _nothing_stored(store)

    for call in (client.get, client.result, client.cancel, client.retry):
        with pytest.raises(InvalidJobError, match=r"'not-a-uuid' is not a job id"):
            await call("not-a-uuid")
    with pytest.raises(InvalidJobError, match="is not a job id"):
        await client.list(after="42")
    with pytest.raises(InvalidJobError, match="Store"):
        Client("jobs.db")  # type: ignore[arg-type]


# -- lifecycle -------------------------------------------------------------------------------
async def test_client_opens_and_closes_a_store_it_opened(unstarted: Harness) -> None:
    store = unstarted.store
    client = Client(store)
    with pytest.raises(StoreUnavailableError):  # not open: nothing happened
        await client.enqueue(add, 1)
    async with client as entered:
        assert entered is client
        await client.open()  # idempotent
        handle = await client.enqueue(add, 1)
        assert (await store.get(handle.id)) is not None
    with pytest.raises(StoreUnavailableError):  # the client closed the store it opened
        await store.now()
    await client.close()  # idempotent
    async with client:  # a client can be opened again
        await client.get(handle.id)
    with pytest.raises(StoreUnavailableError):
        await client.enqueue(add, 1)


async def test_client_leaves_a_shared_store_open(store: Store) -> None:
    first, second = Client(store), Client(store)
    async with first, second:
        await first.enqueue(add, 1)
    await store.now()  # still open: it was opened elsewhere
    assert len(await Client(store).list()) == 1  # no opening needed over an open store


async def test_unreachable_postgres_is_unavailable() -> None:
    from beat.stores import PostgresStore
    from tests.coordinators.conftest import free_port

    dead = f"postgresql://beat:beat@127.0.0.1:{free_port()}/postgres"
    client = Client(PostgresStore(dead, timeout=1))
    with pytest.raises(StoreUnavailableError):
        await client.open()
    with pytest.raises(StoreUnavailableError):  # not stored, and the caller knows it
        await client.enqueue(add, 1)
    with pytest.raises(ConnectionError):  # a StoreUnavailableError is a ConnectionError
        await client.enqueue_by_name("t", [1])


async def test_sqlite_in_a_missing_directory_is_a_config_error(tmp_path: Path) -> None:
    client = Client(SQLiteStore(tmp_path / "no" / "such" / "dir" / "jobs.db"))
    with pytest.raises(StoreConfigError, match="cannot open SQLite file"):
        await client.open()
    with pytest.raises(StoreUnavailableError):
        await client.enqueue(add, 1)


async def test_postgres_result_waits_without_polling(store_postgres: PostgresServer) -> None:
    from beat.stores import PostgresStore

    dsn, schema = store_postgres.dsn(), f"t{uuid4().hex[:12]}"
    reads = 0

    class Counting(PostgresStore):
        async def get(self, id: UUID) -> JobRecord | None:
            nonlocal reads
            reads += 1
            return await super().get(id)

    async with (
        Client(Counting(dsn, schema=schema, poll_interval=60)) as client,
        Client(PostgresStore(dsn, schema=schema, poll_interval=60)) as other,
    ):
        handle = await client.enqueue(add, 1)
        waiter = asyncio.create_task(client.result(handle.id))
        await asyncio.sleep(1.0)
        assert not waiter.done()
        assert reads == 1  # one look, then LISTEN/NOTIFY: no polling
        [got] = await claim(other.store, "w9")
        started = time.monotonic()
        assert await other.store.complete(got.id, got.attempt, "w9", "notified")
        assert await asyncio.wait_for(waiter, 5) == "notified"
        assert time.monotonic() - started < 1
        assert reads == 2
