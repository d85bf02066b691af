"""The gate for many instances: claim each occurrence in the cluster before running it.

:class:`ClaimGate` implements the scheduler's gate (``_gate.py``) over a
:class:`~beat.coordinators.Coordinator` (docs/guarantees.md §6): it opens the backend
(refusing to start on configuration errors), resumes each job from the cluster's last fired
instant (catch-up after a full outage, for jobs present at start and jobs added later),
claims every occurrence before running it, reports outcomes, renews leases and adopts runs
whose owner died.

Safe side: when the backend cannot be reached, the occurrence is **not** run; the outage is
logged once (WARNING) and emitted once (``CoordinatorUnavailable``), each skipped occurrence
is reported as ``RunSkipped(reason="coordinator_down")``, and recovery is logged and emitted.
During an outage, claims are skipped at once, without touching the network, so a dead
server costs neither time nor sockets per occurrence. A background probe pings the backend
(:meth:`~beat.coordinators.Coordinator.ping`) with a jittered backoff (0.1 s doubling to
0.5 s, each pause shortened by up to half, so instances that failed together do not probe in
lockstep); its first success ends the outage. So an occurrence due more than about half a
second after the backend is back runs, whether or not any occurrence came due meanwhile.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from ._clock import Clock
from ._exceptions import CoordinatorUnavailableError
from ._gate import Execute, spawn
from ._history import Outcome
from ._timers import fires_once, from_us, interval_us, next_fire_us, to_us
from ._units import us_to_seconds
from .coordinators._base import Claim, Coordinator, JobSpec, Occurrence

if TYPE_CHECKING:
    from ._registry import JobState, Registry
    from ._reporting import Reporter
    from ._runs import RunTracker

__all__ = ["ClaimGate"]

T = TypeVar("T")
R = TypeVar("R")

logger = logging.getLogger("beat.coordination")

# The probe's backoff while the backend is unreachable: first pause, growth factor, longest
# pause (s). The cap bounds how long after the backend's return occurrences are still
# skipped; each pause is shortened by a random part of up to _RETRY_JITTER, so instances
# that failed together do not probe in lockstep.
_RETRY_FIRST = 0.1
_RETRY_FACTOR = 2.0
_RETRY_CAP = 0.5
_RETRY_JITTER = 0.5
# Claims asked for (and outcomes of runs ended) in one loop iteration go to the backend
# together, at most this many per call (one round trip each: a pipeline on Redis, one
# statement on PostgreSQL).
_BATCH = 1000
# Jobs that ran here recently, by name, so a run re-claimed after its owner died can be
# adopted even when the job left this scheduler (a fired Oneshot retires at once).
_RECENT_JOBS = 1024


class ClaimGate:
    """One scheduler's use of one coordinator; collaborators are passed in explicitly.

    ``reschedule(state, next_us)`` moves a job's pending instant (catch-up) and wakes the
    loop if that is sooner than its sleep.
    """

    shared_schedule = True
    wants_added_jobs = True
    claims_first = True

    def __init__(
        self,
        coordinator: Coordinator,
        *,
        registry: Registry,
        runs: RunTracker,
        reporter: Reporter,
        execute: Execute,
        clock: Clock,
        reschedule: Callable[[JobState, int], None],
    ) -> None:
        self.coordinator = coordinator
        self._registry = registry
        self._runs = runs
        self._reporter = reporter
        self._execute = execute
        self._clock = clock
        self._reschedule = reschedule
        # Outage state: set by the first failure, cleared by the first success. While set,
        # claims skip without trying and exactly one probe task runs (_probing).
        self._down_since: float | None = None
        self._probing: asyncio.Task[None] | None = None
        self._rng = random.Random()
        self._recent: OrderedDict[str, JobState] = OrderedDict()
        self._active: dict[asyncio.Task[Any], Claim] = {}  # runs holding a claim, for renewal
        self._helpers: set[asyncio.Task[Any]] = set()  # lease upkeep, catch-ups, late finishes
        self._claims: _Batcher[Occurrence, Claim | None] = _Batcher(
            coordinator.claim_many, self._helpers
        )
        self._finishes: _Batcher[tuple[Claim, Outcome, str | None], None] = _Batcher(
            self._finish_many, self._helpers
        )
        self._opened = False
        self._added_early: list[JobState] = []  # added after start, before open finished

    # -- the gate ----------------------------------------------------------------------------
    async def open(self, states: Sequence[JobState]) -> None:
        try:
            await self.coordinator.open([_spec(state) for state in states])
            await self._catch_up_all(states)
            self._opened = True
            early, self._added_early = self._added_early, []
            await self._catch_up_all(early)
        except BaseException as exc:
            logger.error("coordinator %r could not be opened: %s", self.coordinator, exc)
            raise
        if self.coordinator.lease is not None:
            spawn(self._helpers, self._keep_leases())

    def job_added(self, state: JobState) -> None:
        self.coordinator.register([_spec(state)])
        if self._opened:
            spawn(self._helpers, self._catch_up_quietly(state))
        else:
            self._added_early.append(state)

    def launch(self, state: JobState, when: int) -> Coroutine[Any, Any, Any]:
        return self._claim_and_run(state, when)

    async def close(self) -> None:
        for helper in list(self._helpers):
            helper.cancel()
        if self._helpers:
            await asyncio.wait(list(self._helpers))
        try:
            await self.coordinator.close()
        except Exception:
            logger.exception("closing the coordinator failed")

    # -- catch-up ----------------------------------------------------------------------------
    async def _catch_up_all(self, states: Sequence[JobState]) -> None:
        """:meth:`_catch_up` for many jobs, asking the coordinator once for all of them."""
        wanted = [state for state in states if not fires_once(state.timer)]
        if not wanted:
            return
        last = await self.coordinator.last_fired_many([state.job.name for state in wanted])
        for state in wanted:
            self._resume_from(state, last.get(state.job.name))

    async def _catch_up(self, state: JobState) -> None:
        """Resume a job from the cluster's last fired instant if that is sooner than its own."""
        if fires_once(state.timer) or not state.registered:
            return
        self._resume_from(state, await self.coordinator.last_fired(state.job.name))

    def _resume_from(self, state: JobState, last: datetime | None) -> None:
        if last is None or not state.registered:
            return
        last_us = to_us(last)
        first = next_fire_us(state.timer, last_us)
        if first is not None and (state.next_us is None or first < state.next_us):
            state.last_us = last_us  # registry-owned field; catch-up is the registry's rule
            self._reschedule(state, first)

    async def _catch_up_quietly(self, state: JobState) -> None:
        try:
            await self._catch_up(state)
        except Exception as exc:
            logger.warning("catch-up for job %s failed: %s", state.job.name, exc)

    # -- one occurrence ----------------------------------------------------------------------
    async def _claim_and_run(self, state: JobState, when: int) -> None:
        """Claim the occurrence ``(job name, when)``; run it only if this instance won."""
        coordinator = self.coordinator
        self._note_recent(state)
        if self._down_since is not None:  # the probe ends the outage, not a claim
            self._reporter.skipped(state, when, "coordinator_down")
            return
        try:
            claim = await self._claims(coordinator.occurrence(state.job.name, from_us(when)))
        except Exception as exc:
            # Unavailable, or any other backend failure: the claim did not happen, so the
            # occurrence must not run (the safe side).
            self._failed(exc)
            self._reporter.skipped(state, when, "coordinator_down")
            return
        self._recovered()
        if claim is None:  # another instance won the claim and runs it
            self._reporter.skipped(state, when, "not_claimed")
            return
        await self._run_claim(state, claim)

    async def _run_claim(self, state: JobState, claim: Claim) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._active[task] = claim
        when = to_us(claim.occurrence.fire_time)
        try:
            admitted = await self._runs.admit(state, when)
        except BaseException:
            self._active.pop(task, None)
            raise
        if not admitted:  # the overlap policy said no (reported); close the claim
            self._active.pop(task, None)
            await self._finish(claim, Outcome.FAILED, "skipped by the overlap policy")
            return
        outcome, error = Outcome.SUCCEEDED, None
        try:
            await self._execute(state, when, claim.attempt, True)
        except asyncio.CancelledError:
            outcome, error = Outcome.CANCELLED, "cancelled"
            raise
        except TimeoutError as exc:
            outcome, error = Outcome.TIMED_OUT, str(exc)
        except Exception as exc:
            outcome, error = Outcome.FAILED, f"{type(exc).__name__}: {exc}"
        finally:
            self._active.pop(task, None)
            self._runs.release(state)
            # A run cut short by our own shutdown stays open in the store: with leases,
            # another instance re-runs it once the lease expires (at-least-once).
            if self._runs.cancel_reason(task) != "shutdown" or outcome is not Outcome.CANCELLED:
                await self._finish(claim, outcome, error)

    async def _finish(self, claim: Claim, outcome: Outcome, error: str | None) -> None:
        try:
            await self._finishes((claim, outcome, error))
        except Exception as exc:
            logger.warning("could not record the outcome of %s: %s", claim.occurrence.key, exc)

    async def _finish_many(self, items: list[tuple[Claim, Outcome, str | None]]) -> list[None]:
        await self.coordinator.finish_many(items)
        return [None] * len(items)

    # -- leases ------------------------------------------------------------------------------
    async def _keep_leases(self) -> None:
        """Renew leases of running claims; adopt claims whose owner died (at-least-once)."""
        coordinator = self.coordinator
        assert coordinator.lease is not None
        period = min(coordinator.lease / 3, coordinator.reclaim_interval)
        since_reclaim = 0.0
        while True:
            await self._clock.sleep(period)
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
                if self._down_since is not None:
                    continue  # the probe is on it
                try:
                    claims = await coordinator.reclaim_expired()
                except CoordinatorUnavailableError as exc:
                    self._failed(exc)
                    continue
                self._recovered()
                for claim in claims:
                    self._adopt(claim)

    def _adopt(self, claim: Claim) -> None:
        name = claim.occurrence.job
        state = self._registry.by_name(name) or self._recent.get(name)
        if state is None:
            # Seen by the backend but not runnable here: close it rather than hold a lease
            # nobody renews (which would hand it from instance to instance).
            logger.error("re-claimed %s but no job has that name here", claim.occurrence.key)
            spawn(
                self._helpers,
                self._finish(claim, Outcome.FAILED, f"no job named {name!r} on the adopter"),
            )
            return
        logger.warning(
            "job %s @ %s: its previous owner stopped renewing the lease; re-running as attempt %d",
            name,
            claim.occurrence.fire_time.isoformat(),
            claim.attempt,
        )
        task = asyncio.get_running_loop().create_task(self._run_claim(state, claim))
        self._runs.track_claim(state, task)

    def _note_recent(self, state: JobState) -> None:
        recent = self._recent
        name = state.job.name
        recent[name] = state
        recent.move_to_end(name)
        if len(recent) > _RECENT_JOBS:
            recent.popitem(last=False)

    # -- outages -----------------------------------------------------------------------------
    def _failed(self, exc: BaseException) -> None:
        """A backend call failed: begin the outage (reported once) and its probe, unless
        one is on already (claims in flight when the backend went away fail together)."""
        if self._down_since is not None:
            return
        self._down_since = self._clock.monotonic()
        self._reporter.coordinator_unavailable(exc)
        self._probing = asyncio.get_running_loop().create_task(self._probe())
        self._helpers.add(self._probing)
        self._probing.add_done_callback(self._helpers.discard)

    async def _probe(self) -> None:
        """Ping the backend until it answers, then end the outage."""
        delay = _RETRY_FIRST
        while True:
            await self._clock.sleep(delay * (1.0 - _RETRY_JITTER * self._rng.random()))
            try:
                await self.coordinator.ping()
            except Exception as exc:
                logger.debug("coordinator still unavailable: %s", exc)
                delay = min(_RETRY_CAP, delay * _RETRY_FACTOR)
                continue
            self._probing = None
            self._recovered()
            return

    def _recovered(self) -> None:
        if self._down_since is not None and self._probing is None:
            outage = self._clock.monotonic() - self._down_since
            self._down_since = None
            self._reporter.coordinator_recovered(outage)


class _Batcher(Generic[T, R]):
    """Turns the calls of one loop iteration into one ``send(items)`` call.

    Fires due at the same instant start their claim tasks in the same loop iteration (and
    runs that end together finish in one); each call queues its item and the first schedules
    a flush with ``call_soon``, which runs after every task of that iteration took its step.
    So N items cost ``ceil(N / _BATCH)`` round trips instead of N; a lone call waits one
    extra loop iteration, nothing more. ``send`` answers every item, in order; its error
    is every item's error.
    """

    def __init__(
        self,
        send: Callable[[list[T]], Awaitable[Sequence[R]]],
        helpers: set[asyncio.Task[Any]],
    ) -> None:
        self._send_batch = send
        self._helpers = helpers
        # Invariant: non-empty only while a flush is scheduled (_flush_pending).
        self._pending: list[tuple[T, asyncio.Future[R]]] = []
        self._flush_pending = False

    def __call__(self, item: T) -> asyncio.Future[R]:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[R] = loop.create_future()
        self._pending.append((item, future))
        if not self._flush_pending:
            self._flush_pending = True
            loop.call_soon(self._flush)
        return future

    def _flush(self) -> None:
        self._flush_pending = False
        pending, self._pending = self._pending, []
        for start in range(0, len(pending), _BATCH):
            spawn(self._helpers, self._send(pending[start : start + _BATCH]))

    async def _send(self, batch: list[tuple[T, asyncio.Future[R]]]) -> None:
        try:
            answers = await self._send_batch([item for item, _ in batch])
            if len(answers) != len(batch):
                raise CoordinatorUnavailableError(
                    f"the coordinator answered {len(answers)} of {len(batch)} items"
                )
        except Exception as exc:
            for _, future in batch:
                if not future.done():  # a task cancelled meanwhile (shutdown)
                    future.set_exception(exc)
            return
        for (_, future), answer in zip(batch, answers, strict=True):
            if not future.done():
                future.set_result(answer)


def _spec(state: JobState) -> JobSpec:
    interval = interval_us(state.timer)
    return JobSpec(
        name=state.job.name,
        interval=None if interval is None else us_to_seconds(interval),
        misfire_grace=state.job.options.misfire_grace,
        once=fires_once(state.timer),
    )
