"""The :class:`Context` passed as the first argument of every run."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING
from uuid import UUID

from ._timers import from_us

if TYPE_CHECKING:
    from ._job import Job
    from ._scheduler import Scheduler

__all__ = ["Context"]


class Context:
    """What a run knows about itself.

    * ``job_id``, ``name`` — the job.
    * ``when`` — the **scheduled** fire instant (aware, UTC), not the start time: a late or
      retried run still sees the instant it stands for. After coalesced misfires it is the
      latest missed instant (docs/guarantees.md §3).
    * ``attempt`` — 1 for the first try, +1 per retry (and per lease re-claim under a
      coordinator with at-least-once leases, where it doubles as a fencing token).
    * ``fire_key`` — ``"<name>@<UTC ISO instant>"``: stable across retries, instances and
      restarts, so it can serve as an idempotency key.
    * ``scheduler`` — to add, remove or inspect jobs from inside the run.
    * ``sleep(delay)`` — sleeps on the scheduler's clock (fake in tests).
    """

    __slots__ = ("_when_us", "attempt", "job", "scheduler")

    def __init__(self, job: Job, when_us: int, attempt: int, scheduler: Scheduler) -> None:
        self.job = job
        self._when_us = when_us
        self.attempt = attempt
        self.scheduler = scheduler

    @property
    def job_id(self) -> UUID:
        return self.job.id

    @property
    def name(self) -> str:
        return self.job.name

    @property
    def when(self) -> datetime:
        return from_us(self._when_us)

    @property
    def fire_key(self) -> str:
        return fire_key(self.job.name, self._when_us)

    async def sleep(self, delay: float) -> None:
        await self.scheduler.clock.sleep(delay)

    def __repr__(self) -> str:
        return (
            f"Context(name={self.name!r}, when={self.when.isoformat()!r}, attempt={self.attempt})"
        )


def fire_key(name: str, when_us: int) -> str:
    """The occurrence key ``name@YYYY-MM-DDTHH:MM:SS[.ffffff]+00:00``."""
    return f"{name}@{from_us(when_us).isoformat()}"
