"""beat: an asyncio-native scheduler and durable job runner.

>>> from beat import Job, Scheduler
>>> job = Job.cron("*/5 * * * *").do(my_function)        # doctest: +SKIP
>>> async with Scheduler() as scheduler:                   # doctest: +SKIP
...     scheduler.add_job(job)

Durable jobs: ``Scheduler(store=SQLiteStore("jobs.db"))`` with ``@scheduler.task`` (see
:mod:`beat.stores`, :class:`Client`). The public API is re-exported here; the ``beat._*``
modules are private.
"""

from ._client import Client, EnqueueOptions, JobRequest
from ._clock import Clock, SystemClock
from ._context import Context
from ._events import (
    ClockJumped,
    CoordinatorRecovered,
    CoordinatorUnavailable,
    DurableJobClaimed,
    DurableJobEvent,
    DurableJobFinished,
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
    ScheduleProblem,
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
    InvalidJobStateError,
    InvalidScheduleError,
    JobCancelledError,
    JobFailedError,
    JobLookupError,
    JobNotFoundError,
    JobOutcomeError,
    SchedulerStateError,
    SerializationError,
    StoreConfigError,
    StoreError,
    StoreUnavailableError,
)
from ._history import Outcome, RunRecord
from ._job import Backoff, Job, JobBuilder, JobOptions
from ._liveness import Health
from ._queue import TimeEvent
from ._scheduler import JobInfo, Scheduler, Statistics
from ._schedules_client import Schedules
from ._tasks import JobHandle, Task, TaskCall, TaskOptions, TaskRegistry, task
from ._timers import Cron, Cycle, Oneshot, Timer
from ._worker import JobContext, Worker, WorkerStats
from .stores._base import LogEntry, PruneRule, Unique
from .stores._schedules import ScheduleSpec

__version__ = "0.1.0"

__all__ = [
    "Backoff",
    "BeatError",
    "Client",
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
    "DurableJobClaimed",
    "DurableJobEvent",
    "DurableJobFinished",
    "EnqueueOptions",
    "Event",
    "FiresMissed",
    "Health",
    "InvalidJobError",
    "InvalidJobStateError",
    "InvalidScheduleError",
    "Job",
    "JobAdded",
    "JobBuilder",
    "JobCancelledError",
    "JobContext",
    "JobEvent",
    "JobFailedError",
    "JobHandle",
    "JobInfo",
    "JobLookupError",
    "JobNotFoundError",
    "JobOptions",
    "JobOutcomeError",
    "JobPaused",
    "JobRemoved",
    "JobRequest",
    "JobRescheduled",
    "JobResumed",
    "LogEntry",
    "Oneshot",
    "Outcome",
    "PruneRule",
    "RunCancelled",
    "RunEvent",
    "RunFailed",
    "RunQueued",
    "RunRecord",
    "RunSkipped",
    "RunStarted",
    "RunSucceeded",
    "RunTimedOut",
    "ScheduleProblem",
    "ScheduleSpec",
    "Scheduler",
    "SchedulerStarted",
    "SchedulerStateError",
    "SchedulerStopped",
    "Schedules",
    "SerializationError",
    "Statistics",
    "StoreConfigError",
    "StoreError",
    "StoreUnavailableError",
    "SystemClock",
    "Task",
    "TaskCall",
    "TaskOptions",
    "TaskRegistry",
    "TimeEvent",
    "Timer",
    "Unique",
    "Worker",
    "WorkerStats",
    "task",
]
