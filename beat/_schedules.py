"""Schedules that enqueue durable jobs: every occurrence becomes one stored job.

A *durable schedule* is an ordinary scheduler :class:`~beat.Job` whose function stores a job
instead of doing the work itself::

    scheduler.add_job(Job.cron("0 3 * * *").enqueue(report, 2024))
    scheduler.add_job(
        Job.every(timedelta(minutes=5)).schedule("sync", misfire="run_all").enqueue("sync.run")
    )

Contract (docs/schedules.md):

* The occurrence ``(schedule name, instant)`` becomes one job with the unique key
  :func:`occurrence_key` — ``"schedule:<name>@<UTC ISO instant>"``, any status, any age — so N
  replicas running the same schedule store it once, with no coordinator; the durable machinery
  then retries it and re-runs it after a crash.
* After a successful enqueue the store's ``advance_schedule(name, instant)`` moves the
  cluster's last instant forward; a scheduler that starts reads it to catch up once for the
  whole cluster (``_schedule_sync.py``). A stored schedule keeps it in its own row; a schedule
  defined in code keeps it in a *progress row* named :data:`PROGRESS_PREFIX` + its name: a
  paused stored schedule that no sync loop runs and ``client.schedules`` never lists, created
  on first use (so removing the schedule from the code leaves nothing that fires).
* ``every`` schedules lie on the grid of whole intervals since the Unix epoch, so replicas
  started at different moments compute the same instants.

Everything that can be checked is checked when the job is built: the task, JSON arguments,
the options. The enqueue itself runs as the job's run (retried with backoff while the store
is unreachable, each failed attempt logged and reported as ``RunFailed``).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, Final, ParamSpec, overload

from ._exceptions import (
    InvalidJobError,
    InvalidScheduleError,
    SchedulerStateError,
    SerializationError,
)
from ._job import Backoff, Job, _build_options
from ._tasks import Task, TaskCall, TaskOptions
from ._timers import Cron, Cycle, Oneshot, Timer, from_us
from .stores._base import JSON, JobStatus, NewJob, Unique, check_name, encode_json

if TYPE_CHECKING:
    from ._context import Context
    from .stores import ScheduleRecord, ScheduleSpec

__all__ = [
    "PROGRESS_PREFIX",
    "EnqueueOccurrence",
    "EnqueueTarget",
    "ScheduleBuilder",
    "durable_schedule",
    "job_of_record",
    "occurrence_key",
    "timer_of_spec",
]

P = ParamSpec("P")

_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)
#: Statuses a schedule's unique key conflicts with: all of them, so an occurrence is stored
#: once however far its job got (a finished job is not enqueued again by a late replica).
_EVERY_STATUS: Final = frozenset(JobStatus)
#: The options a schedule may set (how its *occurrences* are handled); the rest are fixed.
_SCHEDULE_OPTIONS: Final = frozenset({"misfire", "misfire_grace", "misfire_all_limit"})
#: Misfire names of stored specs (``run_all``) and of jobs (``all``) are both accepted.
_MISFIRE_ALIASES: Final = {"run_all": "all"}
#: How an occurrence's enqueue runs. ``allow``: occurrences are independent, so one still
#: retrying (store down) must not make the next one count as an overlap. Retries with a
#: capped backoff ride out a store outage of about a minute; each failed attempt is
#: reported. The timeout bounds one attempt against a store that hangs.
_ENQUEUE_OPTIONS: Final[Mapping[str, Any]] = {
    "overlap": "allow",
    "retries": 12,
    "backoff": Backoff.exponential(0.25, factor=2.0, cap=8.0, jitter=0.5),
    "timeout": 30.0,
}


PROGRESS_PREFIX: Final = "~code:"
"""Names of the rows that keep the last instant of schedules defined in code (reserved:
``client.schedules.add`` refuses them, the sync loop never runs them)."""


def progress_row(name: str, stored: bool) -> str:
    """The stored schedule that keeps the last instant of schedule ``name``."""
    return name if stored else PROGRESS_PREFIX + name


def progress_spec(name: str, task: str) -> ScheduleSpec:
    """The progress row of the code-defined schedule ``name``: paused, never run; its
    ``every`` is a placeholder (the timer lives in the code)."""
    from .stores import ScheduleSpec

    return ScheduleSpec(name=PROGRESS_PREFIX + name, task=task, every=86400.0, paused=True)


def occurrence_key(name: str, when: datetime) -> str:
    """The unique key of the job of occurrence ``(name, when)``: ``schedule:<name>@<ISO>``."""
    return f"schedule:{name}@{when.astimezone(UTC).isoformat()}"


@dataclass(frozen=True, slots=True)
class EnqueueTarget:
    """What each occurrence stores: a task name, JSON arguments and the job's options.

    Built only by :meth:`of` or :func:`job_of_record`, which validate every field.
    """

    task: str
    args: tuple[JSON, ...] = ()
    kwargs: Mapping[str, JSON] = field(default_factory=dict)
    queue: str = "default"
    priority: int = 0
    max_attempts: int = 5

    @classmethod
    def of(
        cls, task: Task[Any] | TaskCall[Any] | str, args: Sequence[Any], kwargs: Mapping[str, Any]
    ) -> EnqueueTarget:
        """The target of ``task`` (its policy gives queue, priority and attempts) with these
        arguments; :class:`InvalidJobError` / :class:`SerializationError` naming a bad value."""
        if isinstance(task, Task):
            name, options = task.name, task.policy
        elif isinstance(task, TaskCall):
            name, options = task.task.name, task.options
        elif isinstance(task, str):
            name, options = task, TaskOptions()
        else:
            raise InvalidJobError(
                f"a schedule enqueues a beat Task, task.options(...) or a task name, got {task!r}"
            )
        if options.delay is not None or options.at is not None:
            raise InvalidJobError(
                f"task {name!r}: a schedule's jobs are due at their instant; "
                "delay= and at= do not apply"
            )
        return cls.checked(name, args, kwargs, options.queue, options.priority, options.retries + 1)

    @classmethod
    def checked(
        cls,
        task: str,
        args: Sequence[Any],
        kwargs: Mapping[str, Any],
        queue: str,
        priority: int,
        max_attempts: int,
    ) -> EnqueueTarget:
        check_name(task, "task")
        check_name(queue, "queue")
        for what, value in (("priority", priority), ("max_attempts", max_attempts)):
            if isinstance(value, bool) or not isinstance(value, int):
                raise InvalidJobError(f"{what} must be an integer, got {value!r}")
        if max_attempts < 1:
            raise InvalidJobError(f"max_attempts must be >= 1, got {max_attempts!r}")
        if not isinstance(args, (list, tuple)):
            raise SerializationError(f"args must be a list or tuple, got {type(args).__name__}")
        if not isinstance(kwargs, Mapping):
            raise SerializationError(f"kwargs must be a mapping, got {type(kwargs).__name__}")
        encode_json(list(args), f"schedule of {task!r}: args")
        encode_json(dict(kwargs), f"schedule of {task!r}: kwargs")
        return cls(task, tuple(args), dict(kwargs), queue, priority, max_attempts)


class EnqueueOccurrence:
    """The function of a durable schedule's job: ``await fn(ctx)`` stores the occurrence's job.

    ``stored`` tells a schedule read from the store (kept in step by the sync loop) from one
    defined in code. The result is ``"enqueued <id>"`` or ``"exists <id>"`` (another replica
    stored it first), kept in the job's run history.
    """

    __slots__ = ("stored", "target")

    def __init__(self, target: EnqueueTarget, *, stored: bool = False) -> None:
        self.target = target
        self.stored = stored

    async def __call__(self, ctx: Context) -> str:
        store = ctx.scheduler.store
        if store is None:  # add_job refuses this; kept for a job moved between schedulers
            raise SchedulerStateError("a durable schedule needs Scheduler(store=...)")
        name, when = ctx.name, ctx.when
        [record] = await store.enqueue([self.new_job(name, when)])
        # After the enqueue, never before: a crash in between leaves last_instant behind,
        # and the catch-up that follows finds the occurrence already stored (its key).
        row = progress_row(name, self.stored)
        # False: already at or past ``when``, or no progress row yet (made at start; missing
        # if the store was down then): make sure it exists, then advance.
        advanced = await store.advance_schedule(row, when)
        if not advanced and not self.stored and await store.get_schedule(row) is None:
            await store.put_schedule(progress_spec(name, self.target.task))
            await store.advance_schedule(row, when)
        return f"{'exists' if record.conflict else 'enqueued'} {record.id}"

    def new_job(self, name: str, when: datetime) -> NewJob:
        target = self.target
        return NewJob(
            task=target.task,
            args=target.args,
            kwargs=dict(target.kwargs),
            queue=target.queue,
            priority=target.priority,
            max_attempts=target.max_attempts,
            scheduled_at=when,
            meta={"schedule": name, "instant": when.isoformat()},
            unique=Unique(key=occurrence_key(name, when), period=None, statuses=_EVERY_STATUS),
        )

    def __repr__(self) -> str:
        return f"<enqueue {self.target.task}>"


def is_durable(job: Job) -> bool:
    """Whether ``job`` is a durable schedule (its runs enqueue jobs)."""
    return type(job.fn) is EnqueueOccurrence


def is_stored(job: Job) -> bool:
    """Whether ``job`` is the in-process job of a schedule read from the store."""
    fn = job.fn
    return type(fn) is EnqueueOccurrence and fn.stored


class ScheduleBuilder:
    """A timer, a schedule name and its misfire options; finish with :meth:`enqueue`.

    Made by ``JobBuilder.schedule(name, misfire=..., misfire_grace=..., misfire_all_limit=...)``.
    """

    __slots__ = ("_name", "_options", "_timer")

    def __init__(self, timer: Timer, name: str | None, options: Mapping[str, Any]) -> None:
        if name is not None:
            check_name(name, "schedule name")
        unknown = set(options) - _SCHEDULE_OPTIONS
        if unknown:
            raise InvalidJobError(
                f"unknown schedule option(s) {sorted(unknown)}; a durable schedule takes "
                f"{sorted(_SCHEDULE_OPTIONS)} (the job's own options come from its task)"
            )
        self._timer = _on_epoch_grid(timer)
        self._name = name
        self._options = _schedule_options(options)

    @overload
    def enqueue(self, task: Task[P] | TaskCall[P], /, *args: P.args, **kwargs: P.kwargs) -> Job: ...

    @overload
    def enqueue(self, task: str, /, *args: Any, **kwargs: Any) -> Job: ...

    def enqueue(self, task: Task[Any] | TaskCall[Any] | str, /, *args: Any, **kwargs: Any) -> Job:
        """The job that enqueues ``task(*args, **kwargs)`` at each instant. Its name (the
        schedule's) defaults to the task's name."""
        target = EnqueueTarget.of(task, args, kwargs)
        return durable_schedule(self._timer, target, self._name or target.task, self._options)


def durable_schedule(
    timer: Timer, target: EnqueueTarget, name: str, options: Mapping[str, Any], stored: bool = False
) -> Job:
    """The scheduler job of a durable schedule (options already checked)."""
    return Job(
        timer,
        EnqueueOccurrence(target, stored=stored),
        name=name,
        options=_build_options({**_ENQUEUE_OPTIONS, **options}),
    )


def _schedule_options(options: Mapping[str, Any]) -> dict[str, Any]:
    values = dict(options)
    misfire = values.get("misfire")
    if misfire is not None:
        values["misfire"] = _MISFIRE_ALIASES.get(misfire, misfire)
    _build_options(values)  # raises, naming the bad value
    return values


def _on_epoch_grid(timer: Timer) -> Timer:
    """An ``every`` cycle on the grid of whole intervals since the epoch, so replicas started
    at different moments compute the same instants (any other timer as it is)."""
    if type(timer) is Cycle and timer.start_at is None:
        return Cycle(_EPOCH, timer.interval, timer.end_at)
    return timer


# -------------------------------------------------------------------------------------------
# Stored schedules: from a ScheduleSpec / ScheduleRecord to the timer and the job
# -------------------------------------------------------------------------------------------
def timer_of_spec(spec: ScheduleSpec) -> Timer:
    """The timer of a stored spec: ``cron`` in ``timezone``, ``every`` seconds on the epoch
    grid, or a oneshot ``at``. :class:`InvalidScheduleError` (or :class:`CronSyntaxError`)
    naming the bad value; exactly one of the three must be given."""
    given = [k for k in ("cron", "every", "at") if getattr(spec, k) is not None]
    if len(given) != 1:
        raise InvalidScheduleError(
            f"schedule {spec.name!r}: give exactly one of cron, every, at (got {given or 'none'})"
        )
    if spec.cron is not None:
        if not isinstance(spec.cron, str):
            raise InvalidScheduleError(f"schedule {spec.name!r}: cron must be a string")
        return Cron(spec.cron, spec.timezone, extended=True)  # as the store checks it
    if spec.every is not None:
        every = spec.every
        if isinstance(every, bool) or not isinstance(every, (int, float)):
            raise InvalidScheduleError(
                f"schedule {spec.name!r}: every must be a number of seconds, got {every!r}"
            )
        if not math.isfinite(every) or every <= 0:
            raise InvalidScheduleError(
                f"schedule {spec.name!r}: every must be a positive number of seconds, got {every!r}"
            )
        return Cycle(_EPOCH, timedelta(seconds=every))
    return Oneshot(spec.at)  # type: ignore[arg-type]  # not None: exactly one was given


def job_of_record(record: ScheduleSpec) -> Job:
    """The in-process job of a stored schedule (``stored=True``), every field checked."""
    target = EnqueueTarget.checked(
        record.task,
        record.args,
        record.kwargs,
        record.queue,
        record.priority,
        record.max_attempts,
    )
    options = _schedule_options({"misfire": record.misfire})
    return durable_schedule(timer_of_spec(record), target, record.name, options, stored=True)


def definition(record: ScheduleRecord) -> tuple[Any, ...]:
    """What makes two versions of a stored schedule enqueue differently (not ``paused``)."""
    return (
        record.task,
        record.cron,
        record.every,
        record.at,
        record.timezone,
        encode_json(list(record.args), "args"),
        encode_json(dict(record.kwargs), "kwargs"),
        record.queue,
        record.priority,
        record.max_attempts,
        record.misfire,
    )


def instant_us(value: datetime | None) -> int | None:
    """``value`` as epoch microseconds (``None`` stays ``None``)."""
    if value is None:
        return None
    return (value - _EPOCH) // timedelta(microseconds=1)


def iso(us: int) -> str:
    return from_us(us).isoformat()


def target_of(job: Job) -> EnqueueTarget:
    """What the durable schedule ``job`` enqueues."""
    fn = job.fn
    assert type(fn) is EnqueueOccurrence
    return fn.target
