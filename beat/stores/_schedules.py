"""Stored schedules: recurring or one-off enqueues kept in the store, changeable at runtime.

A :class:`ScheduleSpec` is what a client writes; a :class:`ScheduleRecord` is what a store
returns (the spec plus its version, times and the latest instant enqueued). This module only
validates and converts; each store keeps them in its own table (see ``docs/stores.md``).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from .._cron import Cron
from .._exceptions import InvalidJobError, InvalidScheduleError
from ._base import (
    DEFAULT_MAX_ATTEMPTS,
    DEFAULT_QUEUE,
    JSON,
    _positive_int,
    check_aware,
    check_meta,
    check_name,
    check_priority,
    check_seconds,
    encode_json,
)
from ._errors import SerializationError

__all__ = ["ScheduleRecord", "ScheduleSpec"]

MISFIRE_POLICIES = ("coalesce", "skip", "run_all")
"""The misfire policies of a stored schedule: those of :class:`beat.JobOptions`, with
``"all"`` named ``"run_all"`` (``"all"`` is accepted and stored as ``"run_all"``)."""
_MISFIRE_ALIASES = {"all": "run_all"}


@dataclass(frozen=True, slots=True)
class ScheduleSpec:
    """A schedule as a client writes it (:meth:`beat.stores.Store.put_schedule`).

    ``name`` is the key. Exactly one of ``cron`` (a cron text, checked with
    ``Cron(cron, timezone, extended=True)``), ``every`` (seconds) or ``at`` (an aware instant)
    says when; each occurrence enqueues ``task(*args, **kwargs)`` on ``queue`` with
    ``priority`` and ``max_attempts``. ``misfire``: what to do with occurrences missed while
    nothing ran (``"coalesce"``, ``"skip"``, ``"run_all"`` — the scheduler's ``"all"``, also
    accepted and stored as ``"run_all"``). A ``paused`` schedule enqueues nothing.
    """

    name: str
    task: str
    cron: str | None = None
    every: float | None = None
    at: datetime | None = None
    timezone: str = "UTC"
    args: Sequence[JSON] = ()
    kwargs: Mapping[str, JSON] = field(default_factory=dict)
    queue: str = DEFAULT_QUEUE
    priority: int = 0
    max_attempts: int = DEFAULT_MAX_ATTEMPTS
    misfire: Literal["coalesce", "skip", "run_all", "all"] = "coalesce"
    paused: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class ScheduleRecord(ScheduleSpec):
    """A stored schedule: its spec (``args`` as a list, ``kwargs`` as a dict, ``at`` in UTC),
    plus:

    ``version`` — the store's schedules version at this schedule's last change (so it only
    grows); ``created_at`` / ``updated_at`` — store clock; ``last_instant`` — where a
    scheduler's catch-up starts: the latest occurrence a scheduler recorded as enqueued
    (:meth:`~beat.stores.Store.advance_schedule`), moved up to the store's time by a resume
    or a change of the definition (:func:`moves_last_instant`); it never moves back.
    ``None`` before the first of these.
    """

    version: int
    created_at: datetime
    updated_at: datetime
    last_instant: datetime | None = None

    @property
    def spec(self) -> ScheduleSpec:
        """The spec alone (what :meth:`~beat.stores.Store.put_schedule` would take back)."""
        return ScheduleSpec(
            name=self.name,
            task=self.task,
            cron=self.cron,
            every=self.every,
            at=self.at,
            timezone=self.timezone,
            args=self.args,
            kwargs=self.kwargs,
            queue=self.queue,
            priority=self.priority,
            max_attempts=self.max_attempts,
            misfire=self.misfire,
            paused=self.paused,
        )


@dataclass(frozen=True, slots=True)
class PreparedSchedule:
    """A validated spec, JSON encoded, ready to store. ``content`` is what a put compares
    with the stored row to decide whether anything changed."""

    name: str
    task: str
    cron: str | None
    every: float | None
    at: datetime | None
    timezone: str
    args: str
    kwargs: str
    queue: str
    priority: int
    max_attempts: int
    misfire: str
    paused: bool

    def content(self) -> tuple[Any, ...]:
        return (*self.definition(), self.paused)

    def definition(self) -> tuple[Any, ...]:
        """What the schedule enqueues and when: the content without ``paused``."""
        at = None if self.at is None else self.at.timestamp()
        return (
            self.task,
            self.cron,
            self.every,
            at,
            self.timezone,
            self.args,
            self.kwargs,
            self.queue,
            self.priority,
            self.max_attempts,
            self.misfire,
        )


def moves_last_instant(stored: PreparedSchedule, new: PreparedSchedule) -> bool:
    """Whether storing ``new`` over ``stored`` moves the schedule's ``last_instant`` up to the
    store's current time (never back: the later of the two), in the same write.

    True for a resume (``paused`` true, then false) and for any change of the definition
    (every field but ``paused``: each makes the schedulers replace their job). Nothing before
    that time is then caught up: a resumed schedule goes on from its next instant, a new
    definition starts at its next instant (a oneshot whose ``at`` is not after the change
    never fires). A pause alone moves nothing, nor does a put that changes nothing.
    """
    return (stored.paused and not new.paused) or stored.definition() != new.definition()


def _zone(name: Any) -> str:
    if not isinstance(name, str) or not name:
        raise InvalidScheduleError(f"timezone must be a zone name, got {name!r}")
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        raise InvalidScheduleError(f"unknown time zone {name!r}") from None
    return name


def prepare_schedule(spec: ScheduleSpec) -> PreparedSchedule:
    """Check ``spec`` completely (nothing is stored when this raises)."""
    if not isinstance(spec, ScheduleSpec):
        raise InvalidScheduleError(f"expected a ScheduleSpec, got {type(spec).__name__}")
    name = check_name(spec.name, "schedule name")
    where = f"schedule {name!r}"
    timezone = _zone(spec.timezone)
    given = [k for k in ("cron", "every", "at") if getattr(spec, k) is not None]
    if len(given) != 1:
        raise InvalidScheduleError(
            f"{where}: give exactly one of cron, every, at (got {', '.join(given) or 'none'})"
        )
    every = spec.every
    if every is not None:
        try:
            every = check_seconds(every, f"{where}: every")  # positive, at most 100 years
        except InvalidJobError as exc:
            raise InvalidScheduleError(str(exc)) from None
        if every < 1e-6:  # the timers count microseconds: it would round to nothing
            raise InvalidScheduleError(f"{where}: every must be at least 1 µs, got {every!r}")
    if spec.cron is not None:
        Cron(spec.cron, timezone, extended=True)  # CronSyntaxError names the text and field
    at = None
    if spec.at is not None:
        try:
            at = check_aware(spec.at, f"{where}: at")
        except InvalidJobError as exc:
            raise InvalidScheduleError(str(exc)) from None
    if not isinstance(spec.args, (list, tuple)):
        raise SerializationError(f"{where}: args must be a list or tuple")
    priority = check_priority(spec.priority, f"{where}: priority")
    attempts = _positive_int(spec.max_attempts, f"{where}: max_attempts")  # 32 bits
    misfire: Any = spec.misfire
    if isinstance(misfire, str):
        misfire = _MISFIRE_ALIASES.get(misfire, misfire)
    if misfire not in MISFIRE_POLICIES:
        raise InvalidScheduleError(
            f"{where}: misfire must be one of {MISFIRE_POLICIES}, got {spec.misfire!r}"
        )
    if not isinstance(spec.paused, bool):
        raise InvalidScheduleError(f"{where}: paused must be True or False, got {spec.paused!r}")
    return PreparedSchedule(
        name=name,
        task=check_name(spec.task, f"{where}: task"),
        cron=spec.cron,
        every=every,
        at=at,
        timezone=timezone,
        args=encode_json(list(spec.args), f"{where}: args"),
        kwargs=check_meta(spec.kwargs, f"{where}: kwargs"),
        queue=check_name(spec.queue, f"{where}: queue"),
        priority=priority,
        max_attempts=attempts,
        misfire=misfire,
        paused=spec.paused,
    )


def make_record(
    p: PreparedSchedule,
    *,
    version: int,
    created_at: datetime,
    updated_at: datetime,
    last_instant: datetime | None,
) -> ScheduleRecord:
    """The record of a stored schedule (stores read their row back into a PreparedSchedule)."""
    return ScheduleRecord(
        name=p.name,
        task=p.task,
        cron=p.cron,
        every=p.every,
        at=p.at,
        timezone=p.timezone,
        args=json.loads(p.args),
        kwargs=json.loads(p.kwargs),
        queue=p.queue,
        priority=p.priority,
        max_attempts=p.max_attempts,
        misfire=p.misfire,  # type: ignore[arg-type]  # checked against MISFIRE_POLICIES
        paused=p.paused,
        version=version,
        created_at=created_at,
        updated_at=updated_at,
        last_instant=last_instant,
    )
