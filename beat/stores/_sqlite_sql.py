"""The SQLite store's schema and statements: every piece of SQL ``SQLiteStore`` runs.

Times are integer microseconds since the epoch, JSON is ``TEXT``. Statements take named
parameters (but ``insert``, see there); lists are passed as JSON text and read with
``json_each``, so no statement is ever built from values.

Schema changes are append-only: a new version is a new entry of ``MIGRATIONS`` and the
old ones stay as they were, since files at every earlier version must still upgrade.
"""

from __future__ import annotations

SCHEMA_VERSION = 5
"""What ``PRAGMA user_version`` says once every migration below has run."""

# The columns of beat_jobs, in the table's order (version 4 copies them by name).
_JOB_COLUMNS = (
    "seq, id, task, args, kwargs, queue, priority, status, attempt, max_attempts, "
    "scheduled_at, created_at, started_at, finished_at, worker, lease_expires_at, result, "
    "error_type, error_message, error_traceback, cancel_requested, meta, progress, unique_key"
)

MIGRATIONS: dict[int, tuple[str, ...]] = {
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
    # Meta, progress and unique keys on jobs; logs, instances, stored schedules.
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
    # The queue first in the due index, as on PostgreSQL: a claim walks its own queues'
    # levels. Without it a claim read past every due job of the other queues at its level:
    # 38 ms a claim with 100,000 jobs waiting in another queue, against 0.7 ms.
    5: (
        "DROP INDEX beat_jobs_due",
        """CREATE INDEX beat_jobs_due ON beat_jobs (queue, priority DESC, scheduled_at, seq)
            WHERE status = 'queued'""",
    ),
}

# The priority levels of the waiting jobs of each queue wanted, highest first, one index
# seek each: a skip scan of beat_jobs_due, whose rows sort by queue, priority, then due
# time. Within one level the due rows come first, so a claim reads a level's due rows and
# stops; a single scan in (priority, due time) order would read every job due later at a
# level before reaching the next one (13 ms a claim with 100,000 jobs due in an hour), and
# every job of the other queues. The cost is a seek per queue and distinct priority among
# its waiting jobs: a handful, for the way queues and priorities are used. The queues
# wanted: the JSON list :queues, or (NULL) every queue with a waiting job, found by a skip
# scan too.
_LEVELS = """every_queue(queue) AS (
        SELECT (SELECT queue FROM beat_jobs INDEXED BY beat_jobs_due
                WHERE status = 'queued' ORDER BY queue LIMIT 1)
        WHERE :queues IS NULL
        UNION ALL
        SELECT (SELECT queue FROM beat_jobs INDEXED BY beat_jobs_due
                WHERE status = 'queued' AND queue > every_queue.queue
                ORDER BY queue LIMIT 1)
        FROM every_queue WHERE every_queue.queue IS NOT NULL),
    wanted(queue) AS (
        SELECT value FROM json_each(:queues)
        UNION SELECT queue FROM every_queue WHERE queue IS NOT NULL),
    levels(queue, priority) AS (
        SELECT queue, (SELECT priority FROM beat_jobs INDEXED BY beat_jobs_due
                       WHERE status = 'queued' AND queue = wanted.queue
                       ORDER BY priority DESC LIMIT 1)
        FROM wanted
        UNION ALL
        SELECT levels.queue, (SELECT priority FROM beat_jobs INDEXED BY beat_jobs_due
                              WHERE status = 'queued' AND queue = levels.queue
                                AND priority < levels.priority
                              ORDER BY priority DESC LIMIT 1)
        FROM levels WHERE levels.priority IS NOT NULL)"""
_FENCE = "id = :id AND status = 'running' AND worker = :worker AND attempt = :attempt"
SQL = {
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
              AND task IN (SELECT value FROM json_each(:tasks)))
        RETURNING *""",
    # The waiting rows are found one queue and priority level at a time (see _LEVELS): in
    # beat_jobs_due a level's due rows come first, in claim order, and the scan of a level
    # stops at :limit, so jobs due later (any number of them) are never read. The expired
    # leases (after "expire": the ones that may run again) come off beat_jobs_leases.
    # INDEXED BY: left to itself, SQLite read every row of the tasks through beat_jobs_task
    # and sorted them (3.5 ms a claim with 5,000 jobs stored; now a few rows).
    "claim": f"""
        WITH RECURSIVE {_LEVELS}
        UPDATE beat_jobs SET status = 'running', attempt = attempt + 1, worker = :worker,
            started_at = :now, lease_expires_at = :now + :lease
        WHERE seq IN (
            SELECT seq FROM (
                SELECT j.seq, j.priority, j.scheduled_at FROM levels CROSS JOIN beat_jobs AS j
                WHERE j.seq IN (
                    SELECT seq FROM beat_jobs INDEXED BY beat_jobs_due
                    WHERE status = 'queued' AND queue = levels.queue
                      AND priority = levels.priority AND scheduled_at <= :now
                      AND task IN (SELECT value FROM json_each(:tasks))
                    ORDER BY scheduled_at, seq
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
    # A join, each [id, attempt] found by key: the test "this row's attempt is listed" as
    # a subquery read the whole list again for every row (0.6 s for 1,000 running jobs,
    # 2.4 s for 2,000, with the write lock held).
    "heartbeat": """
        UPDATE beat_jobs SET lease_expires_at = :now + :lease
        FROM (SELECT json_extract(value, '$[0]') AS id, json_extract(value, '$[1]') AS attempt
              FROM json_each(:jobs)) AS beat
        WHERE beat_jobs.id = beat.id AND beat_jobs.attempt = beat.attempt
          AND beat_jobs.status = 'running' AND beat_jobs.worker = :worker
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
    # Of the awaited jobs, those finished or gone (json list of ids): their waiters wake.
    "settled": """
        SELECT value FROM json_each(:ids)
        WHERE NOT EXISTS (SELECT 1 FROM beat_jobs
                          WHERE id = value AND status IN ('queued', 'running'))""",
    "signal": "SELECT counter FROM beat_signals WHERE name = :name",
    "signal_new": "UPDATE beat_signals SET counter = counter + 1 WHERE name = 'new'",
    # When the next waiting job of these queues/tasks comes due or the next lease expires
    # (in the past: claimable now): wait_for_jobs returns or wakes then. The first job of
    # each queue's priority levels (by due time) and the first lease to expire: index seeks,
    # however many jobs wait.
    "next_due": f"""
        WITH RECURSIVE {_LEVELS}
        SELECT MIN(soonest) FROM (
            SELECT (SELECT scheduled_at FROM beat_jobs INDEXED BY beat_jobs_due
                    WHERE status = 'queued' AND queue = levels.queue
                      AND priority = levels.priority
                      AND (:tasks IS NULL OR task IN (SELECT value FROM json_each(:tasks)))
                    ORDER BY scheduled_at, seq
                    LIMIT 1) AS soonest
            FROM levels
            UNION ALL
            SELECT * FROM (
                SELECT lease_expires_at FROM beat_jobs INDEXED BY beat_jobs_leases
                WHERE status = 'running'
                  AND (:queues IS NULL OR queue IN (SELECT value FROM json_each(:queues)))
                  AND (:tasks IS NULL OR task IN (SELECT value FROM json_each(:tasks)))
                ORDER BY lease_expires_at
                LIMIT 1))""",
    # -- unique keys, progress and logs, pruning, instances, stored schedules --------------
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
    # Pruning (see prune_in_batches in _base.py): a count rule's newest doomed job is the one
    # ranked :max_count newest first, read off the beat_jobs_finished index (its max_count
    # entries are walked; with a task, their rows too). A batch is the rule's oldest jobs
    # between two (finished_at, seq) keys, one range of that index.
    "prune_nth_newest": """
        SELECT finished_at, seq FROM beat_jobs INDEXED BY beat_jobs_finished
        WHERE status = :status AND finished_at IS NOT NULL
          AND (:task IS NULL OR task = :task)
        ORDER BY finished_at DESC, seq DESC
        LIMIT 1 OFFSET :max_count""",
    "prune_select": """
        SELECT id, finished_at, seq FROM beat_jobs INDEXED BY beat_jobs_finished
        WHERE status = :status AND finished_at IS NOT NULL
          AND (finished_at, seq) > (:after_at, :after_seq)
          AND (finished_at, seq) < (:bound_at, :bound_seq)
          AND (:task IS NULL OR task = :task)
        ORDER BY finished_at, seq
        LIMIT :limit""",
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
    # :moves (moves_last_instant: a resume or a new definition) moves last_instant up to
    # now, never back, so nothing before the change is caught up.
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
            updated_at = excluded.updated_at,
            last_instant = CASE WHEN :moves
                THEN max(coalesce(last_instant, :now), :now) ELSE last_instant END
        RETURNING *""",
    # A resume moves last_instant up to now (never back): no catch-up of the paused span.
    "schedule_pause": """
        UPDATE beat_schedules SET paused = :paused, version = :version, updated_at = :now,
            last_instant = CASE WHEN :paused
                THEN last_instant ELSE max(coalesce(last_instant, :now), :now) END
        WHERE name = :name RETURNING *""",
    "schedule_delete": "DELETE FROM beat_schedules WHERE name = :name RETURNING name",
    "schedule_advance": """
        UPDATE beat_schedules SET last_instant = :at
        WHERE name = :name AND (last_instant IS NULL OR last_instant < :at) RETURNING name""",
}


def _list(by_task: bool, backward: bool) -> str:
    # A page of the listing in seq order, read off the primary key (or, for one task, the
    # beat_jobs_task index) in the page's direction: a first page reads its rows, not every
    # row of the table. Queue and status filter those rows.
    return f"""
        SELECT * FROM beat_jobs
        WHERE seq > :low AND seq < :high
          AND {"task = :task" if by_task else ":task IS NULL"}
          AND (:queue IS NULL OR queue = :queue)
          AND (:status IS NULL OR :status = CASE
                WHEN status = 'queued' AND scheduled_at > :now THEN 'scheduled'
                ELSE status END)
        ORDER BY seq{" DESC" if backward else ""}
        LIMIT :limit"""


# "list", "list_backward", "list_task", "list_task_backward": see _list.
SQL.update(
    {
        "list" + "_task" * t + "_backward" * b: _list(t, b)
        for t in (False, True)
        for b in (False, True)
    }
)
