"""SQLiteStore: the file deleted or replaced while the store has it open.

The store's connections keep the old inode. Before, it went on there unnoticed: its
outcomes went where no other process reads, jobs enqueued by others into the new file at
the path stayed queued forever, and health said ok. Now the store looks (one ``stat``) at
most every ``poll_interval`` and in every poll of a parked wait, and from the first look
that finds another file (or none) every call raises :class:`StoreUnavailableError` naming
the path and what happened, until the store is closed and opened again.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Awaitable, Callable
from pathlib import Path
from uuid import uuid4

import pytest

from beat import JobContext, Scheduler
from beat.stores import NewJob, SQLiteStore, StoreUnavailableError

pytestmark = pytest.mark.asyncio


def _take_away(path: Path, *suffixes: str) -> list[str]:
    """Delete these files of the database (``""``: the main file); those that were there."""
    found = []
    for suffix in suffixes:
        file = Path(f"{path}{suffix}")
        if file.exists():
            file.unlink()
            found.append(suffix)
    return found


def _delete(path: Path) -> None:
    """What an operator's ``rm jobs.db*`` does."""
    assert "" in _take_away(path, "", "-wal", "-shm")


async def _must_raise(what: str, call: Callable[[], Awaitable[object]]) -> None:
    async with asyncio.timeout(10):
        await call()
    raise AssertionError(f"{what} did not raise")


async def _refuses_everything(store: SQLiteStore, match: str) -> None:
    calls: dict[str, Callable[[], Awaitable[object]]] = {
        "get": lambda: store.get(uuid4()),
        "enqueue": lambda: store.enqueue([NewJob("t")]),
        "claim": lambda: store.claim("w", queues=["default"], tasks=["t"], limit=1, lease=5),
        "list_jobs": store.list_jobs,  # the scan thread
        "count_jobs": store.count_jobs,
        "wait_for_jobs": lambda: store.wait_for_jobs(0),
        "schedules_version": store.schedules_version,
    }
    for what, call in calls.items():
        with pytest.raises(StoreUnavailableError, match=match):
            await _must_raise(what, call)


async def test_a_deleted_file_is_noticed_by_a_parked_wait_and_refused_after(
    tmp_path: Path,
) -> None:
    path = tmp_path / "jobs.db"
    store = SQLiteStore(path, poll_interval=0.05)
    await store.open()
    try:
        [job] = await store.enqueue([NewJob("t")])
        _delete(path)
        # A worker parked in its wait: the wait's next poll looks at the file, and raises.
        deleted = f"SQLite file {path} was deleted while this store had it open"
        with pytest.raises(StoreUnavailableError, match=deleted) as caught:
            await _must_raise("the wait", lambda: store.wait_for_jobs(30, queues=["other"]))
        assert "Close the store and open it again" in str(caught.value)
        await _refuses_everything(store, deleted)
        assert not path.exists()  # nothing was written to a new file at the path either
    finally:
        await store.close()
    # Opened again: the file now at the path (a new, empty one here).
    async with store:
        assert await store.get(job.id) is None
        [again] = await store.enqueue([NewJob("t")])
        assert await store.get(again.id) == again


async def test_a_file_renamed_over_is_noticed_and_reopening_reads_the_new_one(
    tmp_path: Path,
) -> None:
    path, other = tmp_path / "jobs.db", tmp_path / "other.db"
    async with SQLiteStore(other) as elsewhere:
        [theirs] = await elsewhere.enqueue([NewJob("theirs")])
    store = SQLiteStore(path, poll_interval=0.05)
    await store.open()
    try:
        [mine] = await store.enqueue([NewJob("mine")])
        version = await store.schedules_version()
        os.replace(other, path)
        # A wait for schedule changes looks at the file first, and then at each poll.
        replaced = f"SQLite file {path} was replaced by another file"
        with pytest.raises(StoreUnavailableError, match=replaced):
            await _must_raise("the wait", lambda: store.wait_schedules_changed(version, 30))
        await _refuses_everything(store, replaced)
    finally:
        await store.close()
    # SQLite leaves the old file's -wal and -shm at the path (it does not checkpoint a moved
    # file on close); whoever opened the new file with them would have the old file's
    # pages written over it. Replacing a file takes them away too (docs/stores.md).
    assert _take_away(path, "-wal", "-shm") == ["-wal", "-shm"]
    async with store:
        assert await store.get(mine.id) is None
        assert await store.get(theirs.id) == theirs


async def test_any_call_notices_within_a_poll_interval_and_calls_do_not_stat_meanwhile(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A busy worker may never wait: its claims and completions look at the file too, but at
    most once per ``poll_interval`` (a stat costs ~9 µs here, a job cycle ~2 ms)."""
    path = tmp_path / "jobs.db"
    looks: list[str] = []
    real_stat = os.stat

    def counting_stat(target: str, *args: object, **kwargs: object) -> os.stat_result:
        if target == str(path):
            looks.append(target)
        return real_stat(target, *args, **kwargs)  # type: ignore[arg-type]

    async with SQLiteStore(path, poll_interval=3600) as slow:
        monkeypatch.setattr(os, "stat", counting_stat)
        for _ in range(50):
            [job] = await slow.enqueue([NewJob("t")])
            [run] = await slow.claim("w", queues=["default"], tasks=["t"], limit=1, lease=60)
            assert await slow.complete(run.id, run.attempt, "w", None)
        assert looks == []  # the first look is due an hour after open
        monkeypatch.undo()

    async with SQLiteStore(path, poll_interval=0.05) as store:
        _delete(path)

        async def get_until_refused() -> None:
            async with asyncio.timeout(10):
                while True:  # ordinary calls, no wait: one of them looks within 50 ms
                    await store.get(job.id)

        with pytest.raises(StoreUnavailableError, match="was deleted"):
            await get_until_refused()


async def test_a_workers_health_reports_the_replaced_file(tmp_path: Path) -> None:
    """The reviewers' case: a scheduler's worker on the file, the file deleted under it. Its
    next poll fails; the worker logs the outage (naming the file) and health is not ok."""
    path = tmp_path / "jobs.db"
    store = SQLiteStore(path, poll_interval=0.05)
    scheduler = Scheduler(store=store)

    @scheduler.task(name="noop")
    async def noop(ctx: JobContext) -> None:
        return None

    noticed = asyncio.Event()
    records: list[logging.LogRecord] = []

    class Outages(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            if "store unavailable" in record.getMessage():
                records.append(record)
                noticed.set()

    handler = Outages(logging.WARNING)
    worker_log = logging.getLogger("beat.worker")
    worker_log.addHandler(handler)
    try:
        async with scheduler:
            since = store.waits.total
            async with asyncio.timeout(10):
                await store.waits.until_parked(since)  # the worker waits for jobs
            assert scheduler.health().ok()
            _delete(path)
            async with asyncio.timeout(10):
                await noticed.wait()
            health = scheduler.health()
            assert not health.ok() and health.store_outage is not None
            [record] = records
            assert f"SQLite file {path} was deleted" in record.getMessage()
            await scheduler.shutdown(timeout=0)
    finally:
        worker_log.removeHandler(handler)
