"""``PostgresStore``: jobs in PostgreSQL, for any number of processes and hosts (asyncpg).

Guarantees, stated plainly:

* **Durable**: :meth:`~PostgresStore.enqueue` returns after the batch committed (with the
  server's ``synchronous_commit``).
* **Never concurrently twice**: a claim is one statement that picks due rows with
  ``FOR UPDATE SKIP LOCKED`` and marks them ``running`` under a lease; concurrent claimers
  skip each other's rows, so no job is handed to two workers while its lease runs.
* **At least once**: a worker that dies stops renewing its lease; after ``lease_expires_at``
  the next claim takes the job again with ``attempt + 1``. A worker that was only slow may
  still be running then, so tasks must tolerate a second execution; its outcome is refused
  (**fencing by attempt**: every outcome names ``(worker, attempt)`` and only the current one
  is written).
* **One clock**: due times and leases are compared with the **database** clock (``now()``),
  never a worker's.

Wake-ups: triggers send ``NOTIFY``, once per statement, when jobs become claimable (insert,
release, retry, failure with retry; channel ``<schema>.beat_new``) or finish
(``<schema>.beat_finished``, payload: the ids, comma-separated, at most 200 per
notification). Each store listens on one dedicated connection;
:meth:`~PostgresStore.wait_for_jobs` and :meth:`~PostgresStore.wait_finished` sleep on those
notifications, with a fallback look every ``poll_interval`` seconds (default 5) in case one
was lost (a dropped listener connection is re-opened on the next wait).

Schema (in ``schema``, default ``public``), created on first :meth:`~PostgresStore.open` and
migrated forward in one transaction under ``pg_advisory_xact_lock``, so several instances
starting at once migrate exactly once::

    beat_schema_version (version integer)        one row per applied version; current: 3
    beat_jobs (
        id uuid PRIMARY KEY, seq bigint identity UNIQUE (insertion order, paging cursor),
        task text, args json, kwargs json, queue text, priority integer,
        status text        queued | running | succeeded | dead | cancelled
                           (queued with scheduled_at > now() is reported as scheduled),
        attempt integer, max_attempts integer,
        scheduled_at, created_at, started_at, finished_at, lease_expires_at timestamptz,
        worker text, result json, error_type text, error_message text, error_traceback text,
        cancel_requested boolean)
    indexes: due jobs (queue, priority DESC, scheduled_at, seq) WHERE status = 'queued';
             leases (lease_expires_at) WHERE status = 'running'; (task, seq) until version 3
    statement triggers beat_jobs_inserted / beat_jobs_updated (transition tables), and the
    logs, instances, schedules and counters tables of version 2

Privileges: ``CREATE`` on the schema (or the database, if the schema does not exist yet) on
first use; afterwards ``USAGE`` on the schema and ``SELECT, INSERT, UPDATE`` on the tables.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
from collections.abc import Awaitable, Callable, Collection, Mapping, Sequence
from dataclasses import replace
from datetime import datetime
from typing import Any, TypeVar
from uuid import UUID

import asyncpg  # type: ignore[import-untyped]

from .._exceptions import InvalidJobError
from .._pg import Pool, discard_if_cut_short
from ._base import (
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
    encode_json,
    enqueued_record,
    prepare_instance,
    prepare_jobs,
    prepare_logs,
    prepare_results,
    prepare_rules,
    to_uuid,
)
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

__all__ = ["PostgresStore"]

_T = TypeVar("_T")

SCHEMA_VERSION = 3
_SCHEMA_RE = re.compile(r"[a-z_][a-z0-9_]{0,40}")
# InternalClientError: asyncpg resetting a connection the server dropped mid-operation
# ("cannot switch to state ..."), seen during server restarts.
_UNAVAILABLE = (
    OSError,
    TimeoutError,
    asyncpg.PostgresError,
    asyncpg.InterfaceError,
    asyncpg.exceptions.InternalClientError,
)
_CONNECTION_LOST = (
    OSError,
    TimeoutError,
    asyncpg.PostgresConnectionError,
    asyncpg.InterfaceError,
    asyncpg.exceptions.OperatorInterventionError,
    asyncpg.exceptions.InternalClientError,
)
_CONFIG = (
    asyncpg.InvalidPasswordError,
    asyncpg.InvalidAuthorizationSpecificationError,
    asyncpg.InvalidCatalogNameError,
    asyncpg.InsufficientPrivilegeError,
)

# -------------------------------------------------------------------------------------------
# Every statement of the backend. ``{s}`` is the schema (a checked identifier); values are
# always parameters.
# -------------------------------------------------------------------------------------------
_MIGRATIONS: dict[int, tuple[str, ...]] = {
    1: (
        """CREATE TABLE {s}.beat_jobs (
            id uuid PRIMARY KEY,
            seq bigint GENERATED ALWAYS AS IDENTITY UNIQUE,
            task text NOT NULL,
            args json NOT NULL,
            kwargs json NOT NULL,
            queue text NOT NULL,
            priority integer NOT NULL,
            status text NOT NULL,
            attempt integer NOT NULL,
            max_attempts integer NOT NULL,
            scheduled_at timestamptz NOT NULL,
            created_at timestamptz NOT NULL,
            started_at timestamptz,
            finished_at timestamptz,
            worker text,
            lease_expires_at timestamptz,
            result json,
            error_type text,
            error_message text,
            error_traceback text,
            cancel_requested boolean NOT NULL DEFAULT false)""",
        """CREATE INDEX beat_jobs_due ON {s}.beat_jobs (queue, priority DESC, scheduled_at, seq)
            WHERE status = 'queued'""",
        """CREATE INDEX beat_jobs_leases ON {s}.beat_jobs (lease_expires_at)
            WHERE status = 'running'""",
        "CREATE INDEX beat_jobs_task ON {s}.beat_jobs (task, seq)",
        """CREATE FUNCTION {s}.beat_jobs_notify() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN
                IF NEW.status = 'queued'
                   AND (TG_OP = 'INSERT' OR OLD.status IS DISTINCT FROM 'queued') THEN
                    PERFORM pg_notify('{s}.beat_new', '');
                ELSIF TG_OP = 'UPDATE' AND NEW.status IN ('succeeded', 'dead', 'cancelled')
                      AND OLD.status IS DISTINCT FROM NEW.status THEN
                    PERFORM pg_notify('{s}.beat_finished', NEW.id::text);
                END IF;
                RETURN NULL;
            END $$""",
        """CREATE TRIGGER beat_jobs_notify AFTER INSERT OR UPDATE OF status ON {s}.beat_jobs
            FOR EACH ROW EXECUTE FUNCTION {s}.beat_jobs_notify()""",
    ),
    # Issues 12/13: meta, progress and unique keys on jobs; logs, instances, schedules.
    2: (
        """ALTER TABLE {s}.beat_jobs ADD COLUMN meta json NOT NULL DEFAULT '{}',
            ADD COLUMN progress json, ADD COLUMN unique_key text""",
        """CREATE INDEX beat_jobs_unique ON {s}.beat_jobs (unique_key, seq)
            WHERE unique_key IS NOT NULL""",
        # Only finished jobs have finished_at: prune walks this, never the live jobs.
        """CREATE INDEX beat_jobs_finished ON {s}.beat_jobs (status, finished_at, seq)
            WHERE finished_at IS NOT NULL""",
        # Deleting a job (prune) deletes its logs; a log of a deleted job cannot be added.
        """CREATE TABLE {s}.beat_logs (
            id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
            job_id uuid NOT NULL REFERENCES {s}.beat_jobs (id) ON DELETE CASCADE,
            attempt integer NOT NULL,
            at timestamptz NOT NULL,
            level text NOT NULL,
            logger text NOT NULL,
            message text NOT NULL)""",
        "CREATE INDEX beat_logs_job ON {s}.beat_logs (job_id, attempt, id)",
        """CREATE TABLE {s}.beat_instances (
            name text PRIMARY KEY,
            host text NOT NULL,
            pid integer NOT NULL,
            started_at timestamptz NOT NULL,
            last_seen timestamptz NOT NULL,
            expires_at timestamptz NOT NULL,
            info json NOT NULL)""",
        """CREATE TABLE {s}.beat_schedules (
            name text PRIMARY KEY,
            task text NOT NULL,
            cron text,
            every float8,
            at timestamptz,
            timezone text NOT NULL,
            args json NOT NULL,
            kwargs json NOT NULL,
            queue text NOT NULL,
            priority integer NOT NULL,
            max_attempts integer NOT NULL,
            misfire text NOT NULL,
            paused boolean NOT NULL,
            version bigint NOT NULL,
            created_at timestamptz NOT NULL,
            updated_at timestamptz NOT NULL,
            last_instant timestamptz)""",
        # 'schedules': bumped by every schedule change (its row lock serializes them); each
        # changed schedule takes the new value as its version.
        "CREATE TABLE {s}.beat_counters (name text PRIMARY KEY, value bigint NOT NULL)",
        "INSERT INTO {s}.beat_counters VALUES ('schedules', 0)",
    ),
    # Notifications per statement, not per row: a plpgsql call per row and a NOTIFY per
    # finished job cost a batch of ten completions more than its UPDATE (measured: end to
    # end 2,289 jobs/s with the row trigger, 2,625 with none). Each statement now sends at
    # most one beat_new and one beat_finished per 200 finished jobs (payload: their ids,
    # comma-separated; 200 ids fit NOTIFY's 8,000-byte payload).
    3: (
        # Every insert and every status change (non-HOT: status is in the partial indexes'
        # predicates) writes one entry per index; this one only served listings by task,
        # which now walk the seq index and filter. Measured without it: claims and
        # completions -13 % server time per job.
        "DROP INDEX {s}.beat_jobs_task",
        "DROP TRIGGER beat_jobs_notify ON {s}.beat_jobs",
        "DROP FUNCTION {s}.beat_jobs_notify()",
        """CREATE FUNCTION {s}.beat_jobs_inserted() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN
                IF EXISTS (SELECT 1 FROM inserted WHERE status = 'queued') THEN
                    PERFORM pg_notify('{s}.beat_new', '');
                END IF;
                RETURN NULL;
            END $$""",
        """CREATE TRIGGER beat_jobs_inserted AFTER INSERT ON {s}.beat_jobs
            REFERENCING NEW TABLE AS inserted
            FOR EACH STATEMENT EXECUTE FUNCTION {s}.beat_jobs_inserted()""",
        """CREATE FUNCTION {s}.beat_jobs_updated() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN
                IF EXISTS (
                    SELECT 1 FROM after_rows AS a JOIN before_rows AS b USING (id)
                    WHERE a.status = 'queued' AND b.status <> 'queued'
                ) THEN
                    PERFORM pg_notify('{s}.beat_new', '');
                END IF;
                PERFORM pg_notify('{s}.beat_finished', string_agg(id::text, ','))
                FROM (
                    SELECT a.id, (row_number() OVER () - 1) / 200 AS chunk
                    FROM after_rows AS a JOIN before_rows AS b USING (id)
                    WHERE a.status IN ('succeeded', 'dead', 'cancelled')
                      AND b.status <> a.status
                ) AS finished
                GROUP BY chunk;
                RETURN NULL;
            END $$""",
        """CREATE TRIGGER beat_jobs_updated AFTER UPDATE ON {s}.beat_jobs
            REFERENCING OLD TABLE AS before_rows NEW TABLE AS after_rows
            FOR EACH STATEMENT EXECUTE FUNCTION {s}.beat_jobs_updated()""",
    ),
}

_COLUMNS = """id, seq, task, args, kwargs, queue, priority,
    CASE WHEN status = 'queued' AND scheduled_at > now() THEN 'scheduled' ELSE status END
        AS status,
    attempt, max_attempts, scheduled_at, created_at, started_at, finished_at, worker,
    lease_expires_at, result, error_type, error_message, error_traceback, cancel_requested,
    meta, progress, unique_key"""
_FENCE = "id = $1 AND attempt = $2 AND worker = $3 AND status = 'running'"
_RETRYING = "(NOT cancel_requested AND $4::timestamptz IS NOT NULL AND attempt < max_attempts)"

_INSERT_MANY = """
    INSERT INTO {s}.beat_jobs (id, task, args, kwargs, queue, priority, status, attempt,
                               max_attempts, scheduled_at, created_at, meta, unique_key)
    SELECT u.id, u.task, u.args::json, u.kwargs::json, u.queue, u.priority, 'queued', 0,
           u.max_attempts, coalesce(u.at, now() + make_interval(secs => u.delay)), now(),
           u.meta::json, u.unique_key
    FROM unnest($1::uuid[], $2::text[], $3::text[], $4::text[], $5::text[], $6::int[],
                $7::int[], $8::timestamptz[], $9::float8[], $10::text[], $11::text[])
         WITH ORDINALITY AS u(id, task, args, kwargs, queue, priority, max_attempts, at,
                              delay, meta, unique_key, ord)
    ORDER BY u.ord"""
_INSERT_SHAPED = """
    INSERT INTO {s}.beat_jobs (id, task, args, kwargs, queue, priority, status, attempt,
                               max_attempts, scheduled_at, created_at, meta, unique_key)
    SELECT u.id, $5, u.args::json, u.kwargs::json, $6, $7, 'queued', 0,
           $8, coalesce($9::timestamptz, now() + make_interval(secs => $10)), now(),
           $11::json, u.unique_key
    FROM unnest($1::uuid[], $2::text[], $3::text[], $4::text[])
         WITH ORDINALITY AS u(id, args, kwargs, unique_key, ord)
    ORDER BY u.ord"""
_INSERT_ONE = """
    INSERT INTO {s}.beat_jobs (id, task, args, kwargs, queue, priority, status, attempt,
                               max_attempts, scheduled_at, created_at, meta, unique_key)
    VALUES ($1, $2, $3::json, $4::json, $5, $6, 'queued', 0, $7,
            coalesce($8, now() + make_interval(secs => $9)), now(), $10::json, $11)"""
_ENQUEUED = " RETURNING id, scheduled_at, created_at"

_SQL = {
    "lock": "SELECT pg_advisory_xact_lock(hashtext($1))",
    "create_schema": "CREATE SCHEMA IF NOT EXISTS {s}",
    "create_version": """CREATE TABLE IF NOT EXISTS {s}.beat_schema_version (
        version integer NOT NULL)""",
    "version": "SELECT coalesce(max(version), 0) FROM {s}.beat_schema_version",
    "set_version": "INSERT INTO {s}.beat_schema_version (version) VALUES ($1)",
    "now": "SELECT now()",
    # Seconds until a job of these queues/tasks ($1, $2: NULL = all) is claimable: the next
    # waiting job comes due or the next lease expires (<= 0: claimable now; NULL: none).
    # NOTIFY covers new and released jobs; time passing is covered by this.
    "next_due": """
        SELECT EXTRACT(EPOCH FROM MIN(
            CASE WHEN status = 'queued' THEN scheduled_at ELSE lease_expires_at END) - now()
        )::float8
        FROM {s}.beat_jobs
        WHERE status IN ('queued', 'running')
          AND ($1::text[] IS NULL OR queue = ANY($1::text[]))
          AND ($2::text[] IS NULL OR task = ANY($2::text[]))""",
    # A batch, in its order (seq follows it); "enqueue" returns what a record needs from
    # the database, "insert" (beat.Client's enqueues: handles carry ids only) nothing.
    "enqueue": _INSERT_MANY + _ENQUEUED,
    "insert": _INSERT_MANY,
    # A batch of one JobShape: its fields once, as scalars (measured with 1,000 jobs: 24
    # rather than 32 µs per job, driver and server).
    "enqueue_shaped": _INSERT_SHAPED + _ENQUEUED,
    "insert_shaped": _INSERT_SHAPED,
    # One job (the usual enqueue): scalar parameters cost the driver less than the arrays.
    "enqueue_one": _INSERT_ONE + _ENQUEUED,
    "insert_one": _INSERT_ONE,
    # "claim" and "claim_any" are built by _claim_sql, below the table.
    "heartbeat": """
        UPDATE {s}.beat_jobs AS j
        SET lease_expires_at = now() + make_interval(secs => $4::float8)
        FROM unnest($1::uuid[], $2::int[]) AS p(pid, pattempt)
        WHERE j.id = ANY($1::uuid[]) AND j.id = p.pid AND j.attempt = p.pattempt
          AND j.worker = $3 AND (j.status = 'running') IS TRUE
        RETURNING j.id, j.cancel_requested""",
    "complete": f"""
        UPDATE {{s}}.beat_jobs SET status = 'succeeded', result = $4::json,
            finished_at = now(), lease_expires_at = NULL
        WHERE {_FENCE} RETURNING status""",
    # One statement for a batch; each item fenced like "complete". The rows are found by
    # primary key: "(status = 'running') IS TRUE" (the same test, status being NOT NULL) keeps
    # the planner off beat_jobs_leases, whose index still lists every row claimed since the
    # last vacuum (measured: 1.67 ms through it, 0.61 ms by key, for 10 rows after 2,500
    # jobs). Same in "heartbeat". beat_jobs_updated sends the batch's ids at the one commit.
    "complete_many": """
        UPDATE {s}.beat_jobs AS j SET status = 'succeeded', result = p.result::json,
            finished_at = now(), lease_expires_at = NULL
        FROM unnest($1::uuid[], $2::int[], $3::text[], $4::text[])
             AS p(pid, pattempt, pworker, result)
        WHERE j.id = ANY($1::uuid[]) AND j.id = p.pid AND j.attempt = p.pattempt
          AND j.worker = p.pworker AND (j.status = 'running') IS TRUE
        RETURNING j.id, j.attempt, j.worker""",
    "fail": f"""
        UPDATE {{s}}.beat_jobs SET
            status = CASE WHEN cancel_requested THEN 'cancelled'
                          WHEN {_RETRYING} THEN 'queued' ELSE 'dead' END,
            scheduled_at = CASE WHEN {_RETRYING} THEN $4::timestamptz ELSE scheduled_at END,
            worker = CASE WHEN {_RETRYING} THEN NULL ELSE worker END,
            finished_at = CASE WHEN {_RETRYING} THEN NULL ELSE now() END,
            lease_expires_at = NULL,
            error_type = $5, error_message = $6, error_traceback = $7
        WHERE {_FENCE} RETURNING status""",
    "release": f"""
        UPDATE {{s}}.beat_jobs SET
            status = CASE WHEN cancel_requested THEN 'cancelled' ELSE 'queued' END,
            finished_at = CASE WHEN cancel_requested THEN now() END,
            worker = CASE WHEN cancel_requested THEN worker END,
            max_attempts = max_attempts + CASE WHEN cancel_requested THEN 0 ELSE 1 END,
            lease_expires_at = NULL
        WHERE {_FENCE} RETURNING status""",
    "mark_cancelled": f"""
        UPDATE {{s}}.beat_jobs SET status = 'cancelled', finished_at = now(),
            lease_expires_at = NULL
        WHERE {_FENCE} RETURNING status""",
    "cancel": f"""
        UPDATE {{s}}.beat_jobs SET
            status = CASE WHEN status = 'queued' THEN 'cancelled' ELSE status END,
            finished_at = CASE WHEN status = 'queued' THEN now() ELSE finished_at END,
            cancel_requested = cancel_requested OR status = 'running'
        WHERE id = $1 RETURNING {_COLUMNS}""",
    "retry": f"""
        UPDATE {{s}}.beat_jobs SET status = 'queued', scheduled_at = now(), worker = NULL,
            lease_expires_at = NULL, finished_at = NULL, result = NULL,
            cancel_requested = false, max_attempts = greatest(max_attempts, attempt + 1)
        WHERE id = $1 AND status IN ('dead', 'cancelled') RETURNING {_COLUMNS}""",
    "get": f"SELECT {_COLUMNS} FROM {{s}}.beat_jobs WHERE id = $1",
    "seq": "SELECT seq FROM {s}.beat_jobs WHERE id = $1",
    "list": f"""
        SELECT {_COLUMNS} FROM {{s}}.beat_jobs
        WHERE seq > $1 AND seq < $2
          AND ($3::text IS NULL OR task = $3) AND ($4::text IS NULL OR queue = $4)
          AND ($5::text IS NULL OR $5 = CASE
                WHEN status = 'queued' AND scheduled_at > now() THEN 'scheduled'
                ELSE status END)
        ORDER BY CASE WHEN $6 THEN -seq ELSE seq END
        LIMIT $7""",
    # -- issues 12/13 --------------------------------------------------------------------------
    # Unique enqueue: inside one transaction, lock each key (sorted, so two batches never
    # deadlock), then look up and insert. The lock is held until commit, so a concurrent
    # enqueue of the same key waits and then sees the committed job.
    "unique_lock": "SELECT pg_advisory_xact_lock(hashtextextended($1, 0))",
    "unique_find": f"""
        SELECT {_COLUMNS}, status AS stored FROM {{s}}.beat_jobs
        WHERE unique_key = $1 AND status = ANY($2::text[])
          AND ($3::float8 IS NULL OR created_at > now() - make_interval(secs => $3::float8))
        ORDER BY seq DESC LIMIT 1""",
    "unique_replace": f"""
        UPDATE {{s}}.beat_jobs SET args = $2::json, kwargs = $3::json, meta = $4::json,
            priority = $5, queue = $6, max_attempts = greatest($7, attempt + 1),
            scheduled_at = coalesce($8::timestamptz, now() + make_interval(secs => $9::float8))
        WHERE id = $1 AND status = 'queued' RETURNING {_COLUMNS}""",
    "notify_new": "SELECT pg_notify('{s}.beat_new', '')",
    "progress": f"""
        UPDATE {{s}}.beat_jobs SET progress = $4::json WHERE {_FENCE} RETURNING status""",
    "exists": "SELECT EXISTS (SELECT 1 FROM {s}.beat_jobs WHERE id = $1)",
    "log_insert": """
        INSERT INTO {s}.beat_logs (job_id, attempt, at, level, logger, message)
        SELECT $1, $2, u.at, u.level, u.logger, u.message
        FROM unnest($3::timestamptz[], $4::text[], $5::text[], $6::text[])
             WITH ORDINALITY AS u(at, level, logger, message, ord)
        WHERE EXISTS (SELECT 1 FROM {s}.beat_jobs WHERE id = $1)
        ORDER BY u.ord
        RETURNING 1""",
    # No row: no such job; one row with a NULL attempt: a job without (matching) logs.
    "logs": """
        SELECT l.attempt, l.at, l.level, l.logger, l.message
        FROM {s}.beat_jobs AS j
        LEFT JOIN {s}.beat_logs AS l
          ON l.job_id = j.id AND ($2::int IS NULL OR l.attempt = $2::int)
        WHERE j.id = $1
        ORDER BY l.attempt, l.id""",
    "count": """
        SELECT queue, CASE WHEN status = 'queued' AND scheduled_at > now() THEN 'scheduled'
                           ELSE status END AS derived, count(*)::int AS n
        FROM {s}.beat_jobs GROUP BY 1, 2""",
    # Every rule ranks its jobs newest first over the same snapshot; a job goes if any rule
    # finds it too old or past its count. Its logs go with it (ON DELETE CASCADE).
    "prune": """
        WITH rules AS (
            SELECT * FROM unnest($1::text[], $2::text[], $3::float8[], $4::int[])
                WITH ORDINALITY AS r(status, task, max_age, max_count, n)
        ), ranked AS (
            SELECT j.id, j.finished_at, r.max_age, r.max_count,
                   row_number() OVER (PARTITION BY r.n ORDER BY j.finished_at DESC, j.seq DESC)
                       AS rank
            FROM {s}.beat_jobs AS j JOIN rules AS r
              ON j.status = r.status AND (r.task IS NULL OR j.task = r.task)
            WHERE j.finished_at IS NOT NULL
              AND j.status IN ('succeeded', 'dead', 'cancelled')
        ), doomed AS (
            SELECT DISTINCT id FROM ranked
            WHERE (max_age IS NOT NULL
                   AND finished_at < now() - make_interval(secs => max_age))
               OR (max_count IS NOT NULL AND rank > max_count)
        ), deleted AS (
            DELETE FROM {s}.beat_jobs WHERE id IN (SELECT id FROM doomed)
              AND status IN ('succeeded', 'dead', 'cancelled')
            RETURNING 1
        )
        SELECT count(*)::int FROM deleted""",
    "instance_put": """
        WITH gone AS (DELETE FROM {s}.beat_instances WHERE expires_at < now() AND name <> $1)
        INSERT INTO {s}.beat_instances (name, host, pid, started_at, last_seen, expires_at, info)
        VALUES ($1, $2, $3, $4, now(), now() + make_interval(secs => $5::float8), $6::json)
        ON CONFLICT (name) DO UPDATE SET host = excluded.host, pid = excluded.pid,
            started_at = excluded.started_at, last_seen = excluded.last_seen,
            expires_at = excluded.expires_at, info = excluded.info""",
    "instances": """
        SELECT * FROM {s}.beat_instances WHERE expires_at >= now() ORDER BY name COLLATE "C"
    """,
    "instance_remove": "DELETE FROM {s}.beat_instances WHERE name = $1",
    "schedule_get": "SELECT * FROM {s}.beat_schedules WHERE name = $1",
    "schedules": 'SELECT * FROM {s}.beat_schedules ORDER BY name COLLATE "C"',
    "schedules_version": "SELECT value FROM {s}.beat_counters WHERE name = 'schedules'",
    # Taken first by every schedule change: changes are serialized and versions ordered.
    "schedule_lock": """
        SELECT value FROM {s}.beat_counters WHERE name = 'schedules' FOR UPDATE""",
    "schedule_bump": """
        UPDATE {s}.beat_counters SET value = value + 1 WHERE name = 'schedules'
        RETURNING value""",
    "schedule_notify": "SELECT pg_notify('{s}.beat_schedules', $1::text)",
    "schedule_put": """
        INSERT INTO {s}.beat_schedules (name, task, cron, every, at, timezone, args, kwargs,
            queue, priority, max_attempts, misfire, paused, version, created_at, updated_at)
        VALUES ($1, $2, $3, $4, $5, $6, $7::json, $8::json, $9, $10, $11, $12, $13, $14,
            now(), now())
        ON CONFLICT (name) DO UPDATE SET task = excluded.task, cron = excluded.cron,
            every = excluded.every, at = excluded.at, timezone = excluded.timezone,
            args = excluded.args, kwargs = excluded.kwargs, queue = excluded.queue,
            priority = excluded.priority, max_attempts = excluded.max_attempts,
            misfire = excluded.misfire, paused = excluded.paused, version = excluded.version,
            updated_at = excluded.updated_at
        RETURNING *""",
    "schedule_pause": """
        UPDATE {s}.beat_schedules SET paused = $2, version = $3, updated_at = now()
        WHERE name = $1 RETURNING *""",
    "schedule_delete": "DELETE FROM {s}.beat_schedules WHERE name = $1 RETURNING name",
    "schedule_advance": """
        UPDATE {s}.beat_schedules SET last_instant = $2
        WHERE name = $1 AND (last_instant IS NULL OR last_instant < $2) RETURNING name""",
}


# Claims wait for their WAL flush like every transition. (SQLite claims do not, see
# _CLAIM_SYNCHRONOUS there: a lost claim can only come with the host's crash, which stops
# every worker too. Here the workers on other hosts outlive a database crash, and a lost
# claim would let a second worker start the job while the first still runs it.)
def _claim_sql(queue: str) -> str:
    """The claim statement, with ``queue`` as the queue condition on ``$1``.

    One statement: expired leases that must not run again end (out of attempts: dead;
    cancellation requested: cancelled), then due rows are locked, skipping rows other
    claimers hold, and taken. With one queue (``queue = $1``) the due rows come off
    ``beat_jobs_due`` already in claim order and the scan stops after ``$3``; with several
    (``queue = ANY($1)``) PostgreSQL reads every queued row of those queues and sorts them,
    so its cost grows with the backlog.
    """
    return f"""
        WITH expired AS (
            UPDATE {{s}}.beat_jobs SET
                status = CASE WHEN cancel_requested THEN 'cancelled' ELSE 'dead' END,
                finished_at = now(), lease_expires_at = NULL,
                error_type = CASE WHEN cancel_requested THEN error_type ELSE $6 END,
                error_message = CASE WHEN cancel_requested THEN error_message
                    ELSE 'lease expired after ' || attempt || ' attempt(s)' END,
                error_traceback = CASE WHEN cancel_requested THEN error_traceback END
            WHERE status = 'running' AND lease_expires_at < now()
              AND (cancel_requested OR attempt >= max_attempts)
              AND {queue} AND task = ANY($2::text[])
            RETURNING 1
        ), due AS (
            -- The common case, apart so it can walk beat_jobs_due in order and stop at $3.
            SELECT id AS cid, priority, scheduled_at, seq FROM {{s}}.beat_jobs
            WHERE status = 'queued' AND {queue} AND task = ANY($2::text[])
              AND scheduled_at <= now()
            ORDER BY priority DESC, scheduled_at, seq
            LIMIT $3
            FOR UPDATE SKIP LOCKED
        ), orphaned AS (
            -- Runs whose worker stopped renewing (beat_jobs_leases finds them).
            SELECT id AS cid, priority, scheduled_at, seq FROM {{s}}.beat_jobs
            WHERE status = 'running' AND lease_expires_at < now()
              AND attempt < max_attempts AND NOT cancel_requested
              AND {queue} AND task = ANY($2::text[])
            ORDER BY priority DESC, scheduled_at, seq
            LIMIT $3
            FOR UPDATE SKIP LOCKED
        ), candidates AS (
            SELECT cid FROM (SELECT * FROM due UNION ALL SELECT * FROM orphaned) AS c
            ORDER BY priority DESC, scheduled_at, seq
            LIMIT $3
        )
        UPDATE {{s}}.beat_jobs SET status = 'running', attempt = attempt + 1, worker = $4,
            started_at = now(), lease_expires_at = now() + make_interval(secs => $5::float8)
        FROM candidates WHERE id = cid
        RETURNING {_COLUMNS}"""


_SQL["claim"] = _claim_sql("queue = $1::text")
_SQL["claim_any"] = _claim_sql("queue = ANY($1::text[])")


def _record(row: Any) -> JobRecord:
    result = row["result"]
    return JobRecord(
        id=UUID(int=row["id"].int),
        task=row["task"],
        args=json.loads(row["args"]),
        kwargs=decode_json(row["kwargs"]),
        queue=row["queue"],
        priority=row["priority"],
        status=JobStatus(row["status"]),
        attempt=row["attempt"],
        max_attempts=row["max_attempts"],
        scheduled_at=row["scheduled_at"],
        created_at=row["created_at"],
        started_at=row["started_at"],
        finished_at=row["finished_at"],
        worker=row["worker"],
        lease_expires_at=row["lease_expires_at"],
        result=None if result is None else json.loads(result),
        error_type=row["error_type"],
        error_message=row["error_message"],
        error_traceback=row["error_traceback"],
        cancel_requested=row["cancel_requested"],
        meta=decode_json(row["meta"]),
        progress=None if row["progress"] is None else json.loads(row["progress"]),
        unique_key=row["unique_key"],
    )


def _redact(dsn: str) -> str:
    """The DSN without its password."""
    return re.sub(r"(://[^:/@]*:)[^@]*@", r"\1***@", dsn)


class PostgresStore(Store):
    """Jobs in PostgreSQL (see the module docstring).

    ``dsn``: an asyncpg DSN. ``schema``: where the tables live (created if missing).
    ``pool_size``: connections at most, plus one for notifications. ``timeout``: seconds for
    connecting and for each statement. ``poll_interval``: seconds between fallback looks
    while waiting, in case a notification was lost.
    """

    def __init__(
        self,
        dsn: str,
        *,
        schema: str = "public",
        pool_size: int = 4,
        timeout: float = 5.0,
        poll_interval: float = 5.0,
    ) -> None:
        if not isinstance(schema, str) or not _SCHEMA_RE.fullmatch(schema):
            raise StoreConfigError(f"schema must be a lower-case SQL identifier, got {schema!r}")
        if isinstance(pool_size, bool) or not isinstance(pool_size, int) or pool_size < 1:
            raise StoreConfigError(f"pool_size must be a positive integer, got {pool_size!r}")
        self.dsn = dsn
        self.schema = schema
        self.pool_size = pool_size
        self.timeout = check_seconds(timeout, "timeout")
        self.poll_interval = check_seconds(poll_interval, "poll_interval")
        self._sql = {name: query.replace("{s}", schema) for name, query in _SQL.items()}
        self._new_channel = f"{schema}.beat_new"
        self._finished_channel = f"{schema}.beat_finished"
        self._schedules_channel = f"{schema}.beat_schedules"
        self._pool: Any = None
        self._listener: Any = None
        self._listening = asyncio.Lock()
        # The channels some wait of this object asked for (only grows), and those the
        # current listener connection has subscribed. A process hears only what it waits
        # for: an enqueue-only client never listens, so it is not sent every new job.
        self._wanted_channels: set[str] = set()
        self._heard_channels: set[str] = set()
        self._new_waiters: set[asyncio.Future[None]] = set()
        self._finished_waiters: dict[UUID, set[asyncio.Future[None]]] = {}
        self._schedule_waiters: set[asyncio.Future[None]] = set()

    # -- lifecycle ---------------------------------------------------------------------------
    async def open(self) -> None:
        if self._pool is not None:
            return
        pool = Pool(self._connect, self.pool_size)
        try:
            async with pool.acquire() as conn:
                await self._migrate(conn)
        except BaseException as exc:
            pool.terminate()
            if isinstance(exc, StoreConfigError):  # from _migrate
                raise
            if isinstance(exc, _CONFIG):
                raise StoreConfigError(self._describe(exc)) from exc
            if isinstance(exc, (*_UNAVAILABLE, ValueError)):  # ValueError: a malformed DSN
                raise StoreUnavailableError(self._describe(exc)) from exc
            raise
        self._pool = pool

    async def _connect(self) -> Any:
        return await asyncpg.connect(
            self.dsn,
            timeout=self.timeout,
            command_timeout=self.timeout,
            server_settings={"application_name": "beat-store"},
        )

    def _describe(self, exc: BaseException) -> str:
        return f"PostgreSQL at {_redact(self.dsn)!r}: {type(exc).__name__}: {exc}"

    async def _migrate(self, conn: Any) -> None:
        sql = self._sql
        async with conn.transaction():
            # Instances starting together queue here; each later one sees the committed work.
            await conn.execute(sql["lock"], f"beat.stores:{self.schema}")
            await conn.execute(sql["create_schema"])
            await conn.execute(sql["create_version"])
            version = await conn.fetchval(sql["version"])
            if version > SCHEMA_VERSION:
                raise StoreConfigError(
                    f"schema {self.schema!r} holds job store version {version}; this beat "
                    f"knows {SCHEMA_VERSION} (upgrade beat)"
                )
            for step in range(version + 1, SCHEMA_VERSION + 1):
                for statement in _MIGRATIONS[step]:
                    await conn.execute(statement.replace("{s}", self.schema))
                await conn.execute(sql["set_version"], step)

    async def _listen(self, channel: str) -> None:
        """Listen on ``channel`` too, (re)opening the notification connection if it is
        missing or closed (then every channel asked for so far is subscribed again)."""
        async with self._listening:
            self._wanted_channels.add(channel)
            listener = self._listener
            if listener is None or listener.is_closed():
                self._listener = None
                self._heard_channels = set()
                try:
                    listener = await asyncpg.connect(
                        self.dsn, timeout=self.timeout, command_timeout=self.timeout
                    )
                except _UNAVAILABLE as exc:
                    raise StoreUnavailableError(self._describe(exc)) from exc
                self._listener = listener
            callbacks = {
                self._new_channel: self._on_new,
                self._finished_channel: self._on_finished,
                self._schedules_channel: self._on_schedules,
            }
            try:
                for wanted in sorted(self._wanted_channels - self._heard_channels):
                    await listener.add_listener(wanted, callbacks[wanted])
                    self._heard_channels.add(wanted)
            except _UNAVAILABLE as exc:
                self._listener = None
                listener.terminate()
                raise StoreUnavailableError(self._describe(exc)) from exc

    async def close(self) -> None:
        listener, self._listener = self._listener, None
        pool, self._pool = self._pool, None
        for closing in (listener, pool):
            if closing is None:
                continue
            try:
                async with asyncio.timeout(self.timeout):
                    await closing.close()
            except (*_UNAVAILABLE, TimeoutError):
                closing.terminate()
        self._wake(self._new_waiters)
        for waiters in self._finished_waiters.values():
            self._wake(waiters)
        self._finished_waiters.clear()
        self._wake(self._schedule_waiters)

    # -- helpers -----------------------------------------------------------------------------
    async def _call(self, method: str, name: str, *args: Any) -> Any:
        """``conn.<method>(<the statement "name">, *args)`` on a pool connection."""
        sql = self._sql[name]
        return await self._on(None, lambda conn: getattr(conn, method)(sql, *args))

    async def now(self) -> datetime:
        now: datetime = await self._call("fetchval", "now")
        return now

    # -- transitions -------------------------------------------------------------------------
    async def enqueue(self, jobs: Sequence[NewJob], *, connection: Any = None) -> list[JobRecord]:
        """Store a batch atomically (see :meth:`Store.enqueue`).

        ``connection``: an asyncpg connection of the caller, inside a transaction the caller
        opened (``async with connection.transaction():``) on this store's database. The jobs
        are written in that transaction and nothing is committed here: they exist, and
        workers are notified (``NOTIFY`` is transactional), only if and when the caller
        commits; a rollback leaves no trace. Unique keys hold under READ COMMITTED (the
        default isolation level).
        """
        prepared = prepare_jobs(jobs)
        if connection is not None:
            check_transaction(connection)
        if not prepared:
            return []
        if any(j.unique is not None for j in prepared):
            return await self._on(connection, self._enqueue_unique, prepared)
        return await self._on(connection, self._insert, prepared)

    async def enqueue_prepared(
        self, jobs: Sequence[PreparedJob], *, connection: Any = None
    ) -> list[Enqueued]:
        """:meth:`Store.enqueue_prepared`; ``connection`` as for :meth:`enqueue`."""
        if connection is not None:
            check_transaction(connection)
        if not jobs:
            return []
        written: list[JobRecord | None]
        if any(j.unique is not None for j in jobs):
            written = list(await self._on(connection, self._enqueue_unique, jobs))
        else:
            await self._on(connection, self._write_jobs, jobs, False)
            written = [None] * len(jobs)  # stored as given
        return as_enqueued(jobs, written)

    async def _insert(self, conn: Any, prepared: Sequence[PreparedJob]) -> list[JobRecord]:
        """Insert ``prepared``; their records, in order (built from what was sent and the
        times the database set, see :func:`enqueued_record`)."""
        rows = await self._write_jobs(conn, prepared, True)
        times = {row["id"]: (row["scheduled_at"], row["created_at"]) for row in rows}
        return [enqueued_record(j, *times[j.id]) for j in prepared]

    async def _write_jobs(
        self, conn: Any, prepared: Sequence[PreparedJob], returning: bool
    ) -> list[Any]:
        """The INSERT of ``prepared`` (no unique keys to check); its rows if ``returning``.

        Three forms, by what the driver has to encode: one job in scalars; a batch of one
        :class:`JobShape` (one task and options: the usual batch) with the shape's fields
        as scalars and arrays only for what differs per job; any batch in arrays.
        """
        name = "enqueue" if returning else "insert"
        first = prepared[0].shape
        if len(prepared) == 1:
            [j] = prepared
            name += "_one"
            unique_key = None if j.unique is None else j.unique.key
            params: tuple[Any, ...] = (
                j.id, first.task, j.args, j.kwargs, first.queue, first.priority,
                first.max_attempts, first.scheduled_at, first.delay, first.meta, unique_key,
            )  # fmt: skip
        elif all(j.shape is first or j.shape == first for j in prepared):
            name += "_shaped"
            params = (
                [j.id for j in prepared],
                [j.args for j in prepared],
                [j.kwargs for j in prepared],
                [None if j.unique is None else j.unique.key for j in prepared],
                first.task, first.queue, first.priority, first.max_attempts,
                first.scheduled_at, first.delay, first.meta,
            )  # fmt: skip
        else:
            params = (
                [j.id for j in prepared],
                [j.shape.task for j in prepared],
                [j.args for j in prepared],
                [j.kwargs for j in prepared],
                [j.shape.queue for j in prepared],
                [j.shape.priority for j in prepared],
                [j.shape.max_attempts for j in prepared],
                [j.shape.scheduled_at for j in prepared],
                [j.shape.delay for j in prepared],
                [j.shape.meta for j in prepared],
                [None if j.unique is None else j.unique.key for j in prepared],
            )
        if returning:
            rows: list[Any] = await conn.fetch(self._sql[name], *params)
            return rows
        await conn.execute(self._sql[name], *params)
        return []

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
        queue_arg: str | list[str] = queue_list
        name = "claim_any"
        if len(queue_list) == 1:
            name, queue_arg = "claim", queue_list[0]
        rows = await self._call(
            "fetch", name, queue_arg, task_list, limit, worker, float(lease), LEASE_EXPIRED
        )
        rows = sorted(rows, key=lambda r: (-r["priority"], r["scheduled_at"], r["seq"]))
        return [_record(row) for row in rows]

    async def heartbeat(
        self, worker: str, jobs: Sequence[tuple[UUID, int]], lease: float
    ) -> Heartbeat:
        check_seconds(lease, "lease")
        wanted = {to_uuid(id) for id, _ in jobs}
        if not wanted:
            return Heartbeat()
        rows = await self._call(
            "fetch",
            "heartbeat",
            [to_uuid(id) for id, _ in jobs],
            [int(attempt) for _, attempt in jobs],
            worker,
            float(lease),
        )
        kept = {UUID(int=row["id"].int) for row in rows}
        cancel = {UUID(int=row["id"].int) for row in rows if row["cancel_requested"]}
        return Heartbeat(lost=frozenset(wanted - kept), cancel_requested=frozenset(cancel))

    async def _fenced(self, name: str, id: UUID, attempt: int, worker: str, *extra: Any) -> bool:
        status = await self._call("fetchval", name, to_uuid(id), int(attempt), worker, *extra)
        return status is not None

    async def complete(self, id: UUID, attempt: int, worker: str, result: JSON = None) -> bool:
        text = encode_json(result, "result")
        return await self._fenced("complete", id, attempt, worker, text)

    async def complete_many(self, items: Sequence[tuple[UUID, int, str, JSON]]) -> list[bool]:
        good, bad = prepare_results(items)
        rows = []
        if good:
            rows = await self._call(
                "fetch",
                "complete_many",
                [item.id for item in good],
                [item.attempt for item in good],
                [item.worker for item in good],
                [item.result for item in good],
            )
        done = {(UUID(int=row["id"].int), row["attempt"], row["worker"]) for row in rows}
        written = [(item, (item.id, item.attempt, item.worker) in done) for item in good]
        return batch_outcome(len(items), written, bad)

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
        retry = None if retry_at is None else check_aware(retry_at, "retry_at")
        return await self._fenced(
            "fail",
            id,
            attempt,
            worker,
            retry,
            clean_text(error_type),
            clean_text(message),
            clean_text(traceback),
        )

    async def release(self, id: UUID, attempt: int, worker: str) -> bool:
        return await self._fenced("release", id, attempt, worker)

    async def mark_cancelled(self, id: UUID, attempt: int, worker: str) -> bool:
        return await self._fenced("mark_cancelled", id, attempt, worker)

    async def cancel(self, id: UUID) -> JobRecord:
        row = await self._call("fetchrow", "cancel", to_uuid(id))
        if row is None:
            raise JobNotFoundError(f"no job with id {id}")
        return _record(row)

    async def retry(self, id: UUID) -> JobRecord:
        row = await self._call("fetchrow", "retry", to_uuid(id))
        if row is not None:
            return _record(row)
        found = await self.get(id)
        if found is None:
            raise JobNotFoundError(f"no job with id {id}")
        raise InvalidJobStateError(
            f"job {id} is {found.status}; only dead or cancelled jobs can be retried",
            status=found.status,
        )

    # -- reads -------------------------------------------------------------------------------
    async def get(self, id: UUID) -> JobRecord | None:
        row = await self._call("fetchrow", "get", to_uuid(id))
        return None if row is None else _record(row)

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
        bounds = {}
        for name, cursor in (("after", after), ("before", before)):
            if cursor is not None:
                seq = await self._call("fetchval", "seq", to_uuid(cursor))
                if seq is None:
                    raise JobNotFoundError(f"no job with id {cursor} (cursor)")
                bounds[name] = seq
        rows = await self._call(
            "fetch",
            "list",
            bounds.get("after", 0),
            bounds.get("before", 2**63 - 1),
            task,
            queue,
            None if wanted is None else wanted.value,
            before is not None and after is None,
            limit,
        )
        return [_record(row) for row in sorted(rows, key=lambda r: r["seq"])]

    # -- wake-ups ----------------------------------------------------------------------------
    @staticmethod
    def _wake(waiters: set[asyncio.Future[None]]) -> None:
        for future in waiters:
            if not future.done():
                future.set_result(None)
        waiters.clear()

    def _on_new(self, conn: Any, pid: int, channel: str, payload: str) -> None:
        self._wake(self._new_waiters)

    def _on_finished(self, conn: Any, pid: int, channel: str, payload: str) -> None:
        for id in payload.split(","):  # the ids of jobs one statement finished
            with contextlib.suppress(ValueError):
                waiters = self._finished_waiters.pop(UUID(id), None)
                if waiters:
                    self._wake(waiters)

    async def _ensure_listening(self, channel: str) -> None:
        if self._pool is None:
            raise StoreUnavailableError("the PostgreSQL store is not open")
        # Without a listener the waits still end: the fallback poll covers them.
        with contextlib.suppress(StoreUnavailableError):
            await self._listen(channel)

    async def wait_for_jobs(
        self,
        timeout: float,
        *,
        queues: Sequence[str] | None = None,
        tasks: Collection[str] | None = None,
    ) -> None:
        check_seconds(timeout, "timeout", zero=True)
        await self._ensure_listening(self._new_channel)
        # Listen first, then look: a job stored after the look still notifies the future.
        future = asyncio.get_running_loop().create_future()
        self._new_waiters.add(future)
        try:
            due: float | None = await self._call(
                "fetchval",
                "next_due",
                None if queues is None else list(queues),
                None if tasks is None else sorted(tasks),
            )
            if due is not None:
                timeout = min(timeout, max(0.0, due))
            if timeout <= 0:
                return
            await asyncio.wait_for(asyncio.shield(future), min(timeout, self.poll_interval))
        except TimeoutError:
            pass
        finally:
            self._new_waiters.discard(future)

    async def wait_finished(self, id: UUID, timeout: float) -> JobRecord:
        check_seconds(timeout, "timeout", zero=True)
        key = to_uuid(id)
        await self._ensure_listening(self._finished_channel)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            # Listen first, then look: a finish between the two still wakes us.
            future = loop.create_future()
            waiters = self._finished_waiters.setdefault(key, set())
            waiters.add(future)
            try:
                record = await self.get(key)
                if record is None:
                    raise JobNotFoundError(f"no job with id {key}")
                if record.status.finished:
                    return record
                left = deadline - loop.time()
                if left <= 0:
                    raise TimeoutError(f"job {key} is still {record.status} after {timeout} s")
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(asyncio.shield(future), min(left, self.poll_interval))
            finally:
                waiters.discard(future)
                if not waiters and self._finished_waiters.get(key) is waiters:
                    del self._finished_waiters[key]

    # -- connections of the caller -----------------------------------------------------------------
    async def _on(self, connection: Any, fn: Callable[..., Awaitable[_T]], *args: Any) -> _T:
        """``fn(conn, *args)`` on the caller's ``connection``, or on a pool connection."""
        if connection is None:
            pool = self._pool
            if pool is None:
                raise StoreUnavailableError("the PostgreSQL store is not open")
            try:
                async with asyncio.timeout(2 * self.timeout), pool.acquire() as conn:
                    return await discard_if_cut_short(conn, fn(conn, *args))
            except _UNAVAILABLE as exc:
                if isinstance(exc, _CONNECTION_LOST):
                    pool.expire()
                raise StoreUnavailableError(self._describe(exc)) from exc
        if self._pool is None:
            raise StoreUnavailableError("the PostgreSQL store is not open")
        try:
            return await fn(connection, *args)
        except _UNAVAILABLE as exc:
            raise StoreUnavailableError(self._describe(exc)) from exc

    async def _transaction(self, fn: Callable[..., Awaitable[_T]], *args: Any) -> _T:
        """``fn(conn, *args)`` inside one transaction on a pool connection."""

        async def run(conn: Any) -> _T:
            async with conn.transaction():
                return await fn(conn, *args)

        return await self._on(None, run)

    # -- unique keys ------------------------------------------------------------------------------
    async def _enqueue_unique(self, conn: Any, prepared: Sequence[PreparedJob]) -> list[JobRecord]:
        sql = self._sql
        # A savepoint when inside the caller's transaction, which then keeps the locks.
        async with conn.transaction():
            for key in sorted({j.unique.key for j in prepared if j.unique is not None}):
                await conn.execute(sql["unique_lock"], f"beat.unique:{self.schema}:{key}")
            records = []
            for job in prepared:
                if job.unique is not None:
                    found = await self._unique_conflict(conn, job, job.unique)
                    if found is not None:
                        records.append(replace(found, conflict=True))
                        continue
                records.extend(await self._insert(conn, [job]))
            return records

    async def _unique_conflict(
        self, conn: Any, job: PreparedJob, unique: PreparedUnique
    ) -> JobRecord | None:
        sql = self._sql
        row = await conn.fetchrow(
            sql["unique_find"], unique.key, list(unique.statuses), unique.period
        )
        if row is None or not unique.replace or row["stored"] != STORED_WAITING:
            return None if row is None else _record(row)
        replaced = await conn.fetchrow(
            sql["unique_replace"],
            row["id"],
            job.args,
            job.kwargs,
            job.shape.meta,
            job.shape.priority,
            job.shape.queue,
            job.shape.max_attempts,
            job.shape.scheduled_at,
            job.shape.delay,
        )
        await conn.execute(sql["notify_new"])  # its due time may be sooner now
        return _record(replaced)

    # -- progress and logs ---------------------------------------------------------------------
    async def set_progress(self, id: UUID, attempt: int, worker: str, progress: JSON) -> bool:
        text = encode_json(progress, "progress")
        return await self._fenced("progress", id, attempt, worker, text)

    async def add_logs(self, id: UUID, attempt: int, entries: Sequence[LogEntry]) -> None:
        prepared = prepare_logs(attempt, entries)
        key = to_uuid(id)
        if not prepared:
            if not await self._call("fetchval", "exists", key):
                raise JobNotFoundError(f"no job with id {key}")
            return
        try:
            rows = await self._call(
                "fetch",
                "log_insert",
                key,
                attempt,
                [e.at for e in prepared],
                [e.level for e in prepared],
                [e.logger for e in prepared],
                [e.message for e in prepared],
            )
        except StoreUnavailableError as exc:
            # The job was pruned between the look and the insert.
            if isinstance(exc.__cause__, asyncpg.ForeignKeyViolationError):
                raise JobNotFoundError(f"no job with id {key}") from None
            raise
        if not rows:
            raise JobNotFoundError(f"no job with id {key}")

    async def get_logs(self, id: UUID, *, attempt: int | None = None) -> list[LogEntry]:
        if attempt is not None:
            check_attempt(attempt)
        key = to_uuid(id)
        rows = await self._call("fetch", "logs", key, attempt)
        if not rows:
            raise JobNotFoundError(f"no job with id {key}")
        return [
            LogEntry(r["attempt"], r["at"], r["level"], r["logger"], r["message"])
            for r in rows
            if r["attempt"] is not None
        ]

    # -- counts and pruning ----------------------------------------------------------------------
    async def count_jobs(self) -> dict[str, dict[JobStatus, int]]:
        counts: dict[str, dict[JobStatus, int]] = {}
        for row in await self._call("fetch", "count"):
            counts.setdefault(row["queue"], {})[JobStatus(row["derived"])] = row["n"]
        return counts

    async def prune(self, rules: Sequence[PruneRule]) -> int:
        prepared = prepare_rules(rules)
        if not prepared:
            return 0
        deleted: int = await self._call(
            "fetchval",
            "prune",
            [r.status for r in prepared],
            [r.task for r in prepared],
            [r.max_age for r in prepared],
            [r.max_count for r in prepared],
        )
        return deleted

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
        await self._call(
            "execute", "instance_put", p.name, p.host, p.pid, p.started_at, p.ttl, p.info
        )

    async def list_instances(self) -> list[InstanceRecord]:
        return [
            InstanceRecord(
                name=r["name"],
                host=r["host"],
                pid=r["pid"],
                started_at=r["started_at"],
                last_seen=r["last_seen"],
                info=json.loads(r["info"]),
            )
            for r in await self._call("fetch", "instances")
        ]

    async def remove_instance(self, name: str) -> None:
        await self._call("execute", "instance_remove", check_name(name, "name"))

    # -- stored schedules ------------------------------------------------------------------------
    @staticmethod
    def _schedule(row: Any) -> ScheduleRecord:
        spec = PreparedSchedule(
            name=row["name"],
            task=row["task"],
            cron=row["cron"],
            every=row["every"],
            at=row["at"],
            timezone=row["timezone"],
            args=row["args"],
            kwargs=row["kwargs"],
            queue=row["queue"],
            priority=row["priority"],
            max_attempts=row["max_attempts"],
            misfire=row["misfire"],
            paused=row["paused"],
        )
        return make_record(
            spec,
            version=row["version"],
            created_at=row["created_at"],
            updated_at=row["updated_at"],
            last_instant=row["last_instant"],
        )

    async def _bump(self, conn: Any) -> int:
        """Inside a schedule change's transaction: the new version, announced on commit."""
        version: int = await conn.fetchval(self._sql["schedule_bump"])
        await conn.execute(self._sql["schedule_notify"], str(version))
        return version

    async def put_schedule(self, spec: ScheduleSpec) -> ScheduleRecord:
        p = prepare_schedule(spec)
        sql = self._sql

        async def run(conn: Any) -> Any:
            await conn.execute(sql["schedule_lock"])
            stored = await conn.fetchrow(sql["schedule_get"], p.name)
            if stored is not None:
                record = self._schedule(stored)
                if prepare_schedule(record).content() == p.content():
                    return stored
            return await conn.fetchrow(
                sql["schedule_put"],
                p.name,
                p.task,
                p.cron,
                p.every,
                p.at,
                p.timezone,
                p.args,
                p.kwargs,
                p.queue,
                p.priority,
                p.max_attempts,
                p.misfire,
                p.paused,
                await self._bump(conn),
            )

        return self._schedule(await self._transaction(run))

    async def get_schedule(self, name: str) -> ScheduleRecord | None:
        row = await self._call("fetchrow", "schedule_get", check_name(name, "schedule name"))
        return None if row is None else self._schedule(row)

    async def list_schedules(self) -> list[ScheduleRecord]:
        return [self._schedule(row) for row in await self._call("fetch", "schedules")]

    async def set_schedule_paused(self, name: str, paused: bool) -> ScheduleRecord:
        check_name(name, "schedule name")
        check_paused(paused)
        sql = self._sql

        async def run(conn: Any) -> Any:
            await conn.execute(sql["schedule_lock"])
            stored = await conn.fetchrow(sql["schedule_get"], name)
            if stored is None or stored["paused"] == paused:
                return stored
            return await conn.fetchrow(sql["schedule_pause"], name, paused, await self._bump(conn))

        row = await self._transaction(run)
        if row is None:
            raise JobNotFoundError(f"no schedule named {name!r}")
        return self._schedule(row)

    async def delete_schedule(self, name: str) -> bool:
        check_name(name, "schedule name")
        sql = self._sql

        async def run(conn: Any) -> bool:
            await conn.execute(sql["schedule_lock"])
            if await conn.fetchval(sql["schedule_delete"], name) is None:
                return False
            await self._bump(conn)
            return True

        return await self._transaction(run)

    async def advance_schedule(self, name: str, instant: datetime) -> bool:
        check_name(name, "schedule name")
        at = check_aware(instant, "instant")
        return await self._call("fetchval", "schedule_advance", name, at) is not None

    async def schedules_version(self) -> int:
        version: int = await self._call("fetchval", "schedules_version")
        return version

    def _on_schedules(self, conn: Any, pid: int, channel: str, payload: str) -> None:
        self._wake(self._schedule_waiters)

    async def wait_schedules_changed(self, version: int, timeout: float) -> int:
        check_version(version)
        check_seconds(timeout, "timeout", zero=True)
        await self._ensure_listening(self._schedules_channel)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            # Listen first, then look: a NOTIFY after the look still completes the future.
            future = loop.create_future()
            self._schedule_waiters.add(future)
            try:
                current = await self.schedules_version()
                left = deadline - loop.time()
                if current != version or left <= 0:
                    return current
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(asyncio.shield(future), min(left, self.poll_interval))
            finally:
                self._schedule_waiters.discard(future)


def check_transaction(connection: Any) -> None:
    """``connection=`` of :meth:`PostgresStore.enqueue`: an asyncpg connection in a
    transaction (otherwise each statement would commit on its own)."""
    in_transaction = getattr(connection, "is_in_transaction", None)
    if not callable(in_transaction):
        raise InvalidJobError(
            f"connection must be an asyncpg connection, got {type(connection).__name__}"
        )
    if not in_transaction():
        raise InvalidJobError(
            "connection is not inside a transaction; open one first "
            "(async with connection.transaction(): ...)"
        )
