"""Durable job stores: where the job runner keeps jobs (see ``docs/stores.md``).

``Store`` is the interface; ``MemoryStore`` (one process, tests) and ``SQLiteStore`` (stdlib
``sqlite3``, several processes on one host) need nothing extra. ``PostgresStore`` needs the
``[postgres]`` extra and is imported lazily, on first use of its name, so
``import beat.stores`` never needs asyncpg; it is left out of ``__all__`` so that
``import *`` works without the extra.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ._base import MAX_LOG_MESSAGE as MAX_LOG_MESSAGE  # a constant: not in the sorted __all__
from ._base import (
    Claimed,
    Heartbeat,
    InstanceRecord,
    JobRecord,
    JobStatus,
    LogEntry,
    NewJob,
    PruneRule,
    Store,
    Unique,
)
from ._errors import (
    BatchSerializationError,
    InvalidJobStateError,
    JobNotFoundError,
    SerializationError,
    StoreConfigError,
    StoreError,
    StoreUnavailableError,
)
from ._memory import MemoryStore
from ._schedules import ScheduleRecord, ScheduleSpec
from ._sqlite import SQLiteStore
from ._waits import Waits

if TYPE_CHECKING:
    from ._postgres import PostgresStore as PostgresStore

__all__ = [
    "BatchSerializationError",
    "Claimed",
    "Heartbeat",
    "InstanceRecord",
    "InvalidJobStateError",
    "JobNotFoundError",
    "JobRecord",
    "JobStatus",
    "LogEntry",
    "MemoryStore",
    "NewJob",
    "PruneRule",
    "SQLiteStore",
    "ScheduleRecord",
    "ScheduleSpec",
    "SerializationError",
    "Store",
    "StoreConfigError",
    "StoreError",
    "StoreUnavailableError",
    "Unique",
    "Waits",
]


def __getattr__(name: str) -> Any:
    if name == "PostgresStore":
        from ._postgres import PostgresStore

        return PostgresStore
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
