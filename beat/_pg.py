"""What beat's PostgreSQL pools share (the coordinator's and the job store's).

asyncpg's default pool reset sends ``RESET ALL; UNLISTEN *; CLOSE ALL; SELECT
pg_advisory_unlock_all()`` every time a connection is released: one extra round trip per
claim, enqueue or completion. beat's pooled connections keep no session state (LISTEN has a
connection of its own, advisory locks are transaction-scoped or released in ``finally``),
so releasing only needs to make sure no transaction is left open.
"""

from __future__ import annotations

from typing import Any

__all__ = ["release_without_reset"]


async def release_without_reset(conn: Any) -> None:
    """The pool's ``reset`` hook: roll back a transaction left open, send nothing else."""
    if conn.is_in_transaction():
        await conn.execute("ROLLBACK")
