"""Redis coordination: one ``SET key NX PX ttl`` per occurrence (docs/guarantees.md §6).

Guarantee — **at most once per occurrence while Redis keeps the key**. The first instance
whose ``SET … NX`` creates the occurrence's key runs it; every other instance sees the key
and does not. A run whose instance dies is **not** re-run (there is no lease to expire).
A Redis restart without persistence, or a failover to a replica that had not yet received
the key, loses keys: an instance that claims such an occurrence *after* the loss runs it a
second time. Claims are keyed by the scheduled instant, not by anyone's clock, but instances
whose clocks disagree claim the same occurrence at different real times: the key must outlive
that spread, so clocks must agree within ``ttl_margin``. There is no catch-up after a full
outage (:meth:`last_fired` answers ``None``); use PostgreSQL for that.

When Redis cannot be reached (connection refused, timeouts of ``timeout`` seconds, a server
still loading, a replica answering read-only) a claim raises
:class:`~beat.CoordinatorUnavailableError` and the occurrence does not run. redis-py reconnects
by itself on the next command; the scheduler spaces its attempts with a capped backoff.
A claim whose reply is lost (the connection drops after Redis executed the ``SET``) counts as
unavailable: the occurrence is then run by nobody, never by two.

Key layout (``{ns}`` is the namespace; the ISO instant is UTC, as in ``ctx.fire_key``)::

    beat:{ns}:occ:{job}@{ISO-8601 UTC instant}   string, one per occurrence
        value  "{owner} running"             written by the claim (SET NX PX ttl)
               "{owner} {outcome}[ {error}]" overwritten by finish (SET XX KEEPTTL)
    beat:{ns}:probe:{owner}                   written and deleted once by open()

``owner`` is ``host/pid/random``. The TTL of an occurrence's key, in seconds, is
``span + ttl_margin`` where ``span`` is the job's ``misfire_grace`` if set (no instance claims
later than that), else its interval for cycle jobs (a coalesced late claim is never more than
one interval late), else ``oneshot_ttl`` for a oneshot (re-added later — a restarted process
declaring the same oneshot — it must find its key and not run again), else ``default_ttl``
(cron and custom timers). Jobs added after
the scheduler started get theirs the same way (:meth:`register`). Nothing else is stored:
no arguments, no pickles.

ACL: the user needs ``SET`` and ``DEL`` on ``beat:{ns}:*`` (e.g. ``~beat:* +set +del``);
``open()`` checks with a real ``SET``/``DEL`` of the probe key and raises
:class:`~beat.CoordinatorConfigError` on a wrong URL, password or permission.
"""

from __future__ import annotations

import os
import secrets
import socket
from collections.abc import Sequence

from redis import exceptions as rx
from redis.asyncio import BlockingConnectionPool, Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from .._exceptions import CoordinatorConfigError, CoordinatorUnavailableError
from .._history import Outcome
from ._base import Claim, Coordinator, JobSpec, Occurrence, redact

__all__ = ["RedisCoordinator"]

# Errors that mean "cannot talk to the right server right now" rather than "misconfigured":
# BusyLoadingError (a restarted server reading its dump) is a ConnectionError subclass;
# ReadOnlyError is what a demoted primary answers during a failover.
_UNAVAILABLE = (rx.ConnectionError, rx.TimeoutError, rx.ReadOnlyError, OSError, TimeoutError)
_ERROR_TEXT_LIMIT = 500  # characters of error text kept in the key: a key is not a log


class RedisCoordinator(Coordinator):
    """Claims occurrences with ``SET NX PX`` on one Redis server (see the module docstring).

    ``url`` — a redis-py URL (``redis://user:password@host:6379/0``, ``rediss://``,
    ``unix://``). ``ttl_margin`` — seconds added to every key's TTL: how far apart the
    instances' clocks and start delays may be. ``default_ttl`` — seconds an occurrence key of
    a job without a regular interval or ``misfire_grace`` lives; ``oneshot_ttl`` (30 days) the
    same for a oneshot, so re-adding it within that time never runs it again. ``timeout`` —
    socket connect and read timeout in seconds, kept short so a dead server never stalls the
    schedule; also the longest wait for one of ``max_connections`` pooled connections.
    ``record_outcomes`` — overwrite the key with the run's outcome when it ends (one more
    round trip per run).
    """

    def __init__(
        self,
        url: str,
        *,
        namespace: str = "beat",
        ttl_margin: float = 60.0,
        default_ttl: float = 86_400.0,
        oneshot_ttl: float = 30 * 86_400.0,
        timeout: float = 1.0,
        max_connections: int = 8,
        record_outcomes: bool = True,
    ) -> None:
        super().__init__(namespace=namespace)
        for what, value in (
            ("ttl_margin", ttl_margin),
            ("default_ttl", default_ttl),
            ("oneshot_ttl", oneshot_ttl),
            ("timeout", timeout),
        ):
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
                raise CoordinatorConfigError(f"{what} must be a positive number, got {value!r}")
        self.url = url
        self.ttl_margin = float(ttl_margin)
        self.default_ttl = float(default_ttl)
        self.oneshot_ttl = float(oneshot_ttl)
        if isinstance(max_connections, bool) or not isinstance(max_connections, int):
            raise CoordinatorConfigError(f"max_connections must be an int, got {max_connections!r}")
        if max_connections < 1:
            raise CoordinatorConfigError(f"max_connections must be >= 1, got {max_connections}")
        self.timeout = float(timeout)
        self.max_connections = max_connections
        self.record_outcomes = record_outcomes
        self.owner = f"{socket.gethostname()}/{os.getpid()}/{secrets.token_hex(3)}"
        self._prefix = f"beat:{namespace}:"
        self._ttl_ms: dict[str, int] = {}
        self._default_ttl_ms = _ms(self.default_ttl + self.ttl_margin)
        self._client: Redis | None = None

    def key(self, occurrence: Occurrence) -> str:
        """The Redis key of ``occurrence`` (see the module docstring)."""
        return f"{self._prefix}occ:{occurrence.job}@{occurrence.fire_time.isoformat()}"

    def ttl(self, job: str) -> float:
        """Seconds an occurrence key of ``job`` lives."""
        return self._ttl_ms.get(job, self._default_ttl_ms) / 1000

    def register(self, jobs: Sequence[JobSpec]) -> None:
        for spec in jobs:
            span = spec.misfire_grace if spec.misfire_grace is not None else spec.interval
            if not span:
                span = self.oneshot_ttl if spec.once else self.default_ttl
            self._ttl_ms[spec.name] = _ms(span + self.ttl_margin)

    async def open(self, jobs: Sequence[JobSpec]) -> None:
        self.register(jobs)
        try:
            # A blocking pool: a burst of claims due at one instant waits briefly for one of
            # a few connections instead of opening one each (or failing past the cap).
            pool = BlockingConnectionPool.from_url(
                self.url,
                max_connections=self.max_connections,
                timeout=self.timeout,
                socket_timeout=self.timeout,
                socket_connect_timeout=self.timeout,
                # One immediate retry re-sends a command once on a fresh connection after a
                # restart broke a pooled one; more would only stretch an outage's timeouts.
                retry=Retry(NoBackoff(), 1),
                client_name=f"beat:{self.namespace}",
            )
            client = Redis.from_pool(pool)  # the client owns the pool: aclose() closes it
        except ValueError as exc:
            raise CoordinatorConfigError(f"bad Redis URL {redact(self.url)!r}: {exc}") from exc
        try:
            probe = f"{self._prefix}probe:{self.owner}"
            await client.set(probe, self.owner, nx=True, px=10_000)
            await client.delete(probe)
        except BaseException as exc:
            await client.aclose()
            if isinstance(exc, (*_UNAVAILABLE, rx.RedisError)):
                raise CoordinatorConfigError(
                    f"cannot use Redis at {redact(self.url)!r} for claims "
                    f"(SET/DEL on {self._prefix}*): {type(exc).__name__}: {exc}"
                ) from exc
            raise
        self._client = client

    async def claim(self, occurrence: Occurrence) -> Claim | None:
        client = self._require_client()
        ttl = self._ttl_ms.get(occurrence.job, self._default_ttl_ms)
        try:
            won = await client.set(self.key(occurrence), f"{self.owner} running", nx=True, px=ttl)
        except (*_UNAVAILABLE, rx.RedisError) as exc:
            # Any error (OOM, a revoked ACL...) leaves the occurrence unclaimed: not run.
            raise _unavailable(exc) from exc
        return Claim(occurrence) if won else None

    async def claim_many(self, occurrences: Sequence[Occurrence]) -> list[Claim | None]:
        """:meth:`claim` for many occurrences, pipelined: one round trip. Each ``SET NX`` is
        atomic on its own; the batch is not a transaction (nothing needs it to be)."""
        if not occurrences:
            return []
        client = self._require_client()
        value = f"{self.owner} running"
        try:
            async with client.pipeline(transaction=False) as pipe:
                for occurrence in occurrences:
                    ttl = self._ttl_ms.get(occurrence.job, self._default_ttl_ms)
                    pipe.set(self.key(occurrence), value, nx=True, px=ttl)
                won = await pipe.execute()
        except (*_UNAVAILABLE, rx.RedisError) as exc:
            raise _unavailable(exc) from exc
        return [Claim(o) if ok else None for o, ok in zip(occurrences, won, strict=True)]

    def _outcome_value(self, outcome: Outcome, error: str | None) -> str:
        value = f"{self.owner} {outcome.value}"
        return f"{value} {error[:_ERROR_TEXT_LIMIT]}" if error else value

    async def finish(self, claim: Claim, outcome: Outcome, error: str | None) -> None:
        if not self.record_outcomes:
            return
        value = self._outcome_value(outcome, error)
        client = self._require_client()
        try:
            # XX: never re-create a key that expired; KEEPTTL: never extend it.
            await client.set(self.key(claim.occurrence), value, xx=True, keepttl=True)
        except (*_UNAVAILABLE, rx.RedisError) as exc:
            raise _unavailable(exc) from exc

    async def finish_many(self, items: Sequence[tuple[Claim, Outcome, str | None]]) -> None:
        """:meth:`finish` for many runs, pipelined: one round trip."""
        if not self.record_outcomes or not items:
            return
        client = self._require_client()
        try:
            async with client.pipeline(transaction=False) as pipe:
                for claim, outcome, error in items:
                    pipe.set(
                        self.key(claim.occurrence),
                        self._outcome_value(outcome, error),
                        xx=True,
                        keepttl=True,
                    )
                await pipe.execute()
        except (*_UNAVAILABLE, rx.RedisError) as exc:
            raise _unavailable(exc) from exc

    async def ping(self) -> None:
        try:
            await self._require_client().ping()
        except (*_UNAVAILABLE, rx.RedisError) as exc:
            raise _unavailable(exc) from exc

    async def close(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            await client.aclose()

    def _require_client(self) -> Redis:
        if self._client is None:
            raise CoordinatorUnavailableError("the Redis coordinator is not open")
        return self._client

    def __repr__(self) -> str:
        return f"RedisCoordinator({redact(self.url)!r}, namespace={self.namespace!r})"


def _ms(seconds: float) -> int:
    return max(1, round(seconds * 1000))


def _unavailable(exc: BaseException) -> CoordinatorUnavailableError:
    return CoordinatorUnavailableError(f"Redis: {type(exc).__name__}: {exc}")
