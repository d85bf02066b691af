"""Liveness: Scheduler.health() for readiness probes, and each instance's heartbeat record."""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import sys
import textwrap
import time
from collections.abc import AsyncIterator, Callable
from datetime import datetime, timedelta
from pathlib import Path

import pytest
import pytest_asyncio

from beat import InvalidJobError, Scheduler
from beat.stores import SQLiteStore, Store
from beat.stores._doorbell import wake_directory
from beat.testing import FakeClock
from tests.coordinators.conftest import (  # the real servers
    PostgresServer,
    RedisServer,
    private_postgres,  # noqa: F401
    private_redis,  # noqa: F401
    server_dir,  # noqa: F401
)
from tests.stores.conftest import store_postgres  # noqa: F401  (the session's PostgreSQL)

pytestmark = pytest.mark.asyncio

S = timedelta(seconds=1)
ROOT = Path(__file__).resolve().parent.parent


async def test_health_follows_the_loop(clock: FakeClock) -> None:
    scheduler = Scheduler(clock=clock)
    before = scheduler.health()
    assert (before.alive, before.state, before.last_tick) == (False, "new", None)
    async with scheduler:
        await clock.advance(30 * S)
        assert scheduler.health().last_tick == clock.now - 30 * S  # asleep, no job due
        await clock.advance(30 * S)
        health = scheduler.health()
        assert health.alive and health.state == "running"
        assert health.last_tick == clock.now  # woke at its max_sleep cap (60 s)
        assert health.lag == 0.0
        assert health.running == 0
        assert (health.store_outage, health.coordinator_outage, health.heartbeat) == (
            None,
            None,
            None,
        )
        assert health.ok()
        clock.jump(3600)  # a wall-clock step is not lag: the loop sleeps on monotonic time
        assert scheduler.health().lag == 0.0
    after = scheduler.health()
    assert (after.alive, after.state) == (False, "stopped")
    assert not after.ok()


async def test_a_blocked_event_loop_shows_as_lag() -> None:
    async with Scheduler(max_sleep=0.05) as scheduler:
        await asyncio.sleep(0.06)  # let the loop tick once on the real clock
        # the stimulus: block the event loop, as a CPU-bound request handler would
        time.sleep(0.4)  # noqa: ASYNC251
        health = scheduler.health()
    assert health.lag >= 0.25
    assert not health.ok(max_lag=0.2)
    assert health.ok(max_lag=5.0)


async def test_instance_heartbeat_must_be_positive() -> None:
    with pytest.raises(InvalidJobError, match="instance_heartbeat"):
        Scheduler(instance_heartbeat=0)


# -- the heartbeat in a real store ---------------------------------------------------------
async def beaten(scheduler: Scheduler, at: datetime) -> None:
    """Wait until the heartbeat due at ``at`` is recorded (the store's I/O is not on the
    fake clock: SQLite works in a thread, PostgreSQL over a socket)."""
    async with asyncio.timeout(10):
        while scheduler.health().heartbeat != at:  # noqa: ASYNC110 - no event to await
            await asyncio.sleep(0.005)


@pytest_asyncio.fixture(params=["sqlite", "postgres"])
async def make_store(
    request: pytest.FixtureRequest, tmp_path: Path, clock: FakeClock
) -> AsyncIterator[Callable[[], Store]]:
    """A factory of handles on one fresh store; every handle is closed at the end."""
    handles: list[Store] = []
    if request.param == "sqlite":

        def make() -> Store:
            handles.append(SQLiteStore(tmp_path / "jobs.db", clock=clock.time, poll_interval=0.02))
            return handles[-1]
    else:
        from beat.stores import PostgresStore

        server: PostgresServer = request.getfixturevalue("store_postgres")
        schema = f"h{os.urandom(6).hex()}"

        def make() -> Store:
            handles.append(PostgresStore(server.dsn(), schema=schema))
            return handles[-1]

    yield make
    for handle in handles:
        await handle.close()


async def test_each_instance_is_listed_while_it_beats_and_removed_at_shutdown(
    clock: FakeClock, make_store: Callable[[], Store]
) -> None:
    observer = make_store()
    await observer.open()
    scheduler = Scheduler(clock=clock, store=make_store(), instance_heartbeat=10)
    async with scheduler:
        await beaten(scheduler, clock.now)
        (first,) = await observer.list_instances()
        worker = scheduler._worker
        assert worker is not None
        assert first.name == worker.name
        assert first.pid == os.getpid()
        assert first.info["queues"] == ["default"]
        assert first.info["concurrency"] == 10
        await clock.advance(10 * S)
        await beaten(scheduler, clock.now)
        (second,) = await observer.list_instances()
        assert second.started_at == first.started_at
        assert second.last_seen > first.last_seen
    assert await observer.list_instances() == []


async def test_a_killed_instance_expires_after_three_periods(tmp_path: Path) -> None:
    path = tmp_path / "jobs.db"
    program = textwrap.dedent(
        f"""
        import asyncio
        from beat import Scheduler
        from beat.stores import SQLiteStore

        async def main():
            async with Scheduler(store=SQLiteStore({str(path)!r}), instance_heartbeat=10) as s:
                while s.health().heartbeat is None:
                    await asyncio.sleep(0.01)
                print("beating", flush=True)
                await asyncio.Event().wait()

        asyncio.run(main())
        """
    )
    with subprocess.Popen(  # noqa: ASYNC220 - a reader that blocks until the child is up
        [sys.executable, "-c", program], cwd=ROOT, stdout=subprocess.PIPE, text=True
    ) as proc:
        try:
            assert proc.stdout is not None
            assert proc.stdout.readline().strip() == "beating"
        finally:
            proc.kill()
    # Read the file as if time had passed: still listed within 3 x 10 s, gone after.
    for ahead, listed in ((25.0, 1), (31.0, 0)):
        async with SQLiteStore(path, clock=lambda ahead=ahead: time.time() + ahead) as store:
            found = await store.list_instances()
            assert len(found) == listed
            if listed:
                assert found[0].pid == proc.pid
    shutil.rmtree(wake_directory(path), ignore_errors=True)  # the killed one's doorbell socket


async def until(condition: Callable[[], bool], what: str) -> None:
    """Wait (bounded) until ``condition()`` holds: an outage is noticed at the next claim."""
    try:
        async with asyncio.timeout(10):
            while not condition():  # noqa: ASYNC110 - health is read, nothing to await
                await asyncio.sleep(0.01)
    except TimeoutError:
        raise AssertionError(f"timed out waiting until {what}") from None


async def test_a_coordinator_outage_shows_in_health(request: pytest.FixtureRequest) -> None:
    from beat import Context, Job
    from beat.coordinators.redis import RedisCoordinator

    server: RedisServer = request.getfixturevalue("private_redis")

    async def tick(ctx: Context) -> None:
        return None

    scheduler = Scheduler(coordinator=RedisCoordinator(server.url, timeout=0.2))
    scheduler.add_job(Job.every(timedelta(seconds=0.1)).do(tick, name="tick"))
    async with scheduler:
        assert scheduler.health().coordinator_outage is None
        server.stop()
        await until(lambda: scheduler.health().coordinator_outage is not None, "down")
        assert not scheduler.health().ok()
        server.start()
        await until(lambda: scheduler.health().coordinator_outage is None, "recovered")
        assert scheduler.health().ok()


async def test_a_store_outage_shows_in_health(request: pytest.FixtureRequest) -> None:
    from beat import JobContext
    from beat.stores import PostgresStore

    server: PostgresServer = request.getfixturevalue("private_postgres")
    scheduler = Scheduler(store=PostgresStore(server.dsn(), timeout=1.0, poll_interval=0.2))

    @scheduler.task(name="noop")
    async def noop(ctx: JobContext) -> None:
        return None

    async with scheduler:
        await until(lambda: scheduler.health().heartbeat is not None, "the first heartbeat")
        assert scheduler.health().store_outage is None
        server.stop()
        await until(lambda: scheduler.health().store_outage is not None, "the store is down")
        assert not scheduler.health().ok()
        server.start()
        await until(lambda: scheduler.health().store_outage is None, "the store is back")
        await scheduler.shutdown(timeout=0)
