"""Retention: workers with ``retention=[PruneRule...]`` prune once per period cluster-wide.

Three workers (three store handles: other connections/pools for SQLite and PostgreSQL)
start in the same period; exactly one ``beat.prune`` job is stored for it and run once. The
same with three worker *processes* (``prune_worker.py``) on SQLite and PostgreSQL. On the
memory store with a FakeClock, the next period brings exactly one more.

The in-process run history of scheduled jobs is bounded separately (``Job`` option
``history``, a ``deque(maxlen=...)``): ``tests/test_runs.py::
test_history_stays_bounded_over_100k_runs``.
"""

from __future__ import annotations

import uuid
from datetime import timedelta
from pathlib import Path

import pytest

from beat import InvalidJobError, Scheduler
from beat._retention import PRUNE_TASK_NAME, decode_rules, encode_rules
from beat._worker import Worker
from beat.stores import JobStatus, MemoryStore, NewJob, PruneRule, SQLiteStore, Store
from beat.testing import FakeClock
from tests.coordinators.conftest import PostgresServer

from ._processes import run_together
from ._util import claim_one
from .conftest import Harness
from .test_worker import eventually, registry, start, workers

__all__ = ["workers"]  # the fixture, imported for the tests below

pytestmark = pytest.mark.asyncio

KEEP_TWO = [PruneRule(JobStatus.SUCCEEDED, task="t", max_count=2)]
#: A period no test run straddles (instants are floor(now / every) * every).
DECADE = timedelta(days=3650)


async def finished(store: Store, n: int) -> None:
    await store.enqueue([NewJob("t", args=[i]) for i in range(n)])
    for _ in range(n):
        record = await claim_one(store)
        assert await store.complete(record.id, record.attempt, "w1", record.args[0])


async def prune_jobs(store: Store) -> list[object]:
    return [r for r in await store.list_jobs(limit=100) if r.task == PRUNE_TASK_NAME]


async def test_three_instances_prune_once_per_period(
    harness: Harness, workers: list[Worker]
) -> None:
    store = harness.store
    await finished(store, 5)
    for _ in range(3):
        handle = await harness.other() if harness.kind != "memory" else store
        await start(workers, handle, registry(), retention=KEEP_TWO, prune_every=DECADE)

    async def pruned() -> bool:
        jobs = await prune_jobs(store)
        return bool(jobs) and all(j.status is JobStatus.SUCCEEDED for j in jobs)  # type: ignore[attr-defined]

    await eventually(pruned)
    [job] = await prune_jobs(store)
    assert job.result == {"deleted": 3}  # type: ignore[attr-defined]
    assert job.attempt == 1  # type: ignore[attr-defined]
    left = await store.list_jobs(task="t")
    assert sorted(r.result for r in left) == [3, 4]  # the two newest kept


async def test_each_new_period_prunes_once_more() -> None:
    clock = FakeClock()
    store = MemoryStore(clock=clock.time)
    await store.open()
    started: list[Worker] = []
    try:
        await finished(store, 3)
        for _ in range(3):
            worker = Worker(
                store, registry(), clock=clock, poll=0.05, retention=KEEP_TWO, prune_every=60
            )
            await worker.start()
            started.append(worker)
        await clock.settle()

        async def prunes_done(n: int) -> bool:
            jobs = await prune_jobs(store)
            return len(jobs) == n and all(j.status is JobStatus.SUCCEEDED for j in jobs)  # type: ignore[attr-defined]

        await eventually(lambda: prunes_done(1))
        assert [r.result for r in await store.list_jobs(task="t")] == [1, 2]
        await finished(store, 2)
        await clock.advance(60)  # the next period: every instance tries, one job is stored
        await eventually(lambda: prunes_done(2))
        first, second = await prune_jobs(store)
        assert (first.result, second.result) == ({"deleted": 1}, {"deleted": 2})  # type: ignore[attr-defined]
        assert second.meta["prune_period"] > first.meta["prune_period"]  # type: ignore[attr-defined]
        assert len(await store.list_jobs(task="t")) == 2
    finally:
        for worker in started:
            await worker.stop(0)


async def test_bad_retention_is_refused_when_building() -> None:
    store = MemoryStore()
    with pytest.raises(InvalidJobError, match="finished status"):
        Worker(store, registry(), retention=[PruneRule(JobStatus.QUEUED, max_age=1)])
    with pytest.raises(InvalidJobError, match="prune_every"):
        Scheduler(store=store, retention=KEEP_TWO, prune_every=0)
    with pytest.raises(InvalidJobError, match="max_age, max_count"):
        Scheduler(store=store, retention=[PruneRule(JobStatus.DEAD)])


async def test_rules_travel_as_json_and_back() -> None:
    rules = [*KEEP_TWO, PruneRule(JobStatus.DEAD, max_age=86400.0)]
    assert decode_rules(encode_rules(rules)) == rules
    with pytest.raises(InvalidJobError):
        decode_rules([{"status": "queued", "task": None, "max_age": 1, "max_count": None}])
    with pytest.raises(InvalidJobError):
        decode_rules({"status": "dead"})


PRUNE_WORKER = Path(__file__).with_name("prune_worker.py")


def run_pruners(kind: str, target: str, schema: str, count: int = 3) -> list[str]:
    """Start ``count`` prune_worker.py processes together; the names they report."""
    reports = run_together(PRUNE_WORKER, [[kind, target, schema, f"p{n}"] for n in range(count)])
    return [report["name"] for report in reports]


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["sqlite", "postgres"])
async def test_three_processes_prune_once(
    kind: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    store: Store
    if kind == "sqlite":
        target, schema = str(tmp_path / "jobs.db"), ""
        store = SQLiteStore(target)
    else:
        from beat.stores import PostgresStore

        server: PostgresServer = request.getfixturevalue("store_postgres")
        target, schema = server.dsn(), f"t{uuid.uuid4().hex[:12]}"
        store = PostgresStore(target, schema=schema)
    async with store:
        await finished(store, 5)
        names = run_pruners(kind, target, schema)
        assert sorted(names) == ["p0", "p1", "p2"]
        [job] = await prune_jobs(store)
        assert (job.result, job.attempt, job.worker in names) == ({"deleted": 3}, 1, True)  # type: ignore[attr-defined]
        assert sorted(r.result for r in await store.list_jobs(task="t")) == [3, 4]
