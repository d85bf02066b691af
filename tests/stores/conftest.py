"""The ``store`` fixture: every conformance test runs against each backend unchanged.

``harness`` gives the store plus what the tests need around it:

* ``await harness.advance(seconds)`` — let time pass. Memory and SQLite run on a fake clock
  that is moved forward. PostgreSQL runs on the database clock, which cannot be moved: every
  timestamp of the test's jobs is moved *back* instead, which is the same thing to every
  comparison with ``now()``.
* ``await harness.other()`` — another opened handle on the same storage (a second SQLite
  connection and thread, a second PostgreSQL pool); the same store for memory.

PostgreSQL: one throwaway server per session (``PostgresServer`` of the coordinator tests),
one fresh schema per test. SQLite: one file per test.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio

from beat.stores import MemoryStore, Store
from tests.coordinators.conftest import PostgresServer

KINDS = ["memory", "sqlite", "postgres"]


class FakeClock:
    """Epoch seconds that move only when told."""

    def __init__(self, start: float | None = None) -> None:
        self.now = float(int(time.time()) if start is None else start)

    def __call__(self) -> float:
        return self.now


class Harness:
    def __init__(
        self,
        kind: str,
        make: Callable[[], Store],
        advance: Callable[[float], Any],
    ) -> None:
        self.kind = kind
        self._make = make
        self._advance = advance
        self.stores: list[Store] = []
        self.store: Store = make()

    async def start(self) -> None:
        await self.store.open()
        self.stores.append(self.store)

    async def other(self) -> Store:
        if self.kind == "memory":
            return self.store
        store = self._make()
        await store.open()
        self.stores.append(store)
        return store

    async def advance(self, seconds: float) -> None:
        result = self._advance(seconds)
        if result is not None:
            await result

    async def stop(self) -> None:
        for store in reversed(self.stores):
            await store.close()


@pytest.fixture(scope="session")
def store_postgres() -> Iterator[PostgresServer]:
    import tempfile

    server = PostgresServer.create(Path(tempfile.gettempdir())).start()
    yield server
    server.cleanup()


def _memory(clock: FakeClock) -> Harness:
    def advance(seconds: float) -> None:
        clock.now += seconds

    return Harness("memory", lambda: MemoryStore(clock=clock), advance)


def _sqlite(clock: FakeClock, path: Path) -> Harness:
    from beat.stores import SQLiteStore

    def advance(seconds: float) -> None:
        clock.now += seconds

    return Harness("sqlite", lambda: SQLiteStore(path, clock=clock, poll_interval=0.02), advance)


def _postgres(server: PostgresServer) -> Harness:
    from beat.stores import PostgresStore

    schema = f"t{uuid.uuid4().hex[:12]}"
    dsn = server.dsn()

    async def advance(seconds: float) -> None:
        # Nothing is due "now + x" on the database clock; move the test's rows back instead.
        shift = f"interval '{float(seconds)} seconds'"
        columns = ("scheduled_at", "created_at", "started_at", "finished_at", "lease_expires_at")
        sets = ", ".join(f"{c} = {c} - {shift}" for c in columns)
        instances = ", ".join(f"{c} = {c} - {shift}" for c in ("last_seen", "expires_at"))
        # One statement (instances too, for their ttl): nothing sees half a shift.
        await server.aquery(
            f"WITH i AS (UPDATE {schema}.beat_instances SET {instances})"
            f" UPDATE {schema}.beat_jobs SET {sets}"
        )

    return Harness("postgres", lambda: PostgresStore(dsn, schema=schema), advance)


@pytest.fixture(params=KINDS)
def store_kind(request: pytest.FixtureRequest) -> str:
    kind: str = request.param
    return kind


@pytest.fixture
def unstarted(store_kind: str, request: pytest.FixtureRequest, tmp_path: Path) -> Harness:
    clock = FakeClock()
    if store_kind == "memory":
        return _memory(clock)
    if store_kind == "sqlite":
        return _sqlite(clock, tmp_path / "jobs.db")
    return _postgres(request.getfixturevalue("store_postgres"))


@pytest_asyncio.fixture
async def harness(unstarted: Harness) -> AsyncIterator[Harness]:
    h = unstarted
    await h.start()
    yield h
    await h.stop()


@pytest.fixture
def store(harness: Harness) -> Store:
    return harness.store
