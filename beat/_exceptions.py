"""The exceptions beat raises.

Every exception beat raises on purpose derives from :class:`BeatError`, and the
ones caused by bad input also derive from the matching builtin, so callers can
catch either::

    BeatError
    ├── InvalidScheduleError (ValueError)      a timer or job that cannot be built
    │   └── CronSyntaxError                    a cron expression that cannot be parsed
    ├── InvalidJobError (ValueError)           a job option or function that is unusable
    ├── JobLookupError (LookupError)           no job with that id
    ├── DuplicateJobError (ValueError)         a job id (or coordinated name) already taken
    ├── SchedulerStateError (RuntimeError)     a call the scheduler's state does not allow
    └── CoordinatorError                       a coordination backend failed
        ├── CoordinatorConfigError (ValueError)  bad URL/DSN, credentials or permissions
        └── CoordinatorUnavailableError (ConnectionError)  the backend cannot be reached
"""

from __future__ import annotations

__all__ = [
    "BeatError",
    "CoordinatorConfigError",
    "CoordinatorError",
    "CoordinatorUnavailableError",
    "CronSyntaxError",
    "DuplicateJobError",
    "InvalidJobError",
    "InvalidScheduleError",
    "JobLookupError",
    "SchedulerStateError",
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
