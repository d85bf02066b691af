"""``SQLiteStore``: jobs in one SQLite file, shared by several processes on one host.

Standard library ``sqlite3`` only. The file runs in WAL mode (readers never block the writer)
with a busy timeout, so processes wait for each other's short write transactions instead of
failing. Every call runs on a dedicated single worker thread per store, which owns the
connection, so the event loop never blocks on disk or locks. A claim is one ``BEGIN
IMMEDIATE`` transaction (it takes the write lock first, so two claims are serialized and never
see the same job as free); every other transition is a single ``UPDATE … RETURNING``.

Time comes from ``clock`` (epoch seconds, default :func:`time.time`) read inside the write
transaction; timestamps are stored as integer microseconds since the epoch, UTC. Processes
sharing a file should share a host clock.

Wake-ups: a change made through this store object wakes its waiters at once; one made by
another process rings this process's doorbell (``_doorbell.py``: a Unix datagram per commit
to each process waiting for that kind of change). Neither is trusted alone: the ``new``
counter of ``beat_signals`` moves when jobs become claimable (once per enqueue transaction,
and by a trigger when a job is queued again), :meth:`SQLiteStore.wait_for_jobs` polls it
every ``poll_interval`` seconds and :meth:`SQLiteStore.wait_finished` polls the job
likewise, so a lost ring costs at most one poll interval.

Schema version: ``PRAGMA user_version`` (4), migrated inside ``BEGIN IMMEDIATE`` so that
processes opening a new file at once create it exactly once.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import os
import sqlite3
import time
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, NamedTuple, TypeVar
from uuid import UUID

from ._base import (
    FINISHED_VALUES,
    JSON,
    LEASE_EXPIRED,
    STORED_WAITING,
    Enqueued,
    Heartbeat,
    InstanceRecord,
    JobRecord,
    JobStatus,
    LogEntry,
    NewJob,
    PreparedJob,
    PreparedUnique,
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
    to_uuid,
)
from ._doorbell import FINISHED, NEW, Doorbell
from ._errors import (
    InvalidJobStateError,
    JobNotFoundError,
    StoreConfigError,
    StoreUnavailableError,
)
from ._schedules import (
    PreparedSchedule,
    ScheduleRecord,
    ScheduleSpec,
    make_record,
    prepare_schedule,
)

__all__ = ["SQLiteStore"]

SCHEDULES = b"s"
"""Doorbell kind rung after a commit that changed a stored schedule."""

SCHEMA_VERSION = 4
_T = TypeVar("_T")
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_US = timedelta(microseconds=1)
_SYNCHRONOUS = ("OFF", "NORMAL", "FULL", "EXTRA")
# Claims commit without flushing to disk (WAL + NORMAL: durable across a process crash, not a
# power loss or an OS crash). Such a crash stops every process of the host, so every worker
# sharing the file: a lost claim then leaves the job queued at its previous attempt and it
# runs again after the restart, exactly as after a worker crash, never twice at once. Every
# other transition keeps the configured level. It saves one disk flush between enqueue and
# start. (PostgresStore does not do this: its workers outlive the database's crash.)
_CLAIM_SYNCHRONOUS = {"OFF": "OFF", "NORMAL": "NORMAL", "FULL": "NORMAL", "EXTRA": "NORMAL"}


class _Insert(NamedTuple):
    """The parameters of one row of ``_SQL["insert"]``, in its order."""

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


# The columns of beat_jobs, in the table's order (version 4 copies them by name).
_JOB_COLUMNS = (
    "seq, id, task, args, kwargs, queue, priority, status, attempt, max_attempts, "
    "scheduled_at, created_at, started_at, finished_at, worker, lease_expires_at, result, "
    "error_type, error_message, error_traceback, cancel_requested, meta, progress, unique_key"
)

# Every statement of the backend. Named parameters (but "insert", see there); lists are
# passed as JSON text and read with json_each, so no statement is ever built from values.
_MIGRATIONS: dict[int, tuple[str, ...]] = {
    1: (
        """CREATE TABLE beat_jobs (
            seq INTEGER PRIMARY KEY AUTOINCREMENT,
            id TEXT NOT NULL UNIQUE,
            task TEXT NOT NULL,
            args TEXT NOT NULL,
            kwargs TEXT NOT NULL,
            queue TEXT NOT NULL,
            priority INTEGER NOT NULL,
            status TEXT NOT NULL,
            attempt INTEGER NOT NULL,
            max_attempts INTEGER NOT NULL,
            scheduled_at INTEGER NOT NULL,
            created_at INTEGER NOT NULL,
            started_at INTEGER,
            finished_at INTEGER,
            worker TEXT,
            lease_expires_at INTEGER,
            result TEXT,
            error_type TEXT,
            error_message TEXT,
            error_traceback TEXT,
            cancel_requested INTEGER NOT NULL DEFAULT 0)""",
        """CREATE INDEX beat_jobs_due ON beat_jobs (priority DESC, scheduled_at, seq)
            WHERE status = 'queued'""",
        """CREATE INDEX beat_jobs_leases ON beat_jobs (lease_expires_at)
            WHERE status = 'running'""",
        "CREATE INDEX beat_jobs_task ON beat_jobs (task, seq)",
        "CREATE TABLE beat_signals (name TEXT PRIMARY KEY, counter INTEGER NOT NULL)",
        "INSERT INTO beat_signals VALUES ('new', 0), ('finished', 0)",
        """CREATE TRIGGER beat_jobs_new AFTER INSERT ON beat_jobs BEGIN
            UPDATE beat_signals SET counter = counter + 1 WHERE name = 'new'; END""",
        """CREATE TRIGGER beat_jobs_requeued AFTER UPDATE OF status ON beat_jobs
            WHEN NEW.status = 'queued' AND OLD.status <> 'queued' BEGIN
            UPDATE beat_signals SET counter = counter + 1 WHERE name = 'new'; END""",
        """CREATE TRIGGER beat_jobs_finished AFTER UPDATE OF status ON beat_jobs
            WHEN NEW.status IN ('succeeded', 'dead', 'cancelled') AND OLD.status <> NEW.status
            BEGIN UPDATE beat_signals SET counter = counter + 1 WHERE name = 'finished'; END""",
    ),
    # Issues 12/13: meta, progress and unique keys on jobs; logs, instances, schedules.
    2: (
        "ALTER TABLE beat_jobs ADD COLUMN meta TEXT NOT NULL DEFAULT '{}'",
        "ALTER TABLE beat_jobs ADD COLUMN progress TEXT",
        "ALTER TABLE beat_jobs ADD COLUMN unique_key TEXT",
        """CREATE INDEX beat_jobs_unique ON beat_jobs (unique_key, seq)
            WHERE unique_key IS NOT NULL""",
        # Only finished jobs have finished_at: prune walks this, never the live jobs.
        """CREATE INDEX beat_jobs_finished ON beat_jobs (status, finished_at, seq)
            WHERE finished_at IS NOT NULL""",
        """CREATE TABLE beat_logs (
            seq INTEGER PRIMARY KEY AUTOINCREMENT,
            job_id TEXT NOT NULL,
            attempt INTEGER NOT NULL,
            at INTEGER NOT NULL,
            level TEXT NOT NULL,
            logger TEXT NOT NULL,
            message TEXT NOT NULL)""",
        "CREATE INDEX beat_logs_job ON beat_logs (job_id, attempt, seq)",
        """CREATE TABLE beat_instances (
            name TEXT PRIMARY KEY,
            host TEXT NOT NULL,
            pid INTEGER NOT NULL,
            started_at INTEGER NOT NULL,
            last_seen INTEGER NOT NULL,
            expires_at INTEGER NOT NULL,
            info TEXT NOT NULL)""",
        """CREATE TABLE beat_schedules (
            name TEXT PRIMARY KEY,
            task TEXT NOT NULL,
            cron TEXT,
            every REAL,
            at INTEGER,
            timezone TEXT NOT NULL,
            args TEXT NOT NULL,
            kwargs TEXT NOT NULL,
            queue TEXT NOT NULL,
            priority INTEGER NOT NULL,
            max_attempts INTEGER NOT NULL,
            misfire TEXT NOT NULL,
            paused INTEGER NOT NULL,
            version INTEGER NOT NULL,
            created_at INTEGER NOT NULL,
            updated_at INTEGER NOT NULL,
            last_instant INTEGER)""",
        # Bumped by every schedule change; each changed schedule takes its new value.
        "INSERT INTO beat_signals VALUES ('schedules', 0)",
    ),
    # The enqueue bumps "new" once per transaction instead: the per-row trigger was ~6 µs of
    # each row of a 1,000-job batch. Nothing reads "finished" (wait_finished polls the job
    # itself), yet its trigger cost a quarter of a 10-job complete_many inside the lock.
    3: (
        "DROP TRIGGER beat_jobs_new",
        "DROP TRIGGER beat_jobs_finished",
        "DELETE FROM beat_signals WHERE name = 'finished'",
    ),
    # beat_jobs without AUTOINCREMENT: it updated sqlite_sequence on every insert, ~1.6 µs of
    # each row of a batch (~11%). seq still orders jobs (a new row gets max(seq) + 1); only
    # the seq of a deleted newest job can come back, and nothing outside a statement holds
    # a seq. SQLite cannot drop the keyword in place: the table is rebuilt, same columns
    # in the same order, seq values kept, then its indexes and trigger.
    4: (
        """CREATE TABLE beat_jobs_v4 (
            seq INTEGER PRIMARY KEY,
            id TEXT NOT NULL UNIQUE,
            task TEXT NOT NULL,
            args TEXT NOT NULL,
            kwargs TEXT NOT NULL,
            queue TEXT NOT NULL,
            priority INTEGER NOT NULL,
            status TEXT NOT NULL,
            attempt INTEGER NOT NULL,
            max_attempts INTEGER NOT NULL,
            scheduled_at INTEGER NOT NULL,
            created_at INTEGER NOT NULL,
            started_at INTEGER,
            finished_at INTEGER,
            worker TEXT,
            lease_expires_at INTEGER,
            result TEXT,
            error_type TEXT,
            error_message TEXT,
            error_traceback TEXT,
            cancel_requested INTEGER NOT NULL DEFAULT 0,
            meta TEXT NOT NULL DEFAULT '{}',
            progress TEXT,
            unique_key TEXT)""",
        f"INSERT INTO beat_jobs_v4 ({_JOB_COLUMNS}) SELECT {_JOB_COLUMNS} FROM beat_jobs",
        "DROP TABLE beat_jobs",  # and with it its indexes and trigger
        "DELETE FROM sqlite_sequence WHERE name = 'beat_jobs'",
        "ALTER TABLE beat_jobs_v4 RENAME TO beat_jobs",
        """CREATE INDEX beat_jobs_due ON beat_jobs (priority DESC, scheduled_at, seq)
            WHERE status = 'queued'""",
        """CREATE INDEX beat_jobs_leases ON beat_jobs (lease_expires_at)
            WHERE status = 'running'""",
        "CREATE INDEX beat_jobs_task ON beat_jobs (task, seq)",
        """CREATE INDEX beat_jobs_unique ON beat_jobs (unique_key, seq)
            WHERE unique_key IS NOT NULL""",
        """CREATE INDEX beat_jobs_finished ON beat_jobs (status, finished_at, seq)
            WHERE finished_at IS NOT NULL""",
        """CREATE TRIGGER beat_jobs_requeued AFTER UPDATE OF status ON beat_jobs
            WHEN NEW.status = 'queued' AND OLD.status <> 'queued' BEGIN
            UPDATE beat_signals SET counter = counter + 1 WHERE name = 'new'; END""",
    ),
}

_FENCE = "id = :id AND status = 'running' AND worker = :worker AND attempt = :attempt"
_SQL = {
    # Numbered, not named, parameters (an _Insert each): binding names from a dict cost ~5 µs
    # of the ~14 µs per row of a 1,000-row executemany.
    "insert": """
        INSERT INTO beat_jobs (id, task, args, kwargs, queue, priority, status, attempt,
                               max_attempts, scheduled_at, created_at, meta, unique_key)
        VALUES (?1, ?2, ?3, ?4, ?5, ?6, 'queued', 0, ?7, ?8, ?9, ?10, ?11)""",
    # Expired leases that must not run again: out of attempts, or cancellation requested.
    "expire": """
        UPDATE beat_jobs SET
            status = CASE WHEN cancel_requested THEN 'cancelled' ELSE 'dead' END,
            finished_at = :now, lease_expires_at = NULL,
            error_type = CASE WHEN cancel_requested THEN error_type ELSE :lease_expired END,
            error_message = CASE WHEN cancel_requested THEN error_message
                ELSE 'lease expired after ' || attempt || ' attempt(s)' END,
            error_traceback = CASE WHEN cancel_requested THEN error_traceback ELSE NULL END
        WHERE rowid IN (
            SELECT seq FROM beat_jobs INDEXED BY beat_jobs_leases
            WHERE status = 'running' AND lease_expires_at < :now
              AND (cancel_requested OR attempt >= max_attempts)
              AND queue IN (SELECT value FROM json_each(:queues))
              AND task IN (SELECT value FROM json_each(:tasks)))""",
    # The due rows come off beat_jobs_due in claim order and the scan stops at :limit; the
    # expired leases (after "expire": the ones that may run again) off beat_jobs_leases.
    # INDEXED BY: left to itself, SQLite read every row of the tasks through beat_jobs_task
    # and sorted them (3.5 ms a claim with 5,000 jobs stored; now a few rows).
    "claim": """
        UPDATE beat_jobs SET status = 'running', attempt = attempt + 1, worker = :worker,
            started_at = :now, lease_expires_at = :now + :lease
        WHERE seq IN (
            SELECT seq FROM (
                SELECT * FROM (
                    SELECT seq, priority, scheduled_at FROM beat_jobs INDEXED BY beat_jobs_due
                    WHERE status = 'queued' AND scheduled_at <= :now
                      AND queue IN (SELECT value FROM json_each(:queues))
                      AND task IN (SELECT value FROM json_each(:tasks))
                    ORDER BY priority DESC, scheduled_at, seq
                    LIMIT :limit)
                UNION ALL
                SELECT * FROM (
                    SELECT seq, priority, scheduled_at FROM beat_jobs INDEXED BY beat_jobs_leases
                    WHERE status = 'running' AND lease_expires_at < :now
                      AND queue IN (SELECT value FROM json_each(:queues))
                      AND task IN (SELECT value FROM json_each(:tasks))
                    ORDER BY priority DESC, scheduled_at, seq
                    LIMIT :limit))
            ORDER BY priority DESC, scheduled_at, seq
            LIMIT :limit)
        RETURNING *""",
    "heartbeat": """
        UPDATE beat_jobs SET lease_expires_at = :now + :lease
        WHERE status = 'running' AND worker = :worker
          AND id IN (SELECT json_extract(value, '$[0]') FROM json_each(:jobs))
          AND EXISTS (SELECT 1 FROM json_each(:jobs)
                      WHERE json_extract(value, '$[0]') = beat_jobs.id
                        AND json_extract(value, '$[1]') = beat_jobs.attempt)
        RETURNING id, cancel_requested""",
    "complete": f"""
        UPDATE beat_jobs SET status = 'succeeded', result = :result, finished_at = :now,
            lease_expires_at = NULL
        WHERE {_FENCE} RETURNING id""",
    # complete, for a batch of [id, attempt, worker, result text] in one statement: the
    # write lock is held for one statement instead of a Python loop of them.
    "complete_many": """
        UPDATE beat_jobs SET status = 'succeeded', result = done.result, finished_at = :now,
            lease_expires_at = NULL
        FROM (SELECT json_extract(value, '$[0]') AS id, json_extract(value, '$[1]') AS attempt,
                     json_extract(value, '$[2]') AS worker, json_extract(value, '$[3]') AS result
              FROM json_each(:items)) AS done
        WHERE beat_jobs.id = done.id AND beat_jobs.status = 'running'
          AND beat_jobs.worker = done.worker AND beat_jobs.attempt = done.attempt
        RETURNING beat_jobs.id, beat_jobs.attempt, beat_jobs.worker""",
    "fail": f"""
        UPDATE beat_jobs SET
            status = CASE WHEN cancel_requested THEN 'cancelled'
                          WHEN :retry_at IS NOT NULL AND attempt < max_attempts THEN 'queued'
                          ELSE 'dead' END,
            scheduled_at = CASE
                WHEN NOT cancel_requested AND :retry_at IS NOT NULL AND attempt < max_attempts
                THEN :retry_at ELSE scheduled_at END,
            worker = CASE
                WHEN NOT cancel_requested AND :retry_at IS NOT NULL AND attempt < max_attempts
                THEN NULL ELSE worker END,
            finished_at = CASE
                WHEN NOT cancel_requested AND :retry_at IS NOT NULL AND attempt < max_attempts
                THEN NULL ELSE :now END,
            lease_expires_at = NULL,
            error_type = :error_type, error_message = :message, error_traceback = :traceback
        WHERE {_FENCE} RETURNING status""",
    "release": f"""
        UPDATE beat_jobs SET
            status = CASE WHEN cancel_requested THEN 'cancelled' ELSE 'queued' END,
            finished_at = CASE WHEN cancel_requested THEN :now ELSE NULL END,
            worker = CASE WHEN cancel_requested THEN worker ELSE NULL END,
            max_attempts = CASE WHEN cancel_requested THEN max_attempts
                                ELSE max_attempts + 1 END,
            lease_expires_at = NULL
        WHERE {_FENCE} RETURNING status""",
    "mark_cancelled": f"""
        UPDATE beat_jobs SET status = 'cancelled', finished_at = :now, lease_expires_at = NULL
        WHERE {_FENCE} RETURNING id""",
    "cancel": """
        UPDATE beat_jobs SET
            status = CASE WHEN status = 'queued' THEN 'cancelled' ELSE status END,
            finished_at = CASE WHEN status = 'queued' THEN :now ELSE finished_at END,
            cancel_requested = CASE WHEN status = 'running' THEN 1 ELSE cancel_requested END
        WHERE id = :id RETURNING *""",
    "retry": """
        UPDATE beat_jobs SET status = 'queued', scheduled_at = :now, worker = NULL,
            lease_expires_at = NULL, finished_at = NULL, result = NULL, cancel_requested = 0,
            max_attempts = max(max_attempts, attempt + 1)
        WHERE id = :id AND status IN ('dead', 'cancelled') RETURNING *""",
    "get": "SELECT * FROM beat_jobs WHERE id = :id",
    "seq": "SELECT seq FROM beat_jobs WHERE id = :id",
    "list": """
        SELECT * FROM beat_jobs
        WHERE seq > :low AND seq < :high
          AND (:task IS NULL OR task = :task) AND (:queue IS NULL OR queue = :queue)
          AND (:status IS NULL OR :status = CASE
                WHEN status = 'queued' AND scheduled_at > :now THEN 'scheduled'
                ELSE status END)
        ORDER BY CASE WHEN :backward THEN -seq ELSE seq END
        LIMIT :limit""",
    "signal": "SELECT counter FROM beat_signals WHERE name = :name",
    "signal_new": "UPDATE beat_signals SET counter = counter + 1 WHERE name = 'new'",
    # When the next waiting job of these queues/tasks comes due or the next lease expires
    # (in the past: claimable now): wait_for_jobs returns or wakes then.
    "next_due": """
        SELECT MIN(CASE WHEN status = 'queued' THEN scheduled_at ELSE lease_expires_at END)
        FROM beat_jobs
        WHERE status IN ('queued', 'running')
          AND (:queues IS NULL OR queue IN (SELECT value FROM json_each(:queues)))
          AND (:tasks IS NULL OR task IN (SELECT value FROM json_each(:tasks)))""",
    # -- issues 12/13 --------------------------------------------------------------------------
    # The newest job a unique enqueue conflicts with (inside the enqueue's write transaction).
    "unique_find": """
        SELECT * FROM beat_jobs
        WHERE unique_key = :key AND status IN (SELECT value FROM json_each(:statuses))
          AND (:since IS NULL OR created_at > :since)
        ORDER BY seq DESC LIMIT 1""",
    "unique_replace": """
        UPDATE beat_jobs SET args = :args, kwargs = :kwargs, meta = :meta,
            priority = :priority, queue = :queue, scheduled_at = :scheduled_at,
            max_attempts = max(:max_attempts, attempt + 1)
        WHERE seq = :seq AND status = 'queued' RETURNING *""",
    "progress": f"UPDATE beat_jobs SET progress = :progress WHERE {_FENCE} RETURNING id",
    "exists": "SELECT 1 FROM beat_jobs WHERE id = :id",
    "log_insert": """
        INSERT INTO beat_logs (job_id, attempt, at, level, logger, message)
        VALUES (:id, :attempt, :at, :level, :logger, :message)""",
    "logs": """
        SELECT attempt, at, level, logger, message FROM beat_logs
        WHERE job_id = :id AND (:attempt IS NULL OR attempt = :attempt)
        ORDER BY attempt, seq""",
    "count": """
        SELECT queue, CASE WHEN status = 'queued' AND scheduled_at > :now THEN 'scheduled'
                           ELSE status END AS derived, count(*) AS n
        FROM beat_jobs GROUP BY queue, derived""",
    # Every rule ranks its jobs newest first over the same snapshot; a job goes if any rule
    # finds it too old or past its count. Rules: JSON [[status, task, max_age_us, max_count]].
    "prune_select": """
        WITH rules AS (
            SELECT key AS n, json_extract(value, '$[0]') AS status,
                   json_extract(value, '$[1]') AS task, json_extract(value, '$[2]') AS max_age,
                   json_extract(value, '$[3]') AS max_count
            FROM json_each(:rules)
        ), ranked AS (
            SELECT j.id, j.finished_at, r.max_age, r.max_count,
                   row_number() OVER (PARTITION BY r.n ORDER BY j.finished_at DESC, j.seq DESC)
                       AS rank
            FROM beat_jobs AS j JOIN rules AS r
              ON j.status = r.status AND (r.task IS NULL OR j.task = r.task)
            WHERE j.finished_at IS NOT NULL
              AND j.status IN ('succeeded', 'dead', 'cancelled')
        )
        SELECT DISTINCT id FROM ranked
        WHERE (max_age IS NOT NULL AND finished_at < :now - max_age)
           OR (max_count IS NOT NULL AND rank > max_count)""",
    "prune_logs": "DELETE FROM beat_logs WHERE job_id IN (SELECT value FROM json_each(:ids))",
    "prune_jobs": """
        DELETE FROM beat_jobs WHERE id IN (SELECT value FROM json_each(:ids))
          AND status IN ('succeeded', 'dead', 'cancelled')""",
    "instance_expire": "DELETE FROM beat_instances WHERE expires_at < :now",
    "instance_put": """
        INSERT INTO beat_instances (name, host, pid, started_at, last_seen, expires_at, info)
        VALUES (:name, :host, :pid, :started_at, :now, :expires_at, :info)
        ON CONFLICT (name) DO UPDATE SET host = excluded.host, pid = excluded.pid,
            started_at = excluded.started_at, last_seen = excluded.last_seen,
            expires_at = excluded.expires_at, info = excluded.info""",
    "instances": "SELECT * FROM beat_instances WHERE expires_at >= :now ORDER BY name",
    "instance_remove": "DELETE FROM beat_instances WHERE name = :name",
    "schedule_get": "SELECT * FROM beat_schedules WHERE name = :name",
    "schedules": "SELECT * FROM beat_schedules ORDER BY name",
    "schedule_bump": """
        UPDATE beat_signals SET counter = counter + 1 WHERE name = 'schedules'
        RETURNING counter""",
    "schedule_put": """
        INSERT INTO beat_schedules (name, task, cron, every, at, timezone, args, kwargs, queue,
            priority, max_attempts, misfire, paused, version, created_at, updated_at)
        VALUES (:name, :task, :cron, :every, :at, :timezone, :args, :kwargs, :queue,
            :priority, :max_attempts, :misfire, :paused, :version, :now, :now)
        ON CONFLICT (name) DO UPDATE SET task = excluded.task, cron = excluded.cron,
            every = excluded.every, at = excluded.at, timezone = excluded.timezone,
            args = excluded.args, kwargs = excluded.kwargs, queue = excluded.queue,
            priority = excluded.priority, max_attempts = excluded.max_attempts,
            misfire = excluded.misfire, paused = excluded.paused, version = excluded.version,
            updated_at = excluded.updated_at
        RETURNING *""",
    "schedule_pause": """
        UPDATE beat_schedules SET paused = :paused, version = :version, updated_at = :now
        WHERE name = :name RETURNING *""",
    "schedule_delete": "DELETE FROM beat_schedules WHERE name = :name RETURNING name",
    "schedule_advance": """
        UPDATE beat_schedules SET last_instant = :at
        WHERE name = :name AND (last_instant IS NULL OR last_instant < :at) RETURNING name""",
}


def _us(value: datetime) -> int:
    return (value - _EPOCH) // _US


def _dt(us: int | None) -> datetime | None:
    return None if us is None else _EPOCH + us * _US


class SQLiteStore(Store):
    """Jobs in the SQLite file ``path`` (see the module docstring).

    ``clock``: epoch seconds (default ``time.time``). ``busy_timeout``: seconds a call waits
    for another process's write lock before :class:`StoreUnavailableError`. ``poll_interval``:
    seconds between looks for other processes' changes in the ``wait_*`` methods.
    ``synchronous``: SQLite's ``PRAGMA synchronous``; ``FULL`` (default) makes every commit
    durable across a power loss, ``NORMAL`` only across a process crash.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        clock: Callable[[], float] = time.time,
        busy_timeout: float = 5.0,
        poll_interval: float = 0.5,
        synchronous: str = "FULL",
    ) -> None:
        if str(synchronous).upper() not in _SYNCHRONOUS:
            raise StoreConfigError(f"synchronous must be one of {_SYNCHRONOUS}")
        self.path = Path(path)
        self.busy_timeout = check_seconds(busy_timeout, "busy_timeout")
        self.poll_interval = check_seconds(poll_interval, "poll_interval")
        self.synchronous = str(synchronous).upper()
        self._clock = clock
        self._executor: ThreadPoolExecutor | None = None
        self._conn: sqlite3.Connection | None = None
        self._new_waiters: set[asyncio.Future[None]] = set()
        self._finished_waiters: set[asyncio.Future[None]] = set()
        self._schedule_waiters: set[asyncio.Future[None]] = set()
        self._doorbell = Doorbell(self.path, self._rung)

    # -- thread plumbing ---------------------------------------------------------------------
    async def _run(self, fn: Callable[[sqlite3.Connection], _T]) -> _T:
        executor = self._executor
        if executor is None:
            raise StoreUnavailableError("the SQLite store is not open")

        def call() -> _T:
            conn = self._conn
            if conn is None:
                raise StoreUnavailableError("the SQLite store is not open")
            return fn(conn)

        try:
            return await asyncio.get_running_loop().run_in_executor(executor, call)
        except sqlite3.Error as exc:
            raise StoreUnavailableError(f"SQLite {self.path}: {type(exc).__name__}: {exc}") from exc
        except RuntimeError as exc:  # the executor was shut down by close()
            if "shutdown" not in str(exc):
                raise
            raise StoreUnavailableError("the SQLite store is not open") from exc

    def _now_us(self) -> int:
        return round(float(self._clock()) * 1_000_000)

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

    # -- lifecycle ---------------------------------------------------------------------------
    async def open(self) -> None:
        if self._executor is not None:
            return
        executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="beat-sqlite")
        try:
            self._conn = await asyncio.get_running_loop().run_in_executor(executor, self._connect)
        except BaseException:
            executor.shutdown(wait=False)
            raise
        self._executor = executor
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
        try:
            conn = sqlite3.connect(self.path, timeout=self.busy_timeout, isolation_level=None)
        except sqlite3.Error as exc:
            raise StoreConfigError(f"cannot open SQLite file {self.path}: {exc}") from exc
        try:
            conn.row_factory = sqlite3.Row
            self._enter_wal(conn)
            conn.execute(f"PRAGMA synchronous = {self.synchronous}")
            with self._write(conn):
                version = conn.execute("PRAGMA user_version").fetchone()[0]
                if version > SCHEMA_VERSION:
                    raise StoreConfigError(
                        f"{self.path} holds schema version {version}; this beat knows "
                        f"{SCHEMA_VERSION} (upgrade beat)"
                    )
                for step in range(version + 1, SCHEMA_VERSION + 1):
                    for statement in _MIGRATIONS[step]:
                        conn.execute(statement)
                conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
        except sqlite3.Error as exc:
            conn.close()
            raise StoreUnavailableError(f"SQLite {self.path}: {exc}") from exc
        except BaseException:
            conn.close()
            raise
        return conn

    async def close(self) -> None:
        executor, self._executor = self._executor, None
        if executor is None:
            return
        self._doorbell.close()

        def shut() -> None:
            conn, self._conn = self._conn, None
            if conn is not None:
                conn.close()

        try:
            await asyncio.get_running_loop().run_in_executor(executor, shut)
        finally:
            executor.shutdown(wait=False)
            self._wake(self._new_waiters)
            self._wake(self._finished_waiters)
            self._wake(self._schedule_waiters)

    async def now(self) -> datetime:
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
                    conn.executemany(_SQL["insert"], rows)
                    conn.execute(_SQL["signal_new"])
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
                    conn.execute(_SQL["insert"], params)
                    done.append(self._enqueued(job, params) if records else None)
                if any(r is None or not r.conflict for r in done):
                    conn.execute(_SQL["signal_new"])
            return done

        done = await self._run(run)
        # Jobs that were only found (unique conflicts) wake nobody; a replace may have
        # made its job due sooner, so it does.
        if any(r is None or not r.conflict for r in done) or any(
            j.unique is not None and j.unique.replace for j in prepared
        ):
            self._changed(NEW)
        return done

    async def claim(
        self,
        worker: str,
        *,
        queues: Sequence[str],
        tasks: Collection[str],
        limit: int,
        lease: float,
    ) -> list[JobRecord]:
        queue_list, task_list = check_claim(worker, queues, tasks, limit, lease)
        if not queue_list or not task_list:
            return []
        params = {
            "worker": worker,
            "queues": json.dumps(queue_list),
            "tasks": json.dumps(task_list),
            "limit": limit,
            "lease": round(lease * 1_000_000),
            "lease_expired": LEASE_EXPIRED,
        }

        def run(conn: sqlite3.Connection) -> tuple[list[JobRecord], int]:
            # A claim need not wait for the disk (see _CLAIM_SYNCHRONOUS); the next flushed
            # commit of this file flushes it too.
            conn.execute(f"PRAGMA synchronous = {_CLAIM_SYNCHRONOUS[self.synchronous]}")
            try:
                with self._write(conn):
                    params["now"] = now = self._now_us()
                    expired = conn.execute(_SQL["expire"], params).rowcount
                    rows = conn.execute(_SQL["claim"], params).fetchall()
            finally:
                conn.execute(f"PRAGMA synchronous = {self.synchronous}")
            rows.sort(key=lambda r: (-r["priority"], r["scheduled_at"], r["seq"]))
            return [self._record(row, now) for row in rows], expired

        records, expired = await self._run(run)
        if expired:
            self._changed(FINISHED)
        return records

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
            return conn.execute(_SQL["heartbeat"], params).fetchall()

        rows = await self._run(run)
        kept = {UUID(row["id"]) for row in rows}
        cancel = {UUID(row["id"]) for row in rows if row["cancel_requested"]}
        return Heartbeat(lost=frozenset(wanted - kept), cancel_requested=frozenset(cancel))

    async def _fenced(self, name: str, id: UUID, attempt: int, worker: str, **extra: Any) -> Any:
        params = {"id": str(to_uuid(id)), "attempt": attempt, "worker": worker, **extra}

        def run(conn: sqlite3.Connection) -> Any:
            params["now"] = self._now_us()
            row = conn.execute(_SQL[name], params).fetchone()
            return None if row is None else row[0]

        return await self._run(run)

    async def complete(self, id: UUID, attempt: int, worker: str, result: JSON = None) -> bool:
        text = encode_json(result, "result")
        done = await self._fenced("complete", id, attempt, worker, result=text)
        if done is not None:
            self._changed(FINISHED)
        return done is not None

    async def complete_many(self, items: Sequence[tuple[UUID, int, str, JSON]]) -> list[bool]:
        good, bad = prepare_results(items)

        rows = [(str(item.id), item.attempt, item.worker, item.result) for item in good]
        params: dict[str, Any] = {"items": json.dumps(rows)}

        def run(conn: sqlite3.Connection) -> list[bool]:
            params["now"] = self._now_us()
            with self._write(conn):
                written = {tuple(r) for r in conn.execute(_SQL["complete_many"], params)}
            return [row[:3] in written for row in rows]

        done = await self._run(run) if good else []
        if any(done):
            self._changed(FINISHED)
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
            retry_at=retry,
            error_type=clean_text(error_type),
            message=clean_text(message),
            traceback=clean_text(traceback),
        )
        self._woken(status)
        return status is not None

    async def release(self, id: UUID, attempt: int, worker: str) -> bool:
        status = await self._fenced("release", id, attempt, worker)
        self._woken(status)
        return status is not None

    async def mark_cancelled(self, id: UUID, attempt: int, worker: str) -> bool:
        done = await self._fenced("mark_cancelled", id, attempt, worker)
        if done is not None:
            self._changed(FINISHED)
        return done is not None

    async def cancel(self, id: UUID) -> JobRecord:
        key = str(to_uuid(id))

        def run(conn: sqlite3.Connection) -> JobRecord | None:
            now = self._now_us()
            row = conn.execute(_SQL["cancel"], {"id": key, "now": now}).fetchone()
            return None if row is None else self._record(row, now)

        record = await self._run(run)
        if record is None:
            raise JobNotFoundError(f"no job with id {key}")
        if record.status is JobStatus.CANCELLED:
            self._changed(FINISHED)
        return record

    async def retry(self, id: UUID) -> JobRecord:
        key = str(to_uuid(id))

        def run(conn: sqlite3.Connection) -> JobRecord | None:
            now = self._now_us()
            row = conn.execute(_SQL["retry"], {"id": key, "now": now}).fetchone()
            return None if row is None else self._record(row, now)

        record = await self._run(run)
        if record is None:
            found = await self.get(to_uuid(id))
            if found is None:
                raise JobNotFoundError(f"no job with id {key}")
            raise InvalidJobStateError(
                f"job {key} is {found.status}; only dead or cancelled jobs can be retried",
                status=found.status,
            )
        self._changed(NEW)
        return record

    # -- reads -------------------------------------------------------------------------------
    async def get(self, id: UUID) -> JobRecord | None:
        key = str(to_uuid(id))

        def run(conn: sqlite3.Connection) -> JobRecord | None:
            now = self._now_us()
            row = conn.execute(_SQL["get"], {"id": key}).fetchone()
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

        def run(conn: sqlite3.Connection) -> list[JobRecord] | str:
            conn.execute("BEGIN")  # one snapshot for the cursors and the page
            try:
                bounds = {}
                for name, cursor in cursors.items():
                    if cursor is None:
                        continue
                    row = conn.execute(_SQL["seq"], {"id": str(to_uuid(cursor))}).fetchone()
                    if row is None:
                        return str(cursor)
                    bounds[name] = row[0]
                now = self._now_us()
                rows = conn.execute(
                    _SQL["list"],
                    {
                        "low": bounds.get("after", 0),
                        "high": bounds.get("before", 2**63 - 1),
                        "task": task,
                        "queue": queue,
                        "status": None if wanted is None else wanted.value,
                        "now": now,
                        "backward": before is not None and after is None,
                        "limit": limit,
                    },
                ).fetchall()
            finally:
                conn.execute("COMMIT")
            rows.sort(key=lambda r: r["seq"])
            return [self._record(row, now) for row in rows]

        result = await self._run(run)
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

    def _woken(self, status: str | None) -> None:
        if status == STORED_WAITING:
            self._changed(NEW)
        elif status in FINISHED_VALUES:
            self._changed(FINISHED)

    def _changed(self, kind: bytes) -> None:
        """After a commit: wake this object's waiters of ``kind`` and ring the other
        processes' doorbells."""
        self._rung(kind)
        self._doorbell.ring(kind)

    def _rung(self, kind: bytes) -> None:
        if kind == SCHEDULES:
            self._wake(self._schedule_waiters)
            return
        self._wake(self._new_waiters if kind == NEW else self._finished_waiters)

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
            counter: int = conn.execute(_SQL["signal"], params).fetchone()[0]
            now = self._now_us()
            soonest = conn.execute(_SQL["next_due"], params).fetchone()[0]
            left = math.inf if soonest is None else max(0.0, (soonest - now) / 1_000_000)
            return counter, left

        return await self._run(run)

    async def _signal(self, name: str) -> int:
        def run(conn: sqlite3.Connection) -> int:
            counter: int = conn.execute(_SQL["signal"], {"name": name}).fetchone()[0]
            return counter

        return await self._run(run)

    async def _sleep(self, waiters: set[asyncio.Future[None]], seconds: float) -> None:
        """Sleep ``seconds`` or until a change through this store object."""
        future = asyncio.get_running_loop().create_future()
        waiters.add(future)
        try:
            await asyncio.wait_for(asyncio.shield(future), seconds)
        except TimeoutError:
            pass
        finally:
            waiters.discard(future)

    async def wait_for_jobs(
        self,
        timeout: float,
        *,
        queues: Sequence[str] | None = None,
        tasks: Collection[str] | None = None,
    ) -> None:
        check_seconds(timeout, "timeout", zero=True)
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
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(asyncio.shield(future), min(left, self.poll_interval))
                if future.done() or await self._signal("new") != start:
                    return
        finally:
            self._new_waiters.discard(future)

    async def wait_finished(self, id: UUID, timeout: float) -> JobRecord:
        check_seconds(timeout, "timeout", zero=True)
        key = to_uuid(id)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        self._doorbell.listen(FINISHED)
        while True:
            record = await self.get(key)
            if record is None:
                raise JobNotFoundError(f"no job with id {key}")
            if record.status.finished:
                return record
            left = deadline - loop.time()
            if left <= 0:
                raise TimeoutError(f"job {key} is still {record.status} after {timeout} s")
            await self._sleep(self._finished_waiters, min(left, self.poll_interval))

    # -- unique keys ------------------------------------------------------------------------------
    def _unique_conflict(
        self, conn: sqlite3.Connection, unique: PreparedUnique, params: _Insert
    ) -> sqlite3.Row | None:
        """Inside the enqueue's write transaction: the conflicting job (replaced first when
        asked and still waiting), or ``None`` to insert."""
        since = None if unique.period is None else params.now - round(unique.period * 1e6)
        found: sqlite3.Row | None = conn.execute(
            _SQL["unique_find"],
            {"key": unique.key, "statuses": json.dumps(unique.statuses), "since": since},
        ).fetchone()
        if found is not None and unique.replace and found["status"] == STORED_WAITING:
            replaced: sqlite3.Row = conn.execute(
                _SQL["unique_replace"], {**params._asdict(), "seq": found["seq"]}
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
                if conn.execute(_SQL["exists"], {"id": key}).fetchone() is None:
                    return False
                conn.executemany(
                    _SQL["log_insert"],
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
            conn.execute("BEGIN")  # one snapshot: the job's existence and its logs
            try:
                if conn.execute(_SQL["exists"], {"id": key}).fetchone() is None:
                    return None
                return conn.execute(_SQL["logs"], {"id": key, "attempt": attempt}).fetchall()
            finally:
                conn.execute("COMMIT")

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
            return conn.execute(_SQL["count"], {"now": self._now_us()}).fetchall()

        counts: dict[str, dict[JobStatus, int]] = {}
        for row in await self._run(run):
            counts.setdefault(row["queue"], {})[JobStatus(row["derived"])] = row["n"]
        return counts

    async def prune(self, rules: Sequence[PruneRule]) -> int:
        prepared = prepare_rules(rules)
        if not prepared:
            return 0
        encoded = json.dumps(
            [
                [
                    r.status,
                    r.task,
                    None if r.max_age is None else round(r.max_age * 1_000_000),
                    r.max_count,
                ]
                for r in prepared
            ]
        )

        def run(conn: sqlite3.Connection) -> int:
            with self._write(conn):
                now = self._now_us()
                rows = conn.execute(_SQL["prune_select"], {"rules": encoded, "now": now})
                ids = json.dumps([row[0] for row in rows])
                conn.execute(_SQL["prune_logs"], {"ids": ids})
                return conn.execute(_SQL["prune_jobs"], {"ids": ids}).rowcount

        return await self._run(run)

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
                conn.execute(_SQL["instance_expire"], {"now": now})
                conn.execute(
                    _SQL["instance_put"],
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
            return conn.execute(_SQL["instances"], {"now": self._now_us()}).fetchall()

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
            conn.execute(_SQL["instance_remove"], {"name": name})

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

    def _schedules_changed(self) -> None:
        self._rung(SCHEDULES)
        self._doorbell.ring(SCHEDULES)

    async def put_schedule(self, spec: ScheduleSpec) -> ScheduleRecord:
        p = prepare_schedule(spec)

        def run(conn: sqlite3.Connection) -> tuple[ScheduleRecord, bool]:
            with self._write(conn):
                stored = conn.execute(_SQL["schedule_get"], {"name": p.name}).fetchone()
                if stored is not None:
                    record = self._schedule(stored)
                    if prepare_schedule(record).content() == p.content():
                        return record, False
                version = conn.execute(_SQL["schedule_bump"]).fetchone()[0]
                row = conn.execute(
                    _SQL["schedule_put"],
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
                    },
                ).fetchone()
            return self._schedule(row), True

        record, changed = await self._run(run)
        if changed:
            self._schedules_changed()
        return record

    async def get_schedule(self, name: str) -> ScheduleRecord | None:
        check_name(name, "schedule name")

        def run(conn: sqlite3.Connection) -> sqlite3.Row | None:
            row: sqlite3.Row | None = conn.execute(_SQL["schedule_get"], {"name": name}).fetchone()
            return row

        row = await self._run(run)
        return None if row is None else self._schedule(row)

    async def list_schedules(self) -> list[ScheduleRecord]:
        def run(conn: sqlite3.Connection) -> list[sqlite3.Row]:
            return conn.execute(_SQL["schedules"]).fetchall()

        return [self._schedule(row) for row in await self._run(run)]

    async def set_schedule_paused(self, name: str, paused: bool) -> ScheduleRecord:
        check_name(name, "schedule name")
        check_paused(paused)

        def run(conn: sqlite3.Connection) -> tuple[sqlite3.Row | None, bool]:
            with self._write(conn):
                stored = conn.execute(_SQL["schedule_get"], {"name": name}).fetchone()
                if stored is None or bool(stored["paused"]) == paused:
                    return stored, False
                version = conn.execute(_SQL["schedule_bump"]).fetchone()[0]
                row = conn.execute(
                    _SQL["schedule_pause"],
                    {
                        "name": name,
                        "paused": int(paused),
                        "version": version,
                        "now": self._now_us(),
                    },
                ).fetchone()
            return row, True

        row, changed = await self._run(run)
        if row is None:
            raise JobNotFoundError(f"no schedule named {name!r}")
        if changed:
            self._schedules_changed()
        return self._schedule(row)

    async def delete_schedule(self, name: str) -> bool:
        check_name(name, "schedule name")

        def run(conn: sqlite3.Connection) -> bool:
            with self._write(conn):
                if conn.execute(_SQL["schedule_delete"], {"name": name}).fetchone() is None:
                    return False
                conn.execute(_SQL["schedule_bump"]).fetchone()
            return True

        deleted = await self._run(run)
        if deleted:
            self._schedules_changed()
        return deleted

    async def advance_schedule(self, name: str, instant: datetime) -> bool:
        check_name(name, "schedule name")
        at = _us(check_aware(instant, "instant"))

        def run(conn: sqlite3.Connection) -> bool:
            row = conn.execute(_SQL["schedule_advance"], {"name": name, "at": at}).fetchone()
            return row is not None

        return await self._run(run)

    async def schedules_version(self) -> int:
        return await self._signal("schedules")

    async def wait_schedules_changed(self, version: int, timeout: float) -> int:
        check_version(version)
        check_seconds(timeout, "timeout", zero=True)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        self._doorbell.listen(SCHEDULES)
        while True:
            # Listen first, then look: a change through this object (or a ring from another
            # process) while we read the counter still completes the future.
            future = loop.create_future()
            self._schedule_waiters.add(future)
            try:
                current = await self._signal("schedules")
                left = deadline - loop.time()
                if current != version or left <= 0:
                    return current
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(asyncio.shield(future), min(left, self.poll_interval))
            finally:
                self._schedule_waiters.discard(future)
