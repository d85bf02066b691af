"""What beat's PostgreSQL pools share (the coordinator's and the job store's).

asyncpg's default pool reset sends ``RESET ALL; UNLISTEN *; CLOSE ALL; SELECT
pg_advisory_unlock_all()`` every time a connection is released: one extra round trip per
claim, enqueue or completion. beat's pooled connections keep no session state (LISTEN has a
connection of its own, advisory locks are transaction-scoped or released in ``finally``),
so releasing only needs to make sure no transaction is left open.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import Any, TypeVar

from asyncpg.exceptions import InternalClientError  # type: ignore[import-untyped]

__all__ = ["discard_if_cut_short", "release_without_reset"]

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
