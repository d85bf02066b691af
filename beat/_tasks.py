"""Tasks: functions registered by name, with the policy their durable jobs run under.

A :class:`Task` is what a durable job refers to: the job row stores the task's *name* and
JSON arguments, never the function (no pickles), and a worker runs a job only if it knows a
task of that name. ``@scheduler.task(...)`` (or :func:`task` plus a :class:`TaskRegistry`)
registers one; ``await my_task.enqueue(*args, **kwargs)`` stores a job and returns a
:class:`JobHandle`.

``enqueue`` is typed with the function's own parameters (minus the leading ``ctx``), so mypy
checks its arguments. A ``ParamSpec`` admits no extra keywords, so per-call options go
through :meth:`Task.options`: ``await send.options(delay=3600).enqueue("a@b.c")``.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Concatenate, Generic, ParamSpec, Protocol, overload
from uuid import UUID

from ._exceptions import DuplicateJobError, InvalidJobError
from ._job import Backoff, is_coroutine_function
from ._units import MAX_DURATION, aware_instant, positive_seconds
from .stores._base import MAX_INT32, Unique, check_name, check_priority, check_unique

if TYPE_CHECKING:
    from .stores import JobRecord

__all__ = ["Enqueuer", "JobHandle", "Task", "TaskCall", "TaskOptions", "TaskRegistry", "task"]

P = ParamSpec("P")

#: A task's function: ``fn(ctx, *args, **kwargs)``, sync or async.
TaskFunction = Callable[Concatenate[Any, P], Any]

DEFAULT_QUEUE = "default"


class Enqueuer(Protocol):
    """What a task needs to store its jobs: a :class:`beat.Client` (or a worker's)."""

    async def enqueue_call(
        self, task: str, args: tuple[Any, ...], kwargs: dict[str, Any], options: TaskOptions
    ) -> JobHandle: ...

    async def result(self, id: UUID, timeout: float | None = None) -> Any: ...

    async def get_record(self, id: UUID) -> JobRecord | None: ...


@dataclass(frozen=True, slots=True)
class TaskOptions:
    """How a task's jobs are stored and retried. ``retries``: attempts after the first;
    ``delay`` (seconds) or ``at`` (aware datetime): when the job becomes due; ``unique``
    (a :class:`beat.stores.Unique`): store no second job with the same key while one is in
    the given statuses (the store enforces it; the handle says ``conflict=True``).

    :meth:`validated` holds the contract, checked where the options are given (``@task``,
    ``task.options(...)``, ``enqueue_by_name``) with the checks every store applies:
    ``queue`` a non-empty string without NUL or lone surrogates; ``priority`` 32 bits;
    ``retries`` from 0 to 2**31 - 2; ``timeout`` (seconds or a timedelta) positive and
    ``delay`` non-negative, both at most :data:`~beat._units.MAX_DURATION` (100 years);
    ``at`` aware and no later than :data:`~beat._units.LATEST_INSTANT` (9999-01-01 UTC);
    ``unique`` a valid :class:`~beat.stores.Unique`."""

    queue: str = DEFAULT_QUEUE
    priority: int = 0
    retries: int = 3
    backoff: Backoff = Backoff()  # noqa: RUF009 - frozen, so one shared default is safe
    timeout: float | None = None
    delay: float | None = None
    at: datetime | None = None
    unique: Unique | None = None

    def validated(self) -> TaskOptions:
        """These options checked (:class:`InvalidJobError` naming the bad one), with
        ``timeout`` and ``delay`` as float seconds."""
        check_name(self.queue, "queue")
        check_priority(self.priority, "priority")
        retries = self.retries
        if isinstance(retries, bool) or not isinstance(retries, int):
            raise InvalidJobError(f"retries must be an integer, got {retries!r}")
        if not 0 <= retries < MAX_INT32:  # max_attempts = retries + 1 is 32 bits
            raise InvalidJobError(f"retries must be from 0 to {MAX_INT32 - 1}, got {retries!r}")
        if not isinstance(self.backoff, Backoff):
            raise InvalidJobError(f"backoff must be a beat.Backoff, got {self.backoff!r}")
        timeout = (
            None
            if self.timeout is None
            else positive_seconds(self.timeout, "timeout", maximum=MAX_DURATION)
        )
        delay = (
            None
            if self.delay is None
            else positive_seconds(self.delay, "delay", allow_zero=True, maximum=MAX_DURATION)
        )
        if self.at is not None:
            aware_instant(self.at, "at")
            if delay is not None:
                raise InvalidJobError("give either delay or at, not both")
        if self.unique is not None:
            if not isinstance(self.unique, Unique):
                raise InvalidJobError(
                    f"unique must be a beat.stores.Unique(...), got {self.unique!r}"
                )
            check_unique(self.unique, "unique")
        canonical = (timeout, type(timeout), delay, type(delay))
        if canonical == (self.timeout, type(self.timeout), self.delay, type(self.delay)):
            return self  # the common case (a task's own options): no copy
        return replace(self, timeout=timeout, delay=delay)


@dataclass(frozen=True, slots=True)
class JobHandle:
    """A stored job: its ``id``, and a way to wait for its result.

    ``conflict`` is true when the enqueue found a job with the same unique key (see
    :class:`beat.stores.Unique`): nothing new was stored (or the waiting job was updated,
    with ``on_conflict="replace"``) and ``id`` and ``task`` are that existing job's (keys are
    global: with an explicit key it may be a job of another task).
    """

    id: UUID
    task: str
    _enqueuer: Enqueuer
    conflict: bool = False

    async def result(self, timeout: float | None = None) -> Any:
        """The job's result once it succeeded (see :meth:`beat.Client.result`)."""
        return await self._enqueuer.result(self.id, timeout)

    async def record(self) -> JobRecord | None:
        return await self._enqueuer.get_record(self.id)


class Task(Generic[P]):
    """A function runnable as a durable job; ``fn(ctx, *args, **kwargs)``.

    Build with :func:`task` or ``@scheduler.task``. ``name`` defaults to the function's
    ``module.qualname``; it is what the store keeps, so keep it stable across deploys.
    """

    __slots__ = ("__dict__", "_enqueuer", "fn", "is_async", "name", "policy")

    def __init__(
        self,
        fn: TaskFunction[P],
        *,
        name: str | None = None,
        options: TaskOptions | None = None,
    ) -> None:
        if not callable(fn):
            raise InvalidJobError(f"a task needs a callable, got {fn!r}")
        if name is not None:
            check_name(name, "task name")
        self.fn = fn
        self.name = name or f"{fn.__module__}.{fn.__qualname__}"
        self.policy = (options or TaskOptions()).validated()
        # An object with an async __call__ is a coroutine function too: run on the loop.
        self.is_async = is_coroutine_function(fn)
        self._enqueuer: Enqueuer | None = None
        functools.update_wrapper(self, fn)  # type: ignore[arg-type]

    def bind(self, enqueuer: Enqueuer) -> Task[P]:
        """Store this task's jobs through ``enqueuer`` (a :class:`beat.Client`)."""
        self._enqueuer = enqueuer
        return self

    def options(self, **overrides: Any) -> TaskCall[P]:
        """This task with per-call options (``delay``, ``at``, ``queue``, ``priority``...)."""
        unknown = set(overrides) - set(TaskOptions.__dataclass_fields__)
        if unknown:
            raise InvalidJobError(f"unknown task option(s) {sorted(unknown)}")
        return TaskCall(self, replace(self.policy, **overrides).validated())

    async def enqueue(self, /, *args: P.args, **kwargs: P.kwargs) -> JobHandle:
        """Store one job of this task; returns once it is durably stored. (``self`` is
        positional-only: a task may have a parameter named ``self``.)"""
        return await TaskCall(self, self.policy).enqueue(*args, **kwargs)

    def __repr__(self) -> str:
        return f"<Task {self.name}>"


class TaskCall(Generic[P]):
    """A task with options fixed for one or more enqueues."""

    __slots__ = ("options", "task")

    def __init__(self, task: Task[P], options: TaskOptions) -> None:
        self.task = task
        self.options = options

    async def enqueue(self, /, *args: P.args, **kwargs: P.kwargs) -> JobHandle:
        enqueuer = self.task._enqueuer
        if enqueuer is None:
            raise InvalidJobError(
                f"task {self.task.name!r} is not bound to a store: register it with a "
                "Scheduler(store=...) or call task.bind(beat.Client(store))"
            )
        return await enqueuer.enqueue_call(self.task.name, args, dict(kwargs), self.options)


@overload
def task(fn: TaskFunction[P], /) -> Task[P]: ...


@overload
def task(
    *,
    name: str | None = None,
    queue: str = DEFAULT_QUEUE,
    priority: int = 0,
    retries: int = 3,
    backoff: Backoff | None = None,
    timeout: float | timedelta | None = None,
    unique: Unique | None = None,
) -> Callable[[TaskFunction[P]], Task[P]]: ...


def task(
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
    """``@task`` / ``@task(name=..., retries=..., unique=Unique(...))``: make a
    :class:`Task` of a function."""
    options = TaskOptions(
        queue=queue,
        priority=priority,
        retries=retries,
        backoff=backoff or Backoff(),
        timeout=None if timeout is None else positive_seconds(timeout, "timeout"),
        unique=unique,
    )

    def make(f: TaskFunction[P]) -> Task[P]:
        return Task(f, name=name, options=options)

    return make if fn is None else make(fn)


class TaskRegistry:
    """Tasks by name: what a worker can run. Names are unique."""

    __slots__ = ("_tasks",)

    def __init__(self) -> None:
        self._tasks: dict[str, Task[Any]] = {}

    def add(self, task: Task[Any]) -> None:
        existing = self._tasks.get(task.name)
        if existing is not None and existing is not task:
            raise DuplicateJobError(f"a task named {task.name!r} is already registered")
        self._tasks[task.name] = task

    def get(self, name: str) -> Task[Any] | None:
        return self._tasks.get(name)

    def names(self) -> list[str]:
        return sorted(self._tasks)

    def __iter__(self) -> Iterator[Task[Any]]:
        return iter(list(self._tasks.values()))

    def __len__(self) -> int:
        return len(self._tasks)
