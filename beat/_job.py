"""Job specifications and their fluent constructors.

A :class:`Job` is *what* to run (function, arguments, name, options) and *when* (a timer)::

    Job.cron("*/5 * * * *", tz="Europe/Berlin").do(report, "daily", name="report")
    Job.every(timedelta(seconds=30)).do(heartbeat)
    Job.cycle(start, timedelta(hours=1)).end_at(stop).do(sync, timeout=600)
    Job.oneshot(at).do(remind, user_id)
    Job.from_timer(my_timer).do(fn)

The constructors return a :class:`JobBuilder`; ``.do(fn, *args, name=..., **options)``
validates everything and returns the :class:`Job`. Every bad value fails right there, naming
the value, before any scheduler has seen the job.

A job is a specification: nothing in it changes once built (timers are immutable too, so jobs
built from one builder share its timer). A job belongs to at most one scheduler at a time;
what changes while it is registered lives in the registry's ``JobState``.
"""

from __future__ import annotations

import contextlib
import functools
import inspect
import math
import os
import random
import uuid
import weakref
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Literal, ParamSpec, overload
from zoneinfo import ZoneInfo

from ._exceptions import InvalidJobError, InvalidScheduleError
from ._history import RunRecord, materialize
from ._timers import Cron, Cycle, Oneshot, Timer, require_aware
from ._units import MAX_DURATION, positive_seconds

if TYPE_CHECKING:
    from ._registry import JobState
    from ._schedules import ScheduleBuilder
    from ._tasks import Task, TaskCall

P = ParamSpec("P")

__all__ = [
    "Backoff",
    "Job",
    "JobBuilder",
    "JobOptions",
    "MisfirePolicy",
    "OverlapPolicy",
    "new_job_id",
]

MisfirePolicy = Literal["coalesce", "skip", "all"]
OverlapPolicy = Literal["skip", "allow", "replace", "queue"]

_MISFIRE_POLICIES = ("coalesce", "skip", "all")
_OVERLAP_POLICIES = ("skip", "allow", "replace", "queue")


@dataclass(frozen=True, slots=True)
class Backoff:
    """Delay before retry ``n`` (1-based): ``min(cap, initial · factor**(n-1))`` ± jitter.

    ``Backoff.constant(5)`` waits 5 s each time; ``Backoff.exponential(1, factor=2, cap=60)``
    waits 1, 2, 4 … up to 60 s. ``jitter`` is a fraction: each delay is multiplied by a random
    factor in ``[1 - jitter, 1 + jitter]`` (after capping). ``initial`` and ``cap`` are at most
    :data:`~beat._units.MAX_DURATION` (100 years), so a retry's due time always fits a store.
    """

    initial: float = 1.0
    factor: float = 2.0
    cap: float = 300.0
    jitter: float = 0.0

    def __post_init__(self) -> None:
        for name in ("initial", "factor", "cap", "jitter"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise InvalidJobError(
                    f"Backoff {name} must be a non-negative number, got {value!r}"
                )
            if name in ("initial", "cap"):
                positive_seconds(value, f"Backoff {name}", allow_zero=True, maximum=MAX_DURATION)
            elif not 0 <= value < math.inf:  # NaN fails too
                raise InvalidJobError(
                    f"Backoff {name} must be a finite non-negative number, got {value!r}"
                )
        if self.factor < 1:
            raise InvalidJobError(f"Backoff factor must be >= 1, got {self.factor!r}")
        if self.jitter > 1:
            raise InvalidJobError(f"Backoff jitter must be within 0..1, got {self.jitter!r}")

    @classmethod
    def constant(cls, delay: float, *, jitter: float = 0.0) -> Backoff:
        return cls(initial=delay, factor=1.0, cap=delay, jitter=jitter)

    @classmethod
    def exponential(
        cls, initial: float = 1.0, *, factor: float = 2.0, cap: float = 300.0, jitter: float = 0.0
    ) -> Backoff:
        return cls(initial=initial, factor=factor, cap=cap, jitter=jitter)

    def delay(self, retry: int, rng: random.Random | None = None) -> float:
        """Seconds to wait before retry number ``retry`` (1 = the first retry)."""
        try:
            grown = self.initial * self.factor ** (retry - 1)
        except OverflowError:  # factor ** (retry - 1) past any float: long since capped
            grown = math.inf if self.initial else 0.0
        base = min(self.cap, grown)
        if self.jitter:
            base *= 1 + (rng or random).uniform(-self.jitter, self.jitter)
        return base


@dataclass(frozen=True, slots=True)
class JobOptions:
    """How a job's runs behave; see docs/guarantees.md §3–§4 and the README's policy table.

    One frozen instance is shared by every job built with the defaults.
    """

    misfire: MisfirePolicy = "coalesce"
    misfire_grace: float | None = None  # seconds; None = unlimited
    misfire_all_limit: int = 100
    overlap: OverlapPolicy = "skip"
    max_instances: int | None = None  # only for overlap="allow"; None = unlimited
    timeout: float | None = None  # seconds
    retries: int = 0
    backoff: Backoff = Backoff()
    jitter: float = 0.0  # seconds of random start delay per fire
    history: int = 10  # finished runs kept per job


_DEFAULT_OPTIONS = JobOptions()


def _build_options(options: Mapping[str, Any]) -> JobOptions:
    if not options:
        return _DEFAULT_OPTIONS
    known = set(JobOptions.__dataclass_fields__)
    unknown = set(options) - known
    if unknown:
        raise InvalidJobError(
            f"unknown job option(s) {sorted(unknown)}; known options: {sorted(known)}"
        )
    values = dict(options)
    misfire = values.get("misfire", "coalesce")
    if misfire not in _MISFIRE_POLICIES:
        raise InvalidJobError(f"misfire must be one of {_MISFIRE_POLICIES}, got {misfire!r}")
    overlap = values.get("overlap", "skip")
    if overlap not in _OVERLAP_POLICIES:
        raise InvalidJobError(f"overlap must be one of {_OVERLAP_POLICIES}, got {overlap!r}")
    if values.get("misfire_grace") is not None:
        values["misfire_grace"] = positive_seconds(
            values["misfire_grace"], "misfire_grace", allow_zero=True
        )
    if values.get("timeout") is not None:
        values["timeout"] = positive_seconds(values["timeout"], "timeout")
    values["jitter"] = positive_seconds(values.get("jitter", 0.0), "jitter", allow_zero=True)
    for name, minimum in (("retries", 0), ("history", 0), ("misfire_all_limit", 1)):
        value = values.get(name, getattr(_DEFAULT_OPTIONS, name))
        if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
            raise InvalidJobError(f"{name} must be an integer >= {minimum}, got {value!r}")
    max_instances = values.get("max_instances")
    if max_instances is not None:
        if (
            isinstance(max_instances, bool)
            or not isinstance(max_instances, int)
            or max_instances < 1
        ):
            raise InvalidJobError(f"max_instances must be an integer >= 1, got {max_instances!r}")
        if overlap != "allow":
            raise InvalidJobError(
                f"max_instances={max_instances} only applies with overlap='allow', "
                f"not overlap={overlap!r}"
            )
    backoff = values.get("backoff", _DEFAULT_OPTIONS.backoff)
    if not isinstance(backoff, Backoff):
        raise InvalidJobError(f"backoff must be a beat.Backoff, got {backoff!r}")
    return JobOptions(**values)


def is_coroutine_function(fn: Callable[..., Any]) -> bool:
    """Whether calling ``fn`` makes a coroutine to await: a coroutine function, through
    ``functools.partial`` layers, or an object whose ``__call__`` is one (what the scheduler's
    jobs and the durable tasks run on the loop; anything else runs in a thread)."""
    while isinstance(fn, functools.partial):
        fn = fn.func
    if inspect.iscoroutinefunction(fn):
        return True
    call = getattr(fn, "__call__", None)  # noqa: B004 - callable objects with async __call__
    return call is not None and inspect.iscoroutinefunction(call)


def _function_facts(fn: Callable[..., Any]) -> tuple[str, bool]:
    """(``module.qualname`` through partials, is it a coroutine function), cached per function."""
    global _last_facts
    last_ref, last = _last_facts
    if last_ref() is fn:  # jobs are mostly built in runs from one function
        return last
    try:
        facts = _FACTS[fn]
    except (KeyError, TypeError):  # TypeError: unhashable or not weak-referenceable
        facts = (_compute_name(fn), is_coroutine_function(fn))
        with contextlib.suppress(TypeError):
            _FACTS[fn] = facts
    with contextlib.suppress(TypeError):
        _last_facts = (weakref.ref(fn), facts)
    return facts


# Jobs built in bulk from one function share one name string and skip the inspection.
# Weak keys: the cache never keeps a function (or the closure state it holds) alive.
_FACTS: weakref.WeakKeyDictionary[Callable[..., Any], tuple[str, bool]] = (
    weakref.WeakKeyDictionary()
)
_last_facts: tuple[Callable[[], object], tuple[str, bool]] = (lambda: None, ("", False))


def _compute_name(fn: Callable[..., Any]) -> str:
    inner = fn
    while isinstance(inner, functools.partial):
        inner = inner.func
    module = getattr(inner, "__module__", None) or ""
    qualname = getattr(inner, "__qualname__", None) or type(inner).__qualname__
    return f"{module}.{qualname}" if module and module != "__main__" else qualname


# Job ids: random (version 4) UUIDs from a private generator seeded from os.urandom, reseeded
# in a forked child so parent and child never share a sequence. Half the cost of uuid.uuid4(),
# which reads os.urandom on every call; ids are identifiers, not secrets.
_ids = random.Random()
os.register_at_fork(after_in_child=_ids.seed)
_V4_CLEAR = ~((0xC000 << 48) | (0xF000 << 64))
_V4_SET = (0x8000 << 48) | (0x4000 << 64)
_new_uuid = object.__new__
_set_field = object.__setattr__


def new_job_id() -> uuid.UUID:
    """A fresh random (version 4) UUID."""
    job_id = _new_uuid(uuid.UUID)
    _set_field(job_id, "int", (_ids.getrandbits(128) & _V4_CLEAR) | _V4_SET)
    _set_field(job_id, "is_safe", uuid.SafeUUID.unknown)
    return job_id


class Job:
    """What to run and when: a function, its arguments, a timer, a name and options.

    Build with :class:`Job`'s class methods. ``id`` is a :class:`uuid.UUID`, ``name``
    defaults to the function's qualified name (``module.qualname``); with a coordinator,
    names must be unique (docs/guarantees.md §6).

    A job is a specification: the scheduler never changes its fields. What changes while it is
    registered (next instant, pause, runs in progress, history) is its runtime state, owned by
    the scheduler's registry (``_registry.JobState``); ``_state`` links to the latest one.
    """

    __slots__ = ("_state", "args", "fn", "id", "is_async", "kwargs", "name", "options", "timer")

    def __init__(
        self,
        timer: Timer,
        fn: Callable[..., Any],
        args: tuple[Any, ...] = (),
        *,
        name: str | None = None,
        kwargs: Mapping[str, Any] | None = None,
        id: uuid.UUID | None = None,
        options: JobOptions | None = None,
    ) -> None:
        if type(timer) not in _BUILTIN_TIMERS and not callable(getattr(timer, "next_after", None)):
            raise InvalidScheduleError(
                f"timer must have a next_after(datetime) method, got {timer!r}"
            )
        if not callable(fn):
            raise InvalidJobError(f"job function must be callable, got {fn!r}")
        if name is not None and (not isinstance(name, str) or not name):
            raise InvalidJobError(f"job name must be a non-empty string, got {name!r}")
        if id is not None and not isinstance(id, uuid.UUID):
            raise InvalidJobError(f"job id must be a uuid.UUID, got {id!r}")
        default_name, is_async = _function_facts(fn)
        self.id: uuid.UUID = id or new_job_id()
        self.name: str = name or default_name
        self.timer: Timer = timer
        self.fn = fn
        self.args = tuple(args)
        self.kwargs: Mapping[str, Any] = dict(kwargs) if kwargs else _EMPTY
        self.options: JobOptions = options or _DEFAULT_OPTIONS
        self.is_async = is_async
        # Written only by _registry.Registry: the runtime state of the job's latest
        # registration (None until first added; kept after removal for history).
        self._state: JobState | None = None

    # -- fluent constructors --------------------------------------------------------------
    @staticmethod
    def cron(expr: str, tz: str | ZoneInfo = "UTC", *, extended: bool = False) -> JobBuilder:
        """A job firing on a cron expression, evaluated in zone ``tz``.

        ``extended=True`` opts in to a leading seconds field and ``L``/``W``/``#``
        (docs/cron.md); without it only the classic 5 fields are accepted.
        """
        return JobBuilder(Cron(expr, tz, extended=extended))

    @staticmethod
    def oneshot(at: datetime) -> JobBuilder:
        """A job firing once at aware ``at`` (at once if already past, subject to grace)."""
        return JobBuilder(Oneshot(at))

    @staticmethod
    def cycle(start_at: datetime, interval: timedelta) -> JobBuilder:
        """A job firing at ``start_at + k·interval``; bound it with ``.end_at(dt)``."""
        return JobBuilder(Cycle(start_at, interval))

    @staticmethod
    def every(interval: timedelta) -> JobBuilder:
        """A job firing every ``interval``, first one interval after it is added."""
        if not isinstance(interval, timedelta):
            return JobBuilder(Cycle(None, interval))  # raises, naming the bad value
        return JobBuilder(_every_cycle(interval))

    @staticmethod
    def from_timer(timer: Timer) -> JobBuilder:
        """A job on any object with ``next_after(datetime) -> datetime | None``."""
        return JobBuilder(timer)

    # -- introspection --------------------------------------------------------------------
    @property
    def history(self) -> list[RunRecord]:
        """The last finished runs, oldest first (bounded by the ``history`` option)."""
        raws = self._state.history if self._state is not None else None
        return [materialize(self.id, self.name, raw) for raw in raws or ()]

    @property
    def paused(self) -> bool:
        return self._state is not None and self._state.registered and self._state.paused

    @property
    def running(self) -> int:
        """Runs of this job in progress right now."""
        return 0 if self._state is None else self._state.running

    def __repr__(self) -> str:
        return f"Job(id={self.id}, name={self.name!r}, timer={self.timer!r})"


_EMPTY: Mapping[str, Any] = {}


@functools.lru_cache(maxsize=256)
def _every_cycle(interval: timedelta) -> Cycle:
    """The unanchored cycle of ``Job.every(interval)``: immutable, so jobs share one per
    interval instead of carrying a copy each (the registry anchors it by making a new one)."""
    return Cycle(None, interval)


_BUILTIN_TIMERS = frozenset({Cron, Cycle, Oneshot})


class JobBuilder:
    """The timer half of a job; finish it with :meth:`do`."""

    __slots__ = ("_timer",)

    def __init__(self, timer: Timer) -> None:
        self._timer = timer

    @property
    def timer(self) -> Timer:
        return self._timer

    def end_at(self, end_at: datetime) -> JobBuilder:
        """Stop a cycle after ``end_at`` (inclusive)."""
        timer = self._timer
        if not isinstance(timer, Cycle):
            raise InvalidScheduleError(f"end_at only applies to cycle/every jobs, not {timer!r}")
        require_aware(end_at, "end_at")
        return JobBuilder(Cycle(timer.start_at, timer.interval, end_at))

    # -- durable schedules (docs/schedules.md) ------------------------------------------------
    def schedule(self, name: str | None = None, **options: Any) -> ScheduleBuilder:
        """A durable schedule named ``name`` (default: its task's name); finish it with
        ``.enqueue(task, *args, **kwargs)``. ``options``: ``misfire`` (``"coalesce"``,
        ``"skip"``, ``"all"``/``"run_all"``), ``misfire_grace``, ``misfire_all_limit``."""
        from ._schedules import ScheduleBuilder

        return ScheduleBuilder(self._timer, name, options)

    @overload
    def enqueue(self, task: Task[P] | TaskCall[P], /, *args: P.args, **kwargs: P.kwargs) -> Job: ...

    @overload
    def enqueue(self, task: str, /, *args: Any, **kwargs: Any) -> Job: ...

    def enqueue(self, task: Task[Any] | TaskCall[Any] | str, /, *args: Any, **kwargs: Any) -> Job:
        """The job enqueuing ``task(*args, **kwargs)`` as one durable job per instant, exactly
        once across replicas sharing the store (``Scheduler(store=...)``; docs/schedules.md).
        Named after the task; use :meth:`schedule` to name it or set its misfire policy."""
        return self.schedule().enqueue(task, *args, **kwargs)

    def do(
        self,
        fn: Callable[..., Any],
        /,
        *args: Any,
        name: str | None = None,
        kwargs: Mapping[str, Any] | None = None,
        id: uuid.UUID | None = None,
        **options: Any,
    ) -> Job:
        """The job calling ``fn(ctx, *args, **kwargs)`` on each fire.

        Options (keyword-only): ``misfire``, ``misfire_grace``, ``misfire_all_limit``,
        ``overlap``, ``max_instances``, ``timeout``, ``retries``, ``backoff``, ``jitter``,
        ``history``. Unknown or bad options raise :class:`~beat.InvalidJobError`.
        Timers are immutable, so jobs built from one builder share its timer.
        """
        return Job(
            self._timer,
            fn,
            args,
            name=name,
            kwargs=kwargs,
            id=id,
            options=_build_options(options) if options else _DEFAULT_OPTIONS,
        )
