"""PostgreSQL coordination: one row per ``(namespace, job, fire_time)`` (docs/guarantees.md §6).

Guarantee — **exactly one claim per occurrence, durable**. A claim is one
``INSERT … ON CONFLICT DO NOTHING RETURNING`` round trip; the primary key decides, so two
instances can never both win, across restarts and failovers that keep committed data.

* Without leases (``lease=None``, the default) a claim is final: **at most once**. A run whose
  instance dies stays ``running`` in the table and is not re-run.
* With ``lease=seconds``, **at least once**: a claim holds a lease that the scheduler renews
  every ``lease / 3`` s while the run goes on. When an owner stops renewing (it died, was cut
  off from the database for longer than the lease, or its run ended while the database was
  unreachable, so the outcome could not be recorded), another instance re-claims the run
  after ``lease_expires`` and runs it again with ``attempt + 1``, passed as ``ctx.attempt`` —
  a fencing token: a job writing elsewhere can reject writes from a lower attempt. An owner
  that was only slow (a blocked event loop, a network partition) may still be running when
  the re-run starts, so the job must tolerate that. After ``max_attempts`` a run is no longer
  re-claimed; it is marked ``abandoned``.
* Catch-up: each claim also records the job's latest claimed instant, so after a full outage
  the first instance back applies each job's misfire policy once across the cluster
  (:meth:`last_fired`).

Lease expiry and every timestamp use the **database** clock (``now()``), never an instance's.
Instances' clocks still decide *when* they try to claim: a claim by an instance whose clock is
far behind can come after the others have moved on, but it can never win an occurrence twice.

When the database cannot be reached (connection refused or lost, ``timeout`` seconds passed,
the server shutting down or starting up) an operation raises
:class:`~beat.CoordinatorUnavailableError` and the occurrence does not run; the pool reconnects
on the next claim. A claim whose reply is lost after the database committed it is run by
nobody. Bad DSN, password, database or permissions raise :class:`~beat.CoordinatorConfigError`
from :meth:`open`.

Tables (``beat`` is ``table_prefix``), created on first use under an advisory lock, in the
first schema of the connection's ``search_path``::

    beat_schema (version integer)                       one row: 1
    beat_runs (
        namespace text, job text, fire_time timestamptz,  PRIMARY KEY (namespace, job, fire_time)
        status text,       running | succeeded | failed | timed_out | cancelled | abandoned
        owner text,        host/pid/random of the instance holding the claim
        attempt integer,   1, then +1 per re-claim
        lease_expires timestamptz NULL,  NULL without leases and once finished
        started_at timestamptz, finished_at timestamptz NULL, error text NULL)
        index beat_runs_leases ON (namespace, lease_expires) WHERE status = 'running'
    beat_jobs (namespace text, job text, last_fire_time timestamptz,
               PRIMARY KEY (namespace, job))

Nothing else is stored: no arguments, no pickles. Run rows whose instant is older than
``retention`` are deleted in the background (checked every ``retention / 100`` seconds, at
least hourly, from claims); an occurrence whose row is gone could be claimed again only by an
instance that tries to claim it that late. ``beat_jobs`` keeps one row per job, never pruned.

Privileges: ``CREATE`` on the schema the first time (or tables created beforehand by someone
who has it), then ``SELECT`` on ``beat_schema``, ``SELECT, INSERT, UPDATE, DELETE`` on
``beat_runs`` and ``SELECT, INSERT, UPDATE`` on ``beat_jobs``; :meth:`open` checks them.
"""

from __future__ import annotations

import asyncio
import os
import re
import secrets
import socket
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import asyncpg  # type: ignore[import-untyped]

from .._exceptions import CoordinatorConfigError, CoordinatorUnavailableError
from .._history import Outcome
from .._pg import discard_if_cut_short, release_without_reset
from ._base import Claim, Coordinator, JobSpec, Occurrence, redact

__all__ = ["PostgresCoordinator"]

SCHEMA_VERSION = 1

# Errors that mean "the database cannot serve us right now". Any other database error at run
# time (a revoked privilege, a full disk) is also reported as unavailable: not running is the
# safe side; the message carries the cause.
_UNAVAILABLE = (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError)
_CONNECTION_LOST = (
    OSError,
    TimeoutError,
    asyncpg.PostgresConnectionError,
    asyncpg.InterfaceError,
    asyncpg.exceptions.OperatorInterventionError,  # admin shutdown, cannot connect now
)
_PREFIX_RE = re.compile(r"[a-z_][a-z0-9_]{0,40}")
_KNOWN_NAMES_LIMIT = 10_000  # job names re-claimed runs are looked for; oldest forgotten first
_RECLAIM_BATCH = 100  # expired runs taken per reclaim call


class PostgresCoordinator(Coordinator):
    """Claims occurrences in a PostgreSQL table (see the module docstring).

    ``dsn`` — an asyncpg DSN (``postgresql://user:password@host:5432/db``). ``lease`` —
    ``None`` for final claims (at most once) or seconds for at-least-once leases, with
    ``reclaim_interval`` seconds between looks for expired ones and ``max_attempts`` runs of
    one occurrence at most. ``timeout`` — seconds for connecting and for each statement.
    ``pool_size`` — connections at most. ``retention`` — seconds of run rows kept (``None``:
    forever). ``table_prefix`` — names the tables.
    """

    def __init__(
        self,
        dsn: str,
        *,
        namespace: str = "beat",
        lease: float | None = None,
        reclaim_interval: float = 5.0,
        max_attempts: int = 5,
        timeout: float = 2.0,
        pool_size: int = 4,
        retention: float | None = 7 * 86_400.0,
        table_prefix: str = "beat",
    ) -> None:
        super().__init__(namespace=namespace)
        for what, value, optional in (
            ("lease", lease, True),
            ("reclaim_interval", reclaim_interval, False),
            ("timeout", timeout, False),
            ("retention", retention, True),
        ):
            if optional and value is None:
                continue
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
                raise CoordinatorConfigError(f"{what} must be a positive number, got {value!r}")
        for what, count in (("max_attempts", max_attempts), ("pool_size", pool_size)):
            if isinstance(count, bool) or not isinstance(count, int) or count < 1:
                raise CoordinatorConfigError(f"{what} must be a positive integer, got {count!r}")
        if not isinstance(table_prefix, str) or not _PREFIX_RE.fullmatch(table_prefix):
            raise CoordinatorConfigError(
                f"table_prefix must be a lower-case SQL identifier, got {table_prefix!r}"
            )
        self.dsn = dsn
        self.lease = None if lease is None else float(lease)
        self.reclaim_interval = float(reclaim_interval)
        self.max_attempts = max_attempts
        self.timeout = float(timeout)
        self.pool_size = pool_size
        self.retention = None if retention is None else float(retention)
        self.owner = f"{socket.gethostname()}/{os.getpid()}/{secrets.token_hex(3)}"
        self._tables = _Tables(table_prefix)
        self._pool: asyncpg.Pool | None = None
        self._names: dict[str, None] = {}  # insertion-ordered set of job names seen
        self._next_prune = 0.0
        self._pruning: asyncio.Task[None] | None = None

    # -- lifecycle ---------------------------------------------------------------------------
    def register(self, jobs: Sequence[JobSpec]) -> None:
        for spec in jobs:
            self._remember(spec.name)

    async def open(self, jobs: Sequence[JobSpec]) -> None:
        self.register(jobs)
        try:
            pool = await asyncpg.create_pool(
                self.dsn,
                min_size=1,
                max_size=self.pool_size,
                timeout=self.timeout,
                command_timeout=self.timeout,
                server_settings={"application_name": f"beat:{self.namespace}"[:63]},
                reset=release_without_reset,  # one round trip per call, not two
            )
        except (*_UNAVAILABLE, ValueError) as exc:
            raise CoordinatorConfigError(
                f"cannot connect to PostgreSQL at {redact(self.dsn)!r}: {type(exc).__name__}: {exc}"
            ) from exc
        try:
            async with pool.acquire() as conn:
                await self._prepare(conn)
        except BaseException as exc:
            pool.terminate()
            if isinstance(exc, _UNAVAILABLE):
                raise CoordinatorConfigError(
                    f"cannot use PostgreSQL at {redact(self.dsn)!r} for claims: "
                    f"{type(exc).__name__}: {exc}"
                ) from exc
            raise
        self._pool = pool

    async def _prepare(self, conn: Any) -> None:
        """Create the tables if missing (once across the cluster); check version and rights."""
        t = self._tables
        if not await self._tables_exist(conn):
            # Instances starting together would race on CREATE TABLE IF NOT EXISTS (it is
            # not atomic in the catalogs): one creates, the others wait here. A session lock,
            # so the re-check below runs in a new transaction that sees the committed tables.
            await conn.execute("SELECT pg_advisory_lock($1)", t.lock_id)
            try:
                if not await self._tables_exist(conn):
                    async with conn.transaction():
                        for statement in t.ddl():
                            await conn.execute(statement)
            finally:
                await conn.execute("SELECT pg_advisory_unlock($1)", t.lock_id)
        allowed = await conn.fetchval(
            "SELECT has_table_privilege($1, 'SELECT')"
            " AND has_table_privilege($2, 'SELECT, INSERT, UPDATE, DELETE')"
            " AND has_table_privilege($3, 'SELECT, INSERT, UPDATE')",
            t.schema,
            t.runs,
            t.jobs,
        )
        if not allowed:
            raise CoordinatorConfigError(
                f"the PostgreSQL role lacks SELECT on {t.schema}, SELECT/INSERT/UPDATE/DELETE on "
                f"{t.runs} or SELECT/INSERT/UPDATE on {t.jobs}"
            )
        version = await conn.fetchval(f"SELECT max(version) FROM {t.schema}")
        if version != SCHEMA_VERSION:
            raise CoordinatorConfigError(
                f"table {t.schema} holds schema version {version}; this beat uses "
                f"{SCHEMA_VERSION} (upgrade beat, or use another table_prefix)"
            )

    async def _tables_exist(self, conn: Any) -> bool:
        exists: bool = await conn.fetchval(
            "SELECT to_regclass($1) IS NOT NULL", self._tables.schema
        )
        return exists

    async def close(self) -> None:
        pruning, self._pruning = self._pruning, None
        if pruning is not None:
            pruning.cancel()
            await asyncio.wait([pruning])
        pool, self._pool = self._pool, None
        if pool is not None:
            try:
                async with asyncio.timeout(self.timeout):
                    await pool.close()
            except (*_UNAVAILABLE, TimeoutError):
                pool.terminate()

    # -- claims ------------------------------------------------------------------------------
    async def claim(self, occurrence: Occurrence) -> Claim | None:
        self._remember(occurrence.job)
        won = await self._call(
            "fetchval",
            self._tables.claim,
            occurrence.namespace,
            occurrence.job,
            occurrence.fire_time,
            self.owner,
            self.lease,
        )
        self._maybe_prune()
        return Claim(occurrence) if won else None

    async def claim_many(self, occurrences: Sequence[Occurrence]) -> list[Claim | None]:
        """:meth:`claim` for many occurrences in one statement (one round trip)."""
        if not occurrences:
            return []
        foreign = [o for o in occurrences if o.namespace != self.namespace]
        if foreign:  # occurrence() makes them; anything else is a caller bug
            raise ValueError(f"occurrences of another namespace: {foreign[:3]}")
        for job in {o.job for o in occurrences}:
            self._remember(job)
        rows = await self._call(
            "fetch",
            self._tables.claim_many,
            self.namespace,
            [o.job for o in occurrences],
            [o.fire_time for o in occurrences],
            self.owner,
            self.lease,
        )
        self._maybe_prune()
        won = {(row["job"], row["fire_time"]) for row in rows}
        return [Claim(o) if (o.job, o.fire_time) in won else None for o in occurrences]

    async def finish(self, claim: Claim, outcome: Outcome, error: str | None) -> None:
        occ = claim.occurrence
        await self._call(
            "execute",
            self._tables.finish,
            occ.namespace,
            occ.job,
            occ.fire_time,
            self.owner,
            claim.attempt,
            outcome.value,
            error,
        )

    async def finish_many(self, items: Sequence[tuple[Claim, Outcome, str | None]]) -> None:
        """:meth:`finish` for many runs in one statement."""
        if not items:
            return
        await self._call(
            "execute",
            self._tables.finish_many,
            self.namespace,
            [claim.occurrence.job for claim, _, _ in items],
            [claim.occurrence.fire_time for claim, _, _ in items],
            [claim.attempt for claim, _, _ in items],
            [outcome.value for _, outcome, _ in items],
            [error for _, _, error in items],
            self.owner,
        )

    async def renew(self, claim: Claim) -> bool:
        if self.lease is None:
            return True
        occ = claim.occurrence
        renewed = await self._call(
            "fetchval",
            self._tables.renew,
            occ.namespace,
            occ.job,
            occ.fire_time,
            self.owner,
            claim.attempt,
            self.lease,
        )
        return bool(renewed)

    async def reclaim_expired(self) -> list[Claim]:
        if self.lease is None:
            return []
        rows = await self._call(
            "fetch",
            self._tables.reclaim,
            self.namespace,
            list(self._names),
            self.owner,
            self.lease,
            self.max_attempts,
            _RECLAIM_BATCH,
        )
        return [
            Claim(self.occurrence(row["job"], row["fire_time"]), attempt=row["attempt"])
            for row in rows
        ]

    async def last_fired(self, job: str) -> datetime | None:
        last: datetime | None = await self._call(
            "fetchval", self._tables.last_fired, self.namespace, job
        )
        return last

    async def last_fired_many(self, jobs: Sequence[str]) -> dict[str, datetime]:
        """:meth:`last_fired` of every job in ``jobs``, in one round trip."""
        if not jobs:
            return {}
        rows = await self._call("fetch", self._tables.last_fired_many, self.namespace, list(jobs))
        return {row["job"]: row["last_fire_time"] for row in rows}

    async def ping(self) -> None:
        await self._call("fetchval", "SELECT 1")

    async def prune(self) -> int:
        """Delete this namespace's run rows older than ``retention``; returns how many."""
        if self.retention is None:
            return 0
        status: str = await self._call(
            "execute", self._tables.prune, self.namespace, list(self._names), self.retention
        )
        return int(status.rpartition(" ")[2] or 0)

    # -- helpers -----------------------------------------------------------------------------
    async def _call(self, method: str, query: str, *args: Any) -> Any:
        pool = self._pool
        if pool is None:
            raise CoordinatorUnavailableError("the PostgreSQL coordinator is not open")
        try:
            # Bounds the wait for a pooled connection too (a reconnect during an outage).
            async with asyncio.timeout(2 * self.timeout), pool.acquire() as conn:
                call = getattr(conn, method)(query, *args)
                return await discard_if_cut_short(conn, call)
        except _UNAVAILABLE as exc:
            if isinstance(exc, _CONNECTION_LOST):
                # After a server restart every pooled connection is dead: replace them all
                # on the next acquire instead of failing once per stale connection.
                await pool.expire_connections()
            raise CoordinatorUnavailableError(
                f"PostgreSQL: {type(exc).__name__}: {exc}".rstrip(": ")
            ) from exc

    def _remember(self, job: str) -> None:
        names = self._names
        if job not in names:
            names[job] = None
            if len(names) > _KNOWN_NAMES_LIMIT:
                del names[next(iter(names))]

    def _maybe_prune(self) -> None:
        if self.retention is None or self._pruning is not None:
            return
        loop = asyncio.get_running_loop()
        now = loop.time()
        if now < self._next_prune:
            return
        self._next_prune = now + min(3600.0, self.retention / 100)
        self._pruning = loop.create_task(self._prune_in_background())

    async def _prune_in_background(self) -> None:
        try:
            await self.prune()
        except CoordinatorUnavailableError:
            pass  # tried again after the next interval
        finally:
            self._pruning = None

    def __repr__(self) -> str:
        return (
            f"PostgresCoordinator({redact(self.dsn)!r}, namespace={self.namespace!r}, "
            f"lease={self.lease!r})"
        )


class _Tables:
    """Table names and the statements over them, built once per prefix."""

    def __init__(self, prefix: str) -> None:
        self.schema = f"{prefix}_schema"
        self.runs = f"{prefix}_runs"
        self.jobs = f"{prefix}_jobs"
        # A stable 63-bit number per prefix for pg_advisory_xact_lock.
        self.lock_id = int.from_bytes(f"beat:{prefix}".encode()[:8].ljust(8, b"_"), "big") >> 1
        runs, jobs = self.runs, self.jobs
        # $5 is the lease in seconds or NULL; now() + NULL is NULL (no lease). The second CTE
        # runs only for the winner and keeps beat_jobs at the latest claimed instant.
        self.claim = f"""
            WITH claimed AS (
                INSERT INTO {runs} (namespace, job, fire_time, status, owner, attempt,
                                    lease_expires, started_at)
                VALUES ($1, $2, $3, 'running', $4, 1,
                        now() + make_interval(secs => $5::float8), now())
                ON CONFLICT (namespace, job, fire_time) DO NOTHING
                RETURNING fire_time
            ), marked AS (
                INSERT INTO {jobs} AS j (namespace, job, last_fire_time)
                SELECT $1, $2, fire_time FROM claimed
                ON CONFLICT (namespace, job) DO UPDATE
                    SET last_fire_time = greatest(j.last_fire_time, excluded.last_fire_time)
            )
            SELECT count(*) > 0 FROM claimed"""
        # claim() for many occurrences of this namespace in one statement: which were won.
        # The ORDER BY takes row locks in one order, so concurrent batches cannot deadlock.
        self.claim_many = f"""
            WITH wanted AS (
                SELECT w.job, w.fire_time FROM unnest($2::text[], $3::timestamptz[])
                    AS w(job, fire_time)
                ORDER BY w.job, w.fire_time
            ), claimed AS (
                INSERT INTO {runs} (namespace, job, fire_time, status, owner, attempt,
                                    lease_expires, started_at)
                SELECT $1, job, fire_time, 'running', $4, 1,
                       now() + make_interval(secs => $5::float8), now()
                FROM wanted
                ON CONFLICT (namespace, job, fire_time) DO NOTHING
                RETURNING job, fire_time
            ), latest AS (
                SELECT job, max(fire_time) AS fire_time FROM claimed GROUP BY job
            ), marked AS (
                INSERT INTO {jobs} AS j (namespace, job, last_fire_time)
                SELECT $1, job, fire_time FROM latest ORDER BY job
                ON CONFLICT (namespace, job) DO UPDATE
                    SET last_fire_time = greatest(j.last_fire_time, excluded.last_fire_time)
            )
            SELECT job, fire_time FROM claimed"""
        self.finish = f"""
            UPDATE {runs} SET status = $6, error = $7, finished_at = now(), lease_expires = NULL
            WHERE namespace = $1 AND job = $2 AND fire_time = $3 AND owner = $4 AND attempt = $5"""
        # finish() for many runs of this namespace and owner in one statement.
        self.finish_many = f"""
            UPDATE {runs} AS r SET status = u.status, error = u.error, finished_at = now(),
                lease_expires = NULL
            FROM unnest($2::text[], $3::timestamptz[], $4::int[], $5::text[], $6::text[])
                AS u(job, fire_time, attempt, status, error)
            WHERE r.namespace = $1 AND r.job = u.job AND r.fire_time = u.fire_time
              AND r.owner = $7 AND r.attempt = u.attempt"""
        self.renew = f"""
            UPDATE {runs} SET lease_expires = now() + make_interval(secs => $6::float8)
            WHERE namespace = $1 AND job = $2 AND fire_time = $3 AND owner = $4
              AND attempt = $5 AND status = 'running'
            RETURNING true"""
        # SKIP LOCKED: instances reclaiming at the same moment each take different rows.
        self.reclaim = f"""
            WITH given_up AS (
                UPDATE {runs} SET status = 'abandoned', finished_at = now(), lease_expires = NULL,
                                  error = 'lease expired after ' || attempt || ' attempt(s)'
                WHERE namespace = $1 AND status = 'running' AND lease_expires < now()
                  AND attempt >= $5
            ), expired AS (
                SELECT namespace, job, fire_time FROM {runs}
                WHERE namespace = $1 AND status = 'running' AND lease_expires < now()
                  AND attempt < $5 AND job = ANY($2::text[])
                ORDER BY lease_expires
                LIMIT $6
                FOR UPDATE SKIP LOCKED
            )
            UPDATE {runs} AS r
            SET owner = $3, attempt = r.attempt + 1, started_at = now(),
                lease_expires = now() + make_interval(secs => $4::float8)
            FROM expired AS e
            WHERE r.namespace = e.namespace AND r.job = e.job AND r.fire_time = e.fire_time
            RETURNING r.job, r.fire_time, r.attempt"""
        self.last_fired = f"SELECT last_fire_time FROM {jobs} WHERE namespace = $1 AND job = $2"
        self.last_fired_many = f"""
            SELECT job, last_fire_time FROM {jobs}
            WHERE namespace = $1 AND job = ANY($2::text[]) AND last_fire_time IS NOT NULL"""
        self.prune = f"""
            DELETE FROM {runs}
            WHERE namespace = $1 AND job = ANY($2::text[])
              AND fire_time < now() - make_interval(secs => $3::float8)
              AND (lease_expires IS NULL OR lease_expires < now())"""

    def ddl(self) -> list[str]:
        runs, jobs, schema = self.runs, self.jobs, self.schema
        return [
            f"CREATE TABLE IF NOT EXISTS {schema} (version integer NOT NULL)",
            f"""CREATE TABLE IF NOT EXISTS {runs} (
                namespace text NOT NULL,
                job text NOT NULL,
                fire_time timestamptz NOT NULL,
                status text NOT NULL,
                owner text NOT NULL,
                attempt integer NOT NULL,
                lease_expires timestamptz,
                started_at timestamptz NOT NULL,
                finished_at timestamptz,
                error text,
                PRIMARY KEY (namespace, job, fire_time))""",
            f"""CREATE INDEX IF NOT EXISTS {runs}_leases ON {runs} (namespace, lease_expires)
                WHERE status = 'running'""",
            f"""CREATE TABLE IF NOT EXISTS {jobs} (
                namespace text NOT NULL,
                job text NOT NULL,
                last_fire_time timestamptz NOT NULL,
                PRIMARY KEY (namespace, job))""",
            f"""INSERT INTO {schema} (version) SELECT {SCHEMA_VERSION}
                WHERE NOT EXISTS (SELECT FROM {schema})""",
        ]
