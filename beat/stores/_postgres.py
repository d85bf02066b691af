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

The migrations and every statement are in ``_postgres_sql.py``; this module runs them.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import re
from collections.abc import Awaitable, Callable, Collection, Mapping, Sequence
from dataclasses import replace
from datetime import UTC, datetime
from functools import partial
from typing import Any, TypeVar
from uuid import UUID

import asyncpg  # type: ignore[import-untyped]

from .._exceptions import InvalidJobError
from .._pg import Pool, discard_if_cut_short
from .._redact import redact as _redact
from ._base import (
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
from ._errors import (
    InvalidJobStateError,
    JobNotFoundError,
    StoreConfigError,
    StoreUnavailableError,
)
from ._finished import ResultWaits
from ._postgres_sql import (
    MIGRATIONS,
    SCHEMA_VERSION,
    SQL,
)
from ._schedules import (
    PreparedSchedule,
    ScheduleRecord,
    ScheduleSpec,
    make_record,
    moves_last_instant,
    prepare_schedule,
)

__all__ = ["PostgresStore"]

log = logging.getLogger("beat.stores")

_T = TypeVar("_T")
#: Before every finished_at: where a rule's first prune batch starts.
_BEFORE_ALL = datetime(1, 1, 1, tzinfo=UTC)
_CHUNK = 100
"""Items per execution of a batch statement over parallel arrays (see _fetch_in_chunks)."""

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


class PostgresStore(Store):
    """Jobs in PostgreSQL (see the module docstring).

    ``dsn``: an asyncpg DSN. ``schema``: where the tables live (created if missing).
    ``pool_size``: connections at most, plus one for notifications. ``timeout``: seconds for
    connecting and for each statement. ``poll_interval``: seconds between fallback looks
    while waiting, in case a notification was lost. ``migrate=False``: :meth:`open` creates
    and migrates nothing (no DDL, no lock: a role without CREATE rights can open it) and
    refuses a schema that does not hold beat's tables at this beat's version
    (:class:`StoreConfigError`). For tools that only look (the CLI).
    """

    def __init__(
        self,
        dsn: str,
        *,
        schema: str = "public",
        pool_size: int = 4,
        timeout: float = 5.0,
        poll_interval: float = 5.0,
        migrate: bool = True,
    ) -> None:
        if not isinstance(schema, str) or not _SCHEMA_RE.fullmatch(schema):
            raise StoreConfigError(f"schema must be a lower-case SQL identifier, got {schema!r}")
        if isinstance(pool_size, bool) or not isinstance(pool_size, int) or pool_size < 1:
            raise StoreConfigError(f"pool_size must be a positive integer, got {pool_size!r}")
        super().__init__()
        self.dsn = dsn
        self.schema = schema
        self.pool_size = pool_size
        self.timeout = check_seconds(timeout, "timeout")
        self.poll_interval = check_seconds(poll_interval, "poll_interval")
        self.migrate = bool(migrate)
        self._sql = {name: query.replace("{s}", schema) for name, query in SQL.items()}
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
        # Result waits: a NOTIFY names the jobs it finished; the sweep's look every
        # poll_interval covers lost notifications, reopening the listener if it closed.
        self._results = ResultWaits(
            self, self._settled, self.poll_interval, before_look=self._listen_for_finished
        )
        self._schedule_waiters: set[asyncio.Future[None]] = set()
        # The loop open() ran on: asyncpg connections (the pool's and the listener), their
        # notifications and every waiter's future belong to it. Every call checks it.
        self._opened_on = OpenedLoop("PostgreSQL store")

    # -- lifecycle ---------------------------------------------------------------------------
    async def open(self) -> None:
        if self._pool is not None:
            self._opened_on.check()  # open already, on this loop: nothing to do
            return
        pool = Pool(self._connect, self.pool_size)
        try:
            async with pool.acquire() as conn:
                await (self._migrate if self.migrate else self._check_schema)(conn)
        except BaseException as exc:
            pool.terminate()
            if isinstance(exc, StoreConfigError):  # from _migrate / _check_schema
                raise
            if isinstance(exc, _CONFIG):
                raise StoreConfigError(self._describe(exc)) from exc
            if isinstance(exc, (*_UNAVAILABLE, ValueError)):  # ValueError: a malformed DSN
                raise StoreUnavailableError(self._describe(exc)) from exc
            raise
        self._pool = pool
        self._opened_on.bind()
        self._listening = asyncio.Lock()  # an asyncio.Lock binds to the loop it waits on

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
            refuse_newer(f"schema {self.schema!r}", version, SCHEMA_VERSION)
            for step in range(version + 1, SCHEMA_VERSION + 1):
                for statement in MIGRATIONS[step]:
                    await conn.execute(statement.replace("{s}", self.schema))
                await conn.execute(sql["set_version"], step)

    async def _check_schema(self, conn: Any) -> None:
        """``migrate=False``: refuse (:class:`StoreConfigError`) a schema that is missing or
        does not hold beat's tables at this version, reading the catalog only."""
        schema = self.schema
        found = await conn.fetchrow(
            "SELECT to_regnamespace($1) IS NOT NULL AS schema,"
            " to_regclass($2) IS NOT NULL AS versions, to_regclass($3) IS NOT NULL AS jobs",
            schema,
            f"{schema}.beat_schema_version",
            f"{schema}.beat_jobs",
        )
        where = f"schema {schema!r} of PostgreSQL at {_redact(self.dsn)!r}"
        if not found["schema"]:
            raise StoreConfigError(
                f"not a beat store: PostgreSQL at {_redact(self.dsn)!r} has no schema "
                f"{schema!r} (opened with migrate=False, which creates nothing)"
            )
        version = await conn.fetchval(self._sql["version"]) if found["versions"] else 0
        check_schema_version(where, version if found["jobs"] else 0, SCHEMA_VERSION)

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
        """Release everything, from any event loop. On the loop that opened the store the
        connections are closed gracefully (each within ``timeout``, else terminated). From
        another loop they cannot be awaited: they are terminated on their own loop if it
        still runs (in another thread), else dropped, with a warning logged (a loop that no
        longer runs cannot run their shutdown; their sockets close when garbage collected,
        and Python warns of each, as asyncpg does for any connection left open when its
        loop ends). Waiters parked on that loop are woken there (see :func:`release_on`).
        The store can be opened again, on any loop."""
        listener, self._listener = self._listener, None
        pool, self._pool = self._pool, None
        opened = self._opened_on.unbind()
        # Fresh ones for a later open(), so a release handed to the old loop touches only
        # what was the old loop's.
        results = self._results
        self._results = ResultWaits(
            self, self._settled, self.poll_interval, before_look=self._listen_for_finished
        )
        new_waiters, self._new_waiters = self._new_waiters, set()
        schedule_waiters, self._schedule_waiters = self._schedule_waiters, set()
        here = opened is None or opened is asyncio.get_running_loop()
        if not here and opened is not None and not opened.is_running():
            log.warning(
                "PostgreSQL store %s: closed after the event loop that opened it stopped; "
                "its connections are dropped, not closed (their sockets close when garbage "
                "collected). Close a store on the loop that opened it (async with store:)",
                _redact(self.dsn),
            )
        for closing in (listener, pool):
            if closing is None:
                continue
            if not here:
                release_on(opened, closing.terminate)
                continue
            try:
                async with asyncio.timeout(self.timeout):
                    await closing.close()
            except (*_UNAVAILABLE, TimeoutError):
                closing.terminate()
        release_on(
            opened,
            results.close,
            partial(self._wake, new_waiters),
            partial(self._wake, schedule_waiters),
        )

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
    ) -> Claimed:
        queue_list, task_list = check_claim(worker, queues, tasks, limit, lease)
        if not queue_list or not task_list:
            return Claimed()
        rows = await self._call(
            "fetch", "claim", queue_list, task_list, limit, worker, float(lease), LEASE_EXPIRED
        )
        taken = sorted(
            (row for row in rows if not row["ended"]),
            key=lambda r: (-r["priority"], r["scheduled_at"], r["seq"]),
        )
        return Claimed(map(_record, taken), (_record(row) for row in rows if row["ended"]))

    async def heartbeat(
        self, worker: str, jobs: Sequence[tuple[UUID, int]], lease: float
    ) -> Heartbeat:
        check_seconds(lease, "lease")
        wanted = {to_uuid(id) for id, _ in jobs}
        if not wanted:
            return Heartbeat()
        rows = await self._fetch_in_chunks(
            "heartbeat",
            [[to_uuid(id) for id, _ in jobs], [int(attempt) for _, attempt in jobs]],
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
            rows = await self._fetch_in_chunks(
                "complete_many",
                [
                    [item.id for item in good],
                    [item.attempt for item in good],
                    [item.worker for item in good],
                    [item.result for item in good],
                ],
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
        backward = before is not None and after is None  # the page just before `before`
        rows = await self._call(
            "fetch",
            "list_backward" if backward else "list",
            bounds.get("after", 0),
            bounds.get("before", 2**63 - 1),
            task,
            queue,
            None if wanted is None else wanted.value,
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
                self._results.finished(UUID(id))

    async def _ensure_listening(self, channel: str) -> None:
        """Each wait starts here, before its futures or listener: on this loop only."""
        self._opened_on.check()
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
            if queues is None:
                queues = [row["queue"] for row in await self._call("fetch", "queues")]
            due: float | None = await self._call(
                "fetchval", "next_due", list(queues), None if tasks is None else sorted(tasks)
            )
            if due is not None:
                timeout = min(timeout, max(0.0, due))
            if timeout <= 0:
                return
            await self.waits.sleep(future, min(timeout, self.poll_interval))
        finally:
            self._new_waiters.discard(future)

    async def wait_finished(self, id: UUID, timeout: float) -> JobRecord:
        check_seconds(timeout, "timeout", zero=True)
        key = to_uuid(id)
        await self._listen_for_finished()
        return await self._results.wait(key, timeout)

    async def _listen_for_finished(self) -> None:
        await self._ensure_listening(self._finished_channel)

    async def _settled(self, keys: list[UUID]) -> list[UUID]:
        """Of these awaited jobs, those finished or gone (the result sweep's look)."""
        rows = await self._call("fetch", "settled", keys)
        return [row["id"] for row in rows]

    # -- connections of the caller -----------------------------------------------------------------
    async def _on(self, connection: Any, fn: Callable[..., Awaitable[_T]], *args: Any) -> _T:
        """``fn(conn, *args)`` on the caller's ``connection``, or on a pool connection."""
        self._opened_on.check()
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

    async def _fetch_in_chunks(
        self, name: str, columns: Sequence[Sequence[Any]], *scalars: Any
    ) -> list[Any]:
        """The rows of statement ``name`` over parallel arrays ``columns`` (then
        ``scalars``), at most ``_CHUNK`` items per execution, all in one transaction.

        Why chunks: such a statement joins the table to ``unnest`` of its arrays, and the
        plan PostgreSQL keeps for the prepared statement guesses ten items; it may then
        rescan the items for every row (a nested loop): 0.45 s for 1,000 completions,
        1.8 s for 2,000. Chunks keep that to ~100² comparisons per execution."""
        n = len(columns[0])
        if n <= _CHUNK:
            rows: list[Any] = await self._call("fetch", name, *columns, *scalars)
            return rows
        sql = self._sql[name]

        async def run(conn: Any) -> list[Any]:
            found: list[Any] = []
            for start in range(0, n, _CHUNK):
                part = [column[start : start + _CHUNK] for column in columns]
                found += await conn.fetch(sql, *part, *scalars)
            return found

        return await self._transaction(run)

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
        """Inside the enqueue's transaction: the conflicting job (replaced first when asked
        and still waiting), or ``None`` to insert. A replace of another task's job raises
        :class:`InvalidJobError` (the transaction rolls back: nothing stored)."""
        from ._base import check_replace

        sql = self._sql
        row = await conn.fetchrow(
            sql["unique_find"], unique.key, list(unique.statuses), unique.period
        )
        if row is not None and unique.replace:
            check_replace(unique.key, row["task"], job.shape.task)
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
        rows = await self._call(
            "fetch",
            "prune_bounds",
            [r.status for r in prepared],
            [r.task for r in prepared],
            [r.max_age for r in prepared],
            [r.max_count for r in prepared],
        )
        bounds = [
            prune_bound(row["cutoff"], None if row["seq"] is None else (row[1], row[2]))
            for row in rows
        ]

        async def delete(
            rule: PreparedRule, after: PruneKey | None, bound: PruneKey, limit: int
        ) -> tuple[PruneKey | None, int]:
            after_at, after_seq = (_BEFORE_ALL, 0) if after is None else after
            args = (rule.status, rule.task, after_at, after_seq, bound[0], bound[1], limit)
            deleted = await self._call("fetch", "prune_batch", *args)
            if not deleted:
                return None, 0
            return max((row[0], row[1]) for row in deleted), len(deleted)

        return await prune_in_batches(prepared, bounds, self.prune_batch, delete)

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
            moves = False
            if stored is not None:
                before = prepare_schedule(self._schedule(stored))
                if before.content() == p.content():
                    return stored
                moves = moves_last_instant(before, p)
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
                moves,
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
                await self.waits.sleep(future, min(left, self.poll_interval))
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
