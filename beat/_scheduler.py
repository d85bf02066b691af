"""The scheduler: the public facade, the lifecycle, and the loop that fires due jobs.

One fire, top-down (each step one module, each piece of state one owner):

1. ``Scheduler._run_loop`` sleeps on an :class:`asyncio.Condition` until the earliest entry of
   the heap is due (never longer than ``max_sleep``), then ``_observe_time`` reads the clocks.
2. ``_fire_due`` pops each due entry from the registry's queue (``_registry.py`` owns the jobs,
   the heap and each job's :class:`~beat._registry.JobState`; ``_queue.py`` is the heap).
3. ``_fire`` applies the pause and misfire rules (``_misfire.py``), moves the job to its next
   instant and asks the run tracker to start a run.
4. ``RunTracker.start`` (``_runs.py``) applies the overlap policy and starts the coroutine the
   gate returns (``_gate.py``: locally, or claimed first under a coordinator,
   ``_coordination.py``) as a task.
5. ``Executor.execute`` (``_execution.py``) calls the job's function with its
   :class:`~beat.Context`, applying timeout and retries.
6. ``Reporter`` (``_reporting.py``) turns each outcome into a log line, a history record and
   an event.

Time base (docs/guarantees.md §1): instants are UTC epoch microseconds; sleeping uses the
clock's monotonic time, capped at ``max_sleep``; after every wake the wall clock is read again,
so suspend and clock steps are noticed within the cap. ``add_job`` wakes the loop only when the
new job is due before the current sleep ends; it never polls.

Threads: the synchronous control methods (``add_job``, ``remove_job``, ``pause_job``,
``resume_job``, ``reschedule_job``) are safe from the loop's thread, from inside a run, and
(once started) from any other thread (``_threads.py``); the coroutine methods belong to the
loop. Before :meth:`Scheduler.start`, use the scheduler from one thread.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import Enum
from typing import Any, ParamSpec, TypeVar, overload
from uuid import UUID

from . import _events as ev
from ._client import Client
from ._clock import Clock, SystemClock
from ._coordination import ClaimGate
from ._durable_events import DurableJobEvents
from ._exceptions import InvalidJobError, SchedulerStateError
from ._execution import Executor
from ._gate import Gate, LocalGate, spawn
from ._history import RunRecord
from ._job import Backoff, Job, JobBuilder
from ._liveness import Health, InstanceHeartbeat
from ._misfire import decide
from ._registry import JobState, Registry
from ._reporting import Reporter
from ._runs import RunTracker
from ._schedule_sync import DurableSchedules
from ._tasks import DEFAULT_QUEUE, Task, TaskFunction, TaskRegistry
from ._tasks import task as make_task
from ._threads import LoopBinding
from ._timers import Timer, anchor_every, check_shared, from_us, next_fire_us
from ._units import positive_seconds, seconds_to_us, us_to_seconds
from ._worker import Worker
from .coordinators._base import Coordinator
from .stores import Store
from .stores._base import PruneRule, Unique

__all__ = ["JobInfo", "Scheduler", "Statistics"]

logger = logging.getLogger("beat.scheduler")

F = TypeVar("F", bound=Callable[..., Any])
P = ParamSpec("P")


class _State(Enum):
    NEW = "new"
    RUNNING = "running"
    STOPPING = "stopping"
    STOPPED = "stopped"


@dataclass(frozen=True, slots=True)
class JobInfo:
    """A snapshot of one job for listings. ``timer`` is the timer in effect (anchored)."""

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
    compactions: int  # heap compactions started
    compacting: bool = False  # a compaction is under way (one step per loop iteration)


class Scheduler:
    """An in-process scheduler embedded in the running asyncio loop.

    ``clock`` — time source (default :class:`SystemClock`; tests pass
    :class:`beat.testing.FakeClock`). ``max_sleep`` — longest single sleep in seconds (the
    bound on noticing a wall-clock jump). ``jump_tolerance`` — seconds of disagreement
    between wall and monotonic progress that count as a jump. ``misfire_threshold`` — a fire
    starting later than this after its instant is a misfire (docs/guarantees.md §3).
    ``shutdown_timeout`` — default wait for running jobs at shutdown. ``max_workers`` —
    threads for plain (non-async) job functions. ``coordinator`` — see
    :mod:`beat.coordinators`.

    ``instance_heartbeat`` — with a store, seconds between this instance's records in the
    store (listed by ``store.list_instances()`` for three periods; see :meth:`health`).

    ``store`` — a durable job store (:mod:`beat.stores`): the scheduler then also runs a
    worker for the tasks registered with :meth:`task`, claiming from ``queues`` with at most
    ``concurrency`` jobs at once under leases of ``lease`` seconds (docs/worker.md), and
    :attr:`client` enqueues and follows jobs. ``retention`` (:class:`beat.stores.PruneRule`
    list) prunes finished jobs every ``prune_every`` seconds, once per period cluster-wide.
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
        store: Store | None = None,
        queues: Sequence[str] = (DEFAULT_QUEUE,),
        concurrency: int = 10,
        lease: float = 30.0,
        instance_heartbeat: float = 10.0,
        retention: Sequence[PruneRule] | None = None,
        prune_every: float | timedelta = 3600.0,
    ) -> None:
        self.max_sleep = positive_seconds(max_sleep, "max_sleep")
        self.jump_tolerance = positive_seconds(jump_tolerance, "jump_tolerance")
        self.misfire_threshold = positive_seconds(misfire_threshold, "misfire_threshold")
        self.shutdown_timeout = positive_seconds(shutdown_timeout, "shutdown_timeout")
        if max_workers is not None and (
            isinstance(max_workers, bool) or not isinstance(max_workers, int) or max_workers < 1
        ):
            raise InvalidJobError(f"max_workers must be a positive integer, got {max_workers!r}")
        if coordinator is not None and not isinstance(coordinator, Coordinator):
            raise InvalidJobError(f"coordinator must be a beat Coordinator, got {coordinator!r}")
        if store is not None and not isinstance(store, Store):
            raise InvalidJobError(f"store must be a beat.stores.Store, got {store!r}")
        self.clock: Clock = clock if clock is not None else SystemClock()
        self.coordinator = coordinator
        self._threshold_us = seconds_to_us(self.misfire_threshold)

        # The collaborators, each the one owner of its state (see the module docstring).
        rng = random.Random()
        self._events = ev.EventBus()
        self._reporter = Reporter(self.clock, self._events)
        self._registry = Registry(
            shared_schedule=coordinator is not None, on_garbage=self._compaction_due
        )  # the gate below is chosen by the same test, so the two always agree
        self._runs = RunTracker(self._reporter, self.clock, rng)
        self._executor = Executor(
            self, self.clock, self._reporter, self._runs.cancel_reason, rng, max_workers
        )
        self._gate: Gate
        if coordinator is None:
            self._gate = LocalGate(self._executor.execute)
        else:
            self._gate = ClaimGate(
                coordinator,
                registry=self._registry,
                runs=self._runs,
                reporter=self._reporter,
                execute=self._executor.execute,
                clock=self.clock,
                reschedule=self._move_next,
            )
        self._runs.launch = self._gate.launch
        self._runs.claims_first = self._gate.claims_first

        # Durable jobs (with a store): the tasks this instance runs, a client, a worker.
        self.store = store
        self._tasks = TaskRegistry()
        self._client = Client(store) if store is not None else None
        self._worker = (
            Worker(
                store,
                self._tasks,
                queues=queues,
                concurrency=concurrency,
                lease=lease,
                clock=self.clock,
                retention=retention,
                prune_every=prune_every,
            )
            if store is not None
            else None
        )
        # Its claims and outcomes as events, attached to it only while someone listens.
        self._job_events = (
            DurableJobEvents(self._events, self._worker) if self._worker is not None else None
        )
        # Schedules that enqueue durable jobs: catch-up and the stored schedules' sync loop.
        self._schedules = DurableSchedules(
            self,
            store,
            registry=self._registry,
            tasks=self._tasks,
            events=self._events,
            clock=self.clock,
            move_next=self._move_next,
        )

        # The facade's own state: lifecycle and the loop.
        self._binding = LoopBinding()  # the loop's thread, once started
        self._cond = asyncio.Condition()  # binds to a loop on first use, not here
        self._state = _State.NEW
        self._closed = False  # True once shutdown began: add_job refuses
        self._announce_adds = False  # True from start(): new jobs go to the gate's hook
        self._task: asyncio.Task[None] | None = None
        self._ready: asyncio.Future[None] | None = None  # the gate opened (or its error)
        self._helpers: set[asyncio.Task[Any]] = set()  # wake-ups of the loop
        self._sleeping_until: int | None = None  # wall µs the loop sleeps until; None = awake
        self._wake_pending = False
        self._prev_wall: float | None = None
        self._prev_mono = 0.0
        self._stopped = asyncio.Event()
        # Liveness (_liveness.py): with a store, this instance's record kept fresh in it.
        every = positive_seconds(instance_heartbeat, "instance_heartbeat")
        self._instance = (
            InstanceHeartbeat(store, self._worker.name, self.clock, every, self._instance_info)
            if store is not None and self._worker is not None
            else None
        )

    # ------------------------------------------------------------------------------------
    # Registration
    # ------------------------------------------------------------------------------------
    def add_job(self, job: Job) -> UUID:
        """Register ``job`` and return its id. O(log n).

        Raises :class:`DuplicateJobError` if the id (or, under a coordinator, the name) is
        taken or the job belongs to a scheduler already, :class:`SchedulerStateError` after
        shutdown. On error nothing changes.
        """
        if self._binding.foreign():
            return self._binding.call(self.add_job, job)
        if not isinstance(job, Job):
            raise InvalidJobError(
                f"add_job() takes a Job (build one with Job...do(fn)), got {job!r}"
            )
        if self._closed:
            raise SchedulerStateError(f"cannot add {job!r}: the scheduler is {self._state.value}")
        self._schedules.check_add(job)
        state = self._registry.add(job, seconds_to_us(self.clock.time()))
        if state.next_us is not None and self._sleeping_until is not None:
            self._wake_if_sooner(state.next_us)
        if self._announce_adds:
            self._gate.job_added(state)
        self._schedules.job_added(state)
        self._reporter.job_added(state)
        return job.id

    def remove_job(self, job_id: UUID) -> Job:
        """Unregister a job and return it; O(1) (its heap entry goes stale).

        A run in progress is not cancelled; a fire waiting for it (``overlap="queue"``) is
        dropped and reported. Raises :class:`JobLookupError` for an unknown id.
        """
        if self._binding.foreign():
            return self._binding.call(self.remove_job, job_id)
        state = self._registry.remove(job_id)
        self._reporter.job_removed(state)
        return state.job

    def get_job(self, job_id: UUID) -> Job:
        """The registered job with this id; :class:`JobLookupError` if none."""
        return self._registry.get(job_id).job

    def jobs(self) -> list[JobInfo]:
        """Every registered job with its next fire, ordered by next fire (None last)."""
        infos = [_info(state) for state in self._registry.states()]
        infos.sort(key=lambda i: (i.next_fire is None, i.next_fire or datetime.min))
        return infos

    def job_info(self, job_id: UUID) -> JobInfo:
        return _info(self._registry.get(job_id))

    def statistics(self) -> Statistics:
        queue = self._registry.queue
        return Statistics(
            jobs=len(self._registry),
            heap_entries=len(queue),
            running=len(self._runs),
            fires=self._runs.fires,
            compactions=queue.compactions,
            compacting=queue.compacting,
        )

    def health(self) -> Health:
        """Liveness for readiness probes (:class:`beat.Health`): plain reads, never blocks."""
        mono = self.clock.monotonic()
        task = self._task
        alive = self._state is _State.RUNNING and task is not None and not task.done()
        last, until = self._prev_wall, self._sleeping_until
        if not alive or last is None:
            lag = 0.0
        elif until is None:  # awake: busy since its last tick
            lag = max(0.0, mono - self._prev_mono)
        else:  # asleep: overdue past its deadline (monotonic: a wall-clock step is no lag)
            lag = max(0.0, mono - self._prev_mono - (us_to_seconds(until) - last))
        # The worker's and the gate's outage start (monotonic), read without a call.
        store_down = getattr(self._worker, "_outage_since", None)
        coordinator_down = getattr(self._gate, "_down_since", None)
        worker_running = self._worker.running if self._worker is not None else 0
        return Health(
            alive=alive,
            state=self._state.value,
            last_tick=None if last is None else from_us(seconds_to_us(last)),
            lag=lag,
            running=len(self._runs) + worker_running,
            store_outage=None if store_down is None else max(0.0, mono - store_down),
            coordinator_outage=None
            if coordinator_down is None
            else max(0.0, mono - coordinator_down),
            heartbeat=None if self._instance is None else self._instance.last,
        )

    def _instance_info(self) -> dict[str, Any]:
        """What this instance's heartbeat record says about it (``InstanceRecord.info``)."""
        worker = self._worker
        return {
            "queues": worker.queues if worker is not None else [],
            "concurrency": worker.concurrency if worker is not None else 0,
            "running": worker.running if worker is not None else 0,
            "scheduled_jobs": len(self._registry),
            "scheduled_running": len(self._runs),
            "tasks": sorted(self._tasks.names()),
        }

    def pause_job(self, job_id: UUID) -> None:
        """Stop starting runs of a job; each fire while paused is skipped and reported."""
        if self._binding.foreign():
            return self._binding.call(self.pause_job, job_id)
        state = self._registry.get(job_id)
        if self._registry.set_paused(state, True):
            self._reporter.job_paused(state)

    def resume_job(self, job_id: UUID) -> None:
        """Start runs of a paused job again from its next fire."""
        if self._binding.foreign():
            return self._binding.call(self.resume_job, job_id)
        state = self._registry.get(job_id)
        if self._registry.set_paused(state, False):
            self._reporter.job_resumed(state)

    def reschedule_job(self, job_id: UUID, timer: Timer | JobBuilder) -> datetime | None:
        """Give a job a new timer; returns its next fire. Never re-fires an instant it fired."""
        if self._binding.foreign():
            return self._binding.call(self.reschedule_job, job_id, timer)
        state = self._registry.get(job_id)
        if isinstance(timer, JobBuilder):
            timer = timer.timer
        if not callable(getattr(timer, "next_after", None)):
            raise InvalidJobError(f"reschedule_job() needs a timer, got {timer!r}")
        if self._registry.shared_schedule:
            check_shared(timer, state.job.name)
        now = seconds_to_us(self.clock.time())
        timer = anchor_every(timer, now, on_epoch_grid=self._registry.shared_schedule)
        after = now if state.last_us is None else max(now, state.last_us)
        first = next_fire_us(timer, after)
        self._registry.replace_next(state, first, timer)
        if first is not None:
            self._wake_if_sooner(first)
        self._reporter.job_rescheduled(state)
        return None if first is None else from_us(first)

    # -- decorators --------------------------------------------------------------------
    def cron(
        self, expr: str, tz: Any = "UTC", *, extended: bool = False, **options: Any
    ) -> Callable[[F], F]:
        """``@scheduler.cron("0 * * * *")`` — same as ``add_job(Job.cron(...).do(fn))``."""
        return self._decorator(Job.cron(expr, tz, extended=extended), options)

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

    # -- durable tasks -------------------------------------------------------------------
    @overload
    def task(self, fn: TaskFunction[P], /) -> Task[P]: ...

    @overload
    def task(
        self,
        *,
        name: str | None = None,
        queue: str = DEFAULT_QUEUE,
        priority: int = 0,
        retries: int = 3,
        backoff: Backoff | None = None,
        timeout: float | timedelta | None = None,
        unique: Unique | None = None,
    ) -> Callable[[TaskFunction[P]], Task[P]]: ...

    def task(  # type: ignore[misc]  # mypy misreads the ParamSpec-only overload 2 on a method
        self,
        fn: TaskFunction[P] | None = None,
        /,
        *,
        name: str | None = None,
        queue: str = DEFAULT_QUEUE,
        priority: int = 0,
        retries: int = 3,
        backoff: Backoff | None = None,
        timeout: float | timedelta | None = None,
        unique: Unique | None = None,
    ) -> Task[P] | Callable[[TaskFunction[P]], Task[P]]:
        """``@scheduler.task(name=..., retries=..., backoff=..., timeout=..., queue=...,
        priority=..., unique=...)``: register a function as a task (see :func:`beat.task`,
        whose options these are).

        With a store, this scheduler's worker runs the task's jobs and
        ``await the_task.enqueue(...)`` stores one through :attr:`client`.
        """

        def register(f: TaskFunction[P]) -> Task[P]:
            made: Task[P] = make_task(
                name=name,
                queue=queue,
                priority=priority,
                retries=retries,
                backoff=backoff,
                timeout=timeout,
                unique=unique,
            )(f)
            return self.add_task(made)

        return register if fn is None else register(fn)

    def add_task(self, task: Task[P]) -> Task[P]:
        """Register a task built elsewhere (:func:`beat.task`); returns it."""
        if not isinstance(task, Task):
            raise InvalidJobError(f"add_task() takes a beat.Task, got {task!r}")
        self._tasks.add(task)
        if self._client is not None:
            task.bind(self._client)
        worker = self._worker
        if worker is not None and task.policy.queue not in worker.queues:
            # Fine for a task only enqueued here and run by workers of that queue elsewhere;
            # said once, so a typo in a queue name is not a silent "never runs".
            logger.info(
                "task %s: its queue %r is not one this scheduler's worker serves (%s); its"
                " jobs run on workers that serve %r",
                task.name,
                task.policy.queue,
                ", ".join(map(repr, worker.queues)),
                task.policy.queue,
            )
        return task

    @property
    def client(self) -> Client:
        """The client over this scheduler's store (:class:`SchedulerStateError` without one)."""
        if self._client is None:
            raise SchedulerStateError("this scheduler has no store: Scheduler(store=...)")
        return self._client

    # -- events --------------------------------------------------------------------------
    def subscribe(self, listener: ev.Listener, *types: type[ev.Event]) -> object:
        """Call ``listener(event)`` for every event of the given types (all if none).

        Returns a token for :meth:`unsubscribe`. See :mod:`beat._events` for delivery rules.
        """
        token = self._events.subscribe(listener, types)
        if self._job_events is not None:
            self._job_events.refresh()
        return token

    def unsubscribe(self, token: object) -> None:
        self._events.unsubscribe(token)
        if self._job_events is not None:
            self._job_events.refresh()

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
        self._binding.bind(loop)
        self._runs.bind(loop)
        self._state = _State.RUNNING
        self._ready = loop.create_future()
        self._events.start()
        present = self._registry.states()
        # every job not in `present` reaches the gate's hook, if it has one
        self._announce_adds = self._gate.wants_added_jobs
        self._task = loop.create_task(self._run_loop(present), name="beat-scheduler")
        self._reporter.scheduler_started(len(present))

    async def __aenter__(self) -> Scheduler:
        self.start()
        assert self._ready is not None
        try:
            await asyncio.shield(self._ready)
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
        a thread cannot be killed; and a durable job that swallows its cancellation, left
        running after the worker's ``STOP_GRACE`` to its lease). Idempotent; concurrent
        callers all wait for the end.
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
        await self._schedules.close()
        self._runs.close()
        if self._worker is not None:  # scheduled runs and durable jobs share the deadline
            drained = await asyncio.gather(self._runs.drain(timeout), self._worker.stop(timeout))
            cancelled = sum(drained)
        else:
            cancelled = await self._runs.drain(timeout)
        if self._instance is not None:
            await self._instance.stop()  # removes the record while the store is open
        if self._client is not None:
            await self._client.close()
        self._executor.close()
        await self._gate.close()
        for helper in list(self._helpers):
            helper.cancel()
        if self._helpers:
            await asyncio.wait(list(self._helpers))
        self._reporter.scheduler_stopped(cancelled)
        await self._events.aclose(timeout=max(1.0, min(timeout, 5.0)))
        self._binding.unbind()
        self._state = _State.STOPPED
        self._stopped.set()
        return cancelled

    # ------------------------------------------------------------------------------------
    # Running on demand
    # ------------------------------------------------------------------------------------
    async def run_now(self, job_id: UUID) -> Any:
        """Run a job now (outside its schedule) and return its result or raise its error.

        ``ctx.when`` is the current instant. The job's timeout and retries apply; its overlap
        policy does not (an explicit call always runs). Under a coordinator it runs on this
        instance without a claim.
        """
        state = self._registry.get(job_id)
        if self._state is not _State.RUNNING:
            raise SchedulerStateError(f"run_now() needs a running scheduler ({self._state.value})")
        now = seconds_to_us(self.clock.time())
        task = asyncio.get_running_loop().create_task(self._executor.execute(state, now, 1, True))
        self._runs.track(state, task)
        return await task

    async def wait_next_run(self, job_id: UUID) -> RunRecord:
        """Wait for the next finished run of a job (after retries) and return its record."""
        job = self._registry.get(job_id).job
        future = self._reporter.wait_next_run(job)
        try:
            return await future
        finally:
            self._reporter.forget_waiter(job, future)

    # ------------------------------------------------------------------------------------
    # The loop
    # ------------------------------------------------------------------------------------
    async def _run_loop(self, present: list[JobState]) -> None:
        assert self._ready is not None
        try:
            await self._gate.open(present)
            if self._client is not None and self._worker is not None:
                await self._client.open()
                await self._worker.start()
                if self._instance is not None:
                    self._instance.start()
                await self._schedules.open(self._registry.states())
        except BaseException as exc:
            # __aenter__ re-raises it after shutting down (by hand: await shutdown()). The
            # state stays RUNNING so shutdown cleans up.
            self._ready.set_exception(exc)
            return
        self._ready.set_result(None)
        async with self._cond:
            while self._state is _State.RUNNING:
                now = self._observe_time()
                self._fire_due(now)
                delay = 0.0 if self._compact_step() else self._next_delay(now)
                self._sleeping_until = now + seconds_to_us(delay)
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
                self._reporter.clock_jumped(drift)
        self._prev_wall = wall
        self._prev_mono = mono
        return seconds_to_us(wall)

    def _fire_due(self, now: int) -> None:
        """Hand every entry due by ``now`` to :meth:`_fire`; retire exhausted jobs."""
        pop_due = self._registry.queue.pop_due
        while (state := pop_due(now)) is not None:
            try:
                self._fire(state, state.next_us, now)  # a popped entry is at next_us
            except Exception:
                # A broken user timer must not stop the loop: the job stops firing instead.
                self._reporter.schedule_broken(state)
                self._registry.exhaust(state)
            if state.next_us is None and state.registered:
                self._registry.retire(state)
                self._reporter.job_removed(state, exhausted=True)

    def _fire(self, state: JobState, when: int, now: int) -> None:
        """One due instant ``when`` (≤ now) of a job: pause, misfire, then start a run."""
        timer = state.timer
        nxt = next_fire_us(timer, when)
        registry = self._registry
        if state.paused:
            registry.advance(
                state, when, nxt if nxt is None or nxt > now else next_fire_us(timer, now)
            )
            self._reporter.skipped(state, when, "paused")
            return
        late = now - when
        if (nxt is None or nxt > now) and late <= self._threshold_us:
            grace = state.job.options.misfire_grace
            if grace is None or late <= seconds_to_us(grace):
                # The common case: one instant, on time.
                registry.advance(state, when, nxt)
                self._runs.start(state, when)
                return
        decision = decide(timer, state.job.options, when, now, self._threshold_us)
        registry.advance(state, decision.last, decision.next_us)
        self._reporter.misfired(state, decision)
        if decision.run:
            self._runs.start(state, decision.run[0], decision.run[1:] or None)

    def _next_delay(self, now: int) -> float:
        top = self._registry.queue.peek()
        if top is None:
            return self.max_sleep
        return max(0.0, min(self.max_sleep, us_to_seconds(top.when - now)))

    def _compact_step(self) -> bool:
        """One bounded step of heap compaction when garbage is high; True if more remain
        (including a next compaction: entries removed while one ran can be garbage too)."""
        registry = self._registry
        if registry.wants_compaction():
            registry.compact_step()
        return registry.wants_compaction()

    def _compaction_due(self) -> None:
        """Garbage passed the bound: compact now if no loop runs, else let the loop do it."""
        if self._state is _State.RUNNING:
            self._wake_if_sooner(0)
        else:
            self._registry.compact()

    def _move_next(self, state: JobState, next_us: int) -> None:
        """Move a job's pending instant (coordinator catch-up) and wake the loop if sooner."""
        self._registry.replace_next(state, next_us)
        self._wake_if_sooner(next_us)

    def _wake_if_sooner(self, when: int) -> None:
        """Wake the loop if it sleeps past ``when`` (never from inside the loop's own step)."""
        until = self._sleeping_until
        if until is None or when >= until or self._wake_pending:
            return
        self._wake_pending = True
        spawn(self._helpers, self._notify())

    async def _notify(self) -> None:
        async with self._cond:
            self._wake_pending = False
            self._cond.notify()

    def __repr__(self) -> str:
        return (
            f"<Scheduler {self._state.value} jobs={len(self._registry)} running={len(self._runs)}>"
        )


def _info(state: JobState) -> JobInfo:
    job = state.job
    return JobInfo(
        id=job.id,
        name=job.name,
        timer=state.timer,
        next_fire=None if state.next_us is None else from_us(state.next_us),
        last_fired=None if state.last_us is None else from_us(state.last_us),
        paused=state.paused,
        running=state.running,
    )
