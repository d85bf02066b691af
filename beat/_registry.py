"""What is registered: jobs by id (and by name), their heap entries, their runtime state.

No asyncio in here: the registry is plain data plus the rules that keep it consistent. The
scheduler's loop asks it for due entries and tells it what fired; the facade adds and removes.

Invariants (checked by ``tests/test_queue.py`` and ``tests/test_scheduler_properties.py``):

* ``_states`` maps ``job.id.int`` to the :class:`JobState` of every registered job, and a
  job is registered with at most one scheduler at a time;
* a registered job with a pending instant (``state.next_us`` not ``None``) has exactly one
  live entry in ``queue``, at that instant; an unregistered one has none (``gen == DEAD``);
* ``state.last_us`` (the high-water mark) only grows: no instant at or before it fires again.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING
from uuid import UUID

from ._exceptions import DuplicateJobError, JobLookupError
from ._queue import _COMPACT_FACTOR, _COMPACT_FLOOR, DEAD, TimerQueue
from ._timers import Timer, check_shared, first_fire_us

if TYPE_CHECKING:
    from ._history import RawRun
    from ._job import Job

__all__ = ["JobState", "Registry"]

# Compact once stale entries exceed this many per live job (plus the floor): the queue then
# holds at most _COMPACT_FACTOR entries per live job.
_MAX_STALE_PER_LIVE = _COMPACT_FACTOR - 1


class JobState:
    """One registered job's runtime state; the :class:`~beat.Job` itself stays unchanged.

    Each field has one owner, the only module that writes it:

    * ``_registry`` — ``timer`` (the timer in effect: an ``every`` cycle anchored on add, or
      the one from ``reschedule_job``), ``gen`` (generation of the live heap entry; ``DEAD``
      once unregistered), ``next_us`` (pending instant, ``None`` when exhausted),
      ``last_us`` (high-water mark), ``paused``;
    * ``_runs`` — ``running`` (runs in progress);
    * ``_reporting`` — ``history`` (bounded, created on the first finished run).
    """

    __slots__ = ("gen", "history", "job", "last_us", "next_us", "paused", "running", "timer")

    def __init__(self, job: Job, timer: Timer, gen: int, next_us: int | None) -> None:
        self.job = job
        self.timer = timer
        self.gen = gen
        self.next_us = next_us
        self.last_us: int | None = None
        self.paused = False
        self.running = 0
        self.history: deque[RawRun] | None = None

    @property
    def registered(self) -> bool:
        return self.gen != DEAD

    def __repr__(self) -> str:
        return f"<JobState {self.job.name!r} gen={self.gen} next={self.next_us}>"


class Registry:
    """Jobs by id (and by name when names must be unique), the heap, and the job states.

    ``shared_schedule`` (set when a coordinator shares the schedule among instances): names
    identify jobs, so they must be unique (and :meth:`by_name` is O(1)), and every instance
    must compute the same instants, so ``every`` cycles go on the epoch grid.
    """

    __slots__ = ("_by_name", "_on_garbage", "_stale", "_states", "queue", "shared_schedule")

    def __init__(
        self, *, shared_schedule: bool = False, on_garbage: Callable[[], None] | None = None
    ) -> None:
        self._states: dict[int, JobState] = {}  # job.id.int -> state: int hashing is C-fast
        self._by_name: dict[str, JobState] = {}  # kept only when shared_schedule
        self.queue = TimerQueue(self._states)
        self.shared_schedule = shared_schedule
        # Entries made stale (removals, reschedules) since the last compaction started: an
        # upper bound on the garbage in the queue (entries popped on their own are not
        # subtracted, so it may overcount; a compaction then just finds less to drop).
        # Invariant: len(queue) <= len(_states) + _stale.
        self._stale = 0
        # Called when stale entries pass the queue's bound: the owner (the scheduler) then
        # compacts, in steps from its loop. Without an owner, compaction happens at once.
        self._on_garbage = on_garbage or self.compact

    def __len__(self) -> int:
        return len(self._states)

    def states(self) -> list[JobState]:
        return list(self._states.values())

    def get(self, job_id: UUID) -> JobState:
        """The state of the registered job ``job_id``; :class:`JobLookupError` if none."""
        try:
            return self._states[job_id.int]
        except (KeyError, AttributeError):
            raise JobLookupError(f"no job with id {job_id!r}") from None

    def by_name(self, name: str) -> JobState | None:
        if self.shared_schedule:
            return self._by_name.get(name)
        return next((s for s in self._states.values() if s.job.name == name), None)

    # -- registration ----------------------------------------------------------------------
    def add(self, job: Job, now_us: int) -> JobState:
        """Register ``job``; its first instant is computed from ``now_us``. O(log n).

        Raises :class:`DuplicateJobError` (id taken, job registered elsewhere, or name taken
        when names must be unique); :class:`InvalidScheduleError` for a timer whose instants
        may differ between instances when they must agree; nothing changes then.
        """
        key = job.id.int
        states = self._states
        if key in states:
            raise DuplicateJobError(f"a job with id {job.id} is already registered")
        previous = job._state
        if previous is not None and previous.gen != DEAD:
            raise DuplicateJobError(f"{job!r} is already registered with a scheduler")
        if self.shared_schedule:
            if job.name in self._by_name:
                raise DuplicateJobError(
                    f"with a coordinator, job names must be unique: {job.name!r} is already used"
                )
            check_shared(job.timer, job.name)
        timer, first = first_fire_us(job.timer, now_us, on_epoch_grid=self.shared_schedule)
        queue = self.queue
        gen = queue.new_generation()
        state = JobState(job, timer, gen, first)
        if previous is not None:
            state.history = previous.history  # a re-added job keeps its past runs
        job._state = state
        states[key] = state
        if self.shared_schedule:
            self._by_name[job.name] = state
        if first is not None:
            queue.push_first(first, key, gen)
        return state

    def remove(self, job_id: UUID) -> JobState:
        """Unregister; O(1): the heap entry goes stale. :class:`JobLookupError` if unknown."""
        try:
            state = self._states.pop(job_id.int)
        except (KeyError, AttributeError):
            raise JobLookupError(f"no job with id {job_id!r}") from None
        state.gen = DEAD
        if self.shared_schedule:
            del self._by_name[state.job.name]
        self._stale = stale = self._stale + 1
        if stale > _MAX_STALE_PER_LIVE * len(self._states) + _COMPACT_FLOOR:
            self._on_garbage()
        return state

    def retire(self, state: JobState) -> None:
        """Unregister a job whose timer is exhausted (its last run may still be going)."""
        self.remove(state.job.id)

    # -- the instants ----------------------------------------------------------------------
    def advance(self, state: JobState, last_us: int, next_us: int | None) -> None:
        """Record that instants up to ``last_us`` were handled; queue ``next_us``."""
        state.last_us = last_us
        state.next_us = next_us
        if next_us is not None:
            self.queue.push(next_us, state.job.id.int, state.gen)

    def replace_next(
        self, state: JobState, next_us: int | None, timer: Timer | None = None
    ) -> None:
        """Give a job a new pending instant (and timer): a new generation, old entry stale."""
        if timer is not None:
            state.timer = timer
        queue = self.queue
        state.gen = gen = queue.new_generation()
        state.next_us = next_us
        if next_us is not None:
            queue.push_first(next_us, state.job.id.int, gen)
        self._stale = stale = self._stale + 1
        if stale > _MAX_STALE_PER_LIVE * len(self._states) + _COMPACT_FLOOR:
            self._on_garbage()

    def exhaust(self, state: JobState) -> None:
        """The job will not fire again (its timer is spent or broke); it is retired next."""
        state.next_us = None

    def set_paused(self, state: JobState, paused: bool) -> bool:
        """Pause or resume; True if that changed anything."""
        if state.paused is paused:
            return False
        state.paused = paused
        return True

    # -- compaction ------------------------------------------------------------------------
    def wants_compaction(self) -> bool:
        """Garbage passed the bound, or a compaction is under way."""
        return (
            self.queue.compacting
            or self._stale > _MAX_STALE_PER_LIVE * len(self._states) + _COMPACT_FLOOR
        )

    def compact_step(self) -> bool:
        """One bounded step of compaction (see ``_queue.py``); True while unfinished."""
        if not self.queue.compacting:
            self._stale = 0  # this compaction drops every entry that is stale now
        return self.queue.compact_step()

    def compact(self) -> None:
        """Compact completely, now (no loop to spread the work over)."""
        while self.compact_step():
            pass
