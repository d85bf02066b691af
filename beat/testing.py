"""Tools for testing code that uses beat — and for beat's own tests.

:class:`FakeClock` replaces the real clock: nothing moves until the test says so, and
``await clock.advance(...)`` runs everything that comes due, in order, deterministically::

    clock = FakeClock(datetime(2026, 3, 1, tzinfo=UTC))
    async with Scheduler(clock=clock) as scheduler:
        scheduler.add_job(Job.every(timedelta(minutes=5)).do(job))
        await clock.advance(timedelta(minutes=15))   # job ran three times, instantly

What it drives: the scheduler's sleeps, run timeouts, retry backoff, jitter, shutdown
deadlines, and ``ctx.sleep`` inside jobs. What it cannot drive: ``asyncio.sleep`` called
directly and plain (sync) job functions, which run in real threads — await
:meth:`beat.Scheduler.wait_next_run` for those.

:class:`EventRecorder` collects the scheduler's events for assertions.

Durable jobs (see ``docs/testing.md``): :func:`assert_enqueued` checks what code under test
stored, with a message listing what *was* stored when it fails; :func:`drain` runs every job
due now, and the jobs those enqueue, to their end without the claim loop and without real
waits::

    clock = FakeClock()
    store = MemoryStore(clock=clock.time)        # the store's time is the fake clock's
    scheduler = Scheduler(store=store, clock=clock)
    ...
    await signup("ada@example.com")                # code that enqueues emails.send
    await assert_enqueued(store, send_email, args=["ada@example.com"])
    await drain(scheduler)                         # ran it (and what it enqueued)
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from types import TracebackType
from typing import TYPE_CHECKING, Any, TypeVar

from ._events import Event, RunEvent, RunSucceeded
from ._exceptions import InvalidJobError
from ._units import seconds_to_us, us_to_seconds

if TYPE_CHECKING:
    from ._client import Client
    from ._scheduler import Scheduler
    from ._tasks import Task, TaskCall
    from ._worker import Worker
    from .stores import JobRecord, Store

__all__ = ["EventRecorder", "FakeClock", "assert_enqueued", "drain"]

E = TypeVar("E", bound=Event)

_DEFAULT_START = datetime(2026, 1, 1, tzinfo=UTC)
# Yields per settle when the loop's ready queue cannot be inspected (e.g. uvloop).
_BLIND_SETTLE_ROUNDS = 64


class _Handle:
    __slots__ = ("callback", "cancelled")

    def __init__(self, callback: Callable[[], None]) -> None:
        self.callback = callback
        self.cancelled = False

    def cancel(self) -> None:
        self.cancelled = True


class FakeClock:
    """A clock that moves only when told to; implements :class:`beat.Clock`.

    ``start`` is the initial wall time (aware; default 2026-01-01T00:00Z). Wall time is kept
    in integer microseconds so instants computed from it are exact.
    """

    def __init__(self, start: datetime = _DEFAULT_START) -> None:
        if start.tzinfo is None:
            raise ValueError(f"FakeClock start must be timezone-aware, got {start!r}")
        self._wall_us = (start - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(microseconds=1)
        self._mono_us = 0
        self._timers: list[tuple[int, int, _Handle]] = []
        self._sequence = itertools.count()

    # -- the Clock protocol ------------------------------------------------------------
    def time(self) -> float:
        return us_to_seconds(self._wall_us)

    def monotonic(self) -> float:
        return us_to_seconds(self._mono_us)

    async def sleep(self, delay: float) -> None:
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()

        def wake() -> None:
            if not future.done():
                future.set_result(None)

        handle = self._call_later(delay, wake)
        try:
            await future
        finally:
            handle.cancel()

    def timeout(self, delay: float | None) -> _FakeTimeout:
        return _FakeTimeout(self, delay)

    # -- moving time -----------------------------------------------------------------------
    @property
    def now(self) -> datetime:
        """The current fake wall time (aware, UTC)."""
        return datetime(1970, 1, 1, tzinfo=UTC) + timedelta(microseconds=self._wall_us)

    async def advance(self, delta: timedelta | float) -> None:
        """Move both clocks forward by ``delta``, running everything due on the way.

        Time moves to each pending deadline in turn; after each step the event loop runs
        until nothing is ready, so each fire's consequences happen before the next deadline.
        """
        step_us = _to_us(delta)
        if step_us < 0:
            raise ValueError(f"advance() cannot go backwards ({delta!r}); use jump() for that")
        target = self._mono_us + step_us
        await self.settle()
        while self._timers and self._timers[0][0] <= target:
            when, _, handle = heapq.heappop(self._timers)
            if handle.cancelled:
                continue
            self._move_to(when)
            handle.callback()
            await self.settle()
        self._move_to(target)
        await self.settle()

    def jump(self, delta: timedelta | float) -> None:
        """Step the wall clock only (NTP step, ``date -s``, VM restore); monotonic stays.

        The scheduler notices at its next wake, at most its ``max_sleep`` later.
        """
        self._wall_us += _to_us(delta)

    async def settle(self) -> None:
        """Let the event loop run until no callback is ready."""
        loop = asyncio.get_running_loop()
        ready = getattr(loop, "_ready", None)
        if ready is None:
            for _ in range(_BLIND_SETTLE_ROUNDS):
                await asyncio.sleep(0)
            return
        await asyncio.sleep(0)
        quiet = 0
        while quiet < 2:  # twice in a row, so callbacks queued by the last ones ran too
            quiet = quiet + 1 if not ready else 0
            await asyncio.sleep(0)

    # -- internals -------------------------------------------------------------------------
    def _move_to(self, mono_us: int) -> None:
        if mono_us > self._mono_us:
            self._wall_us += mono_us - self._mono_us
            self._mono_us = mono_us

    def _call_later(self, delay: float, callback: Callable[[], None]) -> _Handle:
        handle = _Handle(callback)
        delay_us = max(0, seconds_to_us(delay))
        if delay_us == 0:
            asyncio.get_running_loop().call_soon(lambda: None if handle.cancelled else callback())
        else:
            entry = (self._mono_us + delay_us, next(self._sequence), handle)
            heapq.heappush(self._timers, entry)
        return handle

    def __repr__(self) -> str:
        return f"FakeClock(now={self.now.isoformat()!r}, monotonic={self.monotonic():.6f})"


class _FakeTimeout:
    """``asyncio.timeout`` on fake time: cancels the task at the deadline, raises TimeoutError."""

    __slots__ = ("_clock", "_delay", "_expired", "_handle", "_task")

    def __init__(self, clock: FakeClock, delay: float | None) -> None:
        self._clock = clock
        self._delay = delay
        self._expired = False
        self._handle: _Handle | None = None
        self._task: asyncio.Task[object] | None = None

    async def __aenter__(self) -> None:
        if self._delay is None:
            return
        self._task = asyncio.current_task()
        self._handle = self._clock._call_later(self._delay, self._expire)

    def _expire(self) -> None:
        if self._task is not None and not self._task.done():
            self._expired = True
            self._task.cancel()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._handle is not None:
            self._handle.cancel()
        if (
            self._expired
            and exc_type is asyncio.CancelledError
            and self._task is not None
            and self._task.uncancel() == 0
        ):
            raise TimeoutError from exc


class EventRecorder:
    """Subscribes to a scheduler and keeps every event, for assertions.

    ``recorder.of(RunSucceeded)`` lists events of a type; ``recorder.fired(name)`` lists the
    scheduled instants of successful runs of a job, in order.
    """

    def __init__(self, scheduler: Scheduler, *types: type[Event]) -> None:
        self.events: list[Event] = []
        self._scheduler = scheduler
        self._arrived = asyncio.Event()
        self._token = scheduler.subscribe(self._record, *types)

    def _record(self, event: Event) -> None:
        self.events.append(event)
        self._arrived.set()

    async def wait_for(self, kind: type[E], count: int = 1) -> list[E]:
        """Wait until at least ``count`` events of ``kind`` arrived; return them.

        Bound it with ``asyncio.timeout`` when the scheduler runs on real time.
        """
        while len(found := self.of(kind)) < count:
            self._arrived.clear()
            await self._arrived.wait()
        return found

    def of(self, kind: type[E]) -> list[E]:
        return [e for e in self.events if isinstance(e, kind)]

    def fired(self, name: str) -> list[datetime]:
        return [e.when for e in self.of(RunSucceeded) if e.name == name]

    def runs(self, name: str, kind: type[RunEvent] = RunEvent) -> list[RunEvent]:
        return [e for e in self.of(kind) if e.name == name]

    def close(self) -> None:
        self._scheduler.unsubscribe(self._token)


def _to_us(delta: timedelta | float) -> int:
    if isinstance(delta, timedelta):
        return delta // timedelta(microseconds=1)
    return seconds_to_us(delta)


# -------------------------------------------------------------------------------------------
# Durable jobs
# -------------------------------------------------------------------------------------------
#: Jobs a failing :func:`assert_enqueued` lists (the rest are counted).
_SHOWN = 20
#: A real wait (seconds) while runs are in progress and nothing on the loop is ready: long
#: enough for a store's I/O thread or a plain function's thread to answer, short enough to
#: keep a drain of jobs that ``ctx.sleep`` on the fake clock quick.
_RUN_POLL = 0.01


def _store_of(target: Store | Client | Scheduler | Worker) -> Store:
    from ._client import Client
    from ._scheduler import Scheduler
    from ._worker import Worker
    from .stores import Store

    if isinstance(target, Store):
        return target
    if isinstance(target, Client):
        return target.store
    if isinstance(target, Worker):
        return target._store
    if isinstance(target, Scheduler) and target.store is not None:
        return target.store
    raise InvalidJobError(
        f"expected a Store, Client, Worker or Scheduler(store=...), got {target!r}"
    )


async def _all_jobs(store: Store, task: str | None) -> list[JobRecord]:
    jobs: list[JobRecord] = []
    while True:
        page = await store.list_jobs(task=task, limit=1000, after=jobs[-1].id if jobs else None)
        jobs += page
        if len(page) < 1000:
            return jobs


def _describe(record: JobRecord) -> str:
    arguments = [repr(a) for a in record.args] + [f"{k}={v!r}" for k, v in record.kwargs.items()]
    return (
        f"{record.task}({', '.join(arguments)}) scheduled_at={record.scheduled_at.isoformat()} "
        f"queue={record.queue!r} status={record.status.value}"
    )


async def assert_enqueued(
    target: Store | Client | Scheduler | Worker,
    task: Task[Any] | TaskCall[Any] | str,
    *,
    args: Sequence[Any] | None = None,
    kwargs: Mapping[str, Any] | None = None,
    scheduled_after: datetime | None = None,
    scheduled_before: datetime | None = None,
    count: int | None = None,
) -> list[JobRecord]:
    """Assert that jobs of ``task`` were stored (in any status) matching every criterion
    given, and return them, oldest first.

    ``args`` / ``kwargs``: equal to the stored ones (tuples compare as the lists they are
    stored as); ``scheduled_after`` / ``scheduled_before`` (aware): bounds on
    ``scheduled_at``, inclusive; ``count``: exactly this many match (default: at least
    one). On failure an :class:`AssertionError` lists the jobs that *were* stored.
    """
    from ._tasks import Task, TaskCall

    if isinstance(task, Task):
        name = task.name
    elif isinstance(task, TaskCall):
        name = task.task.name
    elif isinstance(task, str):
        name = task
    else:
        raise InvalidJobError(f"expected a task, task.options(...) or a task name, got {task!r}")
    for bound, what in (
        (scheduled_after, "scheduled_after"),
        (scheduled_before, "scheduled_before"),
    ):
        if bound is not None and (not isinstance(bound, datetime) or bound.utcoffset() is None):
            raise InvalidJobError(f"{what} must be an aware datetime, got {bound!r}")
    if count is not None and (isinstance(count, bool) or not isinstance(count, int) or count < 0):
        raise InvalidJobError(f"count must be a non-negative integer, got {count!r}")
    store = _store_of(target)
    wanted_args = None if args is None else _as_stored(list(args))
    wanted_kwargs = None if kwargs is None else _as_stored(dict(kwargs))
    found = [
        record
        for record in await _all_jobs(store, name)
        if (wanted_args is None or record.args == wanted_args)
        and (wanted_kwargs is None or record.kwargs == wanted_kwargs)
        and (scheduled_after is None or record.scheduled_at >= scheduled_after)
        and (scheduled_before is None or record.scheduled_at <= scheduled_before)
    ]
    if (len(found) == count) if count is not None else bool(found):
        return found
    criteria = [f"task {name!r}"]
    for label, value in (
        ("args", wanted_args),
        ("kwargs", wanted_kwargs),
        ("scheduled_after", scheduled_after),
        ("scheduled_before", scheduled_before),
    ):
        if value is not None:
            criteria.append(f"{label}={value!r}")
    expected = f"exactly {count}" if count is not None else "at least one"
    stored = await _all_jobs(store, None)
    lines = [f"  {_describe(r)}" for r in stored[:_SHOWN]]
    if len(stored) > _SHOWN:
        lines.append(f"  ... and {len(stored) - _SHOWN} more")
    raise AssertionError(
        f"expected {expected} job(s) matching {', '.join(criteria)}; {len(found)} matched.\n"
        + (f"Enqueued ({len(stored)}):\n" + "\n".join(lines) if stored else "Nothing was enqueued.")
    )


def _as_stored(value: Any) -> Any:
    """``value`` as it reads back from a store: tuples become lists."""
    if isinstance(value, (list, tuple)):
        return [_as_stored(v) for v in value]
    if isinstance(value, dict):
        return {k: _as_stored(v) for k, v in value.items()}
    return value


async def drain(
    target: Scheduler | Worker,
    *,
    advance: bool = False,
    max_jobs: int = 10_000,
) -> int:
    """Run every job due now of the worker's tasks and queues, and the jobs those enqueue,
    until none is due and none is running; how many executions ran.

    ``target``: a ``Scheduler(store=...)`` (its worker) or a :class:`~beat.Worker`, started or
    not (a started one claims too; drain waits for its runs as well). Runs that sleep on the
    worker's :class:`FakeClock` (``ctx.sleep``, retry backoff of the worker) are carried
    through by advancing that clock to its next timer. ``advance=True`` also moves the fake
    clock to each job still waiting for a later time (a retry, a ``delay``) until none is
    left: the store's time must then follow the same clock (``MemoryStore(clock=clock.time)``).

    :class:`AssertionError` after ``max_jobs`` executions (a job that keeps re-enqueuing
    itself); :class:`~beat.InvalidJobError` for anything that has no worker.
    """
    worker = _worker_of(target)
    clock = worker._clock if isinstance(worker._clock, FakeClock) else None
    store = worker._store
    ran = 0
    while True:
        before = worker.stats.claimed
        runs = await worker.start_due()
        ran += worker.stats.claimed - before
        if ran > max_jobs:
            raise AssertionError(
                f"drain ran {ran} jobs and more are due: does a job keep enqueuing itself?"
            )
        if runs:
            await _finish(runs, clock)
            continue
        if not advance or clock is None:
            return ran
        due = await _next_waiting(worker)
        if due is None:
            return ran
        now = await store.now()
        if due > now:
            await clock.advance(due - now)
            if await store.now() < due:
                raise InvalidJobError(
                    "drain(advance=True) moved the FakeClock but the store's clock did not "
                    "follow: build the store on it (MemoryStore(clock=clock.time))"
                )


def _worker_of(target: Scheduler | Worker) -> Worker:
    from ._scheduler import Scheduler
    from ._worker import Worker

    if isinstance(target, Worker):
        return target
    if isinstance(target, Scheduler):
        worker: Worker | None = getattr(target, "_worker", None)
        if worker is not None:
            return worker
    raise InvalidJobError(f"drain() needs a Worker or a Scheduler(store=...), got {target!r}")


async def _finish(runs: list[asyncio.Task[None]], clock: FakeClock | None) -> None:
    """Wait for ``runs``; while they all wait, move the fake clock to its next timer."""
    pending = set(runs)
    while pending:
        if clock is not None:
            await clock.settle()
        pending = {run for run in pending if not run.done()}
        if not pending:
            return
        _, pending = await asyncio.wait(pending, timeout=_RUN_POLL)
        if pending and clock is not None and clock._timers:
            await clock.advance(max(0, clock._timers[0][0] - clock._mono_us) / 1e6)


async def _next_waiting(worker: Worker) -> datetime | None:
    """The soonest ``scheduled_at`` of a waiting job this worker could claim."""
    from .stores import JobStatus

    names = set(worker._tasks.names())
    queues = set(worker.queues)
    soonest: datetime | None = None
    for record in await _all_jobs(worker._store, None):
        if (
            record.status is JobStatus.SCHEDULED
            and record.task in names
            and record.queue in queues
            and (soonest is None or record.scheduled_at < soonest)
        ):
            soonest = record.scheduled_at
    return soonest
