"""beat._pg.Pool, the PostgreSQL store's connection pool, against a real server."""

from __future__ import annotations

import asyncio
from typing import Any

import asyncpg  # type: ignore[import-untyped]
import pytest

from beat._pg import Pool
from tests.coordinators.conftest import PostgresServer

pytestmark = pytest.mark.asyncio


class Opened:
    """``connect`` for the pool, counting the connections it opens."""

    def __init__(self, server: PostgresServer) -> None:
        self.server = server
        self.connections: list[Any] = []

    async def __call__(self) -> Any:
        conn = await asyncpg.connect(self.server.dsn())
        self.connections.append(conn)
        return conn


async def test_an_idle_connection_is_lent_again(store_postgres: PostgresServer) -> None:
    opened = Opened(store_postgres)
    pool = Pool(opened, 2)
    for _ in range(5):
        async with pool.acquire() as conn:
            assert await conn.fetchval("SELECT 1") == 1
    assert len(opened.connections) == 1
    await pool.close()
    assert opened.connections[0].is_closed()


async def test_never_more_connections_than_its_size(store_postgres: PostgresServer) -> None:
    opened = Opened(store_postgres)
    pool = Pool(opened, 3)
    lent = 0
    most = 0

    async def use() -> None:
        nonlocal lent, most
        async with pool.acquire() as conn:
            lent += 1
            most = max(most, lent)
            await conn.execute("SELECT pg_sleep(0.01)")
            lent -= 1

    await asyncio.gather(*(use() for _ in range(12)))
    assert most == 3
    assert len(opened.connections) == 3
    await pool.close()


async def test_a_transaction_left_open_is_rolled_back(store_postgres: PostgresServer) -> None:
    opened = Opened(store_postgres)
    pool = Pool(opened, 1)
    async with pool.acquire() as conn:
        await conn.execute("BEGIN")
        await conn.execute("CREATE TEMP TABLE left_open (x int)")
    async with pool.acquire() as again:
        assert again is conn
        assert not again.is_in_transaction()
        assert await again.fetchval("SELECT to_regclass('pg_temp.left_open')") is None
    await pool.close()


async def test_expire_replaces_every_connection(store_postgres: PostgresServer) -> None:
    opened = Opened(store_postgres)
    pool = Pool(opened, 2)
    async with pool.acquire() as idle:
        pass
    async with pool.acquire() as lent:
        assert lent is idle
        pool.expire()
    assert lent.is_closed()  # opened before expire(): terminated when it came back
    async with pool.acquire() as fresh:
        assert fresh is not lent
        assert await fresh.fetchval("SELECT 1") == 1
    assert len(opened.connections) == 2
    await pool.close()


async def test_a_failed_open_gives_its_slot_back(store_postgres: PostgresServer) -> None:
    attempts = 0

    async def connect() -> Any:
        nonlocal attempts
        attempts += 1
        if attempts == 1:
            raise OSError("refused")
        return await asyncpg.connect(store_postgres.dsn())

    pool = Pool(connect, 1)
    with pytest.raises(OSError, match="refused"):
        async with pool.acquire():
            pass
    async with pool.acquire() as conn:  # the only slot was given back
        assert await conn.fetchval("SELECT 1") == 1
    pool.terminate()
    assert conn.is_closed()


async def test_a_closed_pool_lends_nothing(store_postgres: PostgresServer) -> None:
    pool = Pool(Opened(store_postgres), 1)
    await pool.close()
    with pytest.raises(asyncpg.InterfaceError, match="closed"):
        async with pool.acquire():
            pass
