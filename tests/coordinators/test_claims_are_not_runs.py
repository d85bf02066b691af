"""Overlap acts on runs, not claims (docs/guarantees.md §6), against real servers.

Claims travel through a TCP proxy that can stall them, so "a claim still on its way when the
next fire comes" is a state the test holds, with the scheduler on a fake clock.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta

import pytest
import pytest_asyncio

from beat import Context, Job, RunSkipped, Scheduler
from beat.coordinators.postgres import PostgresCoordinator
from beat.coordinators.redis import RedisCoordinator
from beat.testing import FakeClock

from ._proxy import LatencyProxy
from .conftest import PostgresServer, RedisServer

pytestmark = pytest.mark.asyncio

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
S = timedelta(seconds=1)
WAIT = 10.0  # real seconds a stalled claim may take to come back once released


@pytest_asyncio.fixture
async def redis_proxy(redis_server: RedisServer) -> AsyncIterator[LatencyProxy]:
    proxy = await LatencyProxy(redis_server.port).start()
    yield proxy
    await proxy.close()


async def _until(condition: Callable[[], bool], clock: FakeClock) -> None:
    """Let real network replies arrive (the fake clock does not move) until ``condition``."""
    async with asyncio.timeout(WAIT):
        while not condition():
            await asyncio.sleep(0.005)
            await clock.settle()


async def test_a_stalled_claim_does_not_turn_the_next_fire_into_an_overlap(
    redis_proxy: LatencyProxy, namespace: str
) -> None:
    clock = FakeClock(T0)
    ran: list[datetime] = []
    skipped: list[RunSkipped] = []

    async def tick(ctx: Context) -> None:
        ran.append(ctx.when)

    coordinator = RedisCoordinator(f"redis://127.0.0.1:{redis_proxy.port}/0", namespace=namespace)
    scheduler = Scheduler(coordinator=coordinator, clock=clock)
    scheduler.subscribe(skipped.append, RunSkipped)
    scheduler.add_job(Job.every(S).do(tick, name="tick"))  # overlap="skip", the default
    async with scheduler:
        redis_proxy.hold()
        await clock.advance(S)  # T0+1 s fires; its claim is stuck in the proxy
        await clock.advance(S)  # T0+2 s fires while that claim is still pending
        assert ran == []
        redis_proxy.release()
        await _until(lambda: len(ran) == 2, clock)
    assert ran == [T0 + S, T0 + 2 * S]
    assert skipped == []


async def test_a_busy_instance_leaves_the_next_occurrence_to_a_free_one(
    postgres_server: PostgresServer, namespace: str
) -> None:
    # Two instances, one job that runs for 1.5 s every second (overlap="skip"). Whoever runs
    # an occurrence is still busy at the next one, so it does not claim it: the other
    # instance wins it. Claiming and then skipping would lose the occurrence cluster-wide.
    clock = FakeClock(T0)
    ran: list[tuple[str, datetime]] = []
    skipped: list[tuple[str, RunSkipped]] = []
    schedulers = []
    for name in ("a", "b"):

        async def long_tick(ctx: Context, name: str = name) -> None:
            ran.append((name, ctx.when))
            await ctx.sleep(1.5)

        scheduler = Scheduler(
            coordinator=PostgresCoordinator(
                postgres_server.dsn(), namespace=namespace, retention=None
            ),
            clock=clock,
        )
        scheduler.subscribe(lambda e, name=name: skipped.append((name, e)), RunSkipped)
        scheduler.add_job(Job.every(S).do(long_tick, name="long-tick"))
        schedulers.append(scheduler)
    async with schedulers[0], schedulers[1]:
        await clock.advance(S)
        await _until(lambda: len(ran) == 1, clock)
        first = ran[0][0]
        await clock.advance(S)
        await _until(lambda: len(ran) == 2, clock)
        for scheduler in schedulers:  # no more fires; let the runs in progress end
            for info in scheduler.jobs():
                scheduler.pause_job(info.id)
        await clock.advance(2 * S)
    assert [when for _, when in ran] == [T0 + S, T0 + 2 * S]
    assert ran[1][0] != first  # the free instance ran the second occurrence
    overlap = [(name, e.when) for name, e in skipped if e.reason == "overlap"]
    assert overlap == [(first, T0 + 2 * S)]  # the busy one stood aside, and said so
