"""PostgresStore only: several processes, concurrent migrations, NOTIFY, errors."""

from __future__ import annotations

import asyncio
import datetime
import json
import time
import uuid
from typing import Any

import pytest

from beat.stores import (
    JobRecord,
    JobStatus,
    NewJob,
    PostgresStore,
    StoreConfigError,
    StoreUnavailableError,
)
from beat.stores._postgres import SCHEMA_VERSION
from tests.coordinators.conftest import PostgresServer, free_port

from ._processes import claim_in_processes
from ._util import parked

pytestmark = pytest.mark.asyncio


@pytest.fixture
def server(store_postgres: PostgresServer) -> PostgresServer:
    return store_postgres


@pytest.fixture
def schema() -> str:
    return f"t{uuid.uuid4().hex[:12]}"


async def test_four_processes_claim_every_job_exactly_once(
    server: PostgresServer, schema: str
) -> None:
    async with PostgresStore(server.dsn(), schema=schema) as store:
        jobs = await store.enqueue([NewJob("t", args=[i]) for i in range(500)])
        results = await asyncio.to_thread(claim_in_processes, "postgres", server.dsn(), schema)
        claimed = [i for r in results for i in r]
        assert len(claimed) == len(set(claimed)) == 500
        assert set(claimed) == {str(j.id) for j in jobs}
        assert sum(1 for r in results if r) > 1, [len(r) for r in results]
        done = await store.list_jobs(status="succeeded", limit=1000)
        assert len(done) == 500 and {r.attempt for r in done} == {1}


async def test_concurrent_first_opens_migrate_once(server: PostgresServer, schema: str) -> None:
    stores = [PostgresStore(server.dsn(), schema=schema, pool_size=1) for _ in range(6)]
    await asyncio.gather(*(s.open() for s in stores))
    try:
        [job] = await stores[0].enqueue([NewJob("t")])
        for s in stores:
            assert await s.get(job.id) == job
        rows = await server.aquery(f"SELECT version FROM {schema}.beat_schema_version")
        assert sorted(r["version"] for r in rows) == list(range(1, SCHEMA_VERSION + 1))
    finally:
        await asyncio.gather(*(s.close() for s in stores))


async def test_notify_wakes_long_before_the_fallback_poll(
    server: PostgresServer, schema: str
) -> None:
    async with (
        PostgresStore(server.dsn(), schema=schema, poll_interval=60) as a,
        PostgresStore(server.dsn(), schema=schema, poll_interval=60) as b,
    ):
        async with parked(a):
            waiter = asyncio.create_task(a.wait_for_jobs(30))
        started = time.monotonic()
        [job] = await b.enqueue([NewJob("t")])
        await asyncio.wait_for(waiter, 5)
        assert time.monotonic() - started < 1
        async with parked(a):
            finished = asyncio.create_task(a.wait_finished(job.id, 30))
            [got] = await b.claim("w", queues=["default"], tasks=["t"], limit=1, lease=30)
        started = time.monotonic()
        assert await b.complete(job.id, got.attempt, "w", "ok")
        done = await asyncio.wait_for(finished, 5)
        assert time.monotonic() - started < 1 and done.status is JobStatus.SUCCEEDED


async def test_one_statement_finishing_many_jobs_wakes_every_waiter(
    server: PostgresServer, schema: str
) -> None:
    """Notifications are per statement: 250 completions in one ``complete_many`` (more ids
    than one NOTIFY payload holds) wake all 250 waiters, and a release in the same kind of
    statement wakes a claimer, with the fallback poll a minute away."""
    async with (
        PostgresStore(server.dsn(), schema=schema, poll_interval=60) as a,
        PostgresStore(server.dsn(), schema=schema, poll_interval=60) as b,
    ):
        jobs = await b.enqueue([NewJob("t", args=[i]) for i in range(251)])
        got = await b.claim("w", queues=["default"], tasks=["t"], limit=251, lease=30)
        async with parked(a, 250):
            waits = [asyncio.create_task(a.wait_finished(j.id, 30)) for j in jobs[:250]]
        started = time.monotonic()
        by_id = {r.id: r for r in got}
        items = [(j.id, by_id[j.id].attempt, "w", j.args[0]) for j in jobs[:250]]
        assert await b.complete_many(items) == [True] * 250
        done = await asyncio.wait_for(asyncio.gather(*waits), 5)
        assert time.monotonic() - started < 1
        assert [d.result for d in done] == list(range(250))
        async with parked(a):
            claimer = asyncio.create_task(a.wait_for_jobs(30))
        started = time.monotonic()
        assert await b.release(jobs[250].id, by_id[jobs[250].id].attempt, "w")
        await asyncio.wait_for(claimer, 5)
        assert time.monotonic() - started < 1


async def test_fallback_poll_when_the_listener_is_gone(server: PostgresServer, schema: str) -> None:
    async with (
        PostgresStore(server.dsn(), schema=schema, poll_interval=0.3) as a,
        PostgresStore(server.dsn(), schema=schema) as b,
    ):
        [job] = await b.enqueue([NewJob("t")])
        # Nothing waited yet: neither store listens (an enqueuer is sent no notifications).
        assert a._listener is None and b._listener is None
        await a.wait_for_jobs(0)  # the first wait opens the listener
        listener = a._listener
        assert listener is not None
        await server.aquery(f"SELECT pg_terminate_backend({listener.get_server_pid()})")
        [got] = await b.claim("w", queues=["default"], tasks=["t"], limit=1, lease=30)
        assert await b.complete(job.id, got.attempt, "w", 1)
        done = await a.wait_finished(job.id, 5)
        assert done.result == 1
        # The listener was re-opened by that wait.
        assert a._listener is not None and not a._listener.is_closed()


class LookingStore(PostgresStore):
    """Counts reads of single jobs; reports each look of the result sweep (how many jobs it
    asked about) on ``looks``, and holds a look while ``hold`` is set to an unset event."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.reads = 0
        self.looks: asyncio.Queue[int] = asyncio.Queue()
        self.hold: asyncio.Event | None = None

    async def get(self, id: uuid.UUID) -> JobRecord | None:
        self.reads += 1
        return await super().get(id)

    async def _settled(self, keys: list[uuid.UUID]) -> list[uuid.UUID]:
        self.looks.put_nowait(len(keys))
        if self.hold is not None:
            await self.hold.wait()
        return await super()._settled(keys)


async def next_look(store: LookingStore) -> int:
    return await asyncio.wait_for(store.looks.get(), 5)


async def test_parked_result_waits_share_one_look_and_get_their_listener_back(
    server: PostgresServer, schema: str
) -> None:
    """200 results awaited in one process: the fallback is one statement for all of them
    each ``poll_interval``, not a read per waiter (5,000 waiters polling every 5 s held up
    that process's enqueues by 0.3 s). When the notification connection dies, that look
    finds the job finished meanwhile and reopens the listener, so later finishes notify
    again, with no new wait to reopen it."""
    async with (
        LookingStore(server.dsn(), schema=schema, poll_interval=0.2) as a,
        PostgresStore(server.dsn(), schema=schema, poll_interval=60) as b,
    ):
        jobs = await b.enqueue([NewJob("t", args=[i]) for i in range(200)])
        got = {
            r.id: r
            for r in await b.claim("w", queues=["default"], tasks=["t"], limit=200, lease=60)
        }
        async with parked(a, 200):
            waits = [asyncio.create_task(a.wait_finished(j.id, 60)) for j in jobs]
        try:
            assert a.reads == 200  # one read each, to park
            while await next_look(a) != 200:  # it started with the first wait to park
                pass
            assert [await next_look(a) for _ in range(3)] == [200, 200, 200]
            assert a.reads == 200 and not any(w.done() for w in waits)

            lost = a._listener
            assert lost is not None
            gone = asyncio.Event()
            lost.add_termination_listener(lambda _: gone.set())
            await server.aquery(f"SELECT pg_terminate_backend({lost.get_server_pid()})")
            await asyncio.wait_for(gone.wait(), 5)  # asyncpg has seen it
            assert await b.complete(jobs[0].id, got[jobs[0].id].attempt, "w", "polled")
            assert (await asyncio.wait_for(waits[0], 5)).result == "polled"
            reopened = a._listener
            assert reopened is not None and reopened is not lost and not reopened.is_closed()

            a.hold = asyncio.Event()  # the next look stalls: only a NOTIFY can wake now
            while await next_look(a) != 199:
                pass
            assert await b.complete(jobs[1].id, got[jobs[1].id].attempt, "w", "notified")
            assert (await asyncio.wait_for(waits[1], 5)).result == "notified"
            a.hold.set()
            assert a.reads == 202
        finally:
            for wait in waits:
                wait.cancel()


async def test_leases_use_the_database_clock(server: PostgresServer, schema: str) -> None:
    async with PostgresStore(server.dsn(), schema=schema) as store:
        await store.enqueue([NewJob("t")])
        [got] = await store.claim("w", queues=["default"], tasks=["t"], limit=1, lease=90)
        [row] = await server.aquery(
            f"SELECT lease_expires_at - now() AS left, started_at <= now() AS started"
            f" FROM {schema}.beat_jobs"
        )
        assert 80 < row["left"].total_seconds() <= 90 and row["started"]
        assert got.lease_expires_at is not None


async def test_newer_schema_is_refused(server: PostgresServer, schema: str) -> None:
    async with PostgresStore(server.dsn(), schema=schema):
        pass
    await server.aquery(f"INSERT INTO {schema}.beat_schema_version VALUES (7)")
    with pytest.raises(StoreConfigError, match="version 7"):
        await PostgresStore(server.dsn(), schema=schema).open()


async def test_bad_credentials_and_unreachable_server(server: PostgresServer) -> None:
    with pytest.raises(StoreConfigError) as info:
        await PostgresStore(server.dsn(password="wrong-secret")).open()
    assert "wrong-secret" not in str(info.value)
    dead = f"postgresql://beat:beat@127.0.0.1:{free_port()}/postgres"
    with pytest.raises(StoreUnavailableError):
        await PostgresStore(dead, timeout=1).open()
    with pytest.raises(StoreConfigError):
        PostgresStore(server.dsn(), schema="Bad-Name")


async def test_closed_store_is_unavailable(server: PostgresServer, schema: str) -> None:
    store = PostgresStore(server.dsn(), schema=schema)
    await store.open()
    await store.open()
    await store.close()
    await store.close()
    with pytest.raises(StoreUnavailableError):
        await store.enqueue([NewJob("t")])
    with pytest.raises(StoreUnavailableError):
        await store.wait_for_jobs(0.1)


async def test_claims_and_waits_read_no_jobs_due_later(server: PostgresServer, schema: str) -> None:
    """A claim and a wait's look read the same index and table pages with 40 or 4,000 jobs
    due later: they seek from one priority level to the next instead of reading those jobs.
    Counted in buffers that EXPLAIN ANALYZE reports, not time; each statement runs in a
    transaction that is rolled back."""
    import asyncpg  # type: ignore[import-untyped]

    async with PostgresStore(server.dsn(), schema=schema) as store:
        conn = await asyncpg.connect(server.dsn())

        async def buffers(name: str, *args: object) -> int:
            transaction = conn.transaction()
            await transaction.start()
            try:
                [plan] = json.loads(
                    await conn.fetchval(
                        f"EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) {store._sql[name]}", *args
                    )
                )
            finally:
                await transaction.rollback()
            top = plan["Plan"]
            return int(top["Shared Hit Blocks"]) + int(top["Shared Read Blocks"])

        async def cost() -> tuple[int, int]:
            claimed = await buffers("claim", ["default"], ["t"], 10, "w", 60.0, "expired")
            looked = await buffers("next_due", ["default"], ["t"])
            return claimed, looked

        try:
            await store.enqueue([NewJob("t", priority=1)])  # due: claimed, rolled back
            later = await store.now() + datetime.timedelta(hours=1)
            await store.enqueue(
                [NewJob("t", priority=i % 2, scheduled_at=later) for i in range(40)]
            )
            few = await cost()
            await store.enqueue(
                [NewJob("t", priority=i % 2, scheduled_at=later) for i in range(3960)]
            )
            many = await cost()
        finally:
            await conn.close()
        # A few more pages, as the indexes grow a level deeper; not a hundred more.
        assert many[0] < few[0] + 10 and many[1] < few[1] + 10, (few, many)


async def test_prune_commits_batch_by_batch_and_rechecks_locked_jobs(
    server: PostgresServer, schema: str
) -> None:
    """Batches of two over ten dead jobs while another transaction retries the fifth oldest:
    the prune waits at that job's lock with the four oldest already deleted and committed
    (one long DELETE would still hold them all), then re-checks the job, keeps it (it is
    queued now) and goes on to delete the rest."""
    import asyncpg  # type: ignore[import-untyped]

    from beat.stores import PruneRule

    async with PostgresStore(server.dsn(), schema=schema) as store:
        store.prune_batch = 2
        dead = []
        for i in range(10):
            [job] = await store.enqueue([NewJob("t", args=[i], max_attempts=1)])
            [run] = await store.claim("w", queues=["default"], tasks=["t"], limit=1, lease=60)
            assert await store.fail(run.id, run.attempt, "w", error_type="E", message="m")
            dead.append(job.id)
        retrier = await asyncpg.connect(server.dsn())
        watcher = await asyncpg.connect(server.dsn())
        try:
            retrying = retrier.transaction()
            await retrying.start()
            assert await retrier.fetchrow(store._sql["retry"], dead[4]) is not None
            prune = asyncio.create_task(store.prune([PruneRule(JobStatus.DEAD, max_age=0)]))
            blocked = "SELECT count(*) FROM pg_stat_activity WHERE $1 = ANY(pg_blocking_pids(pid))"
            async with asyncio.timeout(10):
                while not await watcher.fetchval(blocked, retrier.get_server_pid()):
                    assert not prune.done()
                    await asyncio.sleep(0.01)
            left = f"SELECT id FROM {schema}.beat_jobs ORDER BY seq"
            assert [r["id"] for r in await watcher.fetch(left)] == dead[4:]
            await retrying.commit()
            assert await prune == 9
        finally:
            await retrier.close()
            await watcher.close()
        [kept] = await store.list_jobs(limit=10)
        assert (kept.id, kept.status) == (dead[4], JobStatus.QUEUED)


async def test_a_page_of_the_listing_reads_its_rows_not_the_table(
    server: PostgresServer, schema: str
) -> None:
    """The plan PostgreSQL keeps for the prepared listing (forced generic here) reads a
    page in order off the seq index, in either direction: the same buffers with 100 or
    10,000 jobs stored, where sorting every row would grow with them."""
    import asyncpg  # type: ignore[import-untyped]

    async with PostgresStore(server.dsn(), schema=schema) as store:
        conn = await asyncpg.connect(server.dsn())
        await conn.execute("SET plan_cache_mode = force_generic_plan")
        for name in ("list", "list_backward"):
            await conn.execute(f"PREPARE {name} AS {store._sql[name]}")

        async def buffers() -> list[int]:
            spent = []
            for name in ("list", "list_backward"):
                explained = await conn.fetchval(
                    f"EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) "
                    f"EXECUTE {name}(0, {2**63 - 1}, NULL, NULL, NULL, 10)"
                )
                plan = json.loads(explained)[0]["Plan"]
                assert plan["Actual Rows"] == 10
                spent.append(int(plan["Shared Hit Blocks"]) + int(plan["Shared Read Blocks"]))
            return spent

        try:
            await store.enqueue([NewJob("t") for _ in range(100)])
            few = await buffers()
            await store.enqueue([NewJob("t") for _ in range(10_000)])
            many = await buffers()
        finally:
            await conn.close()
        assert all(m < f + 10 for f, m in zip(few, many, strict=True)), (few, many)
