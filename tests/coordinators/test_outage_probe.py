"""The outage probe: a coordinator that comes back is noticed by a ping, not by the next
occurrence, so the first occurrence after its return runs (real servers, fake clock)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest

from beat import (
    Context,
    CoordinatorRecovered,
    CoordinatorUnavailable,
    Job,
    RunSkipped,
    Scheduler,
)
from beat._coordination import _RETRY_CAP
from beat.coordinators import Coordinator
from beat.coordinators.postgres import PostgresCoordinator
from beat.coordinators.redis import RedisCoordinator
from beat.testing import FakeClock

from .conftest import PostgresServer, RedisServer

pytestmark = pytest.mark.asyncio

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
PERIOD = timedelta(seconds=5)


async def _until(condition: Callable[[], bool], clock: FakeClock) -> None:
    """Let real network replies arrive (the fake clock does not move) until ``condition``."""
    async with asyncio.timeout(20):
        while not condition():
            await asyncio.sleep(0.01)
            await clock.settle()


async def _outage_then_return(
    coordinator: Coordinator, stop: Callable[[], None], start: Callable[[], object]
) -> tuple[list[datetime], list[object]]:
    clock = FakeClock(T0)
    ran: list[datetime] = []
    events: list[object] = []

    async def tick(ctx: Context) -> None:
        ran.append(ctx.when)

    scheduler = Scheduler(coordinator=coordinator, clock=clock)
    scheduler.subscribe(events.append, CoordinatorUnavailable, CoordinatorRecovered, RunSkipped)
    scheduler.add_job(Job.every(PERIOD).do(tick, name="tick"))
    async with scheduler:
        await clock.advance(PERIOD)
        await _until(lambda: len(ran) == 1, clock)
        await asyncio.to_thread(stop)
        await clock.advance(PERIOD)  # its claim fails: the outage begins
        await _until(lambda: any(isinstance(e, CoordinatorUnavailable) for e in events), clock)
        await asyncio.to_thread(start)
        # No occurrence is due for 5 s; the probe alone must notice the return.
        for _ in range(int(2 * _RETRY_CAP / 0.05)):
            if any(isinstance(e, CoordinatorRecovered) for e in events):
                break
            await clock.advance(0.05)
            await _until(lambda: True, clock)
            await asyncio.sleep(0.02)  # a ping in flight gets its real reply
        assert any(isinstance(e, CoordinatorRecovered) for e in events), events
        await clock.advance(T0 + 3 * PERIOD - clock.now)
        await _until(lambda: len(ran) == 2, clock)
    return ran, events


async def test_redis_back_is_found_by_the_probe(private_redis: RedisServer, namespace: str) -> None:
    ran, events = await _outage_then_return(
        RedisCoordinator(private_redis.url, namespace=namespace),
        private_redis.stop,
        private_redis.start,
    )
    assert ran == [T0 + PERIOD, T0 + 3 * PERIOD]
    assert [type(e).__name__ for e in events] == [
        "CoordinatorUnavailable",
        "RunSkipped",
        "CoordinatorRecovered",
    ]
    skipped = [e for e in events if isinstance(e, RunSkipped)]
    assert [(e.when, e.reason) for e in skipped] == [(T0 + 2 * PERIOD, "coordinator_down")]


async def test_postgres_back_is_found_by_the_probe(
    private_postgres: PostgresServer, namespace: str
) -> None:
    ran, events = await _outage_then_return(
        PostgresCoordinator(private_postgres.dsn(), namespace=namespace, retention=None),
        private_postgres.stop,
        private_postgres.start,
    )
    assert ran == [T0 + PERIOD, T0 + 3 * PERIOD]
    assert [type(e).__name__ for e in events].count("CoordinatorRecovered") == 1
