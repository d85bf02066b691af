"""Durable schedules inside one scheduler: the cluster-wide catch-up and the sync loop.

:class:`DurableSchedules` is the scheduler's collaborator for schedules that enqueue durable
jobs (``_schedules.py``). It owns the map of stored schedules this instance runs and the sync
loop's task and outage state; the jobs themselves live in the scheduler's registry.

Catch-up (docs/schedules.md): the store keeps, per schedule, the last instant any replica
enqueued (``advance_schedule``). When a durable schedule first runs here — at start, when
added later, or the first time the sync loop sees a stored one — its pending instant moves
back to the first instant after that, so the loop finds the missed instants late and applies
the job's misfire policy: ``coalesce`` one job (the latest instant), ``skip`` none, ``all``
one per instant up to ``misfire_all_limit``. Every replica decides from the same last instant
and stores through the same unique keys, so the policy's jobs exist once cluster-wide.

A schedule defined in code reads its last instant from its progress row. If the store fails
that read, the schedule is *held* (no pending instant, so it fires nothing) and the read is
retried in the background with the sync loop's backoff, each failure logged, until the store
answers; the scheduler's start and its other jobs do not wait. Holding is what keeps the
catch-up exact: a fire of the running schedule would advance the progress row, and a read
after that could no longer see the instants that were missed before it. Once the read
succeeds the pending instant is given back and the catch-up applies as at start, so the
instants that fell during the wait are handled with the missed ones, by the misfire policy
(each instant at most once: occurrences are keyed by instant in the store). The retries end
only when the job is removed or the scheduler stops (logged; the hold is then released).

Sync: a loop waits for the store's schedules version to change
(``wait_schedules_changed``: NOTIFY on PostgreSQL), lists the schedules and adds, replaces,
pauses, resumes or removes the in-process jobs to match. A store outage is logged once
(WARNING) and retried with a capped, jittered backoff on the scheduler's clock; it never
stops the scheduler. Name rule: a name already used by a job defined in code is the code's
(that stored schedule is not run here, reported once); a code job added later with a stored
schedule's name is refused by ``add_job`` with :class:`DuplicateJobError`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final, Literal
from uuid import UUID

from . import _events as ev
from ._clock import Clock
from ._exceptions import BeatError, DuplicateJobError, JobLookupError, SchedulerStateError
from ._gate import spawn
from ._schedules import (
    PROGRESS_PREFIX,
    definition,
    instant_us,
    is_durable,
    is_stored,
    job_of_record,
    progress_row,
    progress_spec,
    target_of,
)
from ._timers import fires_once, next_fire_us

if TYPE_CHECKING:
    from ._job import Job
    from ._registry import JobState, Registry
    from ._scheduler import Scheduler
    from ._tasks import TaskRegistry
    from .stores import ScheduleRecord, Store

__all__ = ["DurableSchedules"]

logger = logging.getLogger("beat.schedules")

# The sync loop's longest wait for a change before it asks again (a missed wake-up costs at
# most this long); the store's wait returns at once on a change.
_SYNC_WAIT: Final = 30.0
# Backoff while the store is unreachable: first pause, factor, cap (s); each pause is
# shortened by a random part of up to _RETRY_JITTER so replicas do not retry in lockstep.
_RETRY_FIRST: Final = 0.25
_RETRY_FACTOR: Final = 2.0
_RETRY_CAP: Final = 5.0
_RETRY_JITTER: Final = 0.5

Problem = Literal["unknown_task", "name_taken", "invalid"]


@dataclass(slots=True)
class _Stored:
    """One stored schedule as this instance runs it."""

    version: int
    definition: tuple[Any, ...] | None  # None while it is not run here (a problem)
    job_id: UUID | None  # the in-process job; None when not run here
    reported: set[str]  # "<problem>:<about>" already reported for this schedule (once each)


@dataclass(frozen=True, slots=True)
class _Hold:
    """A code-defined schedule held while its catch-up waits for the store: the pending
    instant it had, and the generation the hold gave it (anything else that moves the
    instant meanwhile, e.g. ``reschedule_job``, changes the generation: its instant wins)."""

    next_us: int | None
    gen: int


def _backoff(failures: int, rng: random.Random) -> float:
    """The pause (s) after ``failures`` failed tries in a row: ``_RETRY_FIRST`` doubling up
    to ``_RETRY_CAP``, shortened by a random part of up to ``_RETRY_JITTER``."""
    base = min(_RETRY_CAP, _RETRY_FIRST * _RETRY_FACTOR ** min(failures - 1, 16))
    return base * (1.0 - _RETRY_JITTER * rng.random())


class DurableSchedules:
    """Durable schedules of one scheduler; see the module docstring.

    ``scheduler`` is the facade (``add_job``/``remove_job``/``pause_job``/``resume_job``, so
    jobs of stored schedules are registered and reported like any other); ``move_next`` moves
    a job's pending instant and wakes the loop.
    """

    def __init__(
        self,
        scheduler: Scheduler,
        store: Store | None,
        *,
        registry: Registry,
        tasks: TaskRegistry,
        events: ev.EventBus,
        clock: Clock,
        move_next: Callable[[JobState, int], None],
    ) -> None:
        self._scheduler = scheduler
        self._store = store
        self._registry = registry
        self._tasks = tasks
        self._events = events
        self._clock = clock
        self._move_next = move_next
        self._opened = False
        self._stored: dict[str, _Stored] = {}  # schedule name -> how it runs here
        self._helpers: set[asyncio.Task[Any]] = set()  # the sync loop, late catch-ups
        self._down_since: float | None = None
        self._delay = 0.0  # the current outage's pause before the next try (s)
        self._rng = random.Random()
        #: Set after each reconcile (tests and benchmarks wait on it): a counter of syncs.
        self.syncs = 0
        self.synced = asyncio.Event()

    # -- the scheduler's hooks ---------------------------------------------------------------
    def check_add(self, job: Job) -> None:
        """Refuse (before anything changes) a durable schedule this scheduler cannot run, and
        any job whose name a durable schedule already uses (the name keys its occurrences)."""
        name = job.name
        if is_durable(job):
            if self._store is None:
                raise SchedulerStateError(
                    f"{name!r} enqueues durable jobs: it needs Scheduler(store=...)"
                )
            taken = self._registry.by_name(name) is not None
        else:
            have = self._stored.get(name)
            taken = have is not None and have.job_id is not None
        if taken:
            raise DuplicateJobError(
                f"a durable schedule named {name!r} is already registered here, or a job "
                "uses its name (schedule names key their occurrences, so they are unique)"
            )

    def job_added(self, state: JobState) -> None:
        """A job was registered: a code-defined durable schedule added after start catches up."""
        if self._opened and is_durable(state.job) and not is_stored(state.job):
            spawn(self._helpers, self._catch_up_code(state, background=False))

    async def open(self, states: Sequence[JobState]) -> None:
        """Catch up the code-defined schedules present, then start the sync loop. A store
        failure here is logged, not raised: the schedule waits for its catch-up, retried in
        the background; the sync loop retries its own listing."""
        if self._store is None:
            return
        self._opened = True
        for state in states:
            if is_durable(state.job):
                await self._catch_up_code(state, background=True)
        spawn(self._helpers, self._sync_loop())

    async def close(self) -> None:
        self._opened = False
        for helper in list(self._helpers):
            helper.cancel()
        if self._helpers:
            await asyncio.wait(list(self._helpers))

    # -- catch-up ----------------------------------------------------------------------------
    async def _catch_up_code(self, state: JobState, *, background: bool) -> None:
        """Catch a code-defined schedule up from its progress row. One try now; if the store
        fails, hold the schedule and retry until it answers (:meth:`_retry_catch_up`): in a
        helper task when ``background`` (at start, which must not wait), else in this task."""
        try:
            last = await self._read_progress(state.job)
        except Exception as exc:
            if not state.registered:
                return
            retry = self._retry_catch_up(state, self._hold(state), exc)
            if background:
                spawn(self._helpers, retry)
            else:
                await retry
            return
        self._catch_up(state, last)

    async def _retry_catch_up(self, state: JobState, hold: _Hold, error: Exception) -> None:
        """Retry the catch-up of the held ``state`` (its first try failed with ``error``)
        with backoff on the scheduler's clock until the store answers, then give the
        schedule back its instant and catch it up. Each failure is logged (the first as a
        WARNING); so is giving up, when the job is removed or the scheduler stops. The
        schedule is released whatever happens."""
        name = state.job.name
        failures = 1
        since = self._clock.monotonic()
        try:
            while True:
                delay = _backoff(failures, self._rng)
                logger.log(
                    logging.WARNING if failures == 1 else logging.INFO,
                    "catch-up of schedule %s failed (try %d: %s); it waits, retrying in %.2f s",
                    name,
                    failures,
                    error,
                    delay,
                )
                await self._clock.sleep(delay)
                if not state.registered:
                    logger.info("catch-up of schedule %s dropped: the job was removed", name)
                    return
                try:
                    last = await self._read_progress(state.job)
                except Exception as exc:
                    failures, error = failures + 1, exc
                    continue
                self._release(state, hold)
                self._catch_up(state, last)
                logger.warning(
                    "catch-up of schedule %s done after %d failed tries (%.1f s)",
                    name,
                    failures,
                    self._clock.monotonic() - since,
                )
                return
        except asyncio.CancelledError:
            logger.warning(
                "catch-up of schedule %s abandoned (scheduler stopping) after %d failed tries:"
                " the occurrences missed before it started are not enqueued by this instance",
                name,
                failures,
            )
            raise
        finally:
            self._release(state, hold)

    async def _read_progress(self, job: Job) -> int | None:
        """The last instant (µs) any replica enqueued for the code-defined schedule ``job``;
        None if there is none yet (its progress row is then made). Store errors propagate."""
        store = self._store
        assert store is not None
        record = await store.get_schedule(progress_row(job.name, stored=False))
        if record is None:
            await store.put_schedule(progress_spec(job.name, target_of(job).task))
            return None
        return instant_us(record.last_instant)

    def _hold(self, state: JobState) -> _Hold:
        """Take the pending instant of registered ``state`` away (it fires nothing)."""
        next_us = state.next_us
        self._registry.replace_next(state, None)
        return _Hold(next_us, state.gen)

    def _release(self, state: JobState, hold: _Hold) -> None:
        """Give ``state`` back the instant ``hold`` took, unless it was removed or something
        else gave it an instant meanwhile; a no-op the second time."""
        if state.gen == hold.gen and hold.next_us is not None:
            self._move_next(state, hold.next_us)

    def _catch_up(self, state: JobState, last: int | None) -> None:
        """Resume ``state`` from the cluster's last enqueued instant ``last``."""
        if last is None or not state.registered:
            return
        timer = state.timer
        if fires_once(timer):
            if state.next_us is not None and state.next_us <= last:  # enqueued already
                self._scheduler.remove_job(state.job.id)
            return
        first = next_fire_us(timer, last)
        if first is not None and (state.next_us is None or first < state.next_us):
            state.last_us = last  # registry-owned; catch-up is the registry's rule (as ClaimGate)
            self._move_next(state, first)

    # -- the sync loop -----------------------------------------------------------------------
    async def _sync_loop(self) -> None:
        store = self._store
        assert store is not None
        version: int | None = None
        while True:
            try:
                if version is None:
                    version = await store.schedules_version()
                    self._reconcile(await store.list_schedules(), first=True)
                else:
                    current = await store.wait_schedules_changed(version, _SYNC_WAIT)
                    if current == version:
                        continue
                    # The version is read before the listing: a change in between makes the
                    # next wait return at once, so none is missed.
                    version = current
                    self._reconcile(await store.list_schedules(), first=False)
                self._recovered()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                await self._clock.sleep(self._failed(exc))

    def _failed(self, exc: BaseException) -> float:
        """Log the outage once; the pause before the next try (seconds)."""
        now = self._clock.monotonic()
        if self._down_since is None:
            self._down_since = now
            self._delay = _RETRY_FIRST
            logger.warning("schedule sync failed (%s); retrying", exc)
        else:
            self._delay = min(_RETRY_CAP, self._delay * _RETRY_FACTOR)
            logger.debug("schedule sync: still failing: %s", exc)
        return self._delay * (1.0 - _RETRY_JITTER * self._rng.random())

    def _recovered(self) -> None:
        if self._down_since is not None:
            outage = self._clock.monotonic() - self._down_since
            self._down_since = None
            logger.warning("schedule sync: the store is back after %.1f s", outage)

    def _reconcile(self, records: Sequence[ScheduleRecord], *, first: bool) -> None:
        """Make the in-process jobs match ``records``. ``first``: the listing at start, when
        the catch-up applies to every schedule seen (a later one is new or resumed: no
        catch-up, like ``resume_job``)."""
        seen = set()
        for record in records:
            if record.name.startswith(PROGRESS_PREFIX):
                continue  # a code-defined schedule's progress, never run from the store
            seen.add(record.name)
            have = self._stored.get(record.name)
            if have is None or have.version != record.version:
                self._apply(record, have, catch_up=first)
        for name in [name for name in self._stored if name not in seen]:
            self._drop(name)
            logger.info("stored schedule %s removed", name)
        self.syncs += 1
        self.synced.set()

    def _apply(self, record: ScheduleRecord, have: _Stored | None, *, catch_up: bool) -> None:
        name = record.name
        if have is None:
            have = self._stored[name] = _Stored(record.version, None, None, set())
        have.version = record.version
        scheduler = self._scheduler
        if have.job_id is not None and not self._registered(have.job_id):
            have.job_id = have.definition = None  # a oneshot that fired retired itself
        if have.job_id is not None and have.definition == definition(record):
            (scheduler.pause_job if record.paused else scheduler.resume_job)(have.job_id)
            return
        if have.job_id is not None:  # replaced: the new one starts at its next instant
            self._remove_job(have)
        taken = self._registry.by_name(name)
        if taken is not None:
            detail = f"a job named {name!r} is defined in code; the code's job runs here"
            self._report(have, name, "name_taken", "", detail)
            return
        try:
            job = job_of_record(record)
        except (BeatError, ValueError, TypeError) as exc:
            self._report(have, name, "invalid", str(record.version), str(exc))
            return
        if self._tasks.get(record.task) is None:
            self._report(
                have,
                name,
                "unknown_task",
                record.task,
                f"no task named {record.task!r} is registered here; its jobs are still "
                "enqueued for a worker that knows it",
            )
        try:
            scheduler.add_job(job)
        except BeatError as exc:  # e.g. shutting down
            logger.debug("stored schedule %s not added: %s", name, exc)
            return
        have.job_id, have.definition = job.id, definition(record)
        have.reported = {key for key in have.reported if key.startswith("unknown_task")}
        if record.paused:
            scheduler.pause_job(job.id)
        elif catch_up or fires_once(job.timer):  # a oneshot never fires twice
            self._catch_up(self._registry.get(job.id), instant_us(record.last_instant))
        logger.info("stored schedule %s (version %d) runs here", name, record.version)

    def _registered(self, job_id: UUID) -> bool:
        try:
            self._registry.get(job_id)
        except JobLookupError:
            return False
        return True

    def _drop(self, name: str) -> None:
        have = self._stored.pop(name)
        if have.job_id is not None:
            self._remove_job(have)

    def _remove_job(self, have: _Stored) -> None:
        job_id, have.job_id, have.definition = have.job_id, None, None
        assert job_id is not None
        with contextlib.suppress(BeatError):  # gone already: a fired oneshot retires itself
            self._scheduler.remove_job(job_id)

    def _report(self, have: _Stored, name: str, problem: Problem, about: str, detail: str) -> None:
        """Log and emit one :class:`~beat.ScheduleProblem` per schedule, problem and ``about``
        (the unknown task's name, the invalid version)."""
        key = f"{problem}:{about}"
        if key in have.reported:
            return
        have.reported.add(key)
        level = logging.WARNING if problem == "unknown_task" else logging.ERROR
        logger.log(level, "stored schedule %s: %s", name, detail)
        self._events.emit(ev.ScheduleProblem(schedule=name, problem=problem, detail=detail))
