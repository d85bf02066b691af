"""The PostgreSQL store's schema and statements: every piece of SQL ``PostgresStore`` runs.

``{s}`` in a statement is the store's schema (a checked identifier, put in once when the
store is made); values are always parameters (``$1`` ...), never text in a statement.

Schema changes are append-only: a new version is a new entry of ``MIGRATIONS`` and the
old ones stay as they were, since databases at every earlier version must still upgrade.
"""

from __future__ import annotations

SCHEMA_VERSION = 3
"""The version ``beat_schema_version`` reaches once every migration below has run."""

MIGRATIONS: dict[int, tuple[str, ...]] = {
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
    # Meta, progress and unique keys on jobs; logs, instances, stored schedules.
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

# The (queue, priority) levels of the waiting jobs of the queues $1 (an array), one index
# seek each: a skip scan of beat_jobs_due, whose rows sort by queue, priority, then due time.
# Within one level the due rows come first, so a claim reads a level's due rows and stops;
# one scan in (priority, due time) order would read every job due later at a level before it
# reached the next level (9.6 ms a claim with 100,000 jobs due in an hour). The cost is a
# seek per distinct priority of each queue: a handful, the way priorities are used.
#
# The walk goes through $1 by position: (i, NULL) ends queue i's levels and the next row
# starts queue i + 1. (Not unnest($1): for an array of unknown length the planner guesses
# ten queues, finds its generic plan dear and plans every call anew, ~0.8 ms each.)
_LEVELS = """levels(i, queue, priority) AS (
            SELECT 1, ($1::text[])[1], (
                SELECT priority FROM {s}.beat_jobs
                WHERE status = 'queued' AND queue = ($1::text[])[1]
                ORDER BY priority DESC LIMIT 1)
            UNION ALL
            SELECT step.i, ($1::text[])[step.i], CASE WHEN step.i = levels.i THEN (
                SELECT priority FROM {s}.beat_jobs
                WHERE status = 'queued' AND queue = levels.queue
                  AND priority < levels.priority
                ORDER BY priority DESC LIMIT 1) ELSE (
                SELECT priority FROM {s}.beat_jobs
                WHERE status = 'queued' AND queue = ($1::text[])[step.i]
                ORDER BY priority DESC LIMIT 1) END
            FROM levels CROSS JOIN LATERAL (
                SELECT CASE WHEN levels.priority IS NULL THEN levels.i + 1 ELSE levels.i END
                AS i) AS step
            WHERE step.i <= cardinality($1::text[]))"""

SQL = {
    "lock": "SELECT pg_advisory_xact_lock(hashtext($1))",
    "create_schema": "CREATE SCHEMA IF NOT EXISTS {s}",
    "create_version": """CREATE TABLE IF NOT EXISTS {s}.beat_schema_version (
        version integer NOT NULL)""",
    "version": "SELECT coalesce(max(version), 0) FROM {s}.beat_schema_version",
    "set_version": "INSERT INTO {s}.beat_schema_version (version) VALUES ($1)",
    "now": "SELECT now()",
    # Seconds until a job of these queues/tasks ($1, $2: NULL = all) is claimable: the next
    # waiting job comes due or the next lease expires (<= 0: claimable now; NULL: none).
    # NOTIFY covers new and released jobs; time passing is covered by this. The first job of
    # each (queue, priority) level and the first lease to expire: a few index seeks, however
    # many jobs wait (see _LEVELS). $1 is an array of queues here, never NULL.
    "next_due": f"""
        WITH RECURSIVE {_LEVELS}
        SELECT EXTRACT(EPOCH FROM LEAST(
            (SELECT min(first.scheduled_at) FROM levels CROSS JOIN LATERAL (
                SELECT scheduled_at FROM {{s}}.beat_jobs
                WHERE status = 'queued' AND queue = levels.queue
                  AND priority = levels.priority
                  AND ($2::text[] IS NULL OR task = ANY($2::text[]))
                ORDER BY scheduled_at, seq
                LIMIT 1) AS first),
            (SELECT lease_expires_at FROM {{s}}.beat_jobs
             WHERE status = 'running' AND queue = ANY($1::text[])
               AND ($2::text[] IS NULL OR task = ANY($2::text[]))
             ORDER BY lease_expires_at
             LIMIT 1)
        ) - now())::float8""",
    # Every queue that holds a waiting or running job, one index seek each (next_due for
    # "any queue" asks about these).
    "queues": """
        WITH RECURSIVE waiting(queue) AS (
            SELECT (SELECT queue FROM {s}.beat_jobs WHERE status = 'queued'
                    ORDER BY queue LIMIT 1)
            UNION ALL
            SELECT (SELECT queue FROM {s}.beat_jobs WHERE status = 'queued'
                    AND queue > waiting.queue ORDER BY queue LIMIT 1)
            FROM waiting WHERE waiting.queue IS NOT NULL)
        SELECT queue FROM waiting WHERE queue IS NOT NULL
        UNION
        SELECT DISTINCT queue FROM {s}.beat_jobs WHERE status = 'running'""",
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
    # "claim" is below the table.
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
    "settled": """
        SELECT w.id FROM unnest($1::uuid[]) AS w(id)
        WHERE NOT EXISTS (SELECT 1 FROM {s}.beat_jobs
                          WHERE id = w.id AND status IN ('queued', 'running'))""",
    # -- unique keys, progress and logs, pruning, instances, stored schedules --------------
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
    # Pruning (see prune_in_batches in _base.py). Every rule's bounds in one snapshot: the
    # age cutoff on the database clock, and the key of the job ranked max_count newest
    # first, read off the beat_jobs_finished index (max_count entries walked; with a task,
    # their rows too).
    "prune_bounds": """
        SELECT now() - make_interval(secs => r.max_age) AS cutoff, nth.finished_at, nth.seq
        FROM unnest($1::text[], $2::text[], $3::float8[], $4::int[])
            WITH ORDINALITY AS r(status, task, max_age, max_count, n)
        LEFT JOIN LATERAL (
            SELECT finished_at, seq FROM {s}.beat_jobs
            WHERE status = r.status AND finished_at IS NOT NULL
              AND (r.task IS NULL OR task = r.task) AND r.max_count IS NOT NULL
            ORDER BY finished_at DESC, seq DESC
            OFFSET r.max_count LIMIT 1
        ) AS nth ON true
        ORDER BY r.n""",
    # One batch: the rule's oldest jobs between two (finished_at, seq) keys, one range of
    # beat_jobs_finished, locked (a job being retried is waited for and re-checked). Their
    # logs go with them (ON DELETE CASCADE).
    "prune_batch": """
        WITH doomed AS (
            SELECT id FROM {s}.beat_jobs
            WHERE status = $1 AND finished_at IS NOT NULL
              AND (finished_at, seq) > ($3::timestamptz, $4::bigint)
              AND (finished_at, seq) < ($5::timestamptz, $6::bigint)
              AND ($2::text IS NULL OR task = $2)
            ORDER BY finished_at, seq
            LIMIT $7
            FOR UPDATE
        )
        DELETE FROM {s}.beat_jobs AS j USING doomed WHERE j.id = doomed.id
        RETURNING j.finished_at, j.seq""",
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
    # $15 (moves_last_instant: a resume or a new definition) moves last_instant up to now
    # (greatest ignores NULL), never back, so nothing before the change is caught up.
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
            updated_at = excluded.updated_at,
            last_instant = CASE WHEN $15::boolean
                THEN greatest({s}.beat_schedules.last_instant, now())
                ELSE {s}.beat_schedules.last_instant END
        RETURNING *""",
    # A resume moves last_instant up to now (never back): no catch-up of the paused span.
    "schedule_pause": """
        UPDATE {s}.beat_schedules SET paused = $2, version = $3, updated_at = now(),
            last_instant = CASE WHEN $2 THEN last_instant ELSE greatest(last_instant, now()) END
        WHERE name = $1 RETURNING *""",
    "schedule_delete": "DELETE FROM {s}.beat_schedules WHERE name = $1 RETURNING name",
    "schedule_advance": """
        UPDATE {s}.beat_schedules SET last_instant = $2
        WHERE name = $1 AND (last_instant IS NULL OR last_instant < $2) RETURNING name""",
}


# Claims wait for their WAL flush like every transition. (SQLite claims do not, see
# _CLAIM_SYNCHRONOUS in _sqlite.py: a lost claim can only come with the host's crash, which stops
# every worker too. Here the workers on other hosts outlive a database crash, and a lost
# claim would let a second worker start the job while the first still runs it.)
#
# One statement: expired leases that must not run again end; then, of the queues $1 and
# tasks $2, the due rows of each level (skipping rows other claimers hold) and the runs
# whose lease expired are the candidates, and the first $3 in claim order are taken.
SQL["claim"] = f"""
        WITH RECURSIVE {_LEVELS},
        expired AS (
            -- Expired leases that must not run again end (out of attempts: dead;
            -- cancellation requested: cancelled).
            UPDATE {{s}}.beat_jobs SET
                status = CASE WHEN cancel_requested THEN 'cancelled' ELSE 'dead' END,
                finished_at = now(), lease_expires_at = NULL,
                error_type = CASE WHEN cancel_requested THEN error_type ELSE $6 END,
                error_message = CASE WHEN cancel_requested THEN error_message
                    ELSE 'lease expired after ' || attempt || ' attempt(s)' END,
                error_traceback = CASE WHEN cancel_requested THEN error_traceback END
            WHERE status = 'running' AND lease_expires_at < now()
              AND (cancel_requested OR attempt >= max_attempts)
              AND queue = ANY($1::text[]) AND task = ANY($2::text[])
            RETURNING {_COLUMNS}
        ), due AS (
            -- Per level, its first $3 due rows that no other claimer holds, locked. (With
            -- several levels some stay locked unclaimed until the commit: other claimers
            -- skip them for that long.)
            SELECT picked.* FROM levels CROSS JOIN LATERAL (
                SELECT id AS cid, priority, scheduled_at, seq FROM {{s}}.beat_jobs
                WHERE status = 'queued' AND queue = levels.queue
                  AND priority = levels.priority
                  AND task = ANY($2::text[]) AND scheduled_at <= now()
                ORDER BY scheduled_at, seq
                LIMIT $3
                FOR UPDATE SKIP LOCKED) AS picked
            WHERE levels.priority IS NOT NULL
        ), orphaned AS (
            -- Runs whose worker stopped renewing (beat_jobs_leases finds them).
            SELECT id AS cid, priority, scheduled_at, seq FROM {{s}}.beat_jobs
            WHERE status = 'running' AND lease_expires_at < now()
              AND attempt < max_attempts AND NOT cancel_requested
              AND queue = ANY($1::text[]) AND task = ANY($2::text[])
            ORDER BY priority DESC, scheduled_at, seq
            LIMIT $3
            FOR UPDATE SKIP LOCKED
        ), candidates AS (
            SELECT cid FROM (SELECT * FROM due UNION ALL SELECT * FROM orphaned) AS c
            ORDER BY priority DESC, scheduled_at, seq
            LIMIT $3
        ), taken AS (
            -- By key, from an array: joined to candidates, a generic plan (which guesses a
            -- tenth of the levels' rows for LIMIT $3) hashed the whole table instead.
            UPDATE {{s}}.beat_jobs SET status = 'running', attempt = attempt + 1, worker = $4,
                started_at = now(), lease_expires_at = now() + make_interval(secs => $5::float8)
            WHERE id = ANY(ARRAY(SELECT cid FROM candidates))
            RETURNING {_COLUMNS}
        )
        -- The jobs taken, then those the claim ended instead (Claimed.ended).
        SELECT *, false AS ended FROM taken
        UNION ALL SELECT *, true FROM expired"""


def _list(backward: bool) -> str:
    # A page of the listing in seq order, read off the seq index in the page's direction.
    # One statement per direction, not "ORDER BY CASE WHEN $6 THEN -seq ELSE seq END": the
    # plan kept for a prepared statement cannot take that order from the index, and sorted
    # every matching row of the table for each page. Filters are checked on the rows read
    # (no task index: migration 3 dropped it for the claims' sake).
    return f"""
        SELECT {_COLUMNS} FROM {{s}}.beat_jobs
        WHERE seq > $1 AND seq < $2
          AND ($3::text IS NULL OR task = $3) AND ($4::text IS NULL OR queue = $4)
          AND ($5::text IS NULL OR $5 = CASE
                WHEN status = 'queued' AND scheduled_at > now() THEN 'scheduled'
                ELSE status END)
        ORDER BY seq{" DESC" if backward else ""}
        LIMIT $6"""


SQL["list"], SQL["list_backward"] = _list(backward=False), _list(backward=True)
