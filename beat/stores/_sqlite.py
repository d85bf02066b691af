"""``SQLiteStore``: jobs in one SQLite file, shared by several processes on one host.

Standard library ``sqlite3`` only. The file runs in WAL mode (readers never block the writer),
and processes wait for each other's short write transactions (up to ``busy_timeout``)
instead of failing: a call that finds the file locked is tried again after a pause that
starts at 50 µs and doubles up to 1 ms (see :func:`_retrying_busy`). Every call runs on a
dedicated single worker thread per store, which owns the connection, so the event loop never
blocks on disk or locks; the long reads (counts, listings) have a thread and a read-only
connection of their own (see ``_run``). A claim is one ``BEGIN IMMEDIATE`` transaction (it
takes the write lock first, so two claims are serialized and never see the same job as
free); every other transition is a single ``UPDATE … RETURNING``.

Time comes from ``clock`` (epoch seconds, default :func:`time.time`) read inside the write
transaction; timestamps are stored as integer microseconds since the epoch, UTC. Processes
sharing a file should share a host clock.

Wake-ups: a change made through this store object wakes its waiters at once; one made by
another process rings this process's doorbell (``_doorbell.py``: a Unix datagram per commit
to each process waiting for that kind of change, sent from the committer's thread as soon as
its commit returns). Neither is trusted alone: the ``new`` counter of ``beat_signals`` moves
when jobs become claimable (once per enqueue transaction, and by a trigger when a job is
queued again), :meth:`SQLiteStore.wait_for_jobs` polls it every ``poll_interval`` seconds
and :meth:`SQLiteStore.wait_finished` polls the job likewise, so a lost ring costs at most
one poll interval.

Schema version: ``PRAGMA user_version`` (``SCHEMA_VERSION``, now 5), migrated inside
``BEGIN IMMEDIATE`` so that processes opening a new file at once create it exactly once.
The schema and every statement are in ``_sqlite_sql.py``; this module runs them.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import os
import sqlite3
import stat
import time
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Any, NamedTuple, TypeVar
from uuid import UUID

from ._base import (
    FINISHED_VALUES,
    JSON,
    LEASE_EXPIRED,
    STORED_WAITING,
    Claimed,
    Enqueued,
    Heartbeat,
    InstanceRecord,
    JobRecord,
    JobStatus,
    LogEntry,
    NewJob,
    OpenedLoop,
    PreparedJob,
    PreparedRule,
    PreparedUnique,
    PruneKey,
    PruneRule,
    Store,
    as_enqueued,
    batch_outcome,
    check_attempt,
    check_aware,
    check_claim,
    check_listing,
    check_name,
    check_paused,
    check_schema_version,
    check_seconds,
    check_version,
    clean_text,
    decode_json,
    derive_status,
    encode_json,
    enqueued_record,
    prepare_instance,
    prepare_jobs,
    prepare_logs,
    prepare_results,
    prepare_rules,
    prune_bound,
    prune_in_batches,
    refuse_newer,
    release_on,
    to_uuid,
)
from ._doorbell import FINISHED, NEW, Doorbell
from ._errors import (
    InvalidJobStateError,
    JobNotFoundError,
    StoreConfigError,
    StoreUnavailableError,
)
from ._finished import ResultWaits
from ._schedules import (
    PreparedSchedule,
    ScheduleRecord,
    ScheduleSpec,
    make_record,
    moves_last_instant,
    prepare_schedule,
)
from ._sqlite_sql import MIGRATIONS, SCHEMA_VERSION, SQL

__all__ = ["SQLiteStore"]

SCHEDULES = b"s"
"""Doorbell kind rung after a commit that changed a stored schedule."""

_T = TypeVar("_T")
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_US = timedelta(microseconds=1)
#: Below every finished_at: where a rule's first prune batch starts.
_BEFORE_ALL = -(2**62)
_SYNCHRONOUS = ("OFF", "NORMAL", "FULL", "EXTRA")
# Claims commit without flushing to disk (WAL + NORMAL: durable across a process crash, not a
# power loss or an OS crash). Such a crash stops every process of the host, so every worker
# sharing the file: a lost claim then leaves the job queued at its previous attempt and it
# runs again after the restart, exactly as after a worker crash, never twice at once. Every
# other transition keeps the configured level. It saves one disk flush between enqueue and
# start. (PostgresStore does not do this: its workers outlive the database's crash.)
_CLAIM_SYNCHRONOUS = {"OFF": "OFF", "NORMAL": "NORMAL", "FULL": "NORMAL", "EXTRA": "NORMAL"}
# Pauses between tries of a call that found the file locked (SQLITE_BUSY). SQLite's own busy
# handler sleeps 1, 2, 5, 10... ms, ten times the 0.1-0.3 ms a write here holds the lock:
# with four worker processes on one file that cost ~10% of their throughput.
_BUSY_FIRST_PAUSE = 50e-6
_BUSY_MAX_PAUSE = 1e-3
# See _keep_heap.
_HEAP_BLOCK = 64 * 1024
_HEAP_RESERVE_BLOCKS = 32


class _Insert(NamedTuple):
    """The parameters of one row of ``SQL["insert"]``, in its order."""

    id: str
    task: str
    args: str
    kwargs: str
    queue: str
    priority: int
    max_attempts: int
    scheduled_at: int  # µs since the epoch, like every time in the file
    now: int
    meta: str
    unique_key: str | None


def _us(value: datetime) -> int:
    return (value - _EPOCH) // _US


def _dt(us: int | None) -> datetime | None:
    return None if us is None else _EPOCH + us * _US


def _keep_heap() -> bytearray:
    """Called once on a store thread: keep a reserve of free memory in its heap, returning
    the block that holds it there (keep it as long as the thread).

    Each statement of a claim builds SQLite temporary b-trees (its IN lists, UNION and
    recursive queries), each with a ~90 KiB page cache that is freed when the statement ends.
    glibc gives a thread's heap back to the system (madvise) whenever more than its trim
    threshold (128 KiB) lies free at the top, so the next statement faults every one of those
    pages back in: ~160 page faults per job on a worker's store thread, a third of its claim
    (0.35 of 0.7 ms, measured). Allocating a block above a 2 MiB reserve and then freeing the
    reserve leaves that memory free below the top, reused rather than returned. Elsewhere
    (other allocators, other layouts) this costs the reserve and changes nothing."""
    reserve = [bytearray(_HEAP_BLOCK) for _ in range(_HEAP_RESERVE_BLOCKS)]
    # Blocks this size come from the top once the reserve has used up the heap's holes.
    above = bytearray(_HEAP_BLOCK)
    del reserve
    return above


def _retrying_busy(
    fn: Callable[[sqlite3.Connection], _T], conn: sqlite3.Connection, limit: float
) -> _T:
    """``fn(conn)``, tried again while it fails because another process holds the write lock,
    for up to ``limit`` seconds (then that error is raised). On the store's thread.

    Safe because of how every ``fn`` of the store writes: inside one ``BEGIN IMMEDIATE``
    transaction, which takes the lock before anything else, or as one autocommit statement,
    which does nothing unless it gets the lock; its reads can be repeated. A read snapshot
    (``BEGIN``) left open by the error is closed before the next try.
    """
    deadline = None
    pause = _BUSY_FIRST_PAUSE
    while True:
        try:
            return fn(conn)
        except sqlite3.OperationalError as exc:
            # Errors raised by the sqlite3 module itself (a stored text that is not UTF-8,
            # say) carry no SQLite error code: never "busy", raised as they are (``_run``
            # turns every sqlite3 error into the store's typed error).
            code = getattr(exc, "sqlite_errorcode", None)
            if code is None or code & 0xFF != sqlite3.SQLITE_BUSY:
                raise
            now = time.monotonic()
            if deadline is None:
                deadline = now + limit
            if now >= deadline:
                raise
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            time.sleep(min(pause, deadline - now))
            pause = min(2 * pause, _BUSY_MAX_PAUSE)


# What a commit tells the other processes (SQLiteStore._run's ``ring``), from its result.
def _finished_if(done: object) -> bytes | None:
    """A fenced statement that, when accepted, finished its job."""
    return None if done is None else FINISHED


def _woken_by(status: str | None) -> bytes | None:
    """A fenced statement returning the job's new status: queued again, or finished."""
    if status == STORED_WAITING:
        return NEW
    return FINISHED if status in FINISHED_VALUES else None


def _fetch_all(name: str, params: dict[str, Any], conn: sqlite3.Connection) -> list[sqlite3.Row]:
    return conn.execute(SQL[name], params).fetchall()


def _schedules_if_changed(result: tuple[object, bool]) -> bytes | None:
    return SCHEDULES if result[1] else None


class SQLiteStore(Store):
    """Jobs in the SQLite file ``path`` (see the module docstring).

    ``clock``: epoch seconds (default ``time.time``). ``busy_timeout``: seconds a call waits
    for another process's write lock before :class:`StoreUnavailableError`. ``poll_interval``:
    seconds between looks for other processes' changes in the ``wait_*`` methods, and at most
    between looks at the file (deleted or replaced: every call raises, see ``_check_file``).
    ``synchronous``: SQLite's ``PRAGMA synchronous``; ``FULL`` (default) makes every commit
    durable across a power loss, ``NORMAL`` only across a process crash. ``migrate=False``:
    :meth:`open` writes nothing to set the file up: no file is created, no table, no
    migration, no switch to WAL; a file that is not a beat store at this beat's schema
    version is refused (:class:`StoreConfigError`). For tools that only look (the CLI).
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        clock: Callable[[], float] = time.time,
        busy_timeout: float = 5.0,
        poll_interval: float = 0.5,
        synchronous: str = "FULL",
        migrate: bool = True,
    ) -> None:
        if str(synchronous).upper() not in _SYNCHRONOUS:
            raise StoreConfigError(f"synchronous must be one of {_SYNCHRONOUS}")
        super().__init__()
        self.path = Path(path)
        self.busy_timeout = check_seconds(busy_timeout, "busy_timeout")
        self.poll_interval = check_seconds(poll_interval, "poll_interval")
        self.synchronous = str(synchronous).upper()
        self.migrate = bool(migrate)
        self._clock = clock
        # The store's thread and its connection: every write, and every short read.
        self._executor: ThreadPoolExecutor | None = None
        self._conn: sqlite3.Connection | None = None
        self._heap: bytearray | None = None  # the thread's heap reserve stays while held
        # The scan thread and its read-only connection: the long reads (see _run).
        self._scanner: ThreadPoolExecutor | None = None
        self._scan_conn: sqlite3.Connection | None = None
        self._new_waiters: set[asyncio.Future[None]] = set()
        # Result waits: a 'finished' ring has the sweep look for every awaited job.
        self._results = ResultWaits(self, self._settled, self.poll_interval)
        self._schedule_waiters: set[asyncio.Future[None]] = set()
        self._doorbell = Doorbell(self.path, self._rung)
        # The loop open() ran on: the hand-backs from the threads, the doorbell's reader
        # and every waiter's future belong to it. Every call checks it.
        self._opened_on = OpenedLoop("SQLite store")
        # The file open() connected to, as (st_dev, st_ino) at its absolute path; None: not
        # a file to watch. Another file at that path (deleted and created again, renamed
        # over) splits the processes: this store would go on with the old inode, where no
        # one else reads. _check_file looks (one stat) at most every poll_interval, and
        # in every poll of a parked wait; once it finds that, every call is refused.
        self._file: tuple[int, int] | None = None
        self._file_path = ""
        self._file_lost: str | None = None
        self._file_next_check = 0.0  # time.monotonic() of the next look

    # -- thread plumbing ---------------------------------------------------------------------
    async def _run(
        self,
        fn: Callable[[sqlite3.Connection], _T],
        ring: Callable[[_T], bytes | None] | None = None,
        *,
        scan: bool = False,
        check_file: bool = False,
    ) -> _T:
        """``fn(conn)`` on the store's thread; ``fn`` returns after its commit (or makes
        none). ``ring`` says from ``fn``'s result which change it committed (``NEW``,
        ``FINISHED``, ``SCHEDULES``; ``None``: nothing to tell). The other processes are rung
        from the thread the moment ``fn`` returns, not after the hand-back to the loop (a
        waiting worker starts claiming that much sooner); this object's own waiters are
        woken on the loop.

        ``scan=True``: ``fn`` only reads, and may read much of the file (counts, listings
        for an operator); it runs on the scan thread and its own connection instead, so the
        claims, heartbeats and completions queued on the store's thread never wait behind
        it. It sees every change this object made before the call (each committed first).

        Before ``fn``, the thread makes sure the file at the store's path is still the one
        it opened (:meth:`_check_file`): at most every ``poll_interval``, or now if
        ``check_file``."""
        self._opened_on.check()
        executor = self._scanner if scan else self._executor
        if executor is None:
            raise StoreUnavailableError("the SQLite store is not open")
        if self._file_lost is not None:
            raise StoreUnavailableError(self._file_lost)
        doorbell = self._doorbell  # close() replaces it, and closes this one after the call

        def call() -> tuple[_T, bytes | None]:
            conn = self._scan_conn if scan else self._conn
            if conn is None:
                raise StoreUnavailableError("the SQLite store is not open")
            if check_file or time.monotonic() >= self._file_next_check:
                self._check_file()
            result = _retrying_busy(fn, conn, self.busy_timeout)
            kind = None if ring is None else ring(result)
            if kind is not None:
                doorbell.ring(kind)
            return result, kind

        try:
            result, kind = await asyncio.get_running_loop().run_in_executor(executor, call)
        except sqlite3.Error as exc:
            raise StoreUnavailableError(f"SQLite {self.path}: {type(exc).__name__}: {exc}") from exc
        except RuntimeError as exc:  # the executor was shut down by close()
            if "shutdown" not in str(exc):
                raise
            raise StoreUnavailableError("the SQLite store is not open") from exc
        if kind is not None:
            self._rung(kind)
        return result

    def _now_us(self) -> int:
        return round(float(self._clock()) * 1_000_000)

    def _watch_file(self) -> None:
        """On the store's thread, once ``_connect`` has the file open: remember which file
        it is. Not a regular file there (``:memory:``, say): nothing to watch."""
        self._file_path = os.path.abspath(self.path)  # a later chdir changes nothing
        try:
            found = os.stat(self._file_path)
        except OSError:
            found = None
        regular = found is not None and stat.S_ISREG(found.st_mode)
        self._file = (found.st_dev, found.st_ino) if found is not None and regular else None
        self._file_next_check = time.monotonic() + self.poll_interval

    def _check_file(self) -> None:
        """On a store thread: :class:`StoreUnavailableError` if the file at the store's path
        is gone or is another file than the one open() connected to (one ``stat``; the
        inode cannot have been reused by the new file: the store still holds the old one
        open). The verdict stays until the store is closed and opened again. A stat that
        fails otherwise (permissions, I/O) decides nothing: the next check looks again."""
        self._file_next_check = time.monotonic() + self.poll_interval
        if self._file is None:
            return
        try:
            found = os.stat(self._file_path)
        except FileNotFoundError:
            what = "was deleted"
        except OSError:
            return
        else:
            if (found.st_dev, found.st_ino) == self._file:
                return
            what = "was replaced by another file (renamed over, or deleted and created again)"
        self._file_lost = (
            f"SQLite file {self._file_path} {what} while this store had it open: its "
            "changes would go to the old file, which no other process reads, and it would "
            "not see theirs. Close the store and open it again (restart the process) to "
            "use the file now at that path"
        )
        raise StoreUnavailableError(self._file_lost)

    @staticmethod
    @contextlib.contextmanager
    def _write(conn: sqlite3.Connection) -> Iterator[None]:
        conn.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")

    @staticmethod
    @contextlib.contextmanager
    def _snapshot(conn: sqlite3.Connection) -> Iterator[None]:
        """One read transaction: every statement inside sees the same committed state."""
        conn.execute("BEGIN")
        try:
            yield
        finally:
            conn.execute("COMMIT")

    # -- lifecycle ---------------------------------------------------------------------------
    async def open(self) -> None:
        if self._executor is not None:
            self._opened_on.check()  # open already, on this loop: nothing to do
            return
        self._file_lost = None
        loop = asyncio.get_running_loop()
        executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="beat-sqlite")
        scanner = ThreadPoolExecutor(max_workers=1, thread_name_prefix="beat-sqlite-scan")
        try:
            self._conn = await loop.run_in_executor(executor, self._connect)
            self._heap = await loop.run_in_executor(executor, _keep_heap)
            self._scan_conn = await loop.run_in_executor(scanner, self._connect_scanner)
        except BaseException:
            conn, self._conn = self._conn, None
            if conn is not None:
                await loop.run_in_executor(executor, conn.close)
            executor.shutdown(wait=False)
            scanner.shutdown(wait=False)
            raise
        self._executor, self._scanner = executor, scanner
        self._opened_on.bind()
        self._doorbell.open()

    def _enter_wal(self, conn: sqlite3.Connection) -> None:
        """Switch the file to WAL. Several processes opening a new file at once can get
        "database is locked" here without SQLite's busy handler waiting (the mode change
        needs the file to itself), so retry for up to ``busy_timeout``. This runs on the
        store's own thread, never on the event loop."""
        deadline = time.monotonic() + self.busy_timeout
        while True:
            try:
                conn.execute("PRAGMA journal_mode = WAL")
                return
            except sqlite3.OperationalError as exc:
                if "locked" not in str(exc) or time.monotonic() >= deadline:
                    raise
                time.sleep(0.01)

    def _connect(self) -> sqlite3.Connection:
        # migrate=False: mode=rw opens an existing file only, never creating one.
        target = self.path if self.migrate else f"{self.path.absolute().as_uri()}?mode=rw"
        try:
            conn = sqlite3.connect(
                target, timeout=self.busy_timeout, isolation_level=None, uri=not self.migrate
            )
        except sqlite3.Error as exc:
            raise StoreConfigError(f"cannot open SQLite file {self.path}: {exc}") from exc
        try:
            conn.row_factory = sqlite3.Row
            if self.migrate:
                self._enter_wal(conn)
                conn.execute(f"PRAGMA synchronous = {self.synchronous}")
                self._migrate(conn)
            else:
                self._check_schema(conn)
                conn.execute(f"PRAGMA synchronous = {self.synchronous}")
            # Opening waited in SQLite's busy handler; from now on _retrying_busy waits.
            conn.execute("PRAGMA busy_timeout = 0")
            self._watch_file()
        except sqlite3.Error as exc:
            conn.close()
            if getattr(exc, "sqlite_errorcode", None) == sqlite3.SQLITE_NOTADB:
                # Not an outage that waiting ends: the path names some other file.
                raise StoreConfigError(f"{self.path} is not a SQLite database: {exc}") from exc
            raise StoreUnavailableError(f"SQLite {self.path}: {exc}") from exc
        except BaseException:
            conn.close()
            raise
        return conn

    def _migrate(self, conn: sqlite3.Connection) -> None:
        """Create the tables or bring them to ``SCHEMA_VERSION``, in one write transaction:
        processes opening the file together migrate it once."""
        with self._write(conn):
            version = conn.execute("PRAGMA user_version").fetchone()[0]
            refuse_newer(str(self.path), version, SCHEMA_VERSION)
            for step in range(version + 1, SCHEMA_VERSION + 1):
                for statement in MIGRATIONS[step]:
                    conn.execute(statement)
            conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")

    def _check_schema(self, conn: sqlite3.Connection) -> None:
        """``migrate=False``: refuse (:class:`StoreConfigError`) a file without beat's tables
        at this version, reading only."""
        version = conn.execute("PRAGMA user_version").fetchone()[0]
        jobs = conn.execute(
            "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'beat_jobs'"
        ).fetchone()
        check_schema_version(str(self.path), version if jobs else 0, SCHEMA_VERSION)

    def _connect_scanner(self) -> sqlite3.Connection:
        """The scan thread's connection, once ``_connect`` has made the file current."""
        try:
            conn = sqlite3.connect(self.path, timeout=self.busy_timeout, isolation_level=None)
            conn.row_factory = sqlite3.Row
            conn.execute("PRAGMA query_only = ON")
            conn.execute("PRAGMA busy_timeout = 0")  # _retrying_busy waits
        except sqlite3.Error as exc:
            raise StoreUnavailableError(f"SQLite {self.path}: {exc}") from exc
        return conn

    async def close(self) -> None:
        """Release everything, from any event loop. The connections are closed on the
        store's threads; what belongs to the loop that opened the store (the doorbell's
        reader, the waiters' futures, the result sweep) is released on that loop if it still
        runs, else at once (see :func:`release_on`). Waits parked on it wake and fail as
        closed. The store can be opened again, on any loop."""
        executor, self._executor = self._executor, None
        scanner, self._scanner = self._scanner, None
        if executor is None or scanner is None:
            return
        opened = self._opened_on.unbind()
        # Fresh ones for a later open(), so a release handed to the old loop (it runs in
        # another thread) touches only what was the old loop's.
        doorbell, self._doorbell = self._doorbell, Doorbell(self.path, self._rung)
        results = self._results
        self._results = ResultWaits(self, self._settled, self.poll_interval)
        new_waiters, self._new_waiters = self._new_waiters, set()
        schedule_waiters, self._schedule_waiters = self._schedule_waiters, set()

        def shut() -> None:
            conn, self._conn = self._conn, None
            if conn is not None:
                conn.close()

        def shut_scanner() -> None:
            conn, self._scan_conn = self._scan_conn, None
            if conn is not None:
                conn.close()

        loop = asyncio.get_running_loop()
        try:
            await asyncio.gather(
                loop.run_in_executor(executor, shut), loop.run_in_executor(scanner, shut_scanner)
            )
        finally:
            executor.shutdown(wait=False)
            scanner.shutdown(wait=False)
            # After the thread's last call (it rings the doorbell too).
            release_on(
                opened,
                doorbell.close,
                results.close,
                partial(self._wake, new_waiters),
                partial(self._wake, schedule_waiters),
            )

    async def now(self) -> datetime:
        self._opened_on.check()
        if self._executor is None:
            raise StoreUnavailableError("the SQLite store is not open")
        now = _dt(self._now_us())
        assert now is not None
        return now

    # -- records -----------------------------------------------------------------------------
    @staticmethod
    def _record(row: sqlite3.Row, now_us: int) -> JobRecord:
        scheduled_at, created_at = _dt(row["scheduled_at"]), _dt(row["created_at"])
        now = _dt(now_us)
        assert scheduled_at is not None and created_at is not None and now is not None
        return JobRecord(
            id=UUID(row["id"]),
            task=row["task"],
            args=json.loads(row["args"]),
            kwargs=decode_json(row["kwargs"]),
            queue=row["queue"],
            priority=row["priority"],
            status=derive_status(row["status"], scheduled_at, now),
            attempt=row["attempt"],
            max_attempts=row["max_attempts"],
            scheduled_at=scheduled_at,
            created_at=created_at,
            started_at=_dt(row["started_at"]),
            finished_at=_dt(row["finished_at"]),
            worker=row["worker"],
            lease_expires_at=_dt(row["lease_expires_at"]),
            result=None if row["result"] is None else json.loads(row["result"]),
            error_type=row["error_type"],
            error_message=row["error_message"],
            error_traceback=row["error_traceback"],
            cancel_requested=bool(row["cancel_requested"]),
            meta=decode_json(row["meta"]),
            progress=None if row["progress"] is None else json.loads(row["progress"]),
            unique_key=row["unique_key"],
        )

    # -- transitions -------------------------------------------------------------------------
    @staticmethod
    def _insert_params(job: PreparedJob, now: int) -> _Insert:
        shape = job.shape
        return _Insert(
            str(job.id),
            shape.task,
            job.args,
            job.kwargs,
            shape.queue,
            shape.priority,
            shape.max_attempts,
            now + round(shape.delay * 1_000_000)
            if shape.scheduled_at is None
            else _us(shape.scheduled_at),
            now,
            shape.meta,
            None if job.unique is None else job.unique.key,
        )

    @staticmethod
    def _enqueued(job: PreparedJob, params: _Insert) -> JobRecord:
        scheduled_at, created_at = _dt(params.scheduled_at), _dt(params.now)
        assert scheduled_at is not None and created_at is not None
        return enqueued_record(job, scheduled_at, created_at)

    async def enqueue(self, jobs: Sequence[NewJob]) -> list[JobRecord]:
        prepared = prepare_jobs(jobs)
        return [r for r in await self._enqueue(prepared, records=True) if r is not None]

    async def enqueue_prepared(self, jobs: Sequence[PreparedJob]) -> list[Enqueued]:
        return as_enqueued(jobs, await self._enqueue(jobs, records=False))

    async def _enqueue(
        self, prepared: Sequence[PreparedJob], *, records: bool
    ) -> list[JobRecord | None]:
        """Store ``prepared`` in one transaction; per job its record, or ``None`` for a job
        stored as given when ``records`` is false (a unique conflict always has one)."""
        if not prepared:
            return []

        def run(conn: sqlite3.Connection) -> list[JobRecord | None]:
            # One write transaction (BEGIN IMMEDIATE: writers are serialized), so a unique
            # job's look-up and its insert see no other writer in between, from any process.
            with self._write(conn):
                now = self._now_us()
                rows = [self._insert_params(job, now) for job in prepared]
                if all(job.unique is None for job in prepared):
                    conn.executemany(SQL["insert"], rows)
                    conn.execute(SQL["signal_new"])
                    if not records:
                        return [None] * len(prepared)
                    return [self._enqueued(j, p) for j, p in zip(prepared, rows, strict=True)]
                done: list[JobRecord | None] = []
                for job, params in zip(prepared, rows, strict=True):
                    if job.unique is not None:
                        found = self._unique_conflict(conn, job.unique, params)
                        if found is not None:
                            done.append(replace(self._record(found, now), conflict=True))
                            continue
                    conn.execute(SQL["insert"], params)
                    done.append(self._enqueued(job, params) if records else None)
                if any(r is None or not r.conflict for r in done):
                    conn.execute(SQL["signal_new"])
            return done

        def ring(done: list[JobRecord | None]) -> bytes | None:
            # Jobs that were only found (unique conflicts) wake nobody; a replace may have
            # made its job due sooner, so it does.
            if any(r is None or not r.conflict for r in done) or any(
                j.unique is not None and j.unique.replace for j in prepared
            ):
                return NEW
            return None

        return await self._run(run, ring)

    async def claim(
        self,
        worker: str,
        *,
        queues: Sequence[str],
        tasks: Collection[str],
        limit: int,
        lease: float,
    ) -> Claimed:
        queue_list, task_list = check_claim(worker, queues, tasks, limit, lease)
        if not queue_list or not task_list:
            return Claimed()
        params = {
            "worker": worker,
            "queues": json.dumps(queue_list),
            "tasks": json.dumps(task_list),
            "limit": limit,
            "lease": round(lease * 1_000_000),
            "lease_expired": LEASE_EXPIRED,
        }

        def run(conn: sqlite3.Connection) -> Claimed:
            # A claim need not wait for the disk (see _CLAIM_SYNCHRONOUS); the next flushed
            # commit of this file flushes it too.
            conn.execute(f"PRAGMA synchronous = {_CLAIM_SYNCHRONOUS[self.synchronous]}")
            try:
                with self._write(conn):
                    params["now"] = now = self._now_us()
                    ended = conn.execute(SQL["expire"], params).fetchall()
                    rows = conn.execute(SQL["claim"], params).fetchall()
            finally:
                conn.execute(f"PRAGMA synchronous = {self.synchronous}")
            rows.sort(key=lambda r: (-r["priority"], r["scheduled_at"], r["seq"]))
            return Claimed(
                (self._record(row, now) for row in rows), (self._record(r, now) for r in ended)
            )

        return await self._run(run, lambda done: FINISHED if done.ended else None)

    async def heartbeat(
        self, worker: str, jobs: Sequence[tuple[UUID, int]], lease: float
    ) -> Heartbeat:
        check_seconds(lease, "lease")
        wanted = {to_uuid(id) for id, _ in jobs}
        if not wanted:
            return Heartbeat()
        params = {
            "worker": worker,
            "lease": round(lease * 1_000_000),
            "jobs": json.dumps([[str(to_uuid(id)), int(attempt)] for id, attempt in jobs]),
        }

        def run(conn: sqlite3.Connection) -> list[sqlite3.Row]:
            params["now"] = self._now_us()
            return conn.execute(SQL["heartbeat"], params).fetchall()

        rows = await self._run(run)
        kept = {UUID(row["id"]) for row in rows}
        cancel = {UUID(row["id"]) for row in rows if row["cancel_requested"]}
        return Heartbeat(lost=frozenset(wanted - kept), cancel_requested=frozenset(cancel))

    async def _fenced(
        self,
        name: str,
        id: UUID,
        attempt: int,
        worker: str,
        ring: Callable[[Any], bytes | None] | None = None,
        **extra: Any,
    ) -> Any:
        """The fenced statement ``name``: what it returned (``None``: refused)."""
        params = {"id": str(to_uuid(id)), "attempt": attempt, "worker": worker, **extra}

        def run(conn: sqlite3.Connection) -> Any:
            params["now"] = self._now_us()
            row = conn.execute(SQL[name], params).fetchone()
            return None if row is None else row[0]

        return await self._run(run, ring)

    async def complete(self, id: UUID, attempt: int, worker: str, result: JSON = None) -> bool:
        text = encode_json(result, "result")
        done = await self._fenced("complete", id, attempt, worker, _finished_if, result=text)
        return done is not None

    async def complete_many(self, items: Sequence[tuple[UUID, int, str, JSON]]) -> list[bool]:
        good, bad = prepare_results(items)

        rows = [(str(item.id), item.attempt, item.worker, item.result) for item in good]
        params: dict[str, Any] = {"items": json.dumps(rows)}

        def run(conn: sqlite3.Connection) -> list[bool]:
            params["now"] = self._now_us()
            with self._write(conn):
                written = {tuple(r) for r in conn.execute(SQL["complete_many"], params)}
            return [row[:3] in written for row in rows]

        done = await self._run(run, lambda done: FINISHED if any(done) else None) if good else []
        return batch_outcome(len(items), list(zip(good, done, strict=True)), bad)

    async def fail(
        self,
        id: UUID,
        attempt: int,
        worker: str,
        *,
        error_type: str,
        message: str,
        traceback: str = "",
        retry_at: datetime | None = None,
    ) -> bool:
        retry = None if retry_at is None else _us(check_aware(retry_at, "retry_at"))
        status = await self._fenced(
            "fail",
            id,
            attempt,
            worker,
            _woken_by,
            retry_at=retry,
            error_type=clean_text(error_type),
            message=clean_text(message),
            traceback=clean_text(traceback),
        )
        return status is not None

    async def release(self, id: UUID, attempt: int, worker: str) -> bool:
        status = await self._fenced("release", id, attempt, worker, _woken_by)
        return status is not None

    async def mark_cancelled(self, id: UUID, attempt: int, worker: str) -> bool:
        done = await self._fenced("mark_cancelled", id, attempt, worker, _finished_if)
        return done is not None

    async def cancel(self, id: UUID) -> JobRecord:
        key = str(to_uuid(id))

        def run(conn: sqlite3.Connection) -> JobRecord | None:
            now = self._now_us()
            row = conn.execute(SQL["cancel"], {"id": key, "now": now}).fetchone()
            return None if row is None else self._record(row, now)

        def ring(record: JobRecord | None) -> bytes | None:
            cancelled = record is not None and record.status is JobStatus.CANCELLED
            return FINISHED if cancelled else None

        record = await self._run(run, ring)
        if record is None:
            raise JobNotFoundError(f"no job with id {key}")
        return record

    async def retry(self, id: UUID) -> JobRecord:
        key = str(to_uuid(id))

        def run(conn: sqlite3.Connection) -> JobRecord | None:
            now = self._now_us()
            row = conn.execute(SQL["retry"], {"id": key, "now": now}).fetchone()
            return None if row is None else self._record(row, now)

        record = await self._run(run, lambda record: None if record is None else NEW)
        if record is None:
            found = await self.get(to_uuid(id))
            if found is None:
                raise JobNotFoundError(f"no job with id {key}")
            raise InvalidJobStateError(
                f"job {key} is {found.status}; only dead or cancelled jobs can be retried",
                status=found.status,
            )
        return record

    # -- reads -------------------------------------------------------------------------------
    async def get(self, id: UUID) -> JobRecord | None:
        key = str(to_uuid(id))

        def run(conn: sqlite3.Connection) -> JobRecord | None:
            now = self._now_us()
            row = conn.execute(SQL["get"], {"id": key}).fetchone()
            return None if row is None else self._record(row, now)

        return await self._run(run)

    async def list_jobs(
        self,
        *,
        status: JobStatus | str | None = None,
        task: str | None = None,
        queue: str | None = None,
        limit: int = 50,
        before: UUID | None = None,
        after: UUID | None = None,
    ) -> list[JobRecord]:
        wanted = check_listing(status, task, queue, limit)
        cursors = {"after": after, "before": before}
        backward = before is not None and after is None  # the page just before `before`
        statement = "list" + "_task" * (task is not None) + "_backward" * backward

        def run(conn: sqlite3.Connection) -> list[JobRecord] | str:
            with self._snapshot(conn):  # the cursors and the page
                bounds = {}
                for name, cursor in cursors.items():
                    if cursor is None:
                        continue
                    row = conn.execute(SQL["seq"], {"id": str(to_uuid(cursor))}).fetchone()
                    if row is None:
                        return str(cursor)
                    bounds[name] = row[0]
                now = self._now_us()
                rows = conn.execute(
                    SQL[statement],
                    {
                        "low": bounds.get("after", 0),
                        "high": bounds.get("before", 2**63 - 1),
                        "task": task,
                        "queue": queue,
                        "status": None if wanted is None else wanted.value,
                        "now": now,
                        "limit": limit,
                    },
                ).fetchall()
            rows.sort(key=lambda r: r["seq"])
            return [self._record(row, now) for row in rows]

        result = await self._run(run, scan=True)
        if isinstance(result, str):
            raise JobNotFoundError(f"no job with id {result} (cursor)")
        return result

    # -- wake-ups ----------------------------------------------------------------------------
    @staticmethod
    def _wake(waiters: set[asyncio.Future[None]]) -> None:
        for future in waiters:
            if not future.done():
                future.set_result(None)
        waiters.clear()

    def _rung(self, kind: bytes) -> None:
        if kind == SCHEDULES:
            self._wake(self._schedule_waiters)
        elif kind == NEW:
            self._wake(self._new_waiters)
        else:
            self._results.look_now()

    async def _look_for_jobs(
        self, queues: Sequence[str] | None, tasks: Collection[str] | None
    ) -> tuple[int, float]:
        """The 'new' counter, then the seconds until a job of these queues and tasks is
        claimable (0: now; inf: none): what a wait starts from, in one trip to the thread."""
        params = {
            "name": "new",
            "queues": None if queues is None else json.dumps(list(queues)),
            "tasks": None if tasks is None else json.dumps(sorted(tasks)),
        }

        def run(conn: sqlite3.Connection) -> tuple[int, float]:
            counter: int = conn.execute(SQL["signal"], params).fetchone()[0]
            now = self._now_us()
            soonest = conn.execute(SQL["next_due"], params).fetchone()[0]
            left = math.inf if soonest is None else max(0.0, (soonest - now) / 1_000_000)
            return counter, left

        return await self._run(run)

    async def _signal(self, name: str, *, check_file: bool = False) -> int:
        def run(conn: sqlite3.Connection) -> int:
            counter: int = conn.execute(SQL["signal"], {"name": name}).fetchone()[0]
            return counter

        return await self._run(run, check_file=check_file)

    async def wait_for_jobs(
        self,
        timeout: float,
        *,
        queues: Sequence[str] | None = None,
        tasks: Collection[str] | None = None,
    ) -> None:
        check_seconds(timeout, "timeout", zero=True)
        self._opened_on.check()
        loop = asyncio.get_running_loop()
        # Listen first, then look: a change made through this object (or rung from another
        # process) while we read the counter and the next due time completes the future.
        self._doorbell.listen(NEW)
        future = loop.create_future()
        self._new_waiters.add(future)
        try:
            start, left = await self._look_for_jobs(queues, tasks)
            deadline = loop.time() + min(timeout, left)
            while not future.done():
                left = deadline - loop.time()
                if left <= 0:
                    return
                await self.waits.sleep(future, min(left, self.poll_interval))
                # A poll: also a look at the file (a parked worker notices it was replaced).
                if future.done() or await self._signal("new", check_file=True) != start:
                    return
        finally:
            self._new_waiters.discard(future)

    async def wait_finished(self, id: UUID, timeout: float) -> JobRecord:
        check_seconds(timeout, "timeout", zero=True)
        key = to_uuid(id)
        self._opened_on.check()
        self._doorbell.listen(FINISHED)
        return await self._results.wait(key, timeout)

    async def _settled(self, keys: list[UUID]) -> list[UUID]:
        """Of these awaited jobs, those finished or gone (the result sweep's look)."""
        params = {"ids": json.dumps([str(key) for key in keys])}
        rows = await self._run(partial(_fetch_all, "settled", params))
        return [UUID(row[0]) for row in rows]

    # -- unique keys ------------------------------------------------------------------------------
    def _unique_conflict(
        self, conn: sqlite3.Connection, unique: PreparedUnique, params: _Insert
    ) -> sqlite3.Row | None:
        """Inside the enqueue's write transaction: the conflicting job (replaced first when
        asked and still waiting), or ``None`` to insert. A replace of another task's job
        raises :class:`InvalidJobError` (the transaction rolls back: nothing stored)."""
        from ._base import check_replace

        since = None if unique.period is None else params.now - round(unique.period * 1e6)
        found: sqlite3.Row | None = conn.execute(
            SQL["unique_find"],
            {"key": unique.key, "statuses": json.dumps(unique.statuses), "since": since},
        ).fetchone()
        if found is not None and unique.replace:
            check_replace(unique.key, found["task"], params.task)
        if found is not None and unique.replace and found["status"] == STORED_WAITING:
            replaced: sqlite3.Row = conn.execute(
                SQL["unique_replace"], {**params._asdict(), "seq": found["seq"]}
            ).fetchone()
            return replaced
        return found

    # -- progress and logs ---------------------------------------------------------------------
    async def set_progress(self, id: UUID, attempt: int, worker: str, progress: JSON) -> bool:
        text = encode_json(progress, "progress")
        return await self._fenced("progress", id, attempt, worker, progress=text) is not None

    async def add_logs(self, id: UUID, attempt: int, entries: Sequence[LogEntry]) -> None:
        prepared = prepare_logs(attempt, entries)
        key = str(to_uuid(id))

        def run(conn: sqlite3.Connection) -> bool:
            with self._write(conn):
                if conn.execute(SQL["exists"], {"id": key}).fetchone() is None:
                    return False
                conn.executemany(
                    SQL["log_insert"],
                    [
                        {
                            "id": key,
                            "attempt": e.attempt,
                            "at": _us(e.at),
                            "level": e.level,
                            "logger": e.logger,
                            "message": e.message,
                        }
                        for e in prepared
                    ],
                )
            return True

        if not await self._run(run):
            raise JobNotFoundError(f"no job with id {key}")

    async def get_logs(self, id: UUID, *, attempt: int | None = None) -> list[LogEntry]:
        if attempt is not None:
            check_attempt(attempt)
        key = str(to_uuid(id))

        def run(conn: sqlite3.Connection) -> list[sqlite3.Row] | None:
            with self._snapshot(conn):  # the job's existence and its logs
                if conn.execute(SQL["exists"], {"id": key}).fetchone() is None:
                    return None
                return conn.execute(SQL["logs"], {"id": key, "attempt": attempt}).fetchall()

        rows = await self._run(run)
        if rows is None:
            raise JobNotFoundError(f"no job with id {key}")
        return [
            LogEntry(r["attempt"], _dt(r["at"]), r["level"], r["logger"], r["message"])  # type: ignore[arg-type]
            for r in rows
        ]

    # -- counts and pruning ----------------------------------------------------------------------
    async def count_jobs(self) -> dict[str, dict[JobStatus, int]]:
        def run(conn: sqlite3.Connection) -> list[sqlite3.Row]:
            return conn.execute(SQL["count"], {"now": self._now_us()}).fetchall()

        counts: dict[str, dict[JobStatus, int]] = {}
        for row in await self._run(run, scan=True):
            counts.setdefault(row["queue"], {})[JobStatus(row["derived"])] = row["n"]
        return counts

    async def prune(self, rules: Sequence[PruneRule]) -> int:
        prepared = prepare_rules(rules)
        if not prepared:
            return 0

        def bounds(conn: sqlite3.Connection) -> list[PruneKey | None]:
            with self._snapshot(conn):  # every rule's bound from the same state
                now = self._now_us()
                found = []
                for rule in prepared:
                    nth = None
                    if rule.max_count is not None:
                        params = {
                            "status": rule.status,
                            "task": rule.task,
                            "max_count": rule.max_count,
                        }
                        row = conn.execute(SQL["prune_nth_newest"], params).fetchone()
                        nth = None if row is None else (row[0], row[1])
                    cutoff = None if rule.max_age is None else now - round(rule.max_age * 1e6)
                    found.append(prune_bound(cutoff, nth))
                return found

        async def delete(
            rule: PreparedRule, after: PruneKey | None, bound: PruneKey, limit: int
        ) -> tuple[PruneKey | None, int]:
            def run(conn: sqlite3.Connection) -> tuple[PruneKey | None, int]:
                after_at, after_seq = (_BEFORE_ALL, 0) if after is None else after
                with self._write(conn):
                    rows = conn.execute(
                        SQL["prune_select"],
                        {
                            "status": rule.status,
                            "task": rule.task,
                            "after_at": after_at,
                            "after_seq": after_seq,
                            "bound_at": bound[0],
                            "bound_seq": bound[1],
                            "limit": limit,
                        },
                    ).fetchall()
                    if not rows:
                        return None, 0
                    ids = json.dumps([row[0] for row in rows])
                    conn.execute(SQL["prune_logs"], {"ids": ids})
                    count = conn.execute(SQL["prune_jobs"], {"ids": ids}).rowcount
                return (rows[-1][1], rows[-1][2]), count

            return await self._run(run)

        return await prune_in_batches(prepared, await self._run(bounds), self.prune_batch, delete)

    # -- instances -------------------------------------------------------------------------------
    async def record_instance(
        self,
        name: str,
        *,
        host: str,
        pid: int,
        started_at: datetime,
        info: Mapping[str, JSON],
        ttl: float,
    ) -> None:
        p = prepare_instance(name, host, pid, started_at, info, ttl)

        def run(conn: sqlite3.Connection) -> None:
            with self._write(conn):
                now = self._now_us()
                conn.execute(SQL["instance_expire"], {"now": now})
                conn.execute(
                    SQL["instance_put"],
                    {
                        "name": p.name,
                        "host": p.host,
                        "pid": p.pid,
                        "started_at": _us(p.started_at),
                        "now": now,
                        "expires_at": now + round(p.ttl * 1_000_000),
                        "info": p.info,
                    },
                )

        await self._run(run)

    async def list_instances(self) -> list[InstanceRecord]:
        def run(conn: sqlite3.Connection) -> list[sqlite3.Row]:
            return conn.execute(SQL["instances"], {"now": self._now_us()}).fetchall()

        return [
            InstanceRecord(
                name=r["name"],
                host=r["host"],
                pid=r["pid"],
                started_at=_dt(r["started_at"]),  # type: ignore[arg-type]
                last_seen=_dt(r["last_seen"]),  # type: ignore[arg-type]
                info=json.loads(r["info"]),
            )
            for r in await self._run(run)
        ]

    async def remove_instance(self, name: str) -> None:
        check_name(name, "name")

        def run(conn: sqlite3.Connection) -> None:
            conn.execute(SQL["instance_remove"], {"name": name})

        await self._run(run)

    # -- stored schedules ------------------------------------------------------------------------
    @staticmethod
    def _schedule(row: sqlite3.Row) -> ScheduleRecord:
        spec = PreparedSchedule(
            name=row["name"],
            task=row["task"],
            cron=row["cron"],
            every=row["every"],
            at=_dt(row["at"]),
            timezone=row["timezone"],
            args=row["args"],
            kwargs=row["kwargs"],
            queue=row["queue"],
            priority=row["priority"],
            max_attempts=row["max_attempts"],
            misfire=row["misfire"],
            paused=bool(row["paused"]),
        )
        return make_record(
            spec,
            version=row["version"],
            created_at=_dt(row["created_at"]),  # type: ignore[arg-type]
            updated_at=_dt(row["updated_at"]),  # type: ignore[arg-type]
            last_instant=_dt(row["last_instant"]),
        )

    async def put_schedule(self, spec: ScheduleSpec) -> ScheduleRecord:
        p = prepare_schedule(spec)

        def run(conn: sqlite3.Connection) -> tuple[ScheduleRecord, bool]:
            with self._write(conn):
                stored = conn.execute(SQL["schedule_get"], {"name": p.name}).fetchone()
                moves = False
                if stored is not None:
                    record = self._schedule(stored)
                    before = prepare_schedule(record)
                    if before.content() == p.content():
                        return record, False
                    moves = moves_last_instant(before, p)
                version = conn.execute(SQL["schedule_bump"]).fetchone()[0]
                row = conn.execute(
                    SQL["schedule_put"],
                    {
                        "name": p.name,
                        "task": p.task,
                        "cron": p.cron,
                        "every": p.every,
                        "at": None if p.at is None else _us(p.at),
                        "timezone": p.timezone,
                        "args": p.args,
                        "kwargs": p.kwargs,
                        "queue": p.queue,
                        "priority": p.priority,
                        "max_attempts": p.max_attempts,
                        "misfire": p.misfire,
                        "paused": int(p.paused),
                        "version": version,
                        "now": self._now_us(),
                        "moves": int(moves),
                    },
                ).fetchone()
            return self._schedule(row), True

        record, _ = await self._run(run, _schedules_if_changed)
        return record

    async def get_schedule(self, name: str) -> ScheduleRecord | None:
        check_name(name, "schedule name")

        def run(conn: sqlite3.Connection) -> sqlite3.Row | None:
            row: sqlite3.Row | None = conn.execute(SQL["schedule_get"], {"name": name}).fetchone()
            return row

        row = await self._run(run)
        return None if row is None else self._schedule(row)

    async def list_schedules(self) -> list[ScheduleRecord]:
        def run(conn: sqlite3.Connection) -> list[sqlite3.Row]:
            return conn.execute(SQL["schedules"]).fetchall()

        return [self._schedule(row) for row in await self._run(run)]

    async def set_schedule_paused(self, name: str, paused: bool) -> ScheduleRecord:
        check_name(name, "schedule name")
        check_paused(paused)

        def run(conn: sqlite3.Connection) -> tuple[sqlite3.Row | None, bool]:
            with self._write(conn):
                stored = conn.execute(SQL["schedule_get"], {"name": name}).fetchone()
                if stored is None or bool(stored["paused"]) == paused:
                    return stored, False
                version = conn.execute(SQL["schedule_bump"]).fetchone()[0]
                row = conn.execute(
                    SQL["schedule_pause"],
                    {
                        "name": name,
                        "paused": int(paused),
                        "version": version,
                        "now": self._now_us(),
                    },
                ).fetchone()
            return row, True

        row, _ = await self._run(run, _schedules_if_changed)
        if row is None:
            raise JobNotFoundError(f"no schedule named {name!r}")
        return self._schedule(row)

    async def delete_schedule(self, name: str) -> bool:
        check_name(name, "schedule name")

        def run(conn: sqlite3.Connection) -> bool:
            with self._write(conn):
                if conn.execute(SQL["schedule_delete"], {"name": name}).fetchone() is None:
                    return False
                conn.execute(SQL["schedule_bump"]).fetchone()
            return True

        return await self._run(run, lambda deleted: SCHEDULES if deleted else None)

    async def advance_schedule(self, name: str, instant: datetime) -> bool:
        check_name(name, "schedule name")
        at = _us(check_aware(instant, "instant"))

        def run(conn: sqlite3.Connection) -> bool:
            row = conn.execute(SQL["schedule_advance"], {"name": name, "at": at}).fetchone()
            return row is not None

        return await self._run(run)

    async def schedules_version(self) -> int:
        return await self._signal("schedules")

    async def wait_schedules_changed(self, version: int, timeout: float) -> int:
        check_version(version)
        check_seconds(timeout, "timeout", zero=True)
        self._opened_on.check()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        self._doorbell.listen(SCHEDULES)
        while True:
            # Listen first, then look: a change through this object (or a ring from another
            # process) while we read the counter still completes the future.
            future = loop.create_future()
            self._schedule_waiters.add(future)
            try:
                current = await self._signal("schedules", check_file=True)
                left = deadline - loop.time()
                if current != version or left <= 0:
                    return current
                await self.waits.sleep(future, min(left, self.poll_interval))
            finally:
                self._schedule_waiters.discard(future)
