"""``client.schedules``: schedules kept in the store, changed at runtime from any process.

::

    async with beat.Client(SQLiteStore("jobs.db")) as client:
        await client.schedules.add(ScheduleSpec(name="nightly", task="reports.build",
                                                cron="0 3 * * *", args=[2024]))
        await client.schedules.update("nightly", cron="30 3 * * *")
        await client.schedules.pause("nightly")
        await client.schedules.resume("nightly")
        await client.schedules.remove("nightly")

Every ``Scheduler(store=...)`` sharing the store picks a change up within moments (its sync
loop, ``_schedule_sync.py``) and enqueues each occurrence as one durable job, exactly once
across the cluster (docs/schedules.md). A bad spec raises a typed error naming the value
(:class:`~beat.InvalidScheduleError`, :class:`~beat.CronSyntaxError`,
:class:`~beat.InvalidJobError`, :class:`~beat.SerializationError`) and stores nothing.
"""

from __future__ import annotations

import builtins
import dataclasses
from typing import Any

from ._exceptions import DuplicateJobError, InvalidJobError, InvalidScheduleError
from ._schedules import PROGRESS_PREFIX, job_of_record
from .stores import JobNotFoundError, ScheduleRecord, ScheduleSpec, Store
from .stores._schedules import prepare_schedule

__all__ = ["Schedules"]

_SPEC_FIELDS = frozenset(f.name for f in dataclasses.fields(ScheduleSpec))


class Schedules:
    """The stored schedules of one store. Every method is one store call (``update`` reads
    then writes: of two concurrent updates of one schedule, the later write wins whole)."""

    __slots__ = ("_store",)

    def __init__(self, store: Store) -> None:
        self._store = store

    def __repr__(self) -> str:
        return f"<Schedules of {type(self._store).__name__}>"

    async def add(self, spec: ScheduleSpec) -> ScheduleRecord:
        """Store a new schedule. :class:`DuplicateJobError` if the name is taken (two adds of
        one name at the same moment: both may succeed, the later one wins)."""
        _check(spec)
        if await self._store.get_schedule(spec.name) is not None:
            raise DuplicateJobError(
                f"a schedule named {spec.name!r} exists; use schedules.update() or .put()"
            )
        return await self._store.put_schedule(spec)

    async def put(self, spec: ScheduleSpec) -> ScheduleRecord:
        """Store ``spec`` whether or not a schedule of that name exists (an upsert; storing
        an unchanged spec changes nothing, not even the version)."""
        _check(spec)
        return await self._store.put_schedule(spec)

    async def update(self, name: str, **changes: Any) -> ScheduleRecord:
        """Change fields of the schedule ``name`` (``cron=``, ``args=``, ``paused=`` …; to
        switch between cron/every/at, give the old one as ``None``). :class:`JobNotFoundError`
        if there is none; :class:`InvalidJobError` for an unknown field."""
        unknown = set(changes) - (_SPEC_FIELDS - {"name"})
        if unknown:
            raise InvalidJobError(
                f"unknown schedule field(s) {sorted(unknown)}; known: "
                f"{sorted(_SPEC_FIELDS - {'name'})}"
            )
        current = await self._existing(name)
        spec = dataclasses.replace(current.spec, **changes)
        _check(spec)
        return await self._store.put_schedule(spec)

    async def pause(self, name: str) -> ScheduleRecord:
        """Stop enqueuing occurrences (each scheduler skips them; nothing is caught up on
        resume). :class:`JobNotFoundError` if there is no such schedule."""
        _check_name(name)
        return await self._store.set_schedule_paused(name, True)

    async def resume(self, name: str) -> ScheduleRecord:
        """Enqueue again from the next instant. :class:`JobNotFoundError` if none."""
        _check_name(name)
        return await self._store.set_schedule_paused(name, False)

    async def remove(self, name: str) -> bool:
        """Delete the schedule; ``False`` if there was none. Jobs it enqueued stay."""
        _check_name(name)
        return await self._store.delete_schedule(name)

    async def get(self, name: str) -> ScheduleRecord | None:
        _check_name(name)
        return await self._store.get_schedule(name)

    async def list(self) -> builtins.list[ScheduleRecord]:
        """Every stored schedule, by name (the progress rows of code-defined schedules are
        not listed)."""
        return [
            record
            for record in await self._store.list_schedules()
            if not record.name.startswith(PROGRESS_PREFIX)
        ]

    async def _existing(self, name: str) -> ScheduleRecord:
        _check_name(name)
        record = await self._store.get_schedule(name)
        if record is None:
            raise JobNotFoundError(f"no schedule named {name!r}")
        return record


def _check_name(name: Any) -> None:
    if not isinstance(name, str) or not name:
        raise InvalidScheduleError(f"a schedule name must be a non-empty string, got {name!r}")
    if name.startswith(PROGRESS_PREFIX):
        raise InvalidScheduleError(
            f"schedule names starting with {PROGRESS_PREFIX!r} are reserved "
            f"(progress of schedules defined in code), got {name!r}"
        )


def _check(spec: Any) -> None:
    """Refuse a spec the schedulers could not run, before the store sees it (the store
    checks too: this adds the reserved names and the scheduler's own job checks)."""
    if not isinstance(spec, ScheduleSpec):
        raise InvalidScheduleError(f"expected a beat.stores.ScheduleSpec, got {spec!r}")
    _check_name(spec.name)
    prepare_schedule(spec)  # the store's own checks, so both raise the same errors
    job_of_record(spec)
