"""beat: an asyncio-native, in-process job scheduler.

>>> from beat import Job, Scheduler
>>> job = Job.cron("*/5 * * * *").do(my_function)        # doctest: +SKIP
>>> async with Scheduler() as scheduler:                   # doctest: +SKIP
...     scheduler.add_job(job)

The public API is re-exported here; the ``beat._*`` modules are private.
"""

from ._clock import Clock, SystemClock
from ._context import Context
from ._events import (
    ClockJumped,
    CoordinatorRecovered,
    CoordinatorUnavailable,
    Event,
    FiresMissed,
    JobAdded,
    JobEvent,
    JobPaused,
    JobRemoved,
    JobRescheduled,
    JobResumed,
    RunCancelled,
    RunEvent,
    RunFailed,
    RunQueued,
    RunSkipped,
    RunStarted,
    RunSucceeded,
    RunTimedOut,
    SchedulerStarted,
    SchedulerStopped,
)
from ._exceptions import (
    BeatError,
    CoordinatorConfigError,
    CoordinatorError,
    CoordinatorUnavailableError,
    CronSyntaxError,
    DuplicateJobError,
    InvalidJobError,
    InvalidScheduleError,
    JobLookupError,
    SchedulerStateError,
)
from ._history import Outcome, RunRecord
from ._job import Backoff, Job, JobBuilder, JobOptions
from ._queue import TimeEvent
from ._scheduler import JobInfo, Scheduler, Statistics
from ._timers import Cron, Cycle, Oneshot, Timer

__version__ = "0.1.0"

__all__ = [
    "Backoff",
    "BeatError",
    "Clock",
    "ClockJumped",
    "Context",
    "CoordinatorConfigError",
    "CoordinatorError",
    "CoordinatorRecovered",
    "CoordinatorUnavailable",
    "CoordinatorUnavailableError",
    "Cron",
    "CronSyntaxError",
    "Cycle",
    "DuplicateJobError",
    "Event",
    "FiresMissed",
    "InvalidJobError",
    "InvalidScheduleError",
    "Job",
    "JobAdded",
    "JobBuilder",
    "JobEvent",
    "JobInfo",
    "JobLookupError",
    "JobOptions",
    "JobPaused",
    "JobRemoved",
    "JobRescheduled",
    "JobResumed",
    "Oneshot",
    "Outcome",
    "RunCancelled",
    "RunEvent",
    "RunFailed",
    "RunQueued",
    "RunRecord",
    "RunSkipped",
    "RunStarted",
    "RunSucceeded",
    "RunTimedOut",
    "Scheduler",
    "SchedulerStarted",
    "SchedulerStateError",
    "SchedulerStopped",
    "Statistics",
    "SystemClock",
    "TimeEvent",
    "Timer",
    "__version__",
]
