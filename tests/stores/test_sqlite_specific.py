"""SQLiteStore only: several processes, concurrent migrations, locks, schema version."""

from __future__ import annotations

import asyncio
import platform
import sqlite3
import threading
import time
from datetime import timedelta
from pathlib import Path
from uuid import uuid4

import pytest

from beat.stores import (
    JobStatus,
    NewJob,
    SQLiteStore,
    StoreConfigError,
    StoreUnavailableError,
)
from beat.stores._sqlite import SCHEMA_VERSION, _retrying_busy

from ._processes import HERE, claim_in_processes, run_together

HEAP_FAULTS = HERE / "heap_faults.py"

pytestmark = pytest.mark.asyncio


async def test_four_processes_claim_every_job_exactly_once(tmp_path: Path) -> None:
    path = tmp_path / "jobs.db"
    async with SQLiteStore(path) as store:
        jobs = await store.enqueue([NewJob("t", args=[i]) for i in range(500)])
        results = await asyncio.to_thread(claim_in_processes, "sqlite", str(path))
        claimed = [i for r in results for i in r]
        assert len(claimed) == len(set(claimed)) == 500
        assert set(claimed) == {str(j.id) for j in jobs}
        assert sum(1 for r in results if r) > 1, [len(r) for r in results]
        done = await store.list_jobs(status="succeeded", limit=1000)
        assert len(done) == 500
        assert {r.worker for r in done} == {r.result for r in done}


async def test_concurrent_first_opens_migrate_once(tmp_path: Path) -> None:
    path = tmp_path / "new.db"
    stores = [SQLiteStore(path) for _ in range(6)]
    await asyncio.gather(*(s.open() for s in stores))
    try:
        [a] = await stores[0].enqueue([NewJob("t")])
        for s in stores:
            assert await s.get(a.id) == a
        conn = sqlite3.connect(path)
        assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        conn.close()
    finally:
        await asyncio.gather(*(s.close() for s in stores))


async def test_jobs_survive_reopening(tmp_path: Path) -> None:
    path = tmp_path / "jobs.db"
    async with SQLiteStore(path) as store:
        [job] = await store.enqueue([NewJob("t", kwargs={"a": 1})])
    async with SQLiteStore(path) as store:
        again = await store.get(job.id)
        assert again is not None and again.kwargs == {"a": 1}
        assert again.status is JobStatus.QUEUED


async def test_each_enqueue_that_stores_a_job_counts_one_new_signal(tmp_path: Path) -> None:
    """Waiters in other processes poll the ``new`` counter (should the doorbell's datagram
    be lost): every enqueue that stores something moves it, once per transaction."""
    from beat._client import Client, JobRequest
    from beat.stores import Unique

    path = tmp_path / "jobs.db"

    def new_signals() -> int:
        conn = sqlite3.connect(path)
        try:
            return int(
                conn.execute("SELECT counter FROM beat_signals WHERE name = 'new'").fetchone()[0]
            )
        finally:
            conn.close()

    async with SQLiteStore(path) as store:
        before = new_signals()
        await store.enqueue([NewJob("t", args=[i]) for i in range(3)])
        assert new_signals() == before + 1
        await Client(store).enqueue_many([JobRequest.of("t", i) for i in range(3)])
        assert new_signals() == before + 2
        unique = NewJob("t", unique=Unique(key="k"))
        await store.enqueue([unique])
        assert new_signals() == before + 3
        [found] = await store.enqueue([unique])  # a conflict only: nothing new to claim
        assert found.conflict and new_signals() == before + 3


async def test_newer_schema_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "jobs.db"
    async with SQLiteStore(path):
        pass
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA user_version = 99")
    conn.close()
    with pytest.raises(StoreConfigError, match="99"):
        await SQLiteStore(path).open()


async def test_unopenable_path(tmp_path: Path) -> None:
    with pytest.raises(StoreConfigError):
        await SQLiteStore(tmp_path / "missing" / "dir" / "jobs.db").open()


async def test_a_file_that_is_not_a_database_is_a_config_error(tmp_path: Path) -> None:
    """Not an outage (StoreUnavailableError says "retry later"): the path is wrong."""
    path = tmp_path / "notes.txt"
    path.write_text("not a database, " * 20)
    with pytest.raises(StoreConfigError, match="is not a SQLite database"):
        await SQLiteStore(path).open()
    assert path.read_text() == "not a database, " * 20  # left as it was


async def test_closed_store_is_unavailable(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "jobs.db")
    with pytest.raises(StoreUnavailableError):
        await store.get(uuid4())
    await store.open()
    await store.open()  # idempotent
    await store.close()
    await store.close()
    with pytest.raises(StoreUnavailableError):
        await store.enqueue([NewJob("t")])


async def test_a_held_write_lock_blocks_neither_the_loop_nor_forever(tmp_path: Path) -> None:
    path = tmp_path / "jobs.db"
    async with SQLiteStore(path, busy_timeout=0.5) as store:
        await store.enqueue([NewJob("t")])
        locked, release = threading.Event(), threading.Event()

        def hold() -> None:
            conn = sqlite3.connect(path, isolation_level=None)
            conn.execute("BEGIN IMMEDIATE")
            locked.set()
            release.wait(10)
            conn.execute("ROLLBACK")
            conn.close()

        holder = threading.Thread(target=hold)
        holder.start()
        try:
            assert await asyncio.to_thread(locked.wait, 5)
            ticks = 0

            async def ticker() -> None:
                nonlocal ticks
                while True:
                    await asyncio.sleep(0.01)
                    ticks += 1

            task = asyncio.create_task(ticker())
            started = time.monotonic()
            with pytest.raises(StoreUnavailableError, match="locked"):
                await store.claim("w", queues=["default"], tasks=["t"], limit=1, lease=5)
            assert time.monotonic() - started >= 0.4
            assert ticks >= 10  # the loop kept running while the claim waited for the lock
            task.cancel()
            # Reads are not blocked by a writer in WAL mode.
            assert len(await store.list_jobs()) == 1
        finally:
            release.set()
            holder.join()
        assert len(await store.claim("w", queues=["default"], tasks=["t"], limit=1, lease=5)) == 1


async def test_a_call_that_finds_the_file_locked_is_tried_again(tmp_path: Path) -> None:
    """Another process's write lock: the call is tried again (not failed, not waited on by
    SQLite's millisecond busy sleeps) until it gets the lock; a snapshot the failed try left
    open is rolled back first; any other error is raised at once."""
    path = tmp_path / "jobs.db"
    holder = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    holder.execute("PRAGMA journal_mode = WAL")
    holder.execute("CREATE TABLE t (x INTEGER)")
    conn = sqlite3.connect(path, isolation_level=None, timeout=0)
    try:
        for snapshot in (False, True):
            holder.execute("BEGIN IMMEDIATE")
            tries = 0

            def write(conn: sqlite3.Connection, snapshot: bool = snapshot) -> int:
                nonlocal tries
                tries += 1
                if tries == 3:
                    holder.execute("ROLLBACK")  # the other process lets go
                # A read snapshot first, then a write: the write is the one refused.
                conn.execute("BEGIN" if snapshot else "BEGIN IMMEDIATE")
                count: int = conn.execute("SELECT count(*) FROM t").fetchone()[0]
                conn.execute("INSERT INTO t VALUES (?)", (tries,))
                conn.execute("COMMIT")
                return count

            assert _retrying_busy(write, conn, 5.0) == int(snapshot)
            assert tries == 3 and not conn.in_transaction
        assert conn.execute("SELECT x FROM t").fetchall() == [(3,), (3,)]

        def broken(conn: sqlite3.Connection) -> None:
            nonlocal tries
            tries += 1
            conn.execute("SELECT * FROM missing")

        tries = 0
        with pytest.raises(sqlite3.OperationalError, match="no such table"):
            _retrying_busy(broken, conn, 5.0)
        assert tries == 1
    finally:
        conn.close()
        holder.close()


class _Steps:
    """SQLite virtual-machine steps taken on ``store``'s connection since the last
    :meth:`take`: a count of work, where a timing would be noise."""

    def __init__(self) -> None:
        self.count = 0

    def _step(self) -> int:
        self.count += 1
        return 0  # go on

    async def install(self, store: SQLiteStore, *, scan: bool = False) -> _Steps:
        """Count on the store's connection, or (``scan``) on its scan connection."""
        await store._run(lambda conn: conn.set_progress_handler(self._step, 1), scan=scan)
        return self

    def take(self) -> int:
        count, self.count = self.count, 0
        return count


@pytest.mark.parametrize("backlog", ["due later", "in another queue"])
async def test_claims_and_waits_read_no_jobs_due_later_or_of_other_queues(
    tmp_path: Path, backlog: str
) -> None:
    """A claim and a wait's look for queue "fast" cost the same with 40 or 4,000 jobs due
    later in it, or due now in queue "slow" (a backlog another worker drains): they seek to
    their queue, then from one priority level to the next, instead of reading those jobs."""
    async with SQLiteStore(tmp_path / "jobs.db") as store:
        steps = await _Steps().install(store)
        later = await store.now() + timedelta(hours=1)

        def jobs(n: int) -> list[NewJob]:
            if backlog == "due later":
                return [
                    NewJob("t", queue="fast", priority=i % 2, scheduled_at=later) for i in range(n)
                ]
            return [NewJob("t", queue="slow", priority=i % 2) for i in range(n)]

        async def cost() -> tuple[int, int]:
            [due] = await store.enqueue([NewJob("t", queue="fast", priority=1)])
            steps.take()
            [claimed] = await store.claim("w", queues=["fast"], tasks=["t"], limit=10, lease=60)
            assert claimed.id == due.id
            claim_steps = steps.take()
            await store.wait_for_jobs(0, queues=["fast"], tasks=["t"])
            return claim_steps, steps.take()

        await store.enqueue(jobs(40))
        few = await cost()
        await store.enqueue(jobs(3960))
        many = await cost()
        assert many[0] < 1.5 * few[0] and many[1] < 1.5 * few[1], (few, many)


async def test_heartbeats_and_batch_completions_grow_linearly(tmp_path: Path) -> None:
    """Ten times the running jobs, about ten times the work: each listed job is found by
    key, not by reading the whole list again for every row."""
    async with SQLiteStore(tmp_path / "jobs.db") as store:
        steps = await _Steps().install(store)

        async def cost(n: int) -> tuple[int, int]:
            await store.enqueue([NewJob("t") for _ in range(n)])
            claimed = await store.claim("w", queues=["default"], tasks=["t"], limit=n, lease=60)
            steps.take()
            beat = await store.heartbeat("w", [(r.id, r.attempt) for r in claimed], 60)
            assert not beat.lost
            heartbeat = steps.take()
            done = await store.complete_many([(r.id, r.attempt, "w", None) for r in claimed])
            assert all(done) and len(done) == n
            return heartbeat, steps.take()

        small, large = await cost(100), await cost(1000)
        assert large[0] < 20 * small[0] and large[1] < 20 * small[1], (small, large)


async def test_prune_takes_the_write_lock_one_batch_at_a_time(tmp_path: Path) -> None:
    """1,000 jobs to prune in batches of 100: ten short write transactions (and a last one
    that finds nothing), so other writers wait for one batch at most, never for the whole
    prune. And with nothing old enough, a prune reads a few index entries, not every
    finished job."""
    from beat.stores import PruneRule

    async with SQLiteStore(tmp_path / "jobs.db") as store:
        await store.enqueue([NewJob("t") for _ in range(1000)])
        claimed = await store.claim("w", queues=["default"], tasks=["t"], limit=1000, lease=60)
        assert all(await store.complete_many([(r.id, r.attempt, "w", None) for r in claimed]))
        statements: list[str] = []
        await store._run(lambda conn: conn.set_trace_callback(statements.append))
        steps = await _Steps().install(store)
        young = [PruneRule(JobStatus.SUCCEEDED, max_age=3600)]
        assert await store.prune(young) == 0
        assert steps.take() < 500  # 39; ranking every finished job took 73,116
        statements.clear()
        store.prune_batch = 100
        assert await store.prune([PruneRule(JobStatus.SUCCEEDED, max_age=0)]) == 1000
        assert statements.count("BEGIN IMMEDIATE") == 11, statements[:20]
        assert await store.list_jobs(limit=10) == []


async def test_a_page_of_the_listing_reads_its_rows_not_the_table(tmp_path: Path) -> None:
    """The first page and the page before the newest job, of all jobs and of one task, cost
    the same with 100 or 10,000 jobs stored: read in order off the primary key or the task
    index, never sorted."""
    async with SQLiteStore(tmp_path / "jobs.db") as store:
        steps = await _Steps().install(store, scan=True)  # listings run there

        async def cost() -> list[int]:
            [newest] = await store.enqueue([NewJob("t")])
            spent = []
            for task in (None, "t"):
                for before in (None, newest.id):
                    steps.take()
                    page = await store.list_jobs(limit=10, task=task, before=before)
                    assert len(page) == 10
                    spent.append(steps.take())
            return spent

        await store.enqueue([NewJob("t" if i % 10 == 0 else "u") for i in range(100)])
        few = await cost()
        await store.enqueue([NewJob("u") for i in range(10_000)])
        await store.enqueue([NewJob("t" if i % 10 == 0 else "u") for i in range(100)])
        many = await cost()
        assert all(m < 1.5 * f for f, m in zip(few, many, strict=True)), (few, many)


async def test_counts_and_listings_never_hold_up_claims(tmp_path: Path) -> None:
    """An operator's count or listing (on a large file, seconds) runs on the store's scan
    thread: here it is held mid-query, and enqueue, claim and completion go through
    meanwhile; released, it answers."""
    release = threading.Event()
    entered = threading.Event()

    def hold() -> int:
        entered.set()
        release.wait(10)
        return 0  # go on

    async with SQLiteStore(tmp_path / "jobs.db") as store:
        await store.enqueue([NewJob("t")])
        await store._run(lambda conn: conn.set_progress_handler(hold, 1), scan=True)
        counting = asyncio.create_task(store.count_jobs())
        listing = asyncio.create_task(store.list_jobs(limit=10))
        assert await asyncio.to_thread(entered.wait, 10)
        [job] = await store.enqueue([NewJob("t")])
        claimed = await store.claim("w", queues=["default"], tasks=["t"], limit=2, lease=60)
        assert job.id in {r.id for r in claimed}
        assert all(await store.complete_many([(r.id, r.attempt, "w", None) for r in claimed]))
        assert not counting.done() and not listing.done()
        release.set()
        assert await counting in (
            {"default": {JobStatus.QUEUED: 1}},  # counted before the claims
            {"default": {JobStatus.SUCCEEDED: 2}},
        )
        assert len(await listing) in (1, 2)
        assert await store.count_jobs() == {"default": {JobStatus.SUCCEEDED: 2}}


async def test_a_finish_wakes_the_waiters_of_that_job_only(tmp_path: Path) -> None:
    """101 results awaited in one process; another store object on the file (as another
    process would) finishes one job. Its waiter returns; the other 100 stay parked, neither
    woken by the ring nor polling on their own (one look serves them all)."""
    async with (
        SQLiteStore(tmp_path / "jobs.db") as mine,
        SQLiteStore(tmp_path / "jobs.db") as other,
    ):
        jobs = await mine.enqueue([NewJob("t") for _ in range(101)])
        since = mine.waits.total
        waits = [asyncio.create_task(mine.wait_finished(job.id, 60)) for job in jobs]
        try:
            async with asyncio.timeout(10):
                await mine.waits.until_parked(since, 101)
            parked = mine.waits.total
            [run] = await other.claim("w", queues=["default"], tasks=["t"], limit=1, lease=60)
            assert run.id == jobs[0].id
            assert await other.complete(run.id, run.attempt, "w", 42)
            async with asyncio.timeout(10):
                done = await waits[0]
            assert (done.status, done.result) == (JobStatus.SUCCEEDED, 42)
            assert (mine.waits.total, mine.waits.parked) == (parked, 100)
        finally:
            for wait in waits:
                wait.cancel()


async def test_a_row_that_is_not_utf8_fails_typed_not_with_attribute_error(
    tmp_path: Path,
) -> None:
    """A text column holding bytes that are not UTF-8 (written by another program: beat
    refuses such text at the call): the sqlite3 module itself raises the OperationalError,
    one without an SQLite error code. Every read of the row raises the store's typed error,
    naming the column, instead of an AttributeError from the busy retry."""
    path = tmp_path / "jobs.db"
    async with SQLiteStore(path) as store:
        [job] = await store.enqueue([NewJob("t")])
        [run] = await store.claim("w", queues=["default"], tasks=["t"], limit=1, lease=60)
        assert await store.complete(run.id, run.attempt, "w", "fine")
        conn = sqlite3.connect(path)
        conn.execute("UPDATE beat_jobs SET result = CAST(x'80' AS TEXT)")
        conn.commit()
        conn.close()
        reads = {
            "get": lambda: store.get(job.id),
            "list_jobs": lambda: store.list_jobs(),  # on the scan thread
            "wait_finished": lambda: store.wait_finished(job.id, 0),
        }
        for what, read in reads.items():
            with pytest.raises(StoreUnavailableError, match=r"decode.*'result'") as caught:
                await read()
            assert isinstance(caught.value.__cause__, sqlite3.OperationalError), what


async def test_busy_retry_raises_an_error_without_sqlite_code_as_it_is() -> None:
    error = sqlite3.OperationalError("raised by the sqlite3 module")
    assert not hasattr(error, "sqlite_errorcode")
    tries = 0

    def fails(conn: sqlite3.Connection) -> None:
        nonlocal tries
        tries += 1
        raise error

    conn = sqlite3.connect(":memory:")
    try:
        with pytest.raises(sqlite3.OperationalError) as caught:
            _retrying_busy(fails, conn, 5.0)
    finally:
        conn.close()
    assert caught.value is error and tries == 1


@pytest.mark.skipif(
    platform.system() != "Linux" or platform.libc_ver()[0] != "glibc",
    reason="counts a thread's page faults under glibc's allocator",
)
async def test_claims_after_another_connection_wrote_do_not_fault_the_heap_back_in(
    tmp_path: Path,
) -> None:
    """A claim's temporary b-trees are freed at its end; with the store thread's heap reserve
    the next claim reuses that memory instead of faulting it back in from the system (~80
    page faults a claim without it, in a fresh process). Another connection enqueues before
    each claim, so that each claim also reads its pages afresh, as a worker's do."""
    [count] = await asyncio.to_thread(run_together, HEAP_FAULTS, [[str(tmp_path / "jobs.db")]])
    assert count < 100, f"{count} page faults in 50 claims and completions"


async def test_migrate_false_creates_nothing_and_needs_no_write_lock(tmp_path: Path) -> None:
    """``migrate=False`` (the CLI's way in): a missing file is refused, not created; a beat
    store opens and reads while another process holds the write lock, which opening the
    usual way waits for (it checks the schema inside a write transaction)."""
    missing = tmp_path / "typo.db"
    with pytest.raises(StoreConfigError, match="cannot open"):
        await SQLiteStore(missing, migrate=False).open()
    assert not missing.exists()

    path = tmp_path / "jobs.db"
    async with SQLiteStore(path) as store:
        await store.enqueue([NewJob("t")])
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    try:
        async with SQLiteStore(path, busy_timeout=0.2, migrate=False) as looking:
            assert [j.task for j in await looking.list_jobs()] == ["t"]
        with pytest.raises(StoreUnavailableError, match="locked"):
            await SQLiteStore(path, busy_timeout=0.2).open()
    finally:
        holder.execute("ROLLBACK")
        holder.close()
