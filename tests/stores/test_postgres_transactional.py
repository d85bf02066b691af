"""PostgresStore.enqueue(jobs, connection=...): the jobs belong to the caller's transaction —
a rollback leaves nothing, a commit leaves them and only then wakes a waiting worker; a unique
key stays locked until the caller's commit."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
import pytest_asyncio

from beat import InvalidJobError
from beat.stores import NewJob, Unique
from beat.stores._postgres import PostgresStore
from tests.coordinators.conftest import PostgresServer

from ._util import parked

pytestmark = pytest.mark.asyncio

PROMPT = 5.0


@pytest_asyncio.fixture
async def store(store_postgres: PostgresServer) -> AsyncIterator[PostgresStore]:
    async with PostgresStore(store_postgres.dsn(), schema=f"t{uuid.uuid4().hex[:12]}") as s:
        yield s


@pytest_asyncio.fixture
async def conn(store: PostgresStore) -> AsyncIterator[Any]:
    import asyncpg  # type: ignore[import-untyped]

    connection = await asyncpg.connect(store.dsn)
    yield connection
    await connection.close()


async def test_rolled_back_enqueue_leaves_no_job(store: PostgresStore, conn: Any) -> None:
    transaction = conn.transaction()
    await transaction.start()
    [job] = await store.enqueue([NewJob("t", args=[1])], connection=conn)
    seen_inside = await conn.fetchval(f"SELECT count(*) FROM {store.schema}.beat_jobs")
    await transaction.rollback()
    assert seen_inside == 1
    assert await store.get(job.id) is None
    assert await store.list_jobs() == []


async def test_committed_enqueue_wakes_a_worker_only_after_commit(
    store: PostgresStore, conn: Any
) -> None:
    async with parked(store):  # it is listening
        waiter = asyncio.create_task(store.wait_for_jobs(60))
    transaction = conn.transaction()
    await transaction.start()
    [job] = await store.enqueue([NewJob("t")], connection=conn)
    await conn.execute("SELECT pg_sleep(0.3)")  # time for a (wrong) early notification
    assert not waiter.done()
    assert await store.get(job.id) is None  # not visible outside yet
    await transaction.commit()
    await asyncio.wait_for(waiter, PROMPT)
    stored = await store.get(job.id)
    assert stored is not None and stored.task == "t"


LOCK_WAITERS = """SELECT count(*) FROM pg_stat_activity
    WHERE datname = current_database() AND wait_event_type = 'Lock'"""


async def test_unique_key_is_held_until_the_callers_commit(store: PostgresStore, conn: Any) -> None:
    transaction = conn.transaction()
    await transaction.start()
    [mine] = await store.enqueue([NewJob("t", unique=Unique(key="k"))], connection=conn)
    other = asyncio.create_task(store.enqueue([NewJob("t", unique=Unique(key="k"))]))
    async with asyncio.timeout(10):  # until the server shows it waiting for the key's lock
        while not await conn.fetchval(LOCK_WAITERS):  # noqa: ASYNC110 - server state, no event
            await asyncio.sleep(0.01)
    assert not other.done()
    await transaction.commit()
    [theirs] = await asyncio.wait_for(other, PROMPT)
    assert theirs.conflict and theirs.id == mine.id
    assert len(await store.list_jobs()) == 1


async def test_a_connection_outside_a_transaction_is_refused(
    store: PostgresStore, conn: Any
) -> None:
    with pytest.raises(InvalidJobError, match="transaction"):
        await store.enqueue([NewJob("t")], connection=conn)
    with pytest.raises(InvalidJobError, match="asyncpg connection"):
        await store.enqueue([NewJob("t")], connection="postgresql://elsewhere")
    assert await store.list_jobs() == []
