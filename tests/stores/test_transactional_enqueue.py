"""Transactional enqueue through the client: ``client.in_transaction(conn)`` on a real
PostgreSQL server. The job exists exactly if the caller's transaction commits, and a worker
waiting on LISTEN wakes at the commit; other stores refuse with a typed error."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import pytest
import pytest_asyncio

from beat import InvalidJobError, JobNotFoundError, JobRequest, task
from beat._client import Client
from beat._tasks import TaskRegistry
from beat._worker import JobContext, Worker
from beat.stores import JobStatus, MemoryStore, SQLiteStore, Store
from tests.coordinators.conftest import PostgresServer

pytestmark = pytest.mark.asyncio


@task(name="ship")
async def ship(ctx: JobContext, order: int) -> str:
    return f"shipped {order}"


@pytest_asyncio.fixture
async def pg(store_postgres: PostgresServer) -> AsyncIterator[tuple[Store, Any, str]]:
    """A PostgresStore in a fresh schema, and an application connection to the same database
    with an ``orders`` table of its own."""
    from beat.stores import PostgresStore

    schema = f"t{uuid.uuid4().hex[:12]}"
    store = PostgresStore(store_postgres.dsn(), schema=schema)
    await store.open()
    conn = await asyncpg.connect(store_postgres.dsn())
    await conn.execute(f"CREATE TABLE {schema}.orders (id int PRIMARY KEY)")
    try:
        yield store, conn, schema
    finally:
        await conn.close()
        await store.close()


async def test_a_committed_transaction_stores_the_job_and_wakes_a_worker(
    pg: tuple[Store, Any, str],
) -> None:
    store, conn, schema = pg
    client = Client(store)
    tasks = TaskRegistry()
    tasks.add(ship)
    # A long poll: only the NOTIFY sent at commit can make the run this prompt.
    async with Worker(store, tasks, poll=60):
        async with conn.transaction():
            await conn.execute(f"INSERT INTO {schema}.orders VALUES (7)")
            handle = await client.in_transaction(conn).enqueue(ship, 7)
            with pytest.raises(JobNotFoundError):  # not visible outside the transaction yet
                await client.get(handle.id)
        assert await client.result(handle.id, timeout=10) == "shipped 7"
    assert (await client.get(handle.id)).status is JobStatus.SUCCEEDED


async def test_a_rolled_back_transaction_leaves_no_job(pg: tuple[Store, Any, str]) -> None:
    store, conn, _ = pg
    client = Client(store)

    tx = conn.transaction()
    await tx.start()
    view = client.in_transaction(conn)
    one = await view.enqueue(ship, 1)
    more = await view.enqueue_many([JobRequest.of(ship, 2), JobRequest.of(ship, 3)])
    by_name = await view.enqueue_by_name("ship", [4], queue="other")
    await tx.rollback()
    for handle in (one, *more, by_name):
        with pytest.raises(JobNotFoundError):
            await client.get(handle.id)
    assert await client.list() == []


async def test_a_connection_without_a_transaction_is_refused(pg: tuple[Store, Any, str]) -> None:
    store, conn, _ = pg
    client = Client(store)
    with pytest.raises(InvalidJobError, match="no transaction open"):
        client.in_transaction(conn)
    with pytest.raises(InvalidJobError, match="asyncpg connection"):
        client.in_transaction(object())
    assert await client.list() == []


@pytest.mark.parametrize("kind", ["memory", "sqlite"])
async def test_other_stores_refuse_with_a_typed_error(kind: str, tmp_path: Any) -> None:
    store: Store = MemoryStore() if kind == "memory" else SQLiteStore(tmp_path / "jobs.db")
    async with Client(store) as client:
        with pytest.raises(InvalidJobError, match="needs a PostgresStore"):
            client.in_transaction(object())
        assert await client.list() == []
