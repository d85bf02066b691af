"""Records and the abstract interface of a durable job store (see ``docs/stores.md``).

A store keeps jobs — a task name plus JSON arguments — and moves each through its states with
one atomic transition per method (one statement or one transaction)::

    enqueue ─► scheduled ──(scheduled_at reached)──► queued ──claim──► running ──► succeeded
                   ▲                                   ▲                  │
                   └──── fail, attempts remain ────────┼──────────────────┤
                                                       │                  ├─► dead
                              release, lease expiry ───┘                  └─► cancelled

``scheduled`` and ``queued`` are one stored state (``queued``); a record reports
``scheduled`` while its ``scheduled_at`` is later than the store's clock, ``queued`` once due.
So no background process moves jobs between them, and no clock skew can strand one.

``attempt`` counts claims. It only ever grows, so ``(id, attempt)`` names one execution and
is the fencing token: :meth:`Store.complete`, :meth:`Store.fail`, :meth:`Store.release`,
:meth:`Store.mark_cancelled` and :meth:`Store.heartbeat` act only while the job is still
``running`` under that worker and attempt, and return ``False`` (or report the job lost)
otherwise.
"""

from __future__ import annotations

import abc
import asyncio
import contextlib
import enum
import hashlib
import json
import math
import os
import re
import time
import uuid
from collections.abc import Awaitable, Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from json.encoder import c_make_encoder, encode_basestring  # type: ignore[attr-defined]
from types import TracebackType
from typing import TYPE_CHECKING, Any, Literal, NamedTuple, Self, TypeAlias
from uuid import UUID

from .._exceptions import InvalidJobError
from .._units import MAX_DURATION, aware_instant, positive_seconds
from ._errors import (
    BatchSerializationError,
    SerializationError,
    StoreConfigError,
    StoreUnavailableError,
)
from ._waits import Waits

if TYPE_CHECKING:
    from ._schedules import ScheduleRecord, ScheduleSpec

__all__ = [
    "MAX_LOG_MESSAGE",
    "Claimed",
    "Heartbeat",
    "InstanceRecord",
    "JobRecord",
    "JobStatus",
    "LogEntry",
    "NewJob",
    "PruneRule",
    "Store",
    "Unique",
]

JSON: TypeAlias = Any
"""A value ``json.dumps(value, allow_nan=False)`` accepts and reads back unchanged
(``None``, ``bool``, ``int``, finite ``float``, ``str``, lists/tuples and ``str``-keyed dicts
of those); tuples come back as lists. Strings are UTF-8 text: no NUL (PostgreSQL cannot
store it) and no lone surrogate (``"\\ud800"``: not UTF-8 at all); lists and dicts nest at
most :data:`MAX_JSON_DEPTH` deep."""

MAX_JSON_DEPTH = 100
"""Levels of lists and dicts a stored JSON value may nest. Deeper values are refused when
stored: reading them back recurses once per level, and a value written near Python's
recursion limit would fail every later read of its job (and every listing showing it)."""

MAX_LIST_LIMIT = 10_000
"""The largest ``limit`` of :meth:`Store.list_jobs`: pages of at most this many jobs (page
on with ``after=``), so one call never reads a whole store into memory."""

MAX_INT32 = 2**31 - 1
"""The largest priority, ``max_attempts``, attempt or claim ``limit`` a store keeps (a
PostgreSQL ``integer``)."""

_SURROGATE = re.compile("[\ud800-\udfff]")
"""A lone surrogate: a ``str`` code point that is not a character and has no UTF-8 form
(what ``errors="surrogateescape"`` decoding leaves for undecodable bytes)."""

#: Above this many bits, an int may have more digits than ``int.__str__`` converts
#: (``sys.set_int_max_str_digits`` accepts limits down to 640 digits, about 2,126 bits).
_BIG_INT_BITS = 2_000

DEFAULT_QUEUE = "default"
DEFAULT_MAX_ATTEMPTS = 5
LEASE_EXPIRED = "beat.LeaseExpired"
"""``error_type`` of a job that went ``dead`` because its last attempt's lease expired."""


class JobStatus(enum.StrEnum):
    """Where a job is. ``succeeded``, ``dead`` and ``cancelled`` are final."""

    SCHEDULED = "scheduled"
    """Waiting, due later (``scheduled_at`` after the store's clock)."""
    QUEUED = "queued"
    """Waiting and due: the next :meth:`Store.claim` of its queue and task may take it."""
    RUNNING = "running"
    """Claimed by ``worker`` for ``attempt`` until ``lease_expires_at`` (renewed by heartbeats)."""
    SUCCEEDED = "succeeded"
    """Completed; ``result`` holds the JSON result."""
    DEAD = "dead"
    """Failed with no attempts left (or no retry asked); the last error is kept."""
    CANCELLED = "cancelled"
    """Cancelled before it ran, or stopped by its worker after a cancel request."""

    @property
    def finished(self) -> bool:
        return self in _FINISHED


_FINISHED = frozenset({JobStatus.SUCCEEDED, JobStatus.DEAD, JobStatus.CANCELLED})
FINISHED_VALUES = tuple(sorted(s.value for s in _FINISHED))
STORED_WAITING = "queued"
"""The one stored value of both ``scheduled`` and ``queued``."""
MAX_LOG_MESSAGE = 8192
"""Characters of a :class:`LogEntry` message a store keeps; the rest is cut off."""


@dataclass(frozen=True, slots=True)
class Unique:
    """Enqueue a job only if no other job with the same key exists (see ``docs/stores.md``).

    An enqueue *conflicts* when a stored job has the same ``key``, was created less than
    ``period`` seconds ago by the store's clock (``None``: at any time) and is in one of
    ``statuses``. ``SCHEDULED`` and ``QUEUED`` are one stored state, so either (or both)
    matches every waiting job. On a conflict nothing new is stored and the existing job is
    returned with ``conflict=True``; with ``on_conflict="replace"`` a still-waiting existing
    job first takes the new job's args, kwargs, meta, priority, queue, max_attempts and
    due time (a running or finished one is left alone, as with ``"ignore"``).

    ``key=None`` derives the key from the task name, args and kwargs (a stable SHA-256 of
    their canonical JSON), so equal calls share a key.
    """

    key: str | None = None
    period: float | None = None
    statuses: frozenset[JobStatus] = frozenset(
        {JobStatus.SCHEDULED, JobStatus.QUEUED, JobStatus.RUNNING}
    )
    on_conflict: Literal["ignore", "replace"] = "ignore"


@dataclass(frozen=True, slots=True)
class LogEntry:
    """One log record of one attempt of a job, as :meth:`Store.add_logs` stores it.

    ``message`` is already formatted (with the exception text, if any); stores keep its
    first :data:`MAX_LOG_MESSAGE` characters. ``at`` is aware (read back in UTC).
    """

    attempt: int
    at: datetime
    level: str
    logger: str
    message: str


@dataclass(frozen=True, slots=True)
class PruneRule:
    """Which finished jobs :meth:`Store.prune` deletes.

    Applies to jobs in ``status`` (a finished one: ``succeeded``, ``dead``, ``cancelled``)
    and of ``task`` (``None``: every task). Among those, a job is deleted when it finished
    more than ``max_age`` seconds ago (store clock), or when ``max_count`` newer ones (by
    ``finished_at``, then insertion order) exist. Give ``max_age``, ``max_count`` or both.
    """

    status: JobStatus
    task: str | None = None
    max_age: float | None = None
    max_count: int | None = None


@dataclass(frozen=True, slots=True)
class InstanceRecord:
    """A live beat process as it last reported itself (:meth:`Store.record_instance`)."""

    name: str
    host: str
    pid: int
    started_at: datetime
    last_seen: datetime
    info: dict[str, JSON]


@dataclass(frozen=True, slots=True)
class NewJob:
    """What :meth:`Store.enqueue` takes.

    ``scheduled_at`` (aware) runs the job no earlier than that instant; otherwise it is due
    ``delay`` seconds after the store's clock (the database clock for PostgreSQL) at enqueue
    time. ``priority``: higher first. ``max_attempts``: claims allowed before the job is
    ``dead`` (1 = never retried).
    """

    task: str
    args: Sequence[JSON] = ()
    kwargs: Mapping[str, JSON] = field(default_factory=dict)
    queue: str = DEFAULT_QUEUE
    priority: int = 0
    max_attempts: int = DEFAULT_MAX_ATTEMPTS
    scheduled_at: datetime | None = None
    delay: float = 0.0
    meta: Mapping[str, JSON] = field(default_factory=dict)
    """Free-form JSON kept with the job (trace context, the schedule or parent that made it)."""
    unique: Unique | None = None
    """Store it only if no conflicting job exists (see :class:`Unique`)."""


@dataclass(frozen=True, slots=True)
class JobRecord:
    """One stored job as read at one moment. Times are aware UTC datetimes.

    ``conflict`` is only ever ``True`` on a record returned by :meth:`Store.enqueue`: the
    job was not stored because of its :class:`Unique` key and this is the existing job.
    """

    id: UUID
    task: str
    args: list[JSON]
    kwargs: dict[str, JSON]
    queue: str
    priority: int
    status: JobStatus
    attempt: int
    max_attempts: int
    scheduled_at: datetime
    created_at: datetime
    started_at: datetime | None = None
    finished_at: datetime | None = None
    worker: str | None = None
    lease_expires_at: datetime | None = None
    result: JSON = None
    error_type: str | None = None
    error_message: str | None = None
    error_traceback: str | None = None
    cancel_requested: bool = False
    meta: dict[str, JSON] = field(default_factory=dict)
    progress: JSON = None
    unique_key: str | None = None
    conflict: bool = False


class Claimed(list["JobRecord"]):
    """What :meth:`Store.claim` returns: the jobs it took (the list itself), and in
    :attr:`ended` the jobs it ended instead of taking them: running jobs whose lease expired
    on their last attempt (now ``dead``, ``beat.LeaseExpired``) or after a cancel request
    (now ``cancelled``). Their worker died or stalled, so the claim that ends them is the
    only one who can tell (the worker logs them and reports them to its observers)."""

    __slots__ = ("ended",)

    def __init__(self, taken: Iterable[JobRecord] = (), ended: Iterable[JobRecord] = ()) -> None:
        super().__init__(taken)
        self.ended: list[JobRecord] = list(ended)


@dataclass(frozen=True, slots=True)
class Heartbeat:
    """What :meth:`Store.heartbeat` found for the executions it was given.

    ``lost``: ids no longer running under this worker and attempt (lease taken over, job
    cancelled or finished by someone else) — stop them, their outcome will be refused.
    ``cancel_requested``: ids still owned (lease extended) whose cancellation was requested —
    stop them and call :meth:`Store.mark_cancelled`.
    """

    lost: frozenset[UUID] = frozenset()
    cancel_requested: frozenset[UUID] = frozenset()


# -------------------------------------------------------------------------------------------
# Validation and encoding shared by the backends
# -------------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class PreparedUnique:
    """A validated :class:`Unique`: the key and the stored statuses it conflicts with."""

    key: str
    period: float | None
    statuses: tuple[str, ...]  # stored values: "queued" stands for scheduled and queued
    replace: bool


@dataclass(frozen=True, slots=True)
class JobShape:
    """What a job shares with every job of the same task and options — all but its id,
    arguments and unique key — checked and encoded once per batch, not once per job (and
    written once per statement by PostgreSQL)."""

    task: str
    queue: str
    priority: int
    max_attempts: int
    scheduled_at: datetime | None  # aware UTC; or due ``delay`` seconds after the insert
    delay: float
    meta: str  # JSON text of a dict


@dataclass(slots=True)  # internal, never changed: frozen would only slow construction
class PreparedJob:
    """A validated :class:`NewJob` with its id and JSON text, ready to store."""

    id: UUID
    shape: JobShape
    args: str
    kwargs: str
    unique: PreparedUnique | None = None

    def to_new_job(self) -> NewJob:
        """The :class:`NewJob` this was prepared from (up to tuples read back as lists)."""
        shape, unique = self.shape, self.unique
        return NewJob(
            task=shape.task,
            args=json.loads(self.args),
            kwargs=json.loads(self.kwargs),
            queue=shape.queue,
            priority=shape.priority,
            max_attempts=shape.max_attempts,
            scheduled_at=shape.scheduled_at,
            delay=shape.delay,
            meta=json.loads(shape.meta),
            unique=None
            if unique is None
            else Unique(
                key=unique.key,
                period=unique.period,
                statuses=frozenset(JobStatus(status) for status in unique.statuses),
                on_conflict="replace" if unique.replace else "ignore",
            ),
        )


class Enqueued(NamedTuple):
    """What :meth:`Store.enqueue_prepared` returns per job: its id and whether it was a
    unique-key conflict (then ``id`` is the existing job's, and ``task`` its task — unique
    keys are global, so it may be another task's job; ``None``: not told)."""

    id: UUID
    conflict: bool
    task: str | None = None


def as_enqueued(jobs: Sequence[PreparedJob], written: Sequence[JobRecord | None]) -> list[Enqueued]:
    """:meth:`Store.enqueue_prepared`'s answer from a store's per-job outcome: ``None`` for a
    job stored as given, else the record it got (a unique conflict's is the existing job)."""
    return [
        Enqueued(job.id, False)
        if record is None
        else Enqueued(record.id, record.conflict, record.task)
        for job, record in zip(jobs, written, strict=True)
    ]


def has_surrogate(text: str) -> bool:
    """Whether ``text`` holds a lone surrogate (then it has no UTF-8 form)."""
    return not text.isascii() and _SURROGATE.search(text) is not None


def _text_problem(text: str) -> str | None:
    """Why ``text`` cannot be stored as a JSON string, or ``None``."""
    if "\x00" in text:
        return "NUL characters"
    if has_surrogate(text):
        return "lone surrogates (U+D800..U+DFFF, not UTF-8)"
    return None


def _check_json(value: Any, where: str, path: list[int]) -> None:
    """Raise the :class:`SerializationError` of the first part of ``value`` that is not
    storable JSON, naming its path; ``path`` holds the containers being walked."""
    if value is None or isinstance(value, bool):
        return
    if isinstance(value, int):
        if value.bit_length() > _BIG_INT_BITS:
            try:
                int.__repr__(value)
            except ValueError:
                raise SerializationError(
                    f"{where}: an int of {value.bit_length()} bits has too many digits to "
                    "write as JSON"
                ) from None
        return
    if isinstance(value, str):
        if "\x00" in value or has_surrogate(value):
            raise SerializationError(f"{where}: strings may not contain {_text_problem(value)}")
        return
    if isinstance(value, float):
        if not math.isfinite(value):
            raise SerializationError(f"{where}: {value!r} is not JSON (NaN or infinity)")
        return
    if isinstance(value, (list, tuple, dict)):
        if id(value) in path:
            raise SerializationError(f"{where}: circular reference")
        if len(path) >= MAX_JSON_DEPTH:
            raise _TooDeep
        path.append(id(value))
        if isinstance(value, dict):
            for key, item in value.items():
                if not isinstance(key, str) or "\x00" in key or has_surrogate(key):
                    raise SerializationError(f"{where}: dict key {key!r} is not a plain string")
                _check_json(item, f"{where}[{key!r}]", path)
        else:
            for index, item in enumerate(value):
                _check_json(item, f"{where}[{index}]", path)
        path.pop()
        return
    raise SerializationError(
        f"{where}: {type(value).__name__} is not JSON; pass plain JSON values "
        "(None, bool, int, float, str, list, dict with str keys)"
    )


def _not_json(value: Any) -> Any:
    raise TypeError(f"{type(value).__name__} is not JSON")


def _make_encoder() -> Callable[[Any], str]:
    """One encoder for every value stored. ``JSONEncoder.encode`` builds the C encoder anew
    on every call, most of the cost for a small value; this builds it once (measured for
    ``[i]``: 3.2 → 0.8 µs). It keeps no cycle markers (a shared marker table is unsafe
    across threads): a cycle ends in RecursionError, which :func:`encode_json` reports."""
    if c_make_encoder is None:  # an interpreter without the C accelerator
        return json.JSONEncoder(allow_nan=False, ensure_ascii=False, separators=(",", ":")).encode
    chunks = c_make_encoder(None, _not_json, encode_basestring, None, ":", ",", False, False, False)

    def encode(value: Any) -> str:
        return "".join(chunks(value, 0))

    return encode


_encode = _make_encoder()


def encode_json(value: Any, where: str) -> str:
    """JSON text of ``value``; :class:`SerializationError` unless it is plain JSON.

    The C encoder goes first: it refuses what is not JSON at all (sets, objects, NaN,
    cycles, ints too long to print). What it lets through, and beat refuses, shows in the
    text: a dict key that is not a string (the encoder turns ``1`` into ``"1"``) needs a
    ``{``; a NUL (PostgreSQL cannot store it) is written ``\u0000``; a lone surrogate (no
    UTF-8 form: SQLite and PostgreSQL refuse it, or worse) is written as itself; nesting
    deeper than :data:`MAX_JSON_DEPTH` needs that many brackets. Only then, or on an error,
    does the Python walk run, to refuse them or to name the bad value's path.
    """
    if not value and type(value) is dict:  # no kwargs, no meta: the common case
        return "{}"
    try:
        text = _encode(value)
    except (TypeError, ValueError, RecursionError) as exc:
        _walk(value, where)  # raises, naming where
        raise SerializationError(f"{where}: {exc}") from exc
    if "{" in text or "\\u0000" in text or has_surrogate(text) or text.count("[") > MAX_JSON_DEPTH:
        _walk(value, where)
    return text


class _TooDeep(Exception):
    """Raised by :func:`_check_json` past :data:`MAX_JSON_DEPTH` levels; :func:`_walk`
    reports it at the value's own path (not one a hundred levels long)."""


def _walk(value: Any, where: str) -> None:
    """:func:`_check_json` from the top: its error, or the one of a value nested too deep
    (past :data:`MAX_JSON_DEPTH`, or past what the caller's stack leaves for the walk)."""
    try:
        _check_json(value, where, [])
    except (_TooDeep, RecursionError):
        raise SerializationError(
            f"{where}: nested too deeply (at most {MAX_JSON_DEPTH} levels of lists and dicts)"
        ) from None


@dataclass(slots=True)  # internal, never changed: frozen would only slow construction
class PreparedResult:
    """One item of :meth:`Store.complete_many` whose result is valid JSON, encoded."""

    index: int
    id: UUID
    attempt: int
    worker: str
    result: str


def prepare_results(
    items: Sequence[tuple[UUID, int, str, JSON]],
) -> tuple[list[PreparedResult], dict[int, SerializationError]]:
    """Validate and encode every result of a batch before anything is written: the items
    to write, and the :class:`SerializationError` of each bad one by index. An execution
    given twice is written by its first item only (the others are refused, as they would
    be one by one), so a store's single statement never sees one row twice."""
    good: list[PreparedResult] = []
    bad: dict[int, SerializationError] = {}
    seen: set[tuple[UUID, int, str]] = set()
    for index, (id, attempt, worker, result) in enumerate(items):
        try:
            text = encode_json(result, "result")
        except SerializationError as exc:
            bad[index] = exc
            continue
        item = PreparedResult(index, to_uuid(id), int(attempt), worker, text)
        key = (item.id, item.attempt, worker)
        if key not in seen:
            seen.add(key)
            good.append(item)
    return good, bad


def batch_outcome(
    count: int,
    written: Sequence[tuple[PreparedResult, bool]],
    bad: Mapping[int, SerializationError],
) -> list[bool]:
    """What :meth:`Store.complete_many` returns (or raises, if some results were bad)."""
    recorded = [False] * count
    for item, ok in written:
        recorded[item.index] = ok
    if bad:
        raise BatchSerializationError(recorded, dict(bad))
    return recorded


def _positive_int(value: Any, what: str, maximum: int = MAX_INT32) -> int:
    """``value``, an int from 1 to ``maximum`` (by default: what a PostgreSQL ``integer``
    holds)."""
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= maximum:
        raise InvalidJobError(f"{what} must be an integer from 1 to {maximum}, got {value!r}")
    return value


def check_priority(value: Any, what: str) -> int:
    """``value``, an int that fits in 32 bits."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidJobError(f"{what} must be an integer, got {value!r}")
    if not -(2**31) <= value <= MAX_INT32:
        raise InvalidJobError(f"{what} must fit in 32 bits, got {value!r}")
    return value


def check_name(value: Any, what: str) -> str:
    """``value``, a non-empty string storable as text: no NUL, no lone surrogate."""
    if not isinstance(value, str) or not value or "\x00" in value or has_surrogate(value):
        raise InvalidJobError(
            f"{what} must be a non-empty string without NUL or lone surrogates, got {value!r}"
        )
    return value


def check_aware(value: Any, what: str) -> datetime:
    """``value``, an aware datetime, in UTC; no later than :data:`beat._units.LATEST_INSTANT`
    (an instant every store keeps and reads back)."""
    return aware_instant(value, what)


def check_seconds(value: Any, what: str, *, zero: bool = False) -> float:
    """``value``, a finite number of seconds, positive (or non-negative with ``zero``) and at
    most :data:`beat._units.MAX_DURATION` (100 years), as a float. Not a timedelta."""
    if (
        (type(value) is int or type(value) is float)  # every enqueue's delay: the short way
        and (value > 0 or (zero and value == 0))  # NaN fails both
        and value <= MAX_DURATION
    ):
        return float(value)
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        kind = "non-negative" if zero else "positive"
        raise InvalidJobError(f"{what} must be a {kind} number, got {value!r}")
    return positive_seconds(value, what, allow_zero=zero, maximum=MAX_DURATION)


def derived_unique_key(task: str, args: Sequence[JSON], kwargs: Mapping[str, JSON]) -> str:
    """The key of ``Unique(key=None)``: the task plus a SHA-256 of the canonical JSON of the
    arguments (sorted keys, tuples as lists), stable across processes and versions."""
    text = json.dumps(
        [task, list(args), kwargs], sort_keys=True, ensure_ascii=False, separators=(",", ":")
    )
    return f"{task}:{hashlib.sha256(text.encode()).hexdigest()}"


def check_unique(unique: Any, where: str) -> PreparedUnique:
    """``unique`` (a :class:`Unique`) checked: the :class:`PreparedUnique` it makes, whose
    ``key`` is ``""`` when it is to be derived from the job (``Unique(key=None)``)."""
    if not isinstance(unique, Unique):
        raise InvalidJobError(f"{where} must be a Unique or None, got {unique!r}")
    key = "" if unique.key is None else check_name(unique.key, f"{where}.key")
    period = None if unique.period is None else check_seconds(unique.period, f"{where}.period")
    statuses = unique.statuses
    if isinstance(statuses, str) or not isinstance(statuses, Collection) or not statuses:
        raise InvalidJobError(
            f"{where}.statuses must be a non-empty set of JobStatus, got {statuses!r}"
        )
    stored = set()
    for status in statuses:
        value = None if status is None else stored_status(status)
        if value is None:
            raise InvalidJobError(f"{where}.statuses: {status!r} is not a JobStatus")
        stored.add(STORED_WAITING if value is JobStatus.SCHEDULED else value.value)
    if unique.on_conflict not in ("ignore", "replace"):
        raise InvalidJobError(
            f"{where}.on_conflict must be 'ignore' or 'replace', got {unique.on_conflict!r}"
        )
    return PreparedUnique(key, period, tuple(sorted(stored)), unique.on_conflict == "replace")


def _prepare_unique(
    unique: Any, task: str, args: Sequence[JSON], kwargs: Mapping[str, JSON], where: str
) -> PreparedUnique:
    prepared = check_unique(unique, where)
    if prepared.key:
        return prepared
    return PreparedUnique(
        derived_unique_key(task, args, kwargs), prepared.period, prepared.statuses, prepared.replace
    )


def check_replace(key: str, found_task: str, task: str) -> None:
    """Refuse ``on_conflict="replace"`` whose conflict is a job of another task.

    Unique keys are global, so an explicit key may match another task's job; replacing it
    would give that job this task's arguments while it still runs its own task. Stores call
    this inside the enqueue's transaction, on the job found, before changing anything:
    :class:`InvalidJobError` naming the key and both tasks, and the batch stores nothing.
    (``"ignore"`` across tasks is a plain conflict: the other task's job is returned.)"""
    if found_task != task:
        raise InvalidJobError(
            f"unique key {key!r} is held by a job of task {found_task!r}: a job of task "
            f"{task!r} cannot replace it (on_conflict='replace' only updates a job of the "
            "same task); nothing was stored"
        )


def check_meta(value: Any, where: str) -> str:
    """JSON text of a ``meta`` mapping (a dict with string keys)."""
    if not isinstance(value, Mapping):
        raise SerializationError(f"{where} must be a dict, got {type(value).__name__}")
    return encode_json(dict(value), where)


def prepare_jobs(jobs: Sequence[NewJob]) -> list[PreparedJob]:
    """Validate and encode a whole batch first, so a bad job stores nothing."""
    prepared = []
    for index, job in enumerate(jobs):
        if not isinstance(job, NewJob):
            raise InvalidJobError(f"jobs[{index}] is a {type(job).__name__}, not a NewJob")
        where = f"jobs[{index}]."
        shape = check_shape(
            where,
            task=job.task,
            queue=job.queue,
            priority=job.priority,
            max_attempts=job.max_attempts,
            scheduled_at=job.scheduled_at,
            delay=job.delay,
            meta=job.meta,
        )
        prepared.append(prepare_job(where, shape, job.args, job.kwargs, job.unique))
    return prepared


def check_shape(
    where: str,
    *,
    task: Any,
    queue: Any,
    priority: Any,
    max_attempts: Any,
    scheduled_at: Any,
    delay: Any,
    meta: Any,
) -> JobShape:
    """The checked :class:`JobShape` of these fields. ``where`` prefixes the field named in
    an error (``"jobs[3]."``: ``jobs[3].queue must be ...``)."""
    check_priority(priority, f"{where}priority")
    if scheduled_at is not None:
        if delay:
            raise InvalidJobError(f"{where}scheduled_at: give scheduled_at or delay, not both")
        scheduled_at = check_aware(scheduled_at, f"{where}scheduled_at")
    return JobShape(
        task=check_name(task, f"{where}task"),
        queue=check_name(queue, f"{where}queue"),
        priority=priority,
        max_attempts=_positive_int(max_attempts, f"{where}max_attempts"),
        scheduled_at=scheduled_at,
        delay=check_seconds(delay, f"{where}delay", zero=True),
        meta=check_meta(meta, f"{where}meta"),
    )


# Job ids are version 7 UUIDs (RFC 9562): the creation time in milliseconds, then 74 bits
# from os.urandom. Unguessable like version 4, but ordered by time, so a batch of new jobs
# lands at the end of every id index instead of on as many random pages (the commit of a
# 1,000-job SQLite batch took half the time).
_V7_SET = (0x7 << 76) | (0b10 << 62)  # version 7, RFC variant
_V7_RANDOM = ((1 << 80) - 1) & ~((0xF << 76) | (0b11 << 62))  # the 74 random bits
_new_uuid = object.__new__
_set_field = object.__setattr__


def stored_job_id() -> UUID:
    """A fresh version 7 UUID for a durable job."""
    value = (time.time_ns() // 1_000_000) << 80 | _V7_SET
    value |= int.from_bytes(os.urandom(10)) & _V7_RANDOM
    job_id = _new_uuid(UUID)
    _set_field(job_id, "int", value)
    _set_field(job_id, "is_safe", uuid.SafeUUID.unknown)
    return job_id


def prepare_job(
    where: str, shape: JobShape, args: Any, kwargs: Any, unique: Any = None
) -> PreparedJob:
    """One job of ``shape`` with these arguments, checked and encoded, with a new id: what
    :meth:`Store.enqueue` stores for a :class:`NewJob`, and what
    :meth:`Store.enqueue_prepared` takes. ``where`` as for :func:`check_shape`."""
    if not isinstance(args, (list, tuple)):
        raise SerializationError(f"{where}args must be a list or tuple")
    if not isinstance(kwargs, dict):
        raise SerializationError(f"{where}kwargs must be a dict")
    return PreparedJob(
        id=stored_job_id(),
        shape=shape,
        args=encode_json(list(args), f"{where}args"),
        kwargs=encode_json(kwargs, f"{where}kwargs"),
        unique=None
        if unique is None
        else _prepare_unique(unique, shape.task, args, kwargs, f"{where}unique"),
    )


def decode_json(text: str) -> Any:
    """The value of stored JSON text (the empty object, the usual kwargs and meta, without
    calling the parser)."""
    return {} if text == "{}" else json.loads(text)


def enqueued_record(job: PreparedJob, scheduled_at: datetime, created_at: datetime) -> JobRecord:
    """The record of a job just stored from ``job``, given the two times the store set
    (``created_at`` is the store's clock at the insert): built from what was sent, not read
    back, so an enqueue does not decode what it just encoded."""
    shape = job.shape
    return JobRecord(
        id=job.id,
        task=shape.task,
        args=json.loads(job.args),
        kwargs=decode_json(job.kwargs),
        queue=shape.queue,
        priority=shape.priority,
        status=JobStatus.SCHEDULED if scheduled_at > created_at else JobStatus.QUEUED,
        attempt=0,
        max_attempts=shape.max_attempts,
        scheduled_at=scheduled_at,
        created_at=created_at,
        meta=decode_json(shape.meta),
        unique_key=None if job.unique is None else job.unique.key,
    )


def check_paused(value: Any) -> bool:
    if not isinstance(value, bool):
        raise InvalidJobError(f"paused must be True or False, got {value!r}")
    return value


def check_version(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise InvalidJobError(f"version must be a non-negative integer, got {value!r}")
    return value


def check_attempt(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise InvalidJobError(f"attempt must be a non-negative integer, got {value!r}")
    return value


@dataclass(frozen=True, slots=True)
class PreparedLog:
    """A validated :class:`LogEntry`: text cleaned (no NUL) and cut to MAX_LOG_MESSAGE."""

    attempt: int
    at: datetime
    level: str
    logger: str
    message: str


def prepare_logs(attempt: int, entries: Sequence[LogEntry]) -> list[PreparedLog]:
    """Check every entry before anything is written; each must belong to ``attempt``."""
    check_attempt(attempt)
    if isinstance(entries, (str, bytes)) or not isinstance(entries, Sequence):
        raise InvalidJobError(f"entries must be a sequence of LogEntry, got {entries!r}")
    prepared = []
    for index, entry in enumerate(entries):
        if not isinstance(entry, LogEntry):
            raise InvalidJobError(f"entries[{index}] is a {type(entry).__name__}, not a LogEntry")
        if entry.attempt != attempt:
            raise InvalidJobError(
                f"entries[{index}].attempt is {entry.attempt!r}, not the attempt {attempt}"
            )
        for name in ("level", "logger", "message"):
            if not isinstance(getattr(entry, name), str):
                raise InvalidJobError(
                    f"entries[{index}].{name} must be a string, got {getattr(entry, name)!r}"
                )
        prepared.append(
            PreparedLog(
                attempt=attempt,
                at=check_aware(entry.at, f"entries[{index}].at"),
                level=clean_text(entry.level),
                logger=clean_text(entry.logger),
                message=clean_text(entry.message[:MAX_LOG_MESSAGE]),
            )
        )
    return prepared


@dataclass(frozen=True, slots=True)
class PreparedRule:
    """A validated :class:`PruneRule`, with its status as stored."""

    status: str
    task: str | None
    max_age: float | None
    max_count: int | None


def prepare_rules(rules: Sequence[PruneRule]) -> list[PreparedRule]:
    if isinstance(rules, (str, bytes)) or not isinstance(rules, Sequence):
        raise InvalidJobError(f"rules must be a sequence of PruneRule, got {rules!r}")
    prepared = []
    for index, rule in enumerate(rules):
        where = f"rules[{index}]"
        if not isinstance(rule, PruneRule):
            raise InvalidJobError(f"{where} is a {type(rule).__name__}, not a PruneRule")
        status = stored_status(rule.status)
        if status is None or not status.finished:
            raise InvalidJobError(
                f"{where}.status must be a finished status {FINISHED_VALUES}, got {rule.status!r}"
            )
        if rule.max_age is None and rule.max_count is None:
            raise InvalidJobError(f"{where}: give max_age, max_count or both")
        max_count = rule.max_count
        if max_count is not None and (
            isinstance(max_count, bool) or not isinstance(max_count, int) or max_count < 0
        ):
            raise InvalidJobError(
                f"{where}.max_count must be a non-negative integer, got {max_count!r}"
            )
        prepared.append(
            PreparedRule(
                status=status.value,
                task=None if rule.task is None else check_name(rule.task, f"{where}.task"),
                max_age=None
                if rule.max_age is None
                else check_seconds(rule.max_age, f"{where}.max_age", zero=True),
                max_count=max_count,
            )
        )
    return prepared


#: Jobs a database store deletes per transaction when pruning. Each batch is a short
#: transaction of its own (SQLite's write lock, PostgreSQL's statement timeout), so a prune of
#: a million jobs never stalls enqueues, claims or heartbeats for longer than one batch.
PRUNE_BATCH = 500

PruneKey: TypeAlias = tuple[Any, int]
"""Where a finished job sits in prune order: ``(finished_at, seq)``, in the store's types."""


def prune_bound(age_cutoff: Any | None, nth_newest: PruneKey | None) -> PruneKey | None:
    """The key below which one rule deletes (exclusive), or ``None``: it deletes nothing.

    ``age_cutoff``: the store-clock instant before which a job is too old (``max_age``);
    ``nth_newest``: the key of the job ranked ``max_count`` (0-based) newest first, the
    newest the count rule deletes, if there is one. A job goes if either selects it, so the
    bound is the larger of the two. Sequence numbers start at 1: ``(cutoff, 0)`` excludes
    every job finished at ``cutoff`` itself."""
    bounds = []
    if age_cutoff is not None:
        bounds.append((age_cutoff, 0))
    if nth_newest is not None:
        bounds.append((nth_newest[0], nth_newest[1] + 1))
    return max(bounds) if bounds else None


async def prune_in_batches(
    rules: Sequence[PreparedRule],
    bounds: Sequence[PruneKey | None],
    batch: int,
    delete: Callable[
        [PreparedRule, PruneKey | None, PruneKey, int], Awaitable[tuple[PruneKey | None, int]]
    ],
) -> int:
    """Delete each rule's jobs below its bound, oldest first, ``batch`` per call; how many.

    ``bounds`` (:func:`prune_bound` per rule) come from one snapshot taken first, so one
    rule's deletions never move another's bound. ``delete(rule, after, bound, limit)``
    deletes, in one transaction, up to ``limit`` of the rule's finished jobs with
    ``after < key < bound`` (``after=None``: from the oldest) and their logs, and returns the
    largest key it deleted (``None``: none) and how many it deleted. The next call starts
    after that key, so jobs of other tasks in the range are read once, not once per batch.
    A rule is done when a call deletes nothing."""
    deleted = 0
    for rule, bound in zip(rules, bounds, strict=True):
        after: PruneKey | None = None
        while bound is not None:
            last, count = await delete(rule, after, bound, batch)
            if last is None:
                break
            # Not "count < batch": a batch may come back short because a job in it changed
            # under its lock (PostgreSQL re-checks locked rows) while more lie beyond it.
            deleted += count
            after = last
    return deleted


def prune_doomed(
    rows: Sequence[tuple[Any, str, str, float, int]],
    rules: Sequence[PreparedRule],
    now: float,
) -> set[Any]:
    """Which of ``rows`` — ``(key, status, task, finished_at epoch, seq)`` of finished jobs —
    the rules delete. Every rule is judged against the same snapshot (one rule's deletions
    never change another's ranking)."""
    doomed: set[Any] = set()
    for rule in rules:
        matching = [
            r for r in rows if r[1] == rule.status and (rule.task is None or r[2] == rule.task)
        ]
        matching.sort(key=lambda r: (r[3], r[4]), reverse=True)  # newest first
        for rank, row in enumerate(matching):
            too_old = rule.max_age is not None and row[3] < now - rule.max_age
            too_many = rule.max_count is not None and rank >= rule.max_count
            if too_old or too_many:
                doomed.add(row[0])
    return doomed


@dataclass(frozen=True, slots=True)
class PreparedInstance:
    name: str
    host: str
    pid: int
    started_at: datetime
    info: str
    ttl: float


def prepare_instance(
    name: str, host: str, pid: int, started_at: datetime, info: Mapping[str, JSON], ttl: float
) -> PreparedInstance:
    if isinstance(pid, bool) or not isinstance(pid, int) or not 0 <= pid < 2**31:
        raise InvalidJobError(f"pid must be a non-negative 32-bit integer, got {pid!r}")
    return PreparedInstance(
        name=check_name(name, "name"),
        host=check_name(host, "host"),
        pid=pid,
        started_at=check_aware(started_at, "started_at"),
        info=check_meta(info, "info"),
        ttl=check_seconds(ttl, "ttl"),
    )


def check_claim(
    worker: str, queues: Sequence[str], tasks: Collection[str], limit: int, lease: float
) -> tuple[list[str], list[str]]:
    check_name(worker, "worker")
    if isinstance(queues, str) or isinstance(tasks, str):
        raise InvalidJobError("queues and tasks are collections of names, not one string")
    _positive_int(limit, "limit")  # at most MAX_INT32
    check_seconds(lease, "lease")
    return [check_name(q, "queue") for q in queues], [check_name(t, "task") for t in tasks]


def clean_text(value: object) -> str:
    """Error and log text as stored: NUL characters (PostgreSQL refuses them) and lone
    surrogates (no UTF-8 form: an exception about a file name decoded with
    ``surrogateescape``) replaced by U+FFFD, so the failure they describe is still recorded.
    The length is kept."""
    text = str(value).replace("\x00", "\ufffd")
    return _SURROGATE.sub("\ufffd", text) if has_surrogate(text) else text


def derive_status(stored: str, scheduled_at: datetime, now: datetime) -> JobStatus:
    if stored == STORED_WAITING and scheduled_at > now:
        return JobStatus.SCHEDULED
    return JobStatus(stored)


def stored_status(status: JobStatus | str | None) -> JobStatus | None:
    """The filter value of ``list_jobs(status=...)``, checked."""
    if status is None:
        return None
    try:
        return JobStatus(status)
    except ValueError:
        raise InvalidJobError(f"unknown job status {status!r}") from None


def check_listing(
    status: JobStatus | str | None, task: str | None, queue: str | None, limit: int
) -> JobStatus | None:
    """Check ``list_jobs``' filters (every backend alike); the status filter to apply.
    ``limit`` is at most :data:`MAX_LIST_LIMIT`."""
    wanted = stored_status(status)
    if task is not None:
        check_name(task, "task")
    if queue is not None:
        check_name(queue, "queue")
    _positive_int(limit, "limit", MAX_LIST_LIMIT)
    return wanted


def to_uuid(value: UUID | str) -> UUID:
    if isinstance(value, UUID):
        return value
    try:
        return UUID(str(value))
    except ValueError:
        raise InvalidJobError(f"{value!r} is not a job id (UUID)") from None


def epoch_to_dt(epoch: float | None) -> datetime | None:
    return None if epoch is None else datetime.fromtimestamp(epoch, UTC)


def check_schema_version(where: str, found: int, knows: int) -> None:
    """For a store opened with ``migrate=False``: :class:`StoreConfigError` unless the store
    at ``where`` holds beat's tables (``found`` > 0) at this beat's version ``knows``."""
    if found <= 0:
        raise StoreConfigError(
            f"not a beat store: {where} has no beat tables (opened with migrate=False, which "
            "creates nothing; a worker or scheduler creates them)"
        )
    if found < knows:
        raise StoreConfigError(
            f"{where} holds beat schema version {found}; this beat needs {knows}: a worker or "
            "scheduler of this beat version migrates it on start (opened with migrate=False, "
            "which never does)"
        )
    refuse_newer(where, found, knows)


def refuse_newer(where: str, found: int, knows: int) -> None:
    """:class:`StoreConfigError` if the store at ``where`` holds a schema version newer than
    this beat's ``knows``: an older beat must not write to it (on open, whether migrating
    or not)."""
    if found > knows:
        raise StoreConfigError(
            f"{where} holds beat schema version {found}; this beat knows {knows} (upgrade beat)"
        )


# -------------------------------------------------------------------------------------------
# The interface
# -------------------------------------------------------------------------------------------
class OpenedLoop:
    """The event loop a store object was opened on: its connections, the hand-backs of its
    threads, its futures and listeners all belong to that loop, and a later ``asyncio.run``
    cannot use them (``RuntimeError: Event loop is closed``, or a hang). A built-in store
    calls :meth:`bind` in ``open``, :meth:`check` at the start of every other call, and
    :meth:`unbind` in ``close``; see "One event loop" in ``docs/stores.md``.

    ``what`` names the store in the error ("SQLite store ...")."""

    __slots__ = ("_loop", "_what")

    def __init__(self, what: str) -> None:
        self._what = what
        self._loop: asyncio.AbstractEventLoop | None = None

    def bind(self) -> None:
        """``open`` succeeded on the running loop."""
        self._loop = asyncio.get_running_loop()

    def check(self) -> None:
        """:class:`StoreUnavailableError` unless the running loop is the one ``open`` ran on
        (nothing when not open: the store's own check says it is closed). One comparison."""
        loop = self._loop
        if loop is not None and loop is not asyncio.get_running_loop():
            raise StoreUnavailableError(
                f"the {self._what} was opened on another event loop (an earlier asyncio.run, "
                "or another thread's loop); close it and open it again on this one"
            )

    def unbind(self) -> asyncio.AbstractEventLoop | None:
        """``close``: forget the loop; the one it was opened on (``None``: not open)."""
        loop, self._loop = self._loop, None
        return loop


def release_on(loop: asyncio.AbstractEventLoop | None, *steps: Callable[[], object]) -> None:
    """Run each of ``steps`` — releases of what belongs to ``loop``, the loop a store was
    opened on: wake its futures, cancel its tasks, remove its readers, terminate its
    connections — where that is safe, and never wait for them (``close`` may run on another
    loop).

    On the running loop (or ``None``): now. On a loop running in another thread: handed to
    it (``call_soon_threadsafe``). On a loop that no longer runs (closed: an earlier
    ``asyncio.run``; or idle): now, and a step the closed loop refuses (``RuntimeError``) is
    skipped: nothing of that loop can run any more to be woken or cancelled, and what
    holds its sockets closes them when garbage collected. Each step runs even if an earlier
    one failed that way."""
    try:
        running: asyncio.AbstractEventLoop | None = asyncio.get_running_loop()
    except RuntimeError:
        running = None
    for step in steps:
        if loop is None or loop is running:
            step()
        elif loop.is_running():
            with contextlib.suppress(RuntimeError):  # it closed meanwhile
                loop.call_soon_threadsafe(step)
        else:
            try:
                step()
            except RuntimeError:
                if not loop.is_closed():
                    raise


class Store(abc.ABC):
    """A durable job store. Every method but :meth:`prune` (batches) is one atomic
    transition (see ``docs/stores.md``).

    Open it with ``await store.open()`` (or ``async with store:``) before use; ``open`` creates
    or migrates the schema and ``close`` releases connections. Both are idempotent. A store
    object is used on the event loop that opened it (the built-in ones refuse any other with
    :class:`~beat.stores.StoreUnavailableError`; ``close`` works from any loop). Errors:
    :class:`~beat.stores.StoreUnavailableError` when the store cannot be reached,
    :class:`~beat.stores.JobNotFoundError`, :class:`~beat.stores.InvalidJobStateError`,
    :class:`~beat.stores.SerializationError` for non-JSON values (nothing is stored).

    ``waits``: this object's parked waits (``_waits.py``); an implementation calls
    ``super().__init__()`` and sleeps through ``self.waits.sleep(...)`` in its ``wait_*``
    methods, after their look.
    """

    #: Most jobs :meth:`prune` deletes in one transaction (a store that deletes without
    #: locking anyone out, like the memory store, may delete more at once).
    prune_batch: int = PRUNE_BATCH

    def __init__(self) -> None:
        self.waits = Waits()

    async def __aenter__(self) -> Self:
        await self.open()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    @abc.abstractmethod
    async def open(self) -> None:
        """Connect and create or migrate the schema. Idempotent."""

    @abc.abstractmethod
    async def close(self) -> None:
        """Release connections and wake-up listeners. Idempotent."""

    @abc.abstractmethod
    async def now(self) -> datetime:
        """The store's clock (the database's for PostgreSQL), aware UTC."""

    @abc.abstractmethod
    async def enqueue(self, jobs: Sequence[NewJob]) -> list[JobRecord]:
        """Store a batch atomically (all or none); returns once durably stored, in order.

        A job with a :class:`Unique` that conflicts with a stored job (or an earlier job of
        the batch) is not stored: its place in the result holds the existing job with
        ``conflict=True`` (replaced first if ``on_conflict="replace"`` and still waiting).
        The conflict check and the insert are one atomic step for every process.
        """

    async def enqueue_prepared(self, jobs: Sequence[PreparedJob]) -> list[Enqueued]:
        """:meth:`enqueue` for jobs already checked and encoded by :func:`prepare_job`
        (what :class:`beat.Client` sends): the same atomic batch, but it returns only each
        job's ``(id, conflict)``, in order, and builds no records.

        This default goes through :meth:`enqueue`, so a store of one's own need not
        implement it; the built-in stores write the prepared jobs as they are.
        """
        return as_enqueued(jobs, await self.enqueue([job.to_new_job() for job in jobs]))

    @abc.abstractmethod
    async def claim(
        self,
        worker: str,
        *,
        queues: Sequence[str],
        tasks: Collection[str],
        limit: int,
        lease: float,
    ) -> Claimed:
        """Take up to ``limit`` due jobs of these queues and tasks for ``worker``.

        Order: priority descending, then ``scheduled_at``, then insertion order. Running
        jobs whose lease expired are taken again too (their worker is presumed dead). Each
        taken job becomes ``running`` with ``attempt + 1``, ``worker`` and a lease of
        ``lease`` seconds. Expired jobs with no attempt left become ``dead`` instead (and
        expired jobs whose cancellation was requested become ``cancelled``): those are
        returned in :attr:`Claimed.ended`. Concurrent claims never take the same job.
        """

    @abc.abstractmethod
    async def heartbeat(
        self, worker: str, jobs: Sequence[tuple[UUID, int]], lease: float
    ) -> Heartbeat:
        """Extend to ``now + lease`` the leases of the ``(id, attempt)`` still owned."""

    @abc.abstractmethod
    async def complete(self, id: UUID, attempt: int, worker: str, result: JSON = None) -> bool:
        """``running`` → ``succeeded`` with ``result``; ``False`` if not owned (fenced)."""

    async def complete_many(self, items: Sequence[tuple[UUID, int, str, JSON]]) -> list[bool]:
        """:meth:`complete` for each ``(id, attempt, worker, result)``, in one statement or
        transaction; per item, whether it was recorded (each is fenced on its own: a refused
        item does not stop the others). Every waiter of a finished job is woken.

        Results are validated before anything is written. If some are not JSON, the others
        are written anyway, those jobs are left untouched, and
        :class:`~beat.stores.BatchSerializationError` is raised, carrying per item what
        would have been returned (``recorded``) and each bad item's error (``errors``).

        This default calls :meth:`complete` once per item (not atomic); the built-in stores
        write the whole batch at once.
        """
        recorded: list[bool] = []
        bad: dict[int, SerializationError] = {}
        for index, (id, attempt, worker, result) in enumerate(items):
            try:
                recorded.append(await self.complete(id, attempt, worker, result))
            except SerializationError as exc:
                bad[index] = exc
                recorded.append(False)
        if bad:
            raise BatchSerializationError(recorded, bad)
        return recorded

    @abc.abstractmethod
    async def fail(
        self,
        id: UUID,
        attempt: int,
        worker: str,
        *,
        error_type: str,
        message: str,
        traceback: str = "",
        retry_at: datetime | None = None,
    ) -> bool:
        """``running`` → ``scheduled`` at ``retry_at`` when given and attempts remain, else
        ``dead`` (``cancelled`` if cancellation was requested). ``False`` if not owned."""

    @abc.abstractmethod
    async def release(self, id: UUID, attempt: int, worker: str) -> bool:
        """Hand a claimed job back (worker shutting down): ``running`` → ``queued`` at its
        old place; the attempt is not counted against ``max_attempts``. Fenced."""

    @abc.abstractmethod
    async def mark_cancelled(self, id: UUID, attempt: int, worker: str) -> bool:
        """``running`` → ``cancelled``, by the worker that stopped it. Fenced."""

    @abc.abstractmethod
    async def cancel(self, id: UUID) -> JobRecord:
        """``scheduled``/``queued`` → ``cancelled`` at once; ``running`` → sets
        ``cancel_requested`` (seen by the worker's next heartbeat); a finished job is
        returned unchanged. :class:`JobNotFoundError` if there is no such job."""

    @abc.abstractmethod
    async def retry(self, id: UUID) -> JobRecord:
        """``dead``/``cancelled`` → ``queued`` now, with at least one attempt left.
        :class:`InvalidJobStateError` for any other status."""

    @abc.abstractmethod
    async def get(self, id: UUID) -> JobRecord | None:
        """The job, or ``None``."""

    @abc.abstractmethod
    async def list_jobs(
        self,
        *,
        status: JobStatus | str | None = None,
        task: str | None = None,
        queue: str | None = None,
        limit: int = 50,
        before: UUID | None = None,
        after: UUID | None = None,
    ) -> list[JobRecord]:
        """Jobs in insertion order (oldest first), filtered.

        ``after=id``: the first ``limit`` inserted after that job; ``before=id``: the last
        ``limit`` inserted before it. Pages are stable: new jobs only appear at the end.
        """

    @abc.abstractmethod
    async def wait_for_jobs(
        self,
        timeout: float,
        *,
        queues: Sequence[str] | None = None,
        tasks: Collection[str] | None = None,
    ) -> None:
        """Sleep until a job may have become claimable, or ``timeout`` seconds. A hint:
        callers claim afterwards and may find nothing.

        Returns at once if a job of these ``queues`` and ``tasks`` (all when ``None``) is
        claimable now (so a change between the caller's claim and this wait is not missed);
        otherwise wakes on a notification, when the soonest such waiting job comes due or
        running lease expires, or at ``timeout``.
        """

    @abc.abstractmethod
    async def wait_finished(self, id: UUID, timeout: float) -> JobRecord:
        """Wait until the job is finished (from any process) and return it.

        :class:`TimeoutError` after ``timeout`` seconds, :class:`JobNotFoundError` if there is
        no such job.
        """

    # -- progress and logs ---------------------------------------------------------------------
    @abc.abstractmethod
    async def set_progress(self, id: UUID, attempt: int, worker: str, progress: JSON) -> bool:
        """Record ``progress`` (any JSON) on a running job. Fenced like :meth:`complete`:
        ``False`` and nothing written unless the job is ``running`` under that worker and
        attempt. Kept after the job finishes. :class:`SerializationError` (nothing written)
        if ``progress`` is not JSON."""

    @abc.abstractmethod
    async def add_logs(self, id: UUID, attempt: int, entries: Sequence[LogEntry]) -> None:
        """Append log entries of one attempt (each ``entry.attempt`` must equal ``attempt``).

        Not fenced: a late attempt's logs are still its logs. Messages are cut to
        :data:`MAX_LOG_MESSAGE` characters (NUL characters replaced). The batch is all or
        nothing; :class:`InvalidJobError` for a malformed entry, :class:`JobNotFoundError`
        if the job does not exist (nothing stored either way).
        """

    @abc.abstractmethod
    async def get_logs(self, id: UUID, *, attempt: int | None = None) -> list[LogEntry]:
        """The job's log entries (of one ``attempt`` if given), ordered by attempt, then
        insertion. :class:`JobNotFoundError` if the job does not exist."""

    # -- counts and pruning ----------------------------------------------------------------------
    @abc.abstractmethod
    async def count_jobs(self) -> dict[str, dict[JobStatus, int]]:
        """queue → status → number of jobs, non-zero counts only. ``scheduled`` and ``queued``
        are told apart against the store's clock, as in records."""

    @abc.abstractmethod
    async def prune(self, rules: Sequence[PruneRule]) -> int:
        """Delete the finished jobs the rules select (and their logs); how many.

        A job is deleted if any rule matching its status and task selects it (see
        :class:`PruneRule`); every rule is judged against the same snapshot, taken when the
        prune starts. The deletions are transactions of at most :attr:`prune_batch` jobs,
        oldest first, so a large prune never holds locks for long; a prune cut short keeps
        what it deleted, and pruning again finishes the work. Unfinished jobs are never
        touched. :class:`InvalidJobError` (nothing deleted) for a bad rule.
        """

    # -- instances -------------------------------------------------------------------------------
    @abc.abstractmethod
    async def record_instance(
        self,
        name: str,
        *,
        host: str,
        pid: int,
        started_at: datetime,
        info: Mapping[str, JSON],
        ttl: float,
    ) -> None:
        """Upsert the live instance ``name`` with ``last_seen`` = the store's clock; it is
        listed until ``ttl`` seconds after that unless recorded again. Instances expired
        past their ttl may be deleted here."""

    @abc.abstractmethod
    async def list_instances(self) -> list[InstanceRecord]:
        """Instances with ``last_seen + ttl >= now`` (store clock), by name."""

    @abc.abstractmethod
    async def remove_instance(self, name: str) -> None:
        """Forget ``name`` (an instance shutting down). No error if unknown."""

    # -- stored schedules ------------------------------------------------------------------------
    @abc.abstractmethod
    async def put_schedule(self, spec: ScheduleSpec) -> ScheduleRecord:
        """Create or replace the schedule ``spec.name``; the stored record.

        The spec is validated first (see :func:`~beat.stores._schedules.prepare_schedule`):
        a bad cron text or zone raises :class:`~beat.CronSyntaxError` /
        :class:`~beat.InvalidScheduleError`, bad options :class:`InvalidJobError`, non-JSON
        arguments :class:`SerializationError`, and nothing is stored. A spec equal to the
        stored one changes nothing (same version); otherwise the schedule's ``version``
        becomes the new :meth:`schedules_version` and waiters are woken. ``created_at``
        survives a replacement; ``last_instant`` too, except that a changed definition (any
        field but ``paused``) or a resume moves it forward to the store's current time (never
        back), so no replica catches up instants from before the change.
        """

    @abc.abstractmethod
    async def get_schedule(self, name: str) -> ScheduleRecord | None:
        """The schedule, or ``None``."""

    @abc.abstractmethod
    async def list_schedules(self) -> list[ScheduleRecord]:
        """Every schedule, by name."""

    @abc.abstractmethod
    async def set_schedule_paused(self, name: str, paused: bool) -> ScheduleRecord:
        """Pause or resume; a change bumps the version like :meth:`put_schedule`. A resume
        moves ``last_instant`` forward to the store's current time (never back): the instants
        that fell during the pause are not caught up. :class:`JobNotFoundError` if there is
        no such schedule."""

    @abc.abstractmethod
    async def delete_schedule(self, name: str) -> bool:
        """Delete it (bumping :meth:`schedules_version`); ``False`` if there was none."""

    @abc.abstractmethod
    async def advance_schedule(self, name: str, instant: datetime) -> bool:
        """``last_instant = max(last_instant, instant)``; ``True`` if it moved forward,
        ``False`` if it already was at or past ``instant`` or the schedule does not exist.
        Not a change of the schedule: no version bump, no wake-up."""

    @abc.abstractmethod
    async def schedules_version(self) -> int:
        """A counter bumped by every change of any schedule (put, pause, resume, delete)."""

    @abc.abstractmethod
    async def wait_schedules_changed(self, version: int, timeout: float) -> int:
        """The current :meth:`schedules_version` at once if it differs from ``version``;
        otherwise wait until it does (a change from any process) or ``timeout`` seconds, and
        return it then."""
