"""Progress and per-attempt logs of durable jobs, through a real worker on every store.

``ctx.progress(value)`` is read back with ``client.get(id).progress`` *while the job runs*;
log records emitted during an attempt (any logger, concurrent runs kept apart, plain
functions in threads too) are stored with ``store.add_logs`` when the attempt ends and read
with ``client.logs(id, attempt=...)``, bounded per attempt, without touching normal logging.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Iterator
from typing import Any

import pytest

from beat import Backoff
from beat._client import Client
from beat._exceptions import InvalidJobError, JobNotFoundError, SerializationError
from beat._logcapture import AttemptLogs
from beat._worker import JobContext, Worker
from beat.stores import JobStatus, Store
from beat.testing import FakeClock

from ._util import claim_one
from .conftest import Harness
from .test_worker import enqueue, eventually, make_task, registry, start, workers

__all__ = ["workers"]  # the fixture, imported for the tests below

pytestmark = pytest.mark.asyncio


@pytest.fixture
def app_logger() -> Iterator[logging.Logger]:
    """An application logger at INFO with a handler of its own (the user's output)."""
    logger = logging.getLogger("tests.app")
    logger.setLevel(logging.INFO)
    yield logger
    logger.setLevel(logging.NOTSET)


class Collect(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


# -- progress -------------------------------------------------------------------------------
async def test_progress_is_readable_while_the_job_runs_and_kept_after(
    store: Store, workers: list[Worker]
) -> None:
    reported = asyncio.Event()
    go_on = asyncio.Event()
    refused: list[str] = []

    async def crunch(ctx: JobContext) -> str:
        assert await ctx.progress({"done": 3, "of": 10})
        try:
            await ctx.progress({"bad": {1, 2}})
        except SerializationError as exc:
            refused.append(str(exc))
        reported.set()
        await go_on.wait()
        assert await ctx.progress({"done": 10, "of": 10})
        return "ok"

    job = await enqueue(store, "crunch")
    await start(workers, store, registry(make_task(crunch, "crunch")))
    client = Client(store)
    await asyncio.wait_for(reported.wait(), 10)
    running = await client.get(job.id)
    assert running.status is JobStatus.RUNNING
    assert running.progress == {"done": 3, "of": 10}  # the bad value stored nothing
    assert refused and "progress" in refused[0] and "set" in refused[0]
    go_on.set()
    assert await client.result(job.id, timeout=10) == "ok"
    assert (await client.get(job.id)).progress == {"done": 10, "of": 10}


async def test_progress_of_a_run_taken_over_is_refused(
    harness: Harness, workers: list[Worker]
) -> None:
    """Fenced like the outcome: once another worker owns the job, ``progress`` returns
    False and the new owner's progress stands."""
    store = harness.store
    started, go = asyncio.Event(), asyncio.Event()
    answers: list[bool] = []

    async def slow(ctx: JobContext) -> None:
        started.set()
        await go.wait()
        answers.append(await ctx.progress("stale"))

    job = await enqueue(store, "slow")
    clock = FakeClock()  # no heartbeat happens unless this clock moves
    # One slot, held by the run: the worker cannot re-claim its own expired job first.
    await start(
        workers, store, registry(make_task(slow, "slow")), clock=clock, lease=5, concurrency=1
    )
    await asyncio.wait_for(started.wait(), 10)
    await harness.advance(6)  # the lease expired: another worker takes the job
    thief = await claim_one(store, "thief", tasks=("slow",), lease=60)
    assert await store.set_progress(thief.id, thief.attempt, "thief", "fresh")
    go.set()

    async def answered() -> bool:
        return bool(answers)

    await eventually(answered)
    assert answers == [False]
    assert (await Client(store).get(job.id)).progress == "fresh"


async def test_a_plain_function_reports_progress_from_its_thread(
    store: Store, workers: list[Worker]
) -> None:
    def count(ctx: JobContext, n: int) -> int:
        assert threading.current_thread() is not threading.main_thread()
        for i in range(1, n + 1):
            assert ctx.report_progress(i)
        return n

    job = await enqueue(store, "count", 4)
    await start(workers, store, registry(make_task(count, "count")))
    client = Client(store)
    assert await client.result(job.id, timeout=10) == 4
    assert (await client.get(job.id)).progress == 4


async def test_report_progress_on_the_loop_is_refused(store: Store, workers: list[Worker]) -> None:
    async def wrong(ctx: JobContext) -> None:
        ctx.report_progress(1)

    job = await enqueue(store, "wrong")
    await start(workers, store, registry(make_task(wrong, "wrong", retries=0)))
    record = await store.wait_finished(job.id, 10)
    assert record.status is JobStatus.DEAD
    assert record.error_type == f"{InvalidJobError.__module__}.InvalidJobError"
    assert "await ctx.progress" in (record.error_message or "")


# -- logs -------------------------------------------------------------------------------------
async def test_concurrent_runs_keep_their_own_records_from_any_logger(
    store: Store, workers: list[Worker], app_logger: logging.Logger
) -> None:
    library = logging.getLogger("tests.somelib")  # does not propagate, has no handler
    library.propagate = False
    library.setLevel(logging.DEBUG)
    both_started = asyncio.Barrier(2)

    async def work(ctx: JobContext, name: str) -> None:
        app_logger.info("start %s", name)
        await both_started.wait()  # both runs are now logging at the same time
        library.debug("lib call for %s", name)
        await asyncio.sleep(0)
        app_logger.warning("end %s", name)

    try:
        a = await enqueue(store, "work", "a")
        b = await enqueue(store, "work", "b")
        await start(workers, store, registry(make_task(work, "work")), concurrency=2)
        client = Client(store)
        for job, name in ((a, "a"), (b, "b")):
            await client.result(job.id, timeout=10)
            logs = await client.logs(job.id)
            assert [(e.attempt, e.level, e.logger, e.message) for e in logs] == [
                (1, "INFO", "tests.app", f"start {name}"),
                (1, "DEBUG", "tests.somelib", f"lib call for {name}"),
                (1, "WARNING", "tests.app", f"end {name}"),
            ]
            assert all(e.at.tzinfo is not None for e in logs)
    finally:
        library.propagate = True
        library.setLevel(logging.NOTSET)


async def test_a_plain_function_s_records_are_caught_in_its_thread(
    store: Store, workers: list[Worker], app_logger: logging.Logger
) -> None:
    def shout(ctx: JobContext, word: str) -> str:
        app_logger.info("shouting %s", word)
        return word.upper()

    job = await enqueue(store, "shout", "hey")
    await start(workers, store, registry(make_task(shout, "shout")))
    client = Client(store)
    assert await client.result(job.id, timeout=10) == "HEY"
    assert [e.message for e in await client.logs(job.id)] == ["shouting hey"]


async def test_each_attempt_keeps_its_records_with_the_exception_text(
    harness: Harness, workers: list[Worker], app_logger: logging.Logger
) -> None:
    store = harness.store

    async def flaky(ctx: JobContext) -> str:
        app_logger.info("attempt %d", ctx.attempt)
        if ctx.attempt == 1:
            try:
                raise KeyError("missing")
            except KeyError:
                app_logger.exception("lookup failed")
                raise
        return "second time lucky"

    task = make_task(flaky, "flaky", retries=1, backoff=Backoff.constant(0.001))
    job = await enqueue(store, "flaky", max_attempts=2)
    await start(workers, store, registry(task))
    client = Client(store)

    async def retry_waits() -> bool:  # (on PostgreSQL's real clock it may be running already)
        record = await client.get(job.id)
        return record.status is JobStatus.SCHEDULED or record.attempt == 2

    await eventually(retry_waits)
    await harness.advance(1)  # the store's clock: the retry is due
    assert await client.result(job.id, timeout=10) == "second time lucky"
    first = await client.logs(job.id, attempt=1)
    assert [(e.level, e.message.splitlines()[0]) for e in first] == [
        ("INFO", "attempt 1"),
        ("ERROR", "lookup failed"),
    ]
    assert "Traceback" in first[1].message and "KeyError: 'missing'" in first[1].message
    assert [e.message for e in await client.logs(job.id, attempt=2)] == ["attempt 2"]
    assert [e.attempt for e in await client.logs(job.id)] == [1, 1, 2]


async def test_a_cancelled_run_keeps_what_it_logged(
    store: Store, workers: list[Worker], app_logger: logging.Logger
) -> None:
    started = asyncio.Event()

    async def forever(ctx: JobContext) -> None:
        app_logger.info("waiting forever")
        started.set()
        await asyncio.sleep(3600)

    job = await enqueue(store, "forever")
    await start(workers, store, registry(make_task(forever, "forever")), lease=0.6)
    client = Client(store)
    await asyncio.wait_for(started.wait(), 10)
    await client.cancel(job.id)
    record = await store.wait_finished(job.id, 10)
    assert record.status is JobStatus.CANCELLED
    assert [e.message for e in await client.logs(job.id)] == ["waiting forever"]


async def test_records_beyond_the_bounds_are_dropped_and_counted(
    store: Store, workers: list[Worker], app_logger: logging.Logger
) -> None:
    async def chatty(ctx: JobContext, n: int, size: int) -> None:
        for i in range(n):
            app_logger.info("line %d %s", i, "x" * size)

    by_count = await enqueue(store, "chatty", 20, 1)
    by_size = await enqueue(store, "chatty", 10, 300)
    tasks = registry(make_task(chatty, "chatty"))
    await start(workers, store, tasks, max_log_records=5, max_log_bytes=1000, concurrency=1)
    client = Client(store)
    await client.result(by_count.id, timeout=10)
    await client.result(by_size.id, timeout=10)
    counted = await client.logs(by_count.id)
    assert [e.message.split()[1] for e in counted[:5]] == ["0", "1", "2", "3", "4"]
    assert len(counted) == 6 and counted[-1].level == "WARNING"
    assert counted[-1].message.startswith("15 log records dropped")
    sized = await client.logs(by_size.id)  # 300 chars + logger name per record: 3 fit in 1000
    assert len(sized) == 4 and sized[-1].message.startswith("7 log records dropped")


async def test_normal_logging_output_is_unchanged(
    store: Store, workers: list[Worker], app_logger: logging.Logger
) -> None:
    """The user's handler gets the same records, with or without capture, and records
    logged outside any attempt are not captured."""
    seen = Collect()
    app_logger.addHandler(seen)
    try:

        async def say(ctx: JobContext) -> None:
            app_logger.info("inside %s", "the job")

        job = await enqueue(store, "say")
        await start(workers, store, registry(make_task(say, "say")))
        app_logger.info("outside any job")
        client = Client(store)
        await client.result(job.id, timeout=10)
    finally:
        app_logger.removeHandler(seen)
    assert sorted(r.getMessage() for r in seen.records) == ["inside the job", "outside any job"]
    assert [e.message for e in await client.logs(job.id)] == ["inside the job"]


async def test_capture_can_be_turned_off(
    store: Store, workers: list[Worker], app_logger: logging.Logger
) -> None:
    async def say(ctx: JobContext) -> None:
        app_logger.info("not kept")

    job = await enqueue(store, "say")
    await start(workers, store, registry(make_task(say, "say")), capture_logs=False)
    client = Client(store)
    await client.result(job.id, timeout=10)
    assert await client.logs(job.id) == []


async def test_logs_of_an_unknown_job_and_bad_attempt_are_typed_errors(store: Store) -> None:
    client = Client(store)
    with pytest.raises(JobNotFoundError):
        await client.logs("00000000-0000-0000-0000-000000000000")
    with pytest.raises(InvalidJobError, match="attempt"):
        await client.logs("00000000-0000-0000-0000-000000000000", attempt=0)


async def test_bad_limits_are_refused(store: Store) -> None:
    with pytest.raises(InvalidJobError, match="max_log_records"):
        Worker(store, registry(), max_log_records=0)
    with pytest.raises(InvalidJobError, match="max_log_bytes"):
        Worker(store, registry(), max_log_bytes=True)


async def test_a_closed_buffer_ignores_late_records() -> None:
    logs = AttemptLogs(max_records=3, max_bytes=100)
    record: Any = logging.LogRecord("x", logging.INFO, __file__, 1, "late", None, None)
    logs.close()
    logs.add(record)
    assert logs.entries == [] and logs.dropped == 0
