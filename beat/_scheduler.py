"""The scheduler: a job dict, a lazily purged heap, and a loop that sleeps until the next fire.

Data (invariants next to the fields in ``Scheduler.__init__``):

* ``_jobs`` — id (as ``UUID.int``) → :class:`Job`, the source of truth for what is registered;
* ``_queue`` — a :class:`TimerQueue` of ``(when, sequence, job id, generation)``; an entry is
  live only if its job is registered with the same generation (see ``_queue.py``).

The loop (``_run_loop``) holds an :class:`asyncio.Condition` and repeats three named steps:
``_observe_time`` (read both clocks, detect jumps), ``_fire_due`` (pop every live entry due by
now, hand each to the misfire and overlap policies, start runs), ``_next_delay`` (sleep until
the next live entry, never more than ``max_sleep``). ``add_job`` wakes it only when the new job
is due before the current sleep ends; shutdown wakes it too. It never polls.

Time base (SEMANTICS §1): instants are UTC epoch microseconds; sleeping uses the clock's
monotonic time, capped at ``max_sleep``; after every wake the wall clock is read again, so
suspend and clock steps are noticed within the cap.

Running a fire once it may start (attempts, timeout, retries, records) is
``_execution.RunExecution``; coordination is ``_coordination.Coordination``.

Threads: the synchronous control methods (``add_job``, ``remove_job``, ``pause_job``,
``resume_job``, ``reschedule_job``) are safe from the loop's thread, from inside a run, and
(once started) from any other thread — calls from other threads are handed to the loop and wait
for its answer; the coroutine methods belong to the loop. Before :meth:`start`, use the
scheduler from one thread.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import random
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import Enum
from threading import get_ident
from typing import Any, TypeVar
from uuid import UUID

from . import _events as ev
from ._clock import Clock, SystemClock
from ._coordination import Coordination
from ._exceptions import (
    DuplicateJobError,
    InvalidJobError,
    JobLookupError,
    SchedulerStateError,
)
from ._execution import RunExecution, _iso
from ._history import RunRecord
from ._job import Job, JobBuilder
from ._misfire import decide
from ._queue import TimeEvent, TimerQueue
from ._timers import Cycle, Oneshot, Timer, from_us, next_fire_us
from .coordinators._base import Coordinator

__all__ = ["JobInfo", "Scheduler", "Statistics"]

logger = logging.getLogger("beat.scheduler")
run_logger = logging.getLogger("beat.run")

T = TypeVar("T")
F = TypeVar("F", bound=Callable[..., Any])


class _State(Enum):
    NEW = "new"
    RUNNING = "running"
    STOPPING = "stopping"
    STOPPED = "stopped"


@dataclass(frozen=True, slots=True)
class JobInfo:
    """A snapshot of one job for listings."""

    id: UUID
    name: str
    timer: Timer
    next_fire: datetime | None
    last_fired: datetime | None
    paused: bool
    running: int


@dataclass(frozen=True, slots=True)
class Statistics:
    """Counters for monitoring and for the heap-bound tests."""

    jobs: int  # live jobs
    heap_entries: int  # live + stale
    running: int  # runs in progress
    fires: int  # fires handed to the run machinery since start
    compactions: int  # heap rebuilds


class Scheduler(RunExecution):
    """An in-process scheduler embedded in the running asyncio loop.

    ``clock`` — time source (default :class:`SystemClock`; tests pass
    :class:`beat.testing.FakeClock`). ``max_sleep`` — longest single sleep in seconds (the
    bound on noticing a wall-clock jump). ``jump_tolerance`` — seconds of disagreement
    between wall and monotonic progress that count as a jump. ``misfire_threshold`` — a fire
    starting later than this after its instant is a misfire (SEMANTICS §3).
    ``shutdown_timeout`` — default wait for running jobs at shutdown. ``max_workers`` —
    threads for plain (non-async) job functions. ``coordinator`` — see
    :mod:`beat.coordinators`.
    """

    def __init__(
        self,
        *,
        clock: Clock | None = None,
        max_sleep: float = 60.0,
        jump_tolerance: float = 1.0,
        misfire_threshold: float = 1.0,
        shutdown_timeout: float = 30.0,
        max_workers: int | None = None,
        coordinator: Coordinator | None = None,
    ) -> None:
        for what, value in (
            ("max_sleep", max_sleep),
            ("jump_tolerance", jump_tolerance),
            ("misfire_threshold", misfire_threshold),
            ("shutdown_timeout", shutdown_timeout),
        ):
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
                raise InvalidJobError(f"{what} must be a positive number of seconds, got {value!r}")
        if max_workers is not None and (not isinstance(max_workers, int) or max_workers < 1):
            raise InvalidJobError(f"max_workers must be a positive integer, got {max_workers!r}")
        if coordinator is not None and not isinstance(coordinator, Coordinator):
            raise InvalidJobError(f"coordinator must be a beat Coordinator, got {coordinator!r}")
        self.clock: Clock = clock if clock is not None else SystemClock()
        self.max_sleep = float(max_sleep)
        self.jump_tolerance = float(jump_tolerance)
        self.misfire_threshold = float(misfire_threshold)
        self.shutdown_timeout = float(shutdown_timeout)
        self.coordinator = coordinator
        self._max_workers = max_workers
        self._threshold_us = round(misfire_threshold * 1_000_000)

        # id -> job. Invariant: job._scheduler is self for every value, and each job with a
        # pending fire (job._next_us not None) has exactly one live entry in _queue.
        self._jobs: dict[int, Job] = {}  # keyed by job.id.int: int hashing is C-fast
        self._queue = TimerQueue(self._is_live, self._live_entries)
        self._cond = asyncio.Condition()  # binds to a loop on first use, not here
        self._state = _State.NEW
        self._closed = False  # True once shutdown began: add_job refuses
        self._loop: asyncio.AbstractEventLoop | None = None
        self._loop_thread: int | None = None  # ident of the loop's thread once started
        self._task: asyncio.Task[None] | None = None
        self._helpers: set[asyncio.Task[Any]] = set()  # wake-ups, coordinator upkeep
        self._runs: dict[asyncio.Task[Any], Job] = {}  # every run in progress -> its job
        self._run_done_callback = self._run_done  # one bound method, not one per run
        self._cancel_reasons: dict[asyncio.Task[Any], str] = {}
        self._sleeping_until: int | None = None  # wall µs the loop sleeps until; None = awake
        self._wake_pending = False
        self._prev_wall: float | None = None
        self._prev_mono = 0.0
        self._fires = 0
        self._events = ev.EventBus()
        self._executor: concurrent.futures.ThreadPoolExecutor | None = None
        self._stopped = asyncio.Event()
        self._rng = random.Random()
        self._coordination = Coordination(self, coordinator) if coordinator else None

    # ------------------------------------------------------------------------------------
    # Registration
    # ------------------------------------------------------------------------------------
    def add_job(self, job: Job) -> UUID:
        """Register ``job`` and return its id. O(log n).

        Raises :class:`DuplicateJobError` if the id (or, under a coordinator, the name) is
        taken or the job belongs to a scheduler already, :class:`SchedulerStateError` after
        shutdown. On error nothing changes.
        """
        if self._loop_thread is not None and get_ident() != self._loop_thread:
            return self._call_in_loop(self.add_job, job)
        if not isinstance(job, Job):
            raise InvalidJobError(
                f"add_job() takes a Job (build one with Job...do(fn)), got {job!r}"
            )
        if self._closed:
            raise SchedulerStateError(f"cannot add {job!r}: the scheduler is {self._state.value}")
        key = job.id.int
        jobs = self._jobs
        if key in jobs:
            raise DuplicateJobError(f"a job with id {job.id} is already registered")
        if job._scheduler is not None:
            raise DuplicateJobError(f"{job!r} is already registered with a scheduler")
        if self.coordinator is not None:
            self._check_name_free(job.name)
        now = round(self.clock.time() * 1_000_000)
        timer = job.timer
        if type(timer) is Cycle:
            if timer._start_us is None:  # Job.every: its own Cycle, anchored once, here
                timer._start_us = now + timer._interval_us
            first = timer._next_us(now)
        elif type(timer) is Oneshot:
            first = timer._at_us  # even if past: a late fire, subject to grace
        else:
            first = next_fire_us(timer, now)
        job._gen = gen = self._queue.new_generation()
        job._scheduler = self
        job._next_us = first
        jobs[key] = job
        if first is not None:
            self._queue.push_first(first, key, gen)
            if self._sleeping_until is not None:
                self._wake_if_sooner(first)
        if self._events.active:
            self._events.emit(ev.JobAdded(job_id=job.id, name=job.name, next_fire=_dt(first)))
        return job.id

    def remove_job(self, job_id: UUID) -> Job:
        """Unregister a job and return it; O(1) (its heap entry goes stale).

        A run in progress is not cancelled. Raises :class:`JobLookupError` for an unknown id.
        """
        if self._loop_thread is not None and get_ident() != self._loop_thread:
            return self._call_in_loop(self.remove_job, job_id)
        try:
            job = self._jobs.pop(job_id.int)
        except (KeyError, AttributeError):
            raise JobLookupError(f"no job with id {job_id!r}") from None
        job._scheduler = None  # its heap entry is stale from now on; a queued fire is dropped
        queue = self._queue
        if len(queue._heap) > queue.limit(len(self._jobs)):  # inlined maybe_compact: hot path
            queue.compact()
        if self._events.active:
            self._events.emit(ev.JobRemoved(job_id=job.id, name=job.name))
        return job

    def get_job(self, job_id: UUID) -> Job:
        """The registered job with this id; :class:`JobLookupError` if none."""
        try:
            return self._jobs[job_id.int]
        except (KeyError, AttributeError):
            raise JobLookupError(f"no job with id {job_id!r}") from None

    def jobs(self) -> list[JobInfo]:
        """Every registered job with its next fire, ordered by next fire (None last)."""
        infos = [self._info(job) for job in list(self._jobs.values())]
        infos.sort(key=lambda i: (i.next_fire is None, i.next_fire or datetime.min))
        return infos

    def job_info(self, job_id: UUID) -> JobInfo:
        return self._info(self.get_job(job_id))

    def statistics(self) -> Statistics:
        return Statistics(
            jobs=len(self._jobs),
            heap_entries=len(self._queue),
            running=len(self._runs),
            fires=self._fires,
            compactions=self._queue.compactions,
        )

    def pause_job(self, job_id: UUID) -> None:
        """Stop starting runs of a job; each fire while paused is skipped and reported."""
        if self._loop_thread is not None and get_ident() != self._loop_thread:
            return self._call_in_loop(self.pause_job, job_id)
        job = self.get_job(job_id)
        if not job._paused:
            job._paused = True
            logger.info("job %s paused", job.name)
            if self._events.active:
                self._events.emit(ev.JobPaused(job_id=job.id, name=job.name))
        return None

    def resume_job(self, job_id: UUID) -> None:
        """Start runs of a paused job again from its next fire."""
        if self._loop_thread is not None and get_ident() != self._loop_thread:
            return self._call_in_loop(self.resume_job, job_id)
        job = self.get_job(job_id)
        if job._paused:
            job._paused = False
            logger.info("job %s resumed", job.name)
            if self._events.active:
                self._events.emit(
                    ev.JobResumed(job_id=job.id, name=job.name, next_fire=_dt(job._next_us))
                )
        return None

    def reschedule_job(self, job_id: UUID, timer: Timer | JobBuilder) -> datetime | None:
        """Give a job a new timer; returns its next fire. Never re-fires an instant it fired."""
        if self._loop_thread is not None and get_ident() != self._loop_thread:
            return self._call_in_loop(self.reschedule_job, job_id, timer)
        job = self.get_job(job_id)
        if isinstance(timer, JobBuilder):
            timer = timer.timer
        if not callable(getattr(timer, "next_after", None)):
            raise InvalidJobError(f"reschedule_job() needs a timer, got {timer!r}")
        now = self._wall_us()
        if type(timer) is Cycle and timer._start_us is None:
            timer = timer.anchored(now + timer._interval_us)
        after = now if job._last_us is None else max(now, job._last_us)
        first = next_fire_us(timer, after)
        job.timer = timer
        self._set_next(job, first, new_generation=True)
        self._queue.maybe_compact(len(self._jobs))
        if self._events.active:
            self._events.emit(ev.JobRescheduled(job_id=job.id, name=job.name, next_fire=_dt(first)))
        return _dt(first)

    # -- decorators --------------------------------------------------------------------
    def cron(self, expr: str, tz: Any = "UTC", **options: Any) -> Callable[[F], F]:
        """``@scheduler.cron("0 * * * *")`` — same as ``add_job(Job.cron(...).do(fn))``."""
        return self._decorator(Job.cron(expr, tz), options)

    def every(self, interval: timedelta, **options: Any) -> Callable[[F], F]:
        """``@scheduler.every(timedelta(seconds=30))``."""
        return self._decorator(Job.every(interval), options)

    def cycle(self, start_at: datetime, interval: timedelta, **options: Any) -> Callable[[F], F]:
        return self._decorator(Job.cycle(start_at, interval), options)

    def oneshot(self, at: datetime, **options: Any) -> Callable[[F], F]:
        return self._decorator(Job.oneshot(at), options)

    def _decorator(self, builder: JobBuilder, options: dict[str, Any]) -> Callable[[F], F]:
        def register(fn: F) -> F:
            self.add_job(builder.do(fn, **options))
            return fn

        return register

    # -- events --------------------------------------------------------------------------
    def subscribe(self, listener: ev.Listener, *types: type[ev.Event]) -> object:
        """Call ``listener(event)`` for every event of the given types (all if none).

        Returns a token for :meth:`unsubscribe`. See :mod:`beat._events` for delivery rules.
        """
        return self._events.subscribe(listener, types)

    def unsubscribe(self, token: object) -> None:
        self._events.unsubscribe(token)

    # ------------------------------------------------------------------------------------
    # Lifecycle
    # ------------------------------------------------------------------------------------
    def start(self) -> None:
        """Start the loop as a background task of the running event loop."""
        if self._state is not _State.NEW:
            raise SchedulerStateError(f"cannot start: the scheduler is {self._state.value}")
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            raise SchedulerStateError(
                "start() must be called with an asyncio event loop running "
                "(use `async with Scheduler() as s:` or call it from a coroutine)"
            ) from None
        if self.coordinator is not None:
            names = [job.name for job in self._jobs.values()]
            dupes = sorted({n for n in names if names.count(n) > 1})
            if dupes:
                raise DuplicateJobError(
                    f"with a coordinator, job names must be unique; duplicated: {dupes}"
                )
        self._loop = loop
        self._loop_thread = get_ident()
        self._state = _State.RUNNING
        self._events.start()
        self._task = loop.create_task(self._run_loop(), name="beat-scheduler")
        logger.info("scheduler started with %d jobs", len(self._jobs))
        if self._events.active:
            self._events.emit(ev.SchedulerStarted())

    async def __aenter__(self) -> Scheduler:
        self.start()
        if self._coordination is not None:
            try:
                await self._coordination.ready
            except BaseException:
                await self.shutdown()
                raise
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.shutdown()

    @property
    def running(self) -> bool:
        return self._state is _State.RUNNING

    async def shutdown(self, timeout: float | None = None) -> int:
        """Stop firing at once, wait up to ``timeout`` s for running jobs, cancel the rest.

        Returns when nothing of the scheduler runs (threads of abandoned sync jobs aside:
        a thread cannot be killed). Idempotent; concurrent callers all wait for the end.
        Returns how many runs were cancelled at the timeout (0 for repeated calls).
        """
        if self._state is _State.NEW:
            self._state = _State.STOPPED
            self._closed = True
            self._stopped.set()
            return 0
        if self._state is not _State.RUNNING:
            await self._stopped.wait()
            return 0
        self._state = _State.STOPPING
        self._closed = True
        timeout = self.shutdown_timeout if timeout is None else timeout
        async with self._cond:
            self._cond.notify_all()
        assert self._task is not None
        await asyncio.wait([self._task])
        for helper in list(self._helpers):
            helper.cancel()
        cancelled = await self._drain_runs(timeout)
        if self._executor is not None:
            self._executor.shutdown(wait=False, cancel_futures=True)
        if self._coordination is not None:
            await self._coordination.close()
        if self._helpers:
            await asyncio.wait(list(self._helpers))
        logger.info("scheduler stopped (%d runs cancelled)", cancelled)
        if self._events.active:
            self._events.emit(ev.SchedulerStopped(cancelled_runs=cancelled))
        await self._events.aclose(timeout=max(1.0, min(timeout, 5.0)))
        self._loop_thread = None
        self._state = _State.STOPPED
        self._stopped.set()
        return cancelled

    async def _drain_runs(self, timeout: float) -> int:
        runs = set(self._runs)
        if not runs:
            return 0
        try:
            async with self.clock.timeout(timeout):
                await asyncio.wait(runs)
        except TimeoutError:
            pass
        pending = [task for task in runs if not task.done()]
        for task in pending:
            self._cancel_run(task, "shutdown")
        if pending:
            await asyncio.wait(pending)
        return len(pending)

    # ------------------------------------------------------------------------------------
    # Running on demand
    # ------------------------------------------------------------------------------------
    async def run_now(self, job_id: UUID) -> Any:
        """Run a job now (outside its schedule) and return its result or raise its error.

        ``ctx.when`` is the current instant. The job's timeout and retries apply; its overlap
        policy does not (an explicit call always runs).
        """
        job = self.get_job(job_id)
        if self._state is not _State.RUNNING:
            raise SchedulerStateError(f"run_now() needs a running scheduler ({self._state.value})")
        task = asyncio.get_running_loop().create_task(
            self._execute(job, self._wall_us(), 1, raise_errors=True)
        )
        self._track_run(job, task)
        return await task

    async def wait_next_run(self, job_id: UUID) -> RunRecord:
        """Wait for the next finished run of a job (after retries) and return its record."""
        job = self.get_job(job_id)
        future: asyncio.Future[RunRecord] = asyncio.get_running_loop().create_future()
        if job._waiters is None:
            job._waiters = []
        job._waiters.append(future)
        try:
            return await future
        finally:
            if job._waiters and future in job._waiters:
                job._waiters.remove(future)

    # ------------------------------------------------------------------------------------
    # The loop
    # ------------------------------------------------------------------------------------
    async def _run_loop(self) -> None:
        if self._coordination is not None:
            try:
                await self._coordination.open()
            except Exception:
                # The error is on `ready`: __aenter__ re-raises it after shutting down (by
                # hand: await shutdown()). The state stays RUNNING so shutdown cleans up.
                return
        async with self._cond:
            while self._state is _State.RUNNING:
                now = self._observe_time()
                self._fire_due(now)
                delay = self._next_delay(now)
                self._sleeping_until = now + round(delay * 1_000_000)
                try:
                    async with self.clock.timeout(delay):
                        await self._cond.wait()
                except TimeoutError:
                    pass
                finally:
                    self._sleeping_until = None

    def _observe_time(self) -> int:
        """Read both clocks; report a jump if wall progress disagrees with monotonic progress."""
        wall = self.clock.time()
        mono = self.clock.monotonic()
        if self._prev_wall is not None:
            drift = (wall - self._prev_wall) - (mono - self._prev_mono)
            if abs(drift) > self.jump_tolerance:
                logger.warning(
                    "wall clock jumped %+.3f s; %s",
                    drift,
                    "fires skipped over are misfires"
                    if drift > 0
                    else "no instant at or before a job's last fire will repeat",
                )
                if self._events.active:
                    self._events.emit(ev.ClockJumped(delta=drift))
        self._prev_wall = wall
        self._prev_mono = mono
        return round(wall * 1_000_000)

    def _fire_due(self, now: int) -> None:
        queue = self._queue
        jobs = self._jobs
        while (top := queue.pop_due(now)) is not None:
            job = jobs[top.job_id]
            try:
                self._fire(job, top.when, now)
            except Exception:
                # A broken user timer must not stop the loop: the job stops firing instead.
                logger.exception(
                    "job %s: computing its schedule failed; it will not fire again", job.name
                )
                job._next_us = None
            if job._next_us is None and job._scheduler is self:
                self._retire(job)
        queue.maybe_compact(len(jobs))

    def _retire(self, job: Job) -> None:
        """Unregister a job whose timer is exhausted; its last run may still be going."""
        del self._jobs[job.id.int]
        job._scheduler = None
        logger.debug("job %s: timer exhausted, removed", job.name)
        if self._events.active:
            self._events.emit(ev.JobRemoved(job_id=job.id, name=job.name))

    def _next_delay(self, now: int) -> float:
        top = self._queue.peek()
        if top is None:
            return self.max_sleep
        return max(0.0, min(self.max_sleep, (top.when - now) / 1_000_000))

    def _fire(self, job: Job, when: int, now: int) -> None:
        """Handle one due entry of ``job`` at instant ``when`` (≤ now)."""
        timer = job.timer
        nxt = timer._next_us(when) if type(timer) is Cycle else next_fire_us(timer, when)
        if job._paused:
            skip_to = nxt if nxt is None or nxt > now else next_fire_us(timer, now)
            job._last_us = when
            self._set_next(job, skip_to)
            self._report_skip(job, when, "paused")
            return
        if (nxt is None or nxt > now) and now - when <= self._threshold_us:
            # The common case: one instant, on time (what _set_next does, inlined).
            job._last_us = when
            job._next_us = nxt
            if nxt is not None:
                self._queue.push(nxt, job.id.int, job._gen)
            self._start_fire(job, when, None)
            return
        decision = decide(timer, job.options, when, now, self._threshold_us)
        job._last_us = decision.last
        self._set_next(job, decision.next_us)
        self._report_misfire(
            job, decision.run, decision.missed, decision.first, decision.last, decision.capped
        )
        if decision.run:
            self._start_fire(job, decision.run[0], decision.run[1:] or None)

    def _set_next(self, job: Job, nxt: int | None, *, new_generation: bool = False) -> None:
        if new_generation:
            job._gen = self._queue.new_generation()
        job._next_us = nxt
        if nxt is not None:
            if new_generation:
                self._queue.push_first(nxt, job.id.int, job._gen)
            else:
                self._queue.push(nxt, job.id.int, job._gen)
            if new_generation:
                self._wake_if_sooner(nxt)

    def _live_entries(self, entries: list[TimeEvent]) -> list[TimeEvent]:
        get = self._jobs.get
        return [
            e
            for e in entries
            if (job := get(e[2])) is not None and job._gen == e[3] and job._next_us == e[0]
        ]

    def _is_live(self, event: TimeEvent) -> bool:
        job = self._jobs.get(event[2])
        return job is not None and job._gen == event[3] and job._next_us == event[0]

    def _wake_if_sooner(self, when: int) -> None:
        """Wake the loop if it sleeps past ``when`` (never from inside the loop's own step)."""
        until = self._sleeping_until
        if until is None or when >= until or self._wake_pending or self._loop is None:
            return
        self._wake_pending = True
        task = self._loop.create_task(self._notify())
        self._helpers.add(task)
        task.add_done_callback(self._helpers.discard)

    async def _notify(self) -> None:
        async with self._cond:
            self._wake_pending = False
            self._cond.notify()

    # ------------------------------------------------------------------------------------
    # Starting runs: overlap policy
    # ------------------------------------------------------------------------------------
    def _start_fire(self, job: Job, when: int, more: list[int] | None) -> None:
        """Start a run for instant ``when`` (then ``more``, in order) unless overlap forbids."""
        running = job._running
        if running:
            policy = job.options.overlap
            if policy == "skip":
                return self._report_skip(job, when, "overlap", more)
            if policy == "allow":
                limit = job.options.max_instances
                if limit is not None and running >= limit:
                    return self._report_skip(job, when, "max_instances", more)
            elif policy == "replace":
                for task in self._tasks_of(job):
                    self._cancel_run(task, "replaced")
            elif policy == "queue":
                if job._queued is not None:
                    return self._report_skip(job, when, "queue_full", more)
                job._queued = when
                run_logger.info(
                    "job %s @ %s: previous run still going; queued to run right after it",
                    job.name,
                    _iso(when),
                )
                if self._events.active:
                    self._emit_run(ev.RunQueued, job, when, 1)
                return None
        self._fires += 1
        assert self._loop is not None
        if more is None and not job.options.jitter and self._coordination is None:
            coro = self._execute(job, when, 1, raise_errors=False)  # the common case: one frame
        else:
            coro = self._run_fire(job, when, more)
        task = self._loop.create_task(coro)
        job._running += 1
        self._runs[task] = job
        task.add_done_callback(self._run_done_callback)
        return None

    def _track_run(self, job: Job, task: asyncio.Task[Any]) -> None:
        job._running += 1
        self._runs[task] = job
        task.add_done_callback(self._run_done_callback)

    def _tasks_of(self, job: Job) -> list[asyncio.Task[Any]]:
        """The job's runs in progress (a scan: only overlap='replace' needs them)."""
        return [task for task, owner in self._runs.items() if owner is job]

    def _run_done(self, task: asyncio.Task[Any]) -> None:
        job = self._runs.pop(task)
        if self._cancel_reasons:
            self._cancel_reasons.pop(task, None)
        job._running -= 1
        queued = job._queued
        if queued is not None and not job._running and self._state is _State.RUNNING:
            job._queued = None
            if job._scheduler is self:
                self._start_fire(job, queued, None)

    def _cancel_run(self, task: asyncio.Task[Any], reason: str) -> None:
        self._cancel_reasons[task] = reason
        task.cancel()

    def _check_name_free(self, name: str) -> None:
        for other in self._jobs.values():
            if other.name == name:
                raise DuplicateJobError(
                    f"with a coordinator, job names must be unique: {name!r} is already used"
                )

    # ------------------------------------------------------------------------------------
    # Helpers
    # ------------------------------------------------------------------------------------
    def _wall_us(self) -> int:
        return round(self.clock.time() * 1_000_000)

    def _info(self, job: Job) -> JobInfo:
        return JobInfo(
            id=job.id,
            name=job.name,
            timer=job.timer,
            next_fire=_dt(job._next_us),
            last_fired=_dt(job._last_us),
            paused=job._paused,
            running=job.running,
        )

    def _call_in_loop(self, fn: Callable[..., T], *args: Any) -> T:
        """Run ``fn(*args)`` on the loop's thread and wait for its result (other threads)."""
        loop = self._loop
        assert loop is not None
        future: concurrent.futures.Future[T] = concurrent.futures.Future()

        def call() -> None:
            if future.set_running_or_notify_cancel():
                try:
                    future.set_result(fn(*args))
                except BaseException as exc:
                    future.set_exception(exc)

        loop.call_soon_threadsafe(call)
        return future.result()

    def __repr__(self) -> str:
        return f"<Scheduler {self._state.value} jobs={len(self._jobs)} running={len(self._runs)}>"


def _dt(us: int | None) -> datetime | None:
    return None if us is None else from_us(us)
