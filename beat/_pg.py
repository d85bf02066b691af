"""What beat's PostgreSQL pools share (the coordinator's and the job store's), and the job
store's own small pool.

asyncpg's default pool reset sends ``RESET ALL; UNLISTEN *; CLOSE ALL; SELECT
pg_advisory_unlock_all()`` every time a connection is released: one extra round trip per
claim, enqueue or completion. beat's pooled connections keep no session state (LISTEN has a
connection of its own, advisory locks are transaction-scoped or released in ``finally``),
so releasing only needs to make sure no transaction is left open.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from types import TracebackType
from typing import Any, TypeVar

from asyncpg.exceptions import InterfaceError, InternalClientError  # type: ignore[import-untyped]

__all__ = ["Pool", "discard_if_cut_short", "release_without_reset"]

T = TypeVar("T")


async def release_without_reset(conn: Any) -> None:
    """The pool's ``reset`` hook: roll back a transaction left open, send nothing else."""
    if conn.is_in_transaction():
        await conn.execute("ROLLBACK")


async def discard_if_cut_short(conn: Any, call: Awaitable[T]) -> T:
    """Await ``call``, a query on the pooled ``conn``. If it is cut short (cancelled: a
    timeout or a shutdown) or the driver finds the connection mid-operation, terminate the
    connection so the pool replaces it: ``release_without_reset`` sends nothing that would
    wait out an operation still in flight, so such a connection must not be lent again."""
    try:
        return await call
    except (asyncio.CancelledError, InternalClientError):
        conn.terminate()
        raise


class Pool:
    """At most ``size`` asyncpg connections opened by ``connect``, lent one at a time.

    asyncpg's own pool spends about 70 µs of CPU per acquire and release (a shielded task
    per release, an extra loop iteration): as much as the client side of a whole enqueue.
    This one lends an idle connection without yielding to the loop.

    ``async with pool.acquire() as conn:`` lends a connection; at the block's end it goes
    back idle, unless it is closed, was opened before the last :meth:`expire`, or the pool
    is closed: then it is terminated. A connection left inside a transaction is rolled back
    first (like :func:`release_without_reset`); if that fails it is terminated. Connections
    are opened on demand; a failed open gives its slot back and raises.
    """

    def __init__(self, connect: Callable[[], Awaitable[Any]], size: int) -> None:
        self._connect = connect
        self._slots = asyncio.Semaphore(size)  # one per connection lent or being opened
        self._idle: list[Any] = []  # open, outside any transaction, lent to no one
        self._generation = 0  # bumped by expire(): older connections are not lent again
        self._born: dict[Any, int] = {}  # every open connection -> its generation
        self._closed = False

    def acquire(self) -> _Lease:
        return _Lease(self)

    async def _take(self) -> Any:
        if self._closed:
            raise InterfaceError("the pool is closed")  # asyncpg's own error for it
        await self._slots.acquire()
        try:
            while self._idle:
                conn = self._idle.pop()
                if not conn.is_closed():
                    return conn
                self._born.pop(conn, None)
            conn = await self._connect()
            self._born[conn] = self._generation
            return conn
        except BaseException:
            self._slots.release()
            raise

    async def _give_back(self, conn: Any) -> None:
        keep = self._born.get(conn) == self._generation and not conn.is_closed()
        try:
            if keep and conn.is_in_transaction():
                keep = False
                await release_without_reset(conn)
                keep = not conn.is_closed()
        except Exception:  # the rollback failed: the connection is not lent again
            pass
        finally:
            if keep and not self._closed:
                self._idle.append(conn)
            else:
                self._born.pop(conn, None)
                conn.terminate()
            self._slots.release()

    def expire(self) -> None:
        """Lend no connection opened before now (after a lost connection: the server may
        have restarted); idle ones are terminated now, lent ones when they come back."""
        self._generation += 1
        idle, self._idle = self._idle, []
        for conn in idle:
            self._born.pop(conn, None)
            conn.terminate()

    async def close(self) -> None:
        """Close the idle connections gracefully; lent ones are terminated when they come
        back. Acquiring afterwards raises."""
        self._closed = True
        idle, self._idle = self._idle, []
        for conn in idle:
            self._born.pop(conn, None)
            await conn.close()

    def terminate(self) -> None:
        """Terminate every connection now, lent or idle."""
        self._closed = True
        self._idle = []
        born, self._born = self._born, {}
        for conn in born:
            conn.terminate()


class _Lease:
    __slots__ = ("_conn", "_pool")

    def __init__(self, pool: Pool) -> None:
        self._pool = pool
        self._conn: Any = None

    async def __aenter__(self) -> Any:
        self._conn = await self._pool._take()
        return self._conn

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        conn, self._conn = self._conn, None
        await self._pool._give_back(conn)
