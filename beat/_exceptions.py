"""The exceptions beat raises.

Every exception beat raises on purpose derives from :class:`BeatError`, and the
ones caused by bad input also derive from the matching builtin, so callers can
catch either::

    BeatError
    ├── InvalidScheduleError (ValueError)      a timer or job that cannot be built
    │   └── CronSyntaxError                    a cron expression that cannot be parsed
    ├── InvalidJobError (ValueError)           a job option, task option, job id or function
    │                                          that is unusable
    ├── JobLookupError (LookupError)           no scheduler job with that id
    ├── DuplicateJobError (ValueError)         a job id, coordinated name or task name taken
    ├── SchedulerStateError (RuntimeError)     a call the scheduler's state does not allow
    ├── CoordinatorError                       a coordination backend failed
    │   ├── CoordinatorConfigError (ValueError)  bad URL/DSN, credentials or permissions
    │   └── CoordinatorUnavailableError (ConnectionError)  the backend cannot be reached
    ├── StoreError                             a job store refused or failed an operation
    │   ├── StoreUnavailableError (ConnectionError)  the store cannot be reached (or is closed)
    │   ├── StoreConfigError (ValueError)      bad DSN/path, credentials, schema version
    │   ├── JobNotFoundError (LookupError)     no durable job with that id
    │   ├── InvalidJobStateError (RuntimeError)  the job's status forbids the transition
    │   └── SerializationError (TypeError)     an argument or result is not plain JSON
    │       └── BatchSerializationError        some results of a complete_many batch
    └── JobOutcomeError                        a durable job waited for did not succeed
        ├── JobFailedError                     it went dead; carries its last error
        └── JobCancelledError                  it was cancelled

``TimeoutError`` (the builtin) is raised when waiting for a durable job's result outlasts its
timeout; the job itself goes on.
"""

from __future__ import annotations

from typing import TYPE_CHECKING
from uuid import UUID

if TYPE_CHECKING:
    from .stores import JobRecord

__all__ = [
    "BatchSerializationError",
    "BeatError",
    "CoordinatorConfigError",
    "CoordinatorError",
    "CoordinatorUnavailableError",
    "CronSyntaxError",
    "DuplicateJobError",
    "InvalidJobError",
    "InvalidJobStateError",
    "InvalidScheduleError",
    "JobCancelledError",
    "JobFailedError",
    "JobLookupError",
    "JobNotFoundError",
    "JobOutcomeError",
    "SchedulerStateError",
    "SerializationError",
    "StoreConfigError",
    "StoreError",
    "StoreUnavailableError",
]


class BeatError(Exception):
    """Root of every exception beat raises on purpose."""


class InvalidScheduleError(BeatError, ValueError):
    """Raised when a timer cannot be built: naive datetime, bad interval, bad bounds."""


class CronSyntaxError(InvalidScheduleError):
    """Raised when a cron expression is invalid; the message names the expression and field.

    ``expression`` is the text given; ``field`` names the offending field
    (``"minute"``, ``"hour"``, ``"day of month"``, ``"month"``, ``"day of week"``)
    or is ``None`` when the expression as a whole is wrong (field count, unknown alias,
    a day/month combination that never occurs).
    """

    def __init__(self, message: str, *, expression: str, field: str | None = None) -> None:
        super().__init__(message)
        self.expression = expression
        self.field = field


class InvalidJobError(BeatError, ValueError):
    """Raised when a job cannot be built or changed: non-callable function, bad option."""


class JobLookupError(BeatError, LookupError):
    """Raised when no job has the given id."""


class DuplicateJobError(BeatError, ValueError):
    """Raised when a job id, or a job name under a coordinator, is already registered."""


class SchedulerStateError(BeatError, RuntimeError):
    """Raised when the scheduler's state forbids the call (already started, shut down...)."""


class CoordinatorError(BeatError):
    """Raised when a coordination backend fails."""


class CoordinatorConfigError(CoordinatorError, ValueError):
    """Raised at start when a backend's URL/DSN, credentials or permissions are wrong."""


class CoordinatorUnavailableError(CoordinatorError, ConnectionError):
    """Raised when a backend cannot be reached; the occurrence is not run."""


class StoreError(BeatError):
    """Raised when a job store refuses or fails an operation."""


class StoreUnavailableError(StoreError, ConnectionError):
    """Raised when the store cannot be reached (connection refused or lost, locked, closed).

    The operation may or may not have been applied when the reply was lost; every transition
    is fenced or idempotent enough for a retry to be safe (see ``docs/stores.md``). An
    enqueue refused before it reached the store (store closed, server unreachable) stored
    nothing.
    """


class StoreConfigError(StoreError, ValueError):
    """Raised by ``open()`` for a bad DSN/path, credentials, or a schema newer than this beat."""


class JobNotFoundError(StoreError, LookupError):
    """Raised when no durable job has the given id."""


class InvalidJobStateError(StoreError, RuntimeError):
    """Raised when the job's current status does not allow the transition (e.g. retry a
    running job). ``status`` is the status found."""

    def __init__(self, message: str, *, status: str | None = None) -> None:
        super().__init__(message)
        self.status = status


class SerializationError(StoreError, TypeError):
    """Raised when an argument, keyword argument or result is not plain JSON (no NaN, no
    objects, string keys only). Nothing is stored."""


class BatchSerializationError(SerializationError):
    """Some results given to :meth:`~beat.stores.Store.complete_many` are not plain JSON.

    Raised after the rest of the batch was written: ``errors`` maps the index of each bad
    item to the :class:`SerializationError` :meth:`~beat.stores.Store.complete` would have
    raised for it (those jobs were left untouched); ``recorded`` is what ``complete_many``
    would have returned, one entry per item (``False`` for the bad ones).
    """

    def __init__(self, recorded: list[bool], errors: dict[int, SerializationError]) -> None:
        first = min(errors)
        super().__init__(
            f"{len(errors)} result(s) of the batch are not JSON "
            f"(item {first}: {errors[first]}); the others were written"
        )
        self.recorded = recorded
        self.errors = errors


class JobOutcomeError(BeatError):
    """Raised when waiting for a durable job's result finds it finished without one.

    ``id`` and ``task`` name the job; ``record`` is the job as last read.
    """

    def __init__(self, message: str, *, record: JobRecord) -> None:
        super().__init__(message)
        self.record = record
        self.id: UUID = record.id
        self.task: str = record.task


class JobFailedError(JobOutcomeError):
    """Raised by ``result()`` when the job is ``dead``: its last attempt failed with none
    left (or its lease expired on the last attempt).

    ``error_type`` (e.g. ``"builtins.ValueError"``, or ``"beat.LeaseExpired"``),
    ``error_message`` and ``error_traceback`` are what the worker recorded (the traceback is
    text: the exception is not re-raised across processes); ``attempts`` counts the claims.
    """

    def __init__(self, message: str, *, record: JobRecord) -> None:
        super().__init__(message, record=record)
        self.error_type: str | None = record.error_type
        self.error_message: str | None = record.error_message
        self.error_traceback: str | None = record.error_traceback
        self.attempts: int = record.attempt


class JobCancelledError(JobOutcomeError):
    """Raised by ``result()`` when the job was cancelled (before it ran, or by its worker
    after a cancel request)."""


def message_of(exc: BaseException) -> str:
    """``str(exc)`` for reports (logs, history, a durable job's recorded error), or a
    placeholder naming its type when its ``__str__`` raises: reporting a job's failure must
    never fail in turn (it would leave a durable job ``running`` until its lease expired)."""
    try:
        return str(exc)
    except Exception:
        return f"<{type(exc).__name__}: str() failed>"
