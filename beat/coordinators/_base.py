"""The interface between the scheduler and a coordination backend (docs/guarantees.md §6).

An **occurrence** is ``(namespace, job name, UTC fire instant)``. Before running one, every
instance asks its coordinator to :meth:`~Coordinator.claim` it; the backend answers atomically,
so exactly one instance gets a :class:`Claim` and runs the job. Afterwards the winner reports
the outcome with :meth:`~Coordinator.finish`.

Failure contract: a backend that cannot be reached raises
:class:`~beat.CoordinatorUnavailableError`; the scheduler then does **not** run the occurrence
(the safe side), reports the outage once, and keeps its schedule alive. Configuration errors
(bad URL/DSN, credentials, permissions) raise :class:`~beat.CoordinatorConfigError` from
:meth:`~Coordinator.open`, so the scheduler refuses to start.

Optional capabilities, off by default in this base class:

* **leases** (``lease`` not ``None``): a claim is held for ``lease`` seconds and renewed by the
  scheduler every ``lease / 3`` while the run goes on; :meth:`reclaim_expired` hands out claims
  whose owner stopped renewing, with ``attempt + 1`` (at-least-once; ``attempt`` is a fencing
  token).
* **catch-up** (:meth:`last_fired`): the last instant fired anywhere in the cluster, so the first
  instance back after a full outage applies each job's misfire policy once.

Nothing is pickled: backends store names, instants, attempt numbers and error text.
"""

from __future__ import annotations

import abc
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from .._history import Outcome

__all__ = ["Claim", "Coordinator", "JobSpec", "Occurrence", "redact"]


@dataclass(frozen=True, slots=True)
class Occurrence:
    """One fire of one job in one namespace; ``fire_time`` is aware UTC."""

    namespace: str
    job: str
    fire_time: datetime

    @property
    def key(self) -> str:
        """``namespace:job@ISO-UTC`` — stable across instances and restarts."""
        return f"{self.namespace}:{self.job}@{self.fire_time.isoformat()}"


@dataclass(frozen=True, slots=True)
class Claim:
    """Proof that this instance owns an occurrence. ``token`` is backend-private."""

    occurrence: Occurrence
    attempt: int = 1
    token: Any = None


@dataclass(frozen=True, slots=True)
class JobSpec:
    """What a backend learns about each job when the scheduler opens it."""

    name: str
    interval: float | None  # seconds between fires when regular (Cycle), else None
    misfire_grace: float | None
    once: bool = False  # a oneshot: its one occurrence may be re-added long after it ran


class Coordinator(abc.ABC):
    """Base class for coordination backends. Subclasses implement the abstract methods."""

    #: Claims are leased for this many seconds and renewed while the run goes on; ``None``
    #: means claims are final (at-most-once per occurrence).
    lease: float | None = None
    #: How often the scheduler asks :meth:`reclaim_expired` (only when ``lease`` is set).
    reclaim_interval: float = 5.0

    def __init__(self, *, namespace: str = "beat") -> None:
        self.namespace = namespace

    def occurrence(self, job: str, fire_time: datetime) -> Occurrence:
        return Occurrence(self.namespace, job, fire_time)

    @abc.abstractmethod
    async def open(self, jobs: Sequence[JobSpec]) -> None:
        """Connect and prepare (create tables...). Raise ``CoordinatorConfigError`` if unusable.

        ``jobs`` are the jobs known at start; implementations pass them to :meth:`register`.
        """

    def register(self, jobs: Sequence[JobSpec]) -> None:  # noqa: B027 - optional hook
        """Learn per-job settings (claim TTLs...) without I/O: at open, and for each job the
        scheduler adds later, so a job added after start is claimed like one present at start.
        """

    @abc.abstractmethod
    async def claim(self, occurrence: Occurrence) -> Claim | None:
        """Atomically claim ``occurrence``; ``None`` if another instance already has it."""

    async def claim_many(self, occurrences: Sequence[Occurrence]) -> list[Claim | None]:
        """:meth:`claim` for each occurrence, answers in order. The scheduler claims the
        occurrences due together through this; backends should answer in one round trip
        (this default makes one per occurrence)."""
        return [await self.claim(occurrence) for occurrence in occurrences]

    @abc.abstractmethod
    async def finish(self, claim: Claim, outcome: Outcome, error: str | None) -> None:
        """Record how the claimed run ended."""

    async def finish_many(self, items: Sequence[tuple[Claim, Outcome, str | None]]) -> None:
        """:meth:`finish` for each ``(claim, outcome, error)``. The scheduler records the runs
        that end together through this; backends should do it in one round trip (this
        default makes one per run)."""
        for claim, outcome, error in items:
            await self.finish(claim, outcome, error)

    async def renew(self, claim: Claim) -> bool:
        """Extend a lease; ``False`` if the claim was lost (another owner took it)."""
        return True

    async def reclaim_expired(self) -> list[Claim]:
        """Claims of runs whose owner stopped renewing, now owned by this instance."""
        return []

    async def last_fired(self, job: str) -> datetime | None:
        """The last instant of ``job`` claimed anywhere, for catch-up; ``None`` if unknown."""
        return None

    async def last_fired_many(self, jobs: Sequence[str]) -> dict[str, datetime]:
        """:meth:`last_fired` for many jobs (those known only); backends with catch-up should
        answer in one round trip, as the scheduler asks for every job at start."""
        found = {}
        for job in jobs:
            last = await self.last_fired(job)
            if last is not None:
                found[job] = last
        return found

    @abc.abstractmethod
    async def ping(self) -> None:
        """Return once the backend answers; raise ``CoordinatorUnavailableError`` otherwise.

        During an outage the scheduler probes with it (a jittered backoff, 0.1 s to 0.5 s)
        and ends the outage at its first success, so it should be one cheap round trip."""

    @abc.abstractmethod
    async def close(self) -> None:
        """Release connections. Idempotent."""


def redact(url: str) -> str:
    """``url`` (a Redis URL or PostgreSQL DSN) without its password, for messages and logs."""
    scheme, sep, rest = url.partition("://")
    if not sep or "@" not in rest:
        return url
    userinfo, _, host = rest.rpartition("@")
    user = userinfo.partition(":")[0]
    return f"{scheme}://{user}:***@{host}" if ":" in userinfo else url
