"""Typed, immutable events and the bus that delivers them.

Every skipped, missed, failed or cancelled run produces an event (and a log line), so nothing
is lost silently; so does every claim and every end of a durable job run by the scheduler's
worker (``DurableJob*``, emitted by :mod:`beat._durable_events`). Subscribe with
:meth:`beat.Scheduler.subscribe`.

Delivery contract: each subscriber has its own bounded queue and its own consumer task, so
events reach a listener in the order they were emitted, a raising listener is logged and
keeps receiving, and a slow listener only delays itself — the scheduler loop only ever does a
``put_nowait``. If a listener falls ``queue_size`` events behind, further events for it are
dropped and counted (one WARNING per overflow episode). Coroutine listeners are awaited;
plain listeners are called on the loop, so they must be quick (hand slow work to a thread).
"""

from __future__ import annotations

import asyncio
import inspect
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, ClassVar, Literal
from uuid import UUID

from ._observers import JobOutcome

__all__ = [
    "ClockJumped",
    "CoordinatorRecovered",
    "CoordinatorUnavailable",
    "DurableJobClaimed",
    "DurableJobEvent",
    "DurableJobFinished",
    "Event",
    "EventBus",
    "FiresMissed",
    "JobAdded",
    "JobEvent",
    "JobPaused",
    "JobRemoved",
    "JobRescheduled",
    "JobResumed",
    "RunCancelled",
    "RunEvent",
    "RunFailed",
    "RunQueued",
    "RunSkipped",
    "RunStarted",
    "RunSucceeded",
    "RunTimedOut",
    "ScheduleProblem",
    "SchedulerStarted",
    "SchedulerStopped",
]

logger = logging.getLogger("beat.events")


@dataclass(frozen=True, slots=True, kw_only=True)
class Event:
    """Base of all events."""


@dataclass(frozen=True, slots=True, kw_only=True)
class SchedulerStarted(Event):
    pass


@dataclass(frozen=True, slots=True, kw_only=True)
class SchedulerStopped(Event):
    cancelled_runs: int  # runs still going at the shutdown deadline, then cancelled


@dataclass(frozen=True, slots=True, kw_only=True)
class ClockJumped(Event):
    """Wall-clock progress differed from monotonic progress (NTP step, suspend, ``date -s``)."""

    delta: float  # seconds the wall clock moved beyond (positive) or behind real elapsed time


@dataclass(frozen=True, slots=True, kw_only=True)
class CoordinatorUnavailable(Event):
    error: str


@dataclass(frozen=True, slots=True, kw_only=True)
class CoordinatorRecovered(Event):
    outage: float  # seconds


@dataclass(frozen=True, slots=True, kw_only=True)
class ScheduleProblem(Event):
    """A stored schedule this instance cannot run as asked (docs/schedules.md); once per
    schedule and problem. ``unknown_task``: no local worker knows its task (its jobs are
    still enqueued); ``name_taken``: a job defined in code has its name (the code's runs);
    ``invalid``: it cannot be built here (it is not run)."""

    schedule: str
    problem: Literal["unknown_task", "name_taken", "invalid"]
    detail: str


@dataclass(frozen=True, slots=True, kw_only=True)
class JobEvent(Event):
    job_id: UUID
    name: str


@dataclass(frozen=True, slots=True, kw_only=True)
class JobAdded(JobEvent):
    next_fire: datetime | None


@dataclass(frozen=True, slots=True, kw_only=True)
class JobRemoved(JobEvent):
    pass


@dataclass(frozen=True, slots=True, kw_only=True)
class JobPaused(JobEvent):
    pass


@dataclass(frozen=True, slots=True, kw_only=True)
class JobResumed(JobEvent):
    next_fire: datetime | None


@dataclass(frozen=True, slots=True, kw_only=True)
class JobRescheduled(JobEvent):
    next_fire: datetime | None


@dataclass(frozen=True, slots=True, kw_only=True)
class FiresMissed(JobEvent):
    """A misfire incident (docs/guarantees.md §3): fires that could not start on time."""

    policy: Literal["coalesce", "skip", "all"]
    missed: int  # due instants found late in this incident
    ran: int  # of those, how many run (coalesce: at most 1)
    dropped: int  # missed - ran
    first: datetime  # earliest missed instant
    last: datetime  # latest missed instant
    capped: bool = False  # True if counting stopped at the scan bound: ``missed`` is a minimum


@dataclass(frozen=True, slots=True, kw_only=True)
class RunEvent(JobEvent):
    when: datetime  # scheduled instant
    attempt: int


@dataclass(frozen=True, slots=True, kw_only=True)
class RunStarted(RunEvent):
    pass


@dataclass(frozen=True, slots=True, kw_only=True)
class RunSucceeded(RunEvent):
    duration: float
    result: str | None


@dataclass(frozen=True, slots=True, kw_only=True)
class RunFailed(RunEvent):
    duration: float
    error: str
    will_retry: bool
    exception: BaseException | None = field(default=None, compare=False, repr=False)


@dataclass(frozen=True, slots=True, kw_only=True)
class RunTimedOut(RunEvent):
    timeout: float
    will_retry: bool
    abandoned_thread: bool  # a plain function cannot be killed: its thread runs on (see docs)


@dataclass(frozen=True, slots=True, kw_only=True)
class RunCancelled(RunEvent):
    reason: Literal["shutdown", "replaced"]


@dataclass(frozen=True, slots=True, kw_only=True)
class RunQueued(RunEvent):
    """overlap="queue": the fire waits for the running run to end, then starts."""


@dataclass(frozen=True, slots=True, kw_only=True)
class RunSkipped(RunEvent):
    """A fire that did not run, and why."""

    # "removed" / "shutdown": a fire waiting under overlap="queue" whose job was removed, or
    # whose scheduler stopped, before the run ahead of it ended.
    reason: Literal[
        "overlap",
        "queue_full",
        "max_instances",
        "paused",
        "not_claimed",
        "coordinator_down",
        "removed",
        "shutdown",
    ]


@dataclass(frozen=True, slots=True, kw_only=True)
class DurableJobEvent(Event):
    """A durable job (a stored job of a task, ``JobRecord``) run by the scheduler's worker:
    ``attempt`` is the execution's attempt as claimed (``> 1``: a retry, or a re-run after a
    lease expired)."""

    job_id: UUID
    task: str
    queue: str
    attempt: int


@dataclass(frozen=True, slots=True, kw_only=True)
class DurableJobClaimed(DurableJobEvent):
    """The worker claimed the job and starts running it."""


@dataclass(frozen=True, slots=True, kw_only=True)
class DurableJobFinished(DurableJobEvent):
    """The execution ended and that was recorded (or could not be): ``outcome`` is one of
    ``succeeded``, ``retried`` (failed, queued again), ``dead`` (failed, no attempt left),
    ``cancelled``, ``lost`` (taken over or finished elsewhere), ``released`` (handed back)
    or ``abandoned`` (see :mod:`beat._observers`). ``duration``: seconds from the claim to
    the end of the function on the scheduler's clock (0.0 if it never started).
    ``error_type`` and ``error_message``: the failure recorded, for ``retried`` and ``dead``
    (``beat.LeaseExpired`` for a job whose lease ran out on its last attempt); else None."""

    outcome: JobOutcome
    duration: float
    error_type: str | None = None
    error_message: str | None = None


Listener = Callable[[Event], Awaitable[None] | None]


class _Subscription:
    __slots__ = ("dropped", "listener", "queue", "task", "types")

    def __init__(self, listener: Listener, types: tuple[type[Event], ...], size: int) -> None:
        self.listener = listener
        self.types = types
        self.queue: asyncio.Queue[Event | None] = asyncio.Queue(size)
        self.task: asyncio.Task[None] | None = None
        self.dropped = 0


class EventBus:
    """Fan-out of events to subscribers; see the module docstring for the contract."""

    __slots__ = ("_running", "_subs", "active")
    queue_size: ClassVar[int] = 10_000

    def __init__(self) -> None:
        self._subs: dict[object, _Subscription] = {}
        self._running = False
        # True while anyone listens: hot paths test this plain attribute and skip building
        # event objects entirely when nobody would receive them.
        self.active = False

    def subscribe(self, listener: Listener, types: tuple[type[Event], ...]) -> object:
        if not callable(listener):
            from ._exceptions import InvalidJobError

            raise InvalidJobError(f"event listener must be callable, got {listener!r}")
        token = object()
        sub = _Subscription(listener, types or (Event,), self.queue_size)
        self._subs[token] = sub
        self.active = True
        if self._running:
            sub.task = asyncio.get_running_loop().create_task(self._consume(sub))
        return token

    def unsubscribe(self, token: object) -> None:
        sub = self._subs.pop(token, None)
        self.active = bool(self._subs)
        if sub is not None and sub.task is not None:
            sub.queue.put_nowait(None) if not sub.queue.full() else sub.task.cancel()

    def wants(self, kind: type[Event]) -> bool:
        """True if some subscriber would receive an event of type ``kind``."""
        return any(issubclass(kind, sub.types) for sub in self._subs.values())

    def emit(self, event: Event) -> None:
        for sub in self._subs.values():
            if isinstance(event, sub.types):
                try:
                    sub.queue.put_nowait(event)
                except asyncio.QueueFull:
                    if not sub.dropped:
                        logger.warning(
                            "event listener %r is %d events behind; dropping events for it",
                            sub.listener,
                            self.queue_size,
                        )
                    sub.dropped += 1

    def start(self) -> None:
        """Start consumer tasks (call on the running loop)."""
        loop = asyncio.get_running_loop()
        self._running = True
        for sub in self._subs.values():
            if sub.task is None:
                sub.task = loop.create_task(self._consume(sub))

    async def aclose(self, timeout: float) -> None:
        """Deliver what is queued (up to ``timeout`` seconds), then stop consumers."""
        self._running = False
        tasks = []
        for sub in self._subs.values():
            if sub.task is not None:
                if sub.queue.full():
                    sub.task.cancel()
                else:
                    sub.queue.put_nowait(None)
                tasks.append(sub.task)
                sub.task = None
        if not tasks:
            return
        _, pending = await asyncio.wait(tasks, timeout=timeout)
        for task in pending:
            task.cancel()
        if pending:
            await asyncio.wait(pending)

    @staticmethod
    async def _consume(sub: _Subscription) -> None:
        while True:
            event = await sub.queue.get()
            if event is None:
                return
            try:
                outcome: Any = sub.listener(event)
                if inspect.isawaitable(outcome):
                    await outcome
            except Exception:
                logger.exception("event listener %r raised on %r", sub.listener, event)
