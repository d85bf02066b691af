"""The exceptions the job stores raise, all under :class:`beat.BeatError`::

    BeatError
    └── StoreError                                 a job store refused or failed an operation
        ├── StoreUnavailableError (ConnectionError) the store cannot be reached (or is closed)
        ├── StoreConfigError (ValueError)           bad DSN/path, credentials, schema version
        ├── JobNotFoundError (LookupError)          no job with that id
        ├── InvalidJobStateError (RuntimeError)     the job's status forbids the transition
        └── SerializationError (TypeError)          an argument or result is not plain JSON

Bad options of a new job (empty task name, naive datetime, ``max_attempts < 1``...) raise the
existing :class:`beat.InvalidJobError` (a ``ValueError``).
"""

from __future__ import annotations

from .._exceptions import BeatError

__all__ = [
    "InvalidJobStateError",
    "JobNotFoundError",
    "SerializationError",
    "StoreConfigError",
    "StoreError",
    "StoreUnavailableError",
]


class StoreError(BeatError):
    """Raised when a job store refuses or fails an operation."""


class StoreUnavailableError(StoreError, ConnectionError):
    """Raised when the store cannot be reached (connection refused or lost, locked, closed).

    The operation may or may not have been applied when the reply was lost; every transition
    is fenced or idempotent enough for a retry to be safe (see ``docs/stores.md``).
    """


class StoreConfigError(StoreError, ValueError):
    """Raised by ``open()`` for a bad DSN/path, credentials, or a schema newer than this beat."""


class JobNotFoundError(StoreError, LookupError):
    """Raised when no job has the given id."""


class InvalidJobStateError(StoreError, RuntimeError):
    """Raised when the job's current status does not allow the transition (e.g. retry a
    running job). ``status`` is the status found."""

    def __init__(self, message: str, *, status: str | None = None) -> None:
        super().__init__(message)
        self.status = status


class SerializationError(StoreError, TypeError):
    """Raised when an argument, keyword argument or result is not plain JSON (no NaN, no
    objects, string keys only). Nothing is stored."""
