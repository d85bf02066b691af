"""The scheduler's side of multi-instance coordination (SEMANTICS §6).

:class:`Coordination` wraps a :class:`~beat.coordinators.Coordinator` for one scheduler: it
opens the backend (refusing to start on configuration errors), resumes each job from the
cluster's last fired instant (catch-up after a full outage), claims every occurrence before
running it, reports outcomes, renews leases and adopts runs whose owner died.

Safe side: when the backend cannot be reached, the occurrence is **not** run; the outage is
logged once (WARNING) and emitted once (``CoordinatorUnavailable``), each skipped occurrence
is reported as ``RunSkipped(reason="coordinator_down")``, and recovery is logged and emitted.
During an outage the backend is tried again with a capped exponential backoff: claims due
before the next try are skipped at once, without touching the network, so a dead server costs
neither time nor sockets per occurrence; the first claim after the pause is the probe.
"""

from __future__ import annotations

import asyncio
import logging
from collections import OrderedDict
from typing import TYPE_CHECKING, Any

from . import _events as ev
from ._exceptions import CoordinatorUnavailableError
from ._history import Outcome
from ._timers import Cycle, Oneshot, from_us, next_fire_us, to_us
from .coordinators._base import Claim, Coordinator, JobSpec

if TYPE_CHECKING:
    from ._job import Job
    from ._scheduler import Scheduler

__all__ = ["Coordination"]

logger = logging.getLogger("beat.coordination")

# Backoff while the backend is unreachable: first pause, growth factor, longest pause (s).
# The cap bounds how long after the backend's return occurrences are still skipped.
_RETRY_FIRST = 0.25
_RETRY_FACTOR = 2.0
_RETRY_CAP = 5.0
# Jobs that ran here recently, by name, so a run re-claimed after its owner died can be
# adopted even when the job left this scheduler (a fired Oneshot retires at once).
_RECENT_JOBS = 1024


class Coordination:
    """One scheduler's use of one coordinator."""

    def __init__(self, scheduler: Scheduler, coordinator: Coordinator) -> None:
        self.scheduler = scheduler
        self.coordinator = coordinator
        self._ready: asyncio.Future[None] | None = None
        self._down_since: float | None = None
        self._retry_at = 0.0  # monotonic time before which claims skip without trying
        self._retry_delay = 0.0
        self._attempts = 0  # outage attempt counter: one failure per attempt grows the pause
        self._recent: OrderedDict[str, Job] = OrderedDict()
        self._active: dict[asyncio.Task[Any], Claim] = {}  # runs holding a claim, for renewal
        self._upkeep: asyncio.Task[None] | None = None

    @property
    def ready(self) -> asyncio.Future[None]:
        """Resolves once the backend is open; carries the error if it could not be."""
        if self._ready is None:
            self._ready = asyncio.get_running_loop().create_future()
        return self._ready

    async def open(self) -> None:
        specs = [_spec(job) for job in self.scheduler._jobs.values()]
        try:
            await self.coordinator.open(specs)
            await self._catch_up()
        except BaseException as exc:
            logger.error("coordinator %r could not be opened: %s", self.coordinator, exc)
            if not self.ready.done():
                self.ready.set_exception(exc)
            raise
        if not self.ready.done():
            self.ready.set_result(None)
        if self.coordinator.lease is not None:
            self._upkeep = asyncio.get_running_loop().create_task(self._keep_leases())

    async def close(self) -> None:
        if self._upkeep is not None:
            self._upkeep.cancel()
            await asyncio.wait([self._upkeep])
        try:
            await self.coordinator.close()
        except Exception:
            logger.exception("closing the coordinator failed")

    async def _catch_up(self) -> None:
        """After a full outage, resume each job from the cluster's last fired instant."""
        scheduler = self.scheduler
        for job in list(scheduler._jobs.values()):
            if type(job.timer) is Oneshot:
                continue
            last = await self.coordinator.last_fired(job.name)
            if last is None:
                continue
            last_us = to_us(last)
            first = next_fire_us(job.timer, last_us)
            if first is not None and (job._next_us is None or first < job._next_us):
                job._last_us = last_us
                scheduler._set_next(job, first, new_generation=True)

    async def run(self, job: Job, when: int) -> None:
        """Claim the occurrence ``(job.name, when)``; run it only if this instance won."""
        coordinator = self.coordinator
        self._note_recent(job)
        if self._down_since is not None and self.scheduler.clock.monotonic() < self._retry_at:
            self.scheduler._report_skip(job, when, "coordinator_down")
            return
        attempt = self._attempts
        try:
            claim = await coordinator.claim(coordinator.occurrence(job.name, from_us(when)))
        except Exception as exc:
            # Unavailable, or any other backend failure: the claim did not happen, so the
            # occurrence must not run (the safe side).
            self._failed(exc, attempt)
            self.scheduler._report_skip(job, when, "coordinator_down")
            return
        self._recovered()
        if claim is None:
            logger.debug("job %s @ %s: claimed by another instance", job.name, from_us(when))
            return
        await self._run_claim(job, claim)

    async def _run_claim(self, job: Job, claim: Claim) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._active[task] = claim
        outcome, error = Outcome.SUCCEEDED, None
        try:
            await self.scheduler._execute(
                job, to_us(claim.occurrence.fire_time), claim.attempt, raise_errors=True
            )
        except asyncio.CancelledError:
            outcome, error = Outcome.CANCELLED, "cancelled"
            raise
        except TimeoutError as exc:
            outcome, error = Outcome.TIMED_OUT, str(exc)
        except Exception as exc:
            outcome, error = Outcome.FAILED, f"{type(exc).__name__}: {exc}"
        finally:
            self._active.pop(task, None)
            # A run cut short by our own shutdown stays open in the store: with leases,
            # another instance re-runs it once the lease expires (at-least-once).
            if self.scheduler._cancel_reasons.get(task) != "shutdown":
                await self._finish(claim, outcome, error)

    async def _finish(self, claim: Claim, outcome: Outcome, error: str | None) -> None:
        try:
            await self.coordinator.finish(claim, outcome, error)
        except Exception as exc:
            logger.warning("could not record the outcome of %s: %s", claim.occurrence.key, exc)

    async def _keep_leases(self) -> None:
        """Renew leases of running claims; adopt claims whose owner died (at-least-once)."""
        coordinator = self.coordinator
        assert coordinator.lease is not None
        clock = self.scheduler.clock
        period = min(coordinator.lease / 3, coordinator.reclaim_interval)
        since_reclaim = 0.0
        while True:
            await clock.sleep(period)
            since_reclaim += period
            for claim in list(self._active.values()):
                try:
                    kept = await coordinator.renew(claim)
                except Exception as exc:
                    logger.warning("lease renewal for %s failed: %s", claim.occurrence.key, exc)
                    continue
                if not kept:
                    logger.warning(
                        "lease of %s (attempt %d) was lost: another instance may re-run it",
                        claim.occurrence.key,
                        claim.attempt,
                    )
            if since_reclaim >= coordinator.reclaim_interval:
                since_reclaim = 0.0
                attempt = self._attempts
                try:
                    claims = await coordinator.reclaim_expired()
                except CoordinatorUnavailableError as exc:
                    self._failed(exc, attempt)
                    continue
                self._recovered()
                for claim in claims:
                    self._adopt(claim)

    def _adopt(self, claim: Claim) -> None:
        scheduler = self.scheduler
        name = claim.occurrence.job
        job = next((j for j in scheduler._jobs.values() if j.name == name), None)
        if job is None:
            job = self._recent.get(name)
        if job is None:
            # Seen by the backend but not runnable here: close it rather than hold a lease
            # nobody renews (which would hand it from instance to instance).
            logger.error("re-claimed %s but no job has that name here", claim.occurrence.key)
            task = asyncio.get_running_loop().create_task(
                self._finish(claim, Outcome.FAILED, f"no job named {name!r} on the adopter")
            )
            scheduler._helpers.add(task)
            task.add_done_callback(scheduler._helpers.discard)
            return
        logger.warning(
            "job %s @ %s: its previous owner stopped renewing the lease; re-running as attempt %d",
            job.name,
            claim.occurrence.fire_time.isoformat(),
            claim.attempt,
        )
        task = asyncio.get_running_loop().create_task(self._run_claim(job, claim))
        scheduler._track_run(job, task)

    def _note_recent(self, job: Job) -> None:
        recent = self._recent
        recent[job.name] = job
        recent.move_to_end(job.name)
        if len(recent) > _RECENT_JOBS:
            recent.popitem(last=False)

    def _failed(self, exc: BaseException, attempt: int) -> None:
        """Count one failed attempt (``attempt`` as read before trying) and pause retries.

        Claims started together fail together; only the first of them grows the pause.
        """
        now = self.scheduler.clock.monotonic()
        if attempt == self._attempts:
            self._attempts += 1
            delay = self._retry_delay * _RETRY_FACTOR if self._down_since is not None else 0.0
            self._retry_delay = min(_RETRY_CAP, max(_RETRY_FIRST, delay))
            self._retry_at = now + self._retry_delay
        if self._down_since is None:
            self._down_since = now
            logger.warning(
                "coordinator unavailable; occurrences will not run until it is back: %s", exc
            )
            if self.scheduler._events.active:
                self.scheduler._events.emit(ev.CoordinatorUnavailable(error=str(exc)))

    def _recovered(self) -> None:
        if self._down_since is not None:
            outage = self.scheduler.clock.monotonic() - self._down_since
            self._down_since = None
            self._retry_delay = 0.0
            logger.warning("coordinator reachable again after %.1f s", outage)
            if self.scheduler._events.active:
                self.scheduler._events.emit(ev.CoordinatorRecovered(outage=outage))


def _spec(job: Job) -> JobSpec:
    timer = job.timer
    interval = timer.interval.total_seconds() if isinstance(timer, Cycle) else None
    return JobSpec(name=job.name, interval=interval, misfire_grace=job.options.misfire_grace)
