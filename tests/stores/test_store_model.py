"""Every store against one model of the job state machine, driven by Hypothesis.

The example-based conformance tests pin one transition at a time. Here Hypothesis strings
random sequences of enqueues (unique ones too), claims, heartbeats, outcomes from current
and stale owners, cancels, retries, prunes and the passing of time, and after every step the
store's jobs must be exactly what a small model of the contract says: status, attempt,
owner, attempts allowed, cancellation flag, result and error type; so must the counts per
status and every page of a listing by status. A claim must take exactly the jobs the model
would take (of its queues and tasks, by priority, then due time, then insertion order),
expire exactly the leases the model expires (of its queues and tasks only), a unique
enqueue must conflict with exactly the job the model names (and replace it only while it
waits), a prune must delete exactly the finished jobs the model's rules pick (by age, or
past a count, newest first), and every fenced call must be accepted or refused as the
model decides.

Time: leases last ``LEASE`` seconds and time moves in steps of ``STEP``, so no lease or due
time ever sits closer than 5 s to "now". That margin keeps PostgreSQL exact, whose clock
runs on in real time while the test shifts rows back (see ``conftest.py``). The fake clock
of the memory and SQLite stores ticks a little on every read, like a real one, so two jobs
due "at the same moment" are ordered by when their due time was set, on every store.
"""

from __future__ import annotations

import asyncio
import shutil
import tempfile
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any, TypeVar
from uuid import UUID

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from beat.stores import (
    InvalidJobStateError,
    JobRecord,
    JobStatus,
    NewJob,
    PruneRule,
    Store,
    Unique,
)
from beat.stores._base import LEASE_EXPIRED

from .conftest import KINDS, FakeClock, Harness, _memory, _postgres, _sqlite

_T = TypeVar("_T")

LEASE = 15.0
STEP = 10.0
WORKERS = ("a", "b")
# What claims ask for: one queue (PostgreSQL's single-queue statement) or both (its other).
QUEUES = [("default",), ("q2",), ("default", "q2")]
TASKS = [("t",), ("u",), ("t", "u")]
EXAMPLES = {"memory": 150, "sqlite": 100, "postgres": 50}


class TickingClock(FakeClock):
    """A fake clock that moves 100 µs on every read, as time passes between real calls."""

    def __call__(self) -> float:
        self.now += 1e-4
        return self.now


@dataclass
class Job:
    """What the contract says one job is now."""

    id: UUID
    seq: int
    priority: int
    max_attempts: int
    # (model seconds, step it was set at): due times equal in model seconds are ordered by
    # when they were set, as a ticking clock orders them.
    due: tuple[float, int]
    status: str = "queued"  # stored: "queued" covers scheduled
    attempt: int = 0
    worker: str | None = None
    lease_until: float | None = None
    cancel_requested: bool = False
    result: int | None = None
    error_type: str | None = None
    claims: list[tuple[str, int]] = field(default_factory=list)  # every (worker, attempt)
    queue: str = "default"
    task: str = "t"
    key: str | None = None  # its unique key
    created: float = 0.0  # model seconds
    finished: tuple[float, int] | None = None  # as due: (model seconds, step)

    def owned(self, worker: str, attempt: int) -> bool:
        return self.status == "running" and (self.worker, self.attempt) == (worker, attempt)

    def finish(self, status: str, when: tuple[float, int]) -> None:
        self.status, self.lease_until, self.finished = status, None, when

    def requeue(self, due: tuple[float, int]) -> None:
        self.status, self.due, self.worker, self.lease_until = "queued", due, None, None
        self.finished = None


class StoreMachine(RuleBasedStateMachine):
    make: Callable[[], Harness]  # set per store kind by the test

    def __init__(self) -> None:
        super().__init__()
        self.runner = asyncio.Runner()
        self.harness = self.make()
        self.call(self.harness.start())
        self.store: Store = self.harness.store
        self.store.prune_batch = 2  # a prune of a few jobs already takes several batches
        self.jobs: dict[UUID, Job] = {}
        self.now = 0.0  # model seconds passed
        self.step = 0
        self.seq = 0  # insertion order, as the stores number rows

    def call(self, coro: Coroutine[Any, Any, _T]) -> _T:
        return self.runner.run(coro)

    def teardown(self) -> None:
        try:
            self.call(self.harness.stop())
        finally:
            self.runner.close()

    def _next(self) -> int:
        self.step += 1
        return self.step

    def _when(self) -> tuple[float, int]:
        """Now, as a finish time: steps order finishes within one model instant."""
        return (self.now, self.step)

    def _new_seq(self) -> int:
        self.seq += 1
        return self.seq

    def _pick(self, index: int, claimed: bool = False) -> Job:
        jobs = [j for j in self.jobs.values() if j.claims or not claimed]
        return jobs[index % len(jobs)]

    def _execution(self, index: int, stale: bool) -> tuple[Job, str, int, bool]:
        """A claimed job, the (worker, attempt) of its first claim (``stale``) or its latest,
        and whether that execution owns the job now (the model's fencing verdict)."""
        job = self._pick(index, claimed=True)
        worker, attempt = job.claims[0] if stale else job.claims[-1]
        return job, worker, attempt, job.owned(worker, attempt)

    def _has_claimed(self) -> bool:
        return any(j.claims for j in self.jobs.values())

    # -- rules -------------------------------------------------------------------------------
    @rule(
        specs=st.lists(
            st.tuples(
                st.sampled_from([0.0, STEP]),
                st.integers(1, 2),  # max_attempts: 1 or 2, so leases often run out
                st.integers(0, 1),
                st.sampled_from(["default", "q2"]),
                st.sampled_from(["t", "u"]),
            ),
            min_size=1,
            max_size=3,
        )
    )
    def enqueue(self, specs: list[tuple[float, int, int, str, str]]) -> None:
        step = self._next()
        new = [
            NewJob(task, delay=d, max_attempts=m, priority=p, queue=queue)
            for d, m, p, queue, task in specs
        ]
        records = self.call(self.store.enqueue(new))
        assert len(records) == len(specs)
        for record, (delay, attempts, priority, queue, task) in zip(records, specs, strict=True):
            assert record.id not in self.jobs
            assert record.attempt == 0
            assert record.status is (JobStatus.SCHEDULED if delay else JobStatus.QUEUED)
            job = Job(record.id, self._new_seq(), priority, attempts, (self.now + delay, step))
            job.queue, job.task = queue, task
            self.jobs[record.id] = job

    @rule(
        specs=st.lists(
            st.tuples(
                st.sampled_from(["k1", "k2"]),
                st.sampled_from([0.0, STEP]),
                st.integers(1, 2),  # max_attempts: 1 or 2, so leases often run out
                st.integers(0, 1),
            ),
            min_size=1,
            max_size=2,
        ),
        statuses=st.sets(st.sampled_from(list(JobStatus)), min_size=1),
        period=st.sampled_from([None, LEASE]),
        replace=st.booleans(),
    )
    def enqueue_unique(
        self,
        specs: list[tuple[str, float, int, int]],
        statuses: set[JobStatus],
        period: float | None,
        replace: bool,
    ) -> None:
        step = self._next()
        unique = {
            key: Unique(key, period, frozenset(statuses), "replace" if replace else "ignore")
            for key in ("k1", "k2")
        }
        new = [
            NewJob("t", delay=d, max_attempts=m, priority=p, unique=unique[k])
            for k, d, m, p in specs
        ]
        records = self.call(self.store.enqueue(new))
        # In order: an earlier job of the batch is stored, for the later ones, before them.
        for record, (key, delay, attempts, priority) in zip(records, specs, strict=True):
            existing = self._conflict(key, statuses, period)
            if existing is None:
                assert not record.conflict and record.id not in self.jobs
                job = Job(record.id, self._new_seq(), priority, attempts, (self.now + delay, step))
                job.key, job.created = key, self.now
                self.jobs[record.id] = job
                continue
            assert record.conflict and record.id == existing.id
            if replace and existing.status == "queued":
                existing.priority = priority
                existing.max_attempts = max(attempts, existing.attempt + 1)
                existing.due = (self.now + delay, step)
            self._check(existing, record)

    def _conflict(self, key: str, statuses: set[JobStatus], period: float | None) -> Job | None:
        """The newest stored job an enqueue with this unique key conflicts with."""
        waiting = bool(statuses & {JobStatus.SCHEDULED, JobStatus.QUEUED})
        for job in sorted(self.jobs.values(), key=lambda j: -j.seq):
            if job.key != key or (period is not None and job.created <= self.now - period):
                continue
            if (job.status == "queued" and waiting) or JobStatus(job.status) in statuses:
                return job
        return None

    @rule(
        worker=st.sampled_from(WORKERS),
        limit=st.integers(1, 3),
        queues=st.sampled_from(QUEUES),
        tasks=st.sampled_from(TASKS),
    )
    def claim(
        self, worker: str, limit: int, queues: tuple[str, ...], tasks: tuple[str, ...]
    ) -> None:
        self._next()
        candidates = []
        for job in sorted(self.jobs.values(), key=lambda j: j.seq):
            if job.queue not in queues or job.task not in tasks:
                continue  # neither taken nor expired by this claim
            if job.status == "running" and job.lease_until is not None:
                if job.lease_until < self.now:
                    if job.cancel_requested:
                        job.finish("cancelled", self._when())
                    elif job.attempt >= job.max_attempts:
                        job.finish("dead", self._when())
                        job.error_type = LEASE_EXPIRED
                    else:
                        candidates.append(job)
            elif job.status == "queued" and job.due[0] <= self.now:
                candidates.append(job)
        candidates.sort(key=lambda j: (-j.priority, j.due, j.seq))
        taken = candidates[:limit]
        for job in taken:
            job.status, job.worker = "running", worker
            job.attempt += 1
            job.lease_until = self.now + LEASE
            job.claims.append((worker, job.attempt))
        records = self.call(
            self.store.claim(worker, queues=queues, tasks=tasks, limit=limit, lease=LEASE)
        )
        assert {r.id for r in records} == {j.id for j in taken}, (records, taken)
        for record in records:
            job = self.jobs[record.id]
            assert (record.status, record.worker, record.attempt) == (
                JobStatus.RUNNING,
                worker,
                job.attempt,
            )

    @precondition(_has_claimed)
    @rule(index=st.integers(0, 99), stale=st.booleans(), worker=st.sampled_from(WORKERS))
    def heartbeat(self, index: int, stale: bool, worker: str) -> None:
        self._next()
        job = self._pick(index, claimed=True)
        claim = job.claims[0] if stale else job.claims[-1]
        owner, attempt = claim if claim[0] == worker else (worker, claim[1])
        beat = self.call(self.store.heartbeat(owner, [(job.id, attempt)], LEASE))
        if job.owned(owner, attempt):
            job.lease_until = self.now + LEASE
            assert job.id not in beat.lost
            assert (job.id in beat.cancel_requested) is job.cancel_requested
        else:
            assert beat.lost == {job.id} and not beat.cancel_requested

    @precondition(_has_claimed)
    @rule(index=st.integers(0, 99), stale=st.booleans())
    def complete(self, index: int, stale: bool) -> None:
        step = self._next()
        job, worker, attempt, expected = self._execution(index, stale)
        if expected:
            job.finish("succeeded", self._when())
            job.result = step
        assert self.call(self.store.complete(job.id, attempt, worker, step)) is expected

    @precondition(_has_claimed)
    @rule(indexes=st.lists(st.integers(0, 99), min_size=1, max_size=3, unique=True))
    def complete_many(self, indexes: list[int]) -> None:
        step = self._next()
        jobs: dict[UUID, Job] = {}
        for i in indexes:
            job = self._pick(i, claimed=True)
            jobs[job.id] = job  # each job once: a repeated item is a different case
        items = [(j.id, j.claims[-1][1], j.claims[-1][0], step) for j in jobs.values()]
        expected = []
        for job, (_, attempt, worker, _) in zip(jobs.values(), items, strict=True):
            expected.append(job.owned(worker, attempt))
            if expected[-1]:
                job.finish("succeeded", self._when())
                job.result = step
        assert self.call(self.store.complete_many(items)) == expected

    @precondition(_has_claimed)
    @rule(index=st.integers(0, 99), stale=st.booleans(), retry=st.sampled_from([None, 0.0, STEP]))
    def fail(self, index: int, stale: bool, retry: float | None) -> None:
        step = self._next()
        job, worker, attempt, expected = self._execution(index, stale)
        retry_at = None
        if retry is not None:
            retry_at = self.call(self.store.now()) + timedelta(seconds=retry)
        if expected:
            job.error_type = "E"
            if job.cancel_requested:
                job.finish("cancelled", self._when())
            elif retry is not None and job.attempt < job.max_attempts:
                job.requeue((self.now + retry, step))
            else:
                job.finish("dead", self._when())
        outcome = self.store.fail(
            job.id, attempt, worker, error_type="E", message="m", retry_at=retry_at
        )
        assert self.call(outcome) is expected

    @precondition(_has_claimed)
    @rule(index=st.integers(0, 99), stale=st.booleans())
    def release(self, index: int, stale: bool) -> None:
        self._next()
        job, worker, attempt, expected = self._execution(index, stale)
        if expected:
            if job.cancel_requested:
                job.finish("cancelled", self._when())
            else:
                job.requeue(job.due)  # its old place, and the attempt does not count
                job.max_attempts += 1
        assert self.call(self.store.release(job.id, attempt, worker)) is expected

    @precondition(_has_claimed)
    @rule(index=st.integers(0, 99), stale=st.booleans())
    def mark_cancelled(self, index: int, stale: bool) -> None:
        self._next()
        job, worker, attempt, expected = self._execution(index, stale)
        if expected:
            job.finish("cancelled", self._when())
        assert self.call(self.store.mark_cancelled(job.id, attempt, worker)) is expected

    @precondition(lambda self: self.jobs)
    @rule(index=st.integers(0, 99))
    def cancel(self, index: int) -> None:
        self._next()
        job = self._pick(index)
        if job.status == "queued":
            job.finish("cancelled", self._when())
        elif job.status == "running":
            job.cancel_requested = True
        record = self.call(self.store.cancel(job.id))
        self._check(job, record)

    @precondition(lambda self: self.jobs)
    @rule(index=st.integers(0, 99))
    def retry(self, index: int) -> None:
        step = self._next()
        job = self._pick(index)
        if job.status not in ("dead", "cancelled"):
            with pytest.raises(InvalidJobStateError):
                self.call(self.store.retry(job.id))
            return
        job.requeue((self.now, step))
        job.cancel_requested, job.result = False, None
        job.max_attempts = max(job.max_attempts, job.attempt + 1)
        self._check(job, self.call(self.store.retry(job.id)))

    @precondition(lambda self: self.jobs)
    @rule(
        rules=st.lists(
            st.tuples(
                st.sampled_from(["succeeded", "dead", "cancelled"]),
                st.sampled_from([None, "t", "u"]),
                st.sampled_from([None, LEASE]),
                st.sampled_from([None, 0, 1, 2]),
            ).filter(lambda r: r[2] is not None or r[3] is not None),
            min_size=1,
            max_size=2,
        )
    )
    def prune(self, rules: list[tuple[str, str | None, float | None, int | None]]) -> None:
        self._next()
        finished = [j for j in self.jobs.values() if j.finished is not None]
        doomed: set[UUID] = set()
        for status, task, max_age, max_count in rules:
            matching = [j for j in finished if j.status == status and task in (None, j.task)]
            matching.sort(key=lambda j: (j.finished, j.seq), reverse=True)  # newest first
            for rank, job in enumerate(matching):
                assert job.finished is not None
                if (max_age is not None and job.finished[0] < self.now - max_age) or (
                    max_count is not None and rank >= max_count
                ):
                    doomed.add(job.id)
        given = [PruneRule(JobStatus(s), t, a, c) for s, t, a, c in rules]
        assert self.call(self.store.prune(given)) == len(doomed)
        for id in doomed:
            del self.jobs[id]

    @rule(seconds=st.sampled_from([STEP, 2 * STEP]))
    def advance(self, seconds: float) -> None:
        self._next()
        self.now += seconds
        self.call(self.harness.advance(seconds))

    @precondition(lambda self: self.jobs)
    @rule(
        status=st.sampled_from([None, *JobStatus]),
        limit=st.integers(1, 4),
        index=st.integers(0, 99),
        cursor=st.sampled_from([None, "after", "before"]),
    )
    def list_page(
        self, status: JobStatus | None, limit: int, index: int, cursor: str | None
    ) -> None:
        self._next()
        jobs = [j for j in self.jobs.values() if status is None or self._status(j) == status]
        mark = self._pick(index)
        if cursor == "after":
            wanted = [j for j in jobs if j.seq > mark.seq][:limit]
        elif cursor == "before":
            wanted = [j for j in jobs if j.seq < mark.seq][-limit:]
        else:
            wanted = jobs[:limit]
        page = self.store.list_jobs(
            status=status,
            limit=limit,
            after=mark.id if cursor == "after" else None,
            before=mark.id if cursor == "before" else None,
        )
        assert [r.id for r in self.call(page)] == [j.id for j in wanted]

    # -- the check ---------------------------------------------------------------------------
    def _status(self, job: Job) -> JobStatus:
        if job.status == "queued" and job.due[0] > self.now:
            return JobStatus.SCHEDULED
        return JobStatus(job.status)

    def _check(self, job: Job, record: JobRecord) -> None:
        seen = (
            record.status,
            record.attempt,
            record.max_attempts,
            record.cancel_requested,
            record.worker if record.status is JobStatus.RUNNING else None,
        )
        worker = job.worker if job.status == "running" else None
        wanted = (self._status(job), job.attempt, job.max_attempts, job.cancel_requested, worker)
        assert seen == wanted, f"job {job.seq}: store {seen}, model {wanted}"
        if job.status == "succeeded":
            assert record.result == job.result
        if job.status in ("dead", "cancelled") and job.error_type is not None:
            assert record.error_type == job.error_type

    @invariant()
    def every_job_is_where_the_model_says(self) -> None:
        records = self.call(self.store.list_jobs(limit=1000))
        assert [r.id for r in records] == [j.id for j in self.jobs.values()]
        for record in records:
            self._check(self.jobs[record.id], record)
        counts: dict[str, dict[JobStatus, int]] = {}
        for job in self.jobs.values():
            of_queue = counts.setdefault(job.queue, {})
            of_queue[self._status(job)] = of_queue.get(self._status(job), 0) + 1
        assert self.call(self.store.count_jobs()) == counts


@pytest.mark.parametrize("kind", KINDS)
def test_every_store_follows_the_job_model(kind: str, request: pytest.FixtureRequest) -> None:
    directories: list[str] = []

    def make() -> Harness:
        clock = TickingClock(start=1_800_000_000)
        if kind == "memory":
            return _memory(clock)
        if kind == "sqlite":
            directories.append(tempfile.mkdtemp(prefix="beat-model-"))
            return _sqlite(clock, Path(directories[-1]) / "jobs.db")
        return _postgres(request.getfixturevalue("store_postgres"))

    machine: type[StoreMachine] = type(
        f"StoreMachine_{kind}", (StoreMachine,), {"make": staticmethod(make)}
    )
    try:
        machine.TestCase.settings = settings(
            max_examples=EXAMPLES[kind],
            stateful_step_count=40,
            deadline=None,
            suppress_health_check=[HealthCheck.too_slow],
        )
        machine.TestCase().runTest()
    finally:
        for directory in directories:
            shutil.rmtree(directory, ignore_errors=True)
