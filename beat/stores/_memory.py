"""``MemoryStore``: the store semantics in one process, for tests and experiments.

Nothing survives the process. Every method runs without awaiting between its reads and writes,
so each is atomic on the event loop. Time comes from ``clock`` (epoch seconds, default
:func:`time.time`), so tests can drive due times and lease expiry with a fake clock.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import math
import time
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from functools import partial
from uuid import UUID

from ._base import (
    FINISHED_VALUES,
    JSON,
    LEASE_EXPIRED,
    STORED_WAITING,
    Claimed,
    Enqueued,
    Heartbeat,
    InstanceRecord,
    JobRecord,
    JobStatus,
    LogEntry,
    NewJob,
    OpenedLoop,
    PreparedJob,
    PreparedUnique,
    PruneRule,
    Store,
    as_enqueued,
    batch_outcome,
    check_attempt,
    check_aware,
    check_claim,
    check_listing,
    check_name,
    check_paused,
    check_replace,
    check_seconds,
    check_version,
    clean_text,
    decode_json,
    derive_status,
    encode_json,
    epoch_to_dt,
    prepare_instance,
    prepare_jobs,
    prepare_logs,
    prepare_results,
    prepare_rules,
    prune_doomed,
    release_on,
    to_uuid,
)
from ._errors import InvalidJobStateError, JobNotFoundError, StoreUnavailableError
from ._schedules import (
    PreparedSchedule,
    ScheduleRecord,
    ScheduleSpec,
    make_record,
    moves_last_instant,
    prepare_schedule,
)

__all__ = ["MemoryStore"]


@dataclass(slots=True)
class _Row:
    seq: int
    id: UUID
    task: str
    args: str
    kwargs: str
    queue: str
    priority: int
    status: str
    attempt: int
    max_attempts: int
    scheduled_at: float
    created_at: float
    started_at: float | None = None
    finished_at: float | None = None
    worker: str | None = None
    lease_expires_at: float | None = None
    result: str | None = None
    error_type: str | None = None
    error_message: str | None = None
    error_traceback: str | None = None
    cancel_requested: bool = False
    meta: str = "{}"
    progress: str | None = None
    unique_key: str | None = None

    def owned(self, worker: str, attempt: int) -> bool:
        return self.status == "running" and self.worker == worker and self.attempt == attempt

    def expired(self, now: float) -> bool:
        lease = self.lease_expires_at
        return self.status == "running" and lease is not None and lease < now

    def finish(self, status: str, now: float) -> None:
        self.status = status
        self.finished_at = now
        self.lease_expires_at = None

    def requeue(self, scheduled_at: float) -> None:
        self.status = STORED_WAITING
        self.scheduled_at = scheduled_at
        self.worker = None
        self.lease_expires_at = None


@dataclass(slots=True)
class _Schedule:
    spec: PreparedSchedule
    version: int
    created_at: float
    updated_at: float
    last_instant: datetime | None = None

    def record(self) -> ScheduleRecord:
        created_at, updated_at = epoch_to_dt(self.created_at), epoch_to_dt(self.updated_at)
        assert created_at is not None and updated_at is not None
        return make_record(
            self.spec,
            version=self.version,
            created_at=created_at,
            updated_at=updated_at,
            last_instant=self.last_instant,
        )

    def change(self, spec: PreparedSchedule, version: int, now: float) -> None:
        """Store ``spec`` (a change) at ``now``; a resume or a new definition moves
        ``last_instant`` up to ``now`` (never back), so nothing before it is caught up."""
        if moves_last_instant(self.spec, spec):
            at = epoch_to_dt(now)
            assert at is not None
            if self.last_instant is None or self.last_instant < at:
                self.last_instant = at
        self.spec, self.version, self.updated_at = spec, version, now


class MemoryStore(Store):
    """Jobs in a dict, for one process. ``clock``: epoch seconds (default ``time.time``)."""

    def __init__(self, *, clock: Callable[[], float] = time.time) -> None:
        super().__init__()
        self._clock = clock
        self._rows: dict[UUID, _Row] = {}
        # Every waiting or running row, and finished rows not yet dropped: claims look only
        # here, dropping the finished rows they pass, so a claim costs the live jobs, not
        # every job ever stored. A row re-enters it when retried.
        self._live: dict[UUID, _Row] = {}
        # unique_key -> the rows with that key, in insertion order (pruned rows removed).
        self._by_key: dict[str, list[_Row]] = {}
        self._logs: dict[UUID, list[LogEntry]] = {}  # job id -> entries in insertion order
        self._instances: dict[str, tuple[InstanceRecord, float]] = {}  # name -> (record, expiry)
        self._schedules: dict[str, _Schedule] = {}
        self._schedules_version = 0
        self._schedule_waiters: set[asyncio.Future[None]] = set()
        self._seq = itertools.count(1)
        self._open = False
        self._new_waiters: set[asyncio.Future[None]] = set()
        self._finished_waiters: dict[UUID, set[asyncio.Future[None]]] = {}
        # Each method is atomic because it never awaits: on one event loop. Two loops (two
        # threads) would interleave them, and wake each other's futures from the wrong
        # thread; so, as the other stores, this one is used on the loop that opened it.
        self._opened_on = OpenedLoop("memory store")

    # -- lifecycle ---------------------------------------------------------------------------
    async def open(self) -> None:
        if self._open:
            self._opened_on.check()  # open already, on this loop: nothing to do
            return
        self._open = True
        self._opened_on.bind()

    async def close(self) -> None:
        """From any loop; the jobs stay (open it again, on any loop, to go on). Waiters
        parked on the loop that opened it are woken there (see :func:`release_on`)."""
        self._open = False
        opened = self._opened_on.unbind()
        new_waiters, self._new_waiters = self._new_waiters, set()
        schedule_waiters, self._schedule_waiters = self._schedule_waiters, set()
        finished_waiters, self._finished_waiters = self._finished_waiters, {}
        release_on(
            opened,
            *(
                partial(self._wake, waiters)
                for waiters in (new_waiters, schedule_waiters, *finished_waiters.values())
            ),
        )

    def _now(self) -> float:
        """The clock; every method calls it first, so it is where the store refuses a call
        when closed or on another event loop."""
        if not self._open:
            raise StoreUnavailableError("the memory store is not open")
        self._opened_on.check()
        return float(self._clock())

    async def now(self) -> datetime:
        now = epoch_to_dt(self._now())
        assert now is not None
        return now

    # -- records -----------------------------------------------------------------------------
    def _record(self, row: _Row, now: float) -> JobRecord:
        scheduled_at = epoch_to_dt(row.scheduled_at)
        created_at = epoch_to_dt(row.created_at)
        now_dt = epoch_to_dt(now)
        assert scheduled_at is not None and created_at is not None and now_dt is not None
        return JobRecord(
            id=row.id,
            task=row.task,
            args=json.loads(row.args),
            kwargs=decode_json(row.kwargs),
            queue=row.queue,
            priority=row.priority,
            status=derive_status(row.status, scheduled_at, now_dt),
            attempt=row.attempt,
            max_attempts=row.max_attempts,
            scheduled_at=scheduled_at,
            created_at=created_at,
            started_at=epoch_to_dt(row.started_at),
            finished_at=epoch_to_dt(row.finished_at),
            worker=row.worker,
            lease_expires_at=epoch_to_dt(row.lease_expires_at),
            result=None if row.result is None else json.loads(row.result),
            error_type=row.error_type,
            error_message=row.error_message,
            error_traceback=row.error_traceback,
            cancel_requested=row.cancel_requested,
            meta=decode_json(row.meta),
            progress=None if row.progress is None else json.loads(row.progress),
            unique_key=row.unique_key,
        )

    def _row(self, id: UUID | str) -> _Row:
        row = self._rows.get(to_uuid(id))
        if row is None:
            raise JobNotFoundError(f"no job with id {id}")
        return row

    # -- transitions -------------------------------------------------------------------------
    async def enqueue(self, jobs: Sequence[NewJob]) -> list[JobRecord]:
        return [r for r in self._insert(prepare_jobs(jobs), records=True) if r is not None]

    async def enqueue_prepared(self, jobs: Sequence[PreparedJob]) -> list[Enqueued]:
        return as_enqueued(jobs, self._insert(jobs, records=False))

    def _insert(self, prepared: Sequence[PreparedJob], *, records: bool) -> list[JobRecord | None]:
        """Store ``prepared``; per job its record, or ``None`` for a job stored as given when
        ``records`` is false (a unique conflict always has one).

        All or nothing: every job is first matched with what it conflicts with (a stored
        job, or an earlier job of the batch) without changing anything, so a refused
        ``replace`` across tasks (:func:`check_replace`) leaves the store as it was."""
        now = self._now()
        # Per job: its due time, and its new row or (found=True) the job it conflicts with.
        plan: list[tuple[PreparedJob, float, _Row, bool]] = []
        newest: dict[str, _Row] = {}  # unique key -> the newest new row of this batch
        for job in prepared:  # in order: a later job of the batch conflicts with an earlier
            shape = job.shape
            scheduled_at = (
                now + shape.delay if shape.scheduled_at is None else shape.scheduled_at.timestamp()
            )
            unique = job.unique
            existing = None
            if unique is not None:
                existing = self._conflict(unique, now, newest.get(unique.key))
                if existing is not None and unique.replace:
                    check_replace(unique.key, existing.task, shape.task)
            if existing is not None:
                plan.append((job, scheduled_at, existing, True))
                continue
            row = _Row(
                seq=0,  # numbered when stored
                id=job.id,
                task=shape.task,
                args=job.args,
                kwargs=job.kwargs,
                queue=shape.queue,
                priority=shape.priority,
                status=STORED_WAITING,
                attempt=0,
                max_attempts=shape.max_attempts,
                scheduled_at=scheduled_at,
                created_at=now,
                meta=shape.meta,
                unique_key=None if unique is None else unique.key,
            )
            if unique is not None:
                newest[unique.key] = row
            plan.append((job, scheduled_at, row, False))
        done: list[JobRecord | None] = []
        changed = False  # only found (unique conflicts): nobody to wake
        for job, scheduled_at, row, found in plan:
            if found:
                assert job.unique is not None
                if job.unique.replace and row.status == STORED_WAITING:
                    shape = job.shape
                    row.args, row.kwargs, row.meta = job.args, job.kwargs, shape.meta
                    row.priority, row.queue = shape.priority, shape.queue
                    row.max_attempts = max(shape.max_attempts, row.attempt + 1)
                    row.scheduled_at = scheduled_at
                    changed = True
                done.append(replace(self._record(row, now), conflict=True))
                continue
            row.seq = next(self._seq)
            self._rows[row.id] = row
            self._live[row.id] = row
            if row.unique_key is not None:
                self._by_key.setdefault(row.unique_key, []).append(row)
            done.append(self._record(row, now) if records else None)
            changed = True
        if changed:
            self._wake(self._new_waiters)
        return done

    def _conflict(
        self, unique: PreparedUnique, now: float, pending: _Row | None = None
    ) -> _Row | None:
        """The newest job ``unique`` conflicts with, if any: ``pending`` (the newest row of
        the enqueue under way with that key, not stored yet: waiting, created now), else a
        stored one."""
        if pending is not None and STORED_WAITING in unique.statuses:
            return pending
        for row in reversed(self._by_key.get(unique.key, ())):  # newest first
            if row.status not in unique.statuses:
                continue
            if unique.period is not None and row.created_at <= now - unique.period:
                continue
            return row
        return None

    async def claim(
        self,
        worker: str,
        *,
        queues: Sequence[str],
        tasks: Collection[str],
        limit: int,
        lease: float,
    ) -> Claimed:
        queue_list, task_list = check_claim(worker, queues, tasks, limit, lease)
        now = self._now()
        qs, ts = set(queue_list), set(task_list)
        candidates, ended = [], []
        live = self._live
        for row in list(live.values()):
            if row.status in FINISHED_VALUES:
                del live[row.id]
                continue
            if row.queue not in qs or row.task not in ts:
                continue
            if row.expired(now):
                if row.cancel_requested:
                    row.finish("cancelled", now)
                    self._finished(row.id)
                    ended.append(row)
                    continue
                if row.attempt >= row.max_attempts:
                    row.finish("dead", now)
                    row.error_type = LEASE_EXPIRED
                    row.error_message = f"lease expired after {row.attempt} attempt(s)"
                    row.error_traceback = None
                    self._finished(row.id)
                    ended.append(row)
                    continue
                candidates.append(row)
            elif row.status == STORED_WAITING and row.scheduled_at <= now:
                candidates.append(row)
        candidates.sort(key=lambda r: (-r.priority, r.scheduled_at, r.seq))
        taken = candidates[:limit]
        for row in taken:
            row.status = "running"
            row.attempt += 1
            row.worker = worker
            row.started_at = now
            row.lease_expires_at = now + lease
        return Claimed(
            (self._record(row, now) for row in taken), (self._record(row, now) for row in ended)
        )

    async def heartbeat(
        self, worker: str, jobs: Sequence[tuple[UUID, int]], lease: float
    ) -> Heartbeat:
        check_seconds(lease, "lease")
        now = self._now()
        lost, cancel = set(), set()
        for id, attempt in jobs:
            row = self._rows.get(to_uuid(id))
            if row is None or not row.owned(worker, attempt):
                lost.add(to_uuid(id))
                continue
            row.lease_expires_at = now + lease
            if row.cancel_requested:
                cancel.add(row.id)
        return Heartbeat(lost=frozenset(lost), cancel_requested=frozenset(cancel))

    def _owned(self, id: UUID, attempt: int, worker: str) -> _Row | None:
        row = self._rows.get(to_uuid(id))
        return row if row is not None and row.owned(worker, attempt) else None

    async def complete(self, id: UUID, attempt: int, worker: str, result: JSON = None) -> bool:
        text = encode_json(result, "result")
        now = self._now()
        row = self._owned(id, attempt, worker)
        if row is None:
            return False
        row.finish("succeeded", now)
        row.result = text
        self._finished(row.id)
        return True

    async def complete_many(self, items: Sequence[tuple[UUID, int, str, JSON]]) -> list[bool]:
        good, bad = prepare_results(items)
        now = self._now()
        written = []
        for item in good:
            row = self._owned(item.id, item.attempt, item.worker)
            if row is not None:
                row.finish("succeeded", now)
                row.result = item.result
                self._finished(row.id)
            written.append((item, row is not None))
        return batch_outcome(len(items), written, bad)

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
        retry = None if retry_at is None else check_aware(retry_at, "retry_at").timestamp()
        now = self._now()
        row = self._owned(id, attempt, worker)
        if row is None:
            return False
        row.error_type, row.error_message = clean_text(error_type), clean_text(message)
        row.error_traceback = clean_text(traceback)
        if row.cancel_requested:
            row.finish("cancelled", now)
        elif retry is not None and row.attempt < row.max_attempts:
            row.requeue(retry)
            self._wake(self._new_waiters)
            return True
        else:
            row.finish("dead", now)
        self._finished(row.id)
        return True

    async def release(self, id: UUID, attempt: int, worker: str) -> bool:
        now = self._now()
        row = self._owned(id, attempt, worker)
        if row is None:
            return False
        if row.cancel_requested:
            row.finish("cancelled", now)
            self._finished(row.id)
            return True
        row.requeue(row.scheduled_at)
        row.max_attempts += 1
        self._wake(self._new_waiters)
        return True

    async def mark_cancelled(self, id: UUID, attempt: int, worker: str) -> bool:
        now = self._now()
        row = self._owned(id, attempt, worker)
        if row is None:
            return False
        row.finish("cancelled", now)
        self._finished(row.id)
        return True

    async def cancel(self, id: UUID) -> JobRecord:
        now = self._now()
        row = self._row(id)
        if row.status == STORED_WAITING:
            row.finish("cancelled", now)
            self._finished(row.id)
        elif row.status == "running":
            row.cancel_requested = True
        return self._record(row, now)

    async def retry(self, id: UUID) -> JobRecord:
        now = self._now()
        row = self._row(id)
        if row.status not in ("dead", "cancelled"):
            status = self._record(row, now).status
            raise InvalidJobStateError(
                f"job {row.id} is {status}; only dead or cancelled jobs can be retried",
                status=status,
            )
        row.requeue(now)
        row.finished_at = None
        row.result = None
        row.cancel_requested = False
        row.max_attempts = max(row.max_attempts, row.attempt + 1)
        self._live[row.id] = row
        self._wake(self._new_waiters)
        return self._record(row, now)

    # -- reads -------------------------------------------------------------------------------
    async def get(self, id: UUID) -> JobRecord | None:
        now = self._now()
        row = self._rows.get(to_uuid(id))
        return None if row is None else self._record(row, now)

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
        wanted = check_listing(status, task, queue, limit)
        now = self._now()
        low = self._row(after).seq if after is not None else 0
        high = self._row(before).seq if before is not None else None
        records = []
        for row in self._rows.values():  # dicts keep insertion order = seq order
            if row.seq <= low or (high is not None and row.seq >= high):
                continue
            if task is not None and row.task != task:
                continue
            if queue is not None and row.queue != queue:
                continue
            record = self._record(row, now)
            if wanted is None or record.status == wanted:
                records.append(record)
        return records[-limit:] if before is not None and after is None else records[:limit]

    # -- wake-ups ----------------------------------------------------------------------------
    @staticmethod
    def _wake(waiters: set[asyncio.Future[None]]) -> None:
        for future in waiters:
            if not future.done():
                future.set_result(None)
        waiters.clear()

    def _finished(self, id: UUID) -> None:
        waiters = self._finished_waiters.pop(id, None)
        if waiters:
            self._wake(waiters)

    async def wait_for_jobs(
        self,
        timeout: float,
        *,
        queues: Sequence[str] | None = None,
        tasks: Collection[str] | None = None,
    ) -> None:
        check_seconds(timeout, "timeout", zero=True)
        timeout = min(timeout, self._until_claimable(self._now(), queues, tasks))
        if timeout <= 0:
            return
        future = asyncio.get_running_loop().create_future()
        self._new_waiters.add(future)
        try:
            await self.waits.sleep(future, timeout)
        finally:
            self._new_waiters.discard(future)

    def _until_claimable(
        self, now: float, queues: Sequence[str] | None, tasks: Collection[str] | None
    ) -> float:
        """Seconds until a job of these queues and tasks is claimable (0: now; inf: none)."""
        soonest = math.inf
        for row in self._live.values():
            if (queues is not None and row.queue not in queues) or (
                tasks is not None and row.task not in tasks
            ):
                continue
            if row.status == STORED_WAITING:
                soonest = min(soonest, row.scheduled_at)
            elif row.status == "running" and row.lease_expires_at is not None:
                soonest = min(soonest, row.lease_expires_at)
        return max(0.0, soonest - now)

    async def wait_finished(self, id: UUID, timeout: float) -> JobRecord:
        check_seconds(timeout, "timeout", zero=True)
        key = to_uuid(id)
        try:
            async with asyncio.timeout(timeout):
                while True:
                    now = self._now()
                    row = self._row(key)
                    if row.status in FINISHED_VALUES:
                        return self._record(row, now)
                    future = asyncio.get_running_loop().create_future()
                    waiters = self._finished_waiters.setdefault(key, set())
                    waiters.add(future)
                    try:
                        await self.waits.sleep(future, None)
                    finally:
                        waiters.discard(future)  # timed out: not kept until the job finishes
        except TimeoutError:
            status = self._record(self._row(key), self._now()).status
            raise TimeoutError(f"job {key} is still {status} after {timeout:g} s") from None

    # -- progress and logs ---------------------------------------------------------------------
    async def set_progress(self, id: UUID, attempt: int, worker: str, progress: JSON) -> bool:
        text = encode_json(progress, "progress")
        self._now()
        row = self._owned(id, attempt, worker)
        if row is None:
            return False
        row.progress = text
        return True

    async def add_logs(self, id: UUID, attempt: int, entries: Sequence[LogEntry]) -> None:
        prepared = prepare_logs(attempt, entries)
        self._now()
        row = self._row(id)
        self._logs.setdefault(row.id, []).extend(
            LogEntry(e.attempt, e.at, e.level, e.logger, e.message) for e in prepared
        )

    async def get_logs(self, id: UUID, *, attempt: int | None = None) -> list[LogEntry]:
        if attempt is not None:
            check_attempt(attempt)
        self._now()
        row = self._row(id)
        entries = self._logs.get(row.id, [])
        if attempt is not None:
            return [e for e in entries if e.attempt == attempt]
        return sorted(entries, key=lambda e: e.attempt)  # stable: insertion order kept

    # -- counts and pruning ----------------------------------------------------------------------
    async def count_jobs(self) -> dict[str, dict[JobStatus, int]]:
        now = self._now()
        now_dt = epoch_to_dt(now)
        assert now_dt is not None
        counts: dict[str, dict[JobStatus, int]] = {}
        for row in self._rows.values():
            status = JobStatus(row.status)
            if row.status == STORED_WAITING and row.scheduled_at > now:
                status = JobStatus.SCHEDULED
            by_status = counts.setdefault(row.queue, {})
            by_status[status] = by_status.get(status, 0) + 1
        return counts

    async def prune(self, rules: Sequence[PruneRule]) -> int:
        prepared = prepare_rules(rules)
        now = self._now()
        finished = [
            (row.id, row.status, row.task, row.finished_at, row.seq)
            for row in self._rows.values()
            if row.status in FINISHED_VALUES and row.finished_at is not None
        ]
        doomed = prune_doomed(finished, prepared, now)
        for id in doomed:
            row = self._rows.pop(id)
            self._live.pop(id, None)
            self._logs.pop(id, None)
            if row.unique_key is not None:
                rows = self._by_key[row.unique_key]
                rows.remove(row)
                if not rows:
                    del self._by_key[row.unique_key]
        return len(doomed)

    # -- instances -------------------------------------------------------------------------------
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
        p = prepare_instance(name, host, pid, started_at, info, ttl)
        now = self._now()
        for other, (_, expiry) in list(self._instances.items()):
            if expiry < now:
                del self._instances[other]
        last_seen = epoch_to_dt(now)
        assert last_seen is not None
        record = InstanceRecord(p.name, p.host, p.pid, p.started_at, last_seen, json.loads(p.info))
        self._instances[p.name] = (record, now + p.ttl)

    async def list_instances(self) -> list[InstanceRecord]:
        now = self._now()
        return [record for _, (record, expiry) in sorted(self._instances.items()) if expiry >= now]

    async def remove_instance(self, name: str) -> None:
        check_name(name, "name")
        self._now()
        self._instances.pop(name, None)

    # -- stored schedules ------------------------------------------------------------------------
    def _schedule_changed(self) -> int:
        self._schedules_version += 1
        self._wake(self._schedule_waiters)
        return self._schedules_version

    async def put_schedule(self, spec: ScheduleSpec) -> ScheduleRecord:
        p = prepare_schedule(spec)
        now = self._now()
        stored = self._schedules.get(p.name)
        if stored is None:
            stored = self._schedules[p.name] = _Schedule(p, self._schedule_changed(), now, now)
        elif stored.spec.content() != p.content():
            stored.change(p, self._schedule_changed(), now)
        return stored.record()

    async def get_schedule(self, name: str) -> ScheduleRecord | None:
        check_name(name, "schedule name")
        self._now()
        stored = self._schedules.get(name)
        return None if stored is None else stored.record()

    async def list_schedules(self) -> list[ScheduleRecord]:
        self._now()
        return [self._schedules[name].record() for name in sorted(self._schedules)]

    async def set_schedule_paused(self, name: str, paused: bool) -> ScheduleRecord:
        check_name(name, "schedule name")
        check_paused(paused)
        now = self._now()
        stored = self._schedules.get(name)
        if stored is None:
            raise JobNotFoundError(f"no schedule named {name!r}")
        if stored.spec.paused != paused:
            stored.change(replace(stored.spec, paused=paused), self._schedule_changed(), now)
        return stored.record()

    async def delete_schedule(self, name: str) -> bool:
        check_name(name, "schedule name")
        self._now()
        if self._schedules.pop(name, None) is None:
            return False
        self._schedule_changed()
        return True

    async def advance_schedule(self, name: str, instant: datetime) -> bool:
        check_name(name, "schedule name")
        at = check_aware(instant, "instant")
        self._now()
        stored = self._schedules.get(name)
        if stored is None or (stored.last_instant is not None and stored.last_instant >= at):
            return False
        stored.last_instant = at
        return True

    async def schedules_version(self) -> int:
        self._now()
        return self._schedules_version

    async def wait_schedules_changed(self, version: int, timeout: float) -> int:
        check_version(version)
        check_seconds(timeout, "timeout", zero=True)
        self._now()
        if self._schedules_version != version or timeout == 0:
            return self._schedules_version
        future = asyncio.get_running_loop().create_future()
        self._schedule_waiters.add(future)
        try:
            await self.waits.sleep(future, timeout)
        finally:
            self._schedule_waiters.discard(future)
        return await self.schedules_version()
