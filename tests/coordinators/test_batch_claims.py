"""Claims in batches: ``claim_many`` on real Redis and PostgreSQL, and the scheduler sending
the occurrences due together in one call (docs/guarantees.md §6)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import pytest_asyncio

from beat import Context, Job, Outcome, RunSkipped, Scheduler
from beat.coordinators import Claim, Coordinator, Occurrence
from beat.coordinators.postgres import PostgresCoordinator
from beat.coordinators.redis import RedisCoordinator
from beat.testing import FakeClock

from .conftest import PostgresServer, RedisServer

pytestmark = pytest.mark.asyncio

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
S = timedelta(seconds=1)
JOBS = 300

Factory = Callable[[], Coordinator]


@pytest_asyncio.fixture(params=["redis", "postgres"])
async def factory(request: pytest.FixtureRequest, namespace: str) -> AsyncIterator[Factory]:
    if request.param == "redis":
        server: RedisServer = request.getfixturevalue("redis_server")
        yield lambda: RedisCoordinator(server.url, namespace=namespace)
    else:
        pg: PostgresServer = request.getfixturevalue("postgres_server")
        # No pruning: these instants are in the past of the database clock.
        yield lambda: PostgresCoordinator(pg.dsn(), namespace=namespace, retention=None)


class Counting:
    """A real coordinator that counts how it was asked (calls pass straight through)."""

    def __init__(self, inner: Coordinator) -> None:
        self.inner = inner
        self.batches: list[int] = []
        self.singles = 0
        self.finish_batches: list[int] = []
        self.finish_singles = 0
        inner_claim_many = inner.claim_many
        inner_claim = inner.claim
        inner_finish_many = inner.finish_many
        inner_finish = inner.finish

        async def finish_many(items: Sequence[tuple[Claim, Outcome, str | None]]) -> None:
            self.finish_batches.append(len(items))
            await inner_finish_many(items)

        async def finish(claim: Claim, outcome: Outcome, error: str | None) -> None:
            self.finish_singles += 1
            await inner_finish(claim, outcome, error)

        async def claim_many(occurrences: Sequence[Occurrence]) -> list[Claim | None]:
            self.batches.append(len(occurrences))
            return await inner_claim_many(occurrences)

        async def claim(occurrence: Occurrence) -> Claim | None:
            self.singles += 1
            return await inner_claim(occurrence)

        inner.claim_many = claim_many  # type: ignore[method-assign]
        inner.claim = claim  # type: ignore[method-assign]
        inner.finish_many = finish_many  # type: ignore[method-assign]
        inner.finish = finish  # type: ignore[method-assign]


async def test_claim_many_answers_in_order_and_each_occurrence_once(factory: Factory) -> None:
    a, b = factory(), factory()
    await a.open([])
    await b.open([])
    try:
        first = [a.occurrence(f"j{i % 7}", T0 + i * S) for i in range(50)]
        assert await a.claim_many([]) == []
        won = await a.claim_many(first[:30])
        assert won == [Claim(o) for o in first[:30]]
        # b overlaps a's batch: it wins exactly the 20 that a did not take, in order.
        answers = await b.claim_many(first)
        assert answers == [None] * 30 + [Claim(o) for o in first[30:]]
        assert await a.claim(first[-1]) is None  # a batch claim is an ordinary claim
        assert await a.claim_many(first[:1]) == [None]
    finally:
        await a.close()
        await b.close()


async def test_occurrences_due_together_are_claimed_in_one_call_each_run_once(
    factory: Factory,
) -> None:
    clock = FakeClock(T0)
    ran: list[tuple[int, str, datetime]] = []
    lost: list[RunSkipped] = []
    counters = []
    schedulers = []
    for instance in range(2):
        coordinator = factory()
        counters.append(Counting(coordinator))
        scheduler = Scheduler(coordinator=coordinator, clock=clock)
        scheduler.subscribe(lost.append, RunSkipped)

        async def job(ctx: Context, instance: int = instance) -> None:
            ran.append((instance, ctx.name, ctx.when))

        for i in range(JOBS):
            scheduler.add_job(Job.every(S).do(job, name=f"job{i:03d}"))
        schedulers.append(scheduler)
    async with schedulers[0], schedulers[1]:
        for _ in range(2):
            await clock.advance(S)
            async with asyncio.timeout(30):
                while len(ran) + len(lost) < 2 * JOBS * (1 + (_ > 0)):
                    await asyncio.sleep(0.01)
                    await clock.settle()
    occurrences = [(name, when) for _, name, when in ran]
    assert len(occurrences) == len(set(occurrences)) == 2 * JOBS  # each once, none lost
    assert {e.reason for e in lost} == {"not_claimed"}
    for instance, counter in enumerate(counters):
        assert counter.singles == 0
        # Two instants, JOBS occurrences each: one call per instant and instance.
        assert counter.batches == [JOBS, JOBS]
        # The outcomes of the runs it won are recorded in batches too, never one by one.
        assert counter.finish_singles == 0
        assert sum(counter.finish_batches) == sum(1 for i, _, _ in ran if i == instance)
        assert len(counter.finish_batches) <= 4


async def test_finish_many_records_every_outcome(factory: Factory) -> None:
    a = factory()
    await a.open([])
    try:
        occurrences = [a.occurrence(f"f{i}", T0 + i * S) for i in range(3)]
        claims = [c for c in await a.claim_many(occurrences) if c is not None]
        assert len(claims) == 3
        await a.finish_many([])
        await a.finish_many(
            [
                (claims[0], Outcome.SUCCEEDED, None),
                (claims[1], Outcome.FAILED, "ValueError: boom"),
                (claims[2], Outcome.TIMED_OUT, "timed out"),
            ]
        )
        assert await _outcomes(a, occurrences) == [
            ("succeeded", None),
            ("failed", "ValueError: boom"),
            ("timed_out", "timed out"),
        ]
    finally:
        await a.close()


async def _outcomes(
    coordinator: Coordinator, occurrences: list[Occurrence]
) -> list[tuple[str, str | None]]:
    """What the backend stored for each occurrence: (outcome, error)."""
    if isinstance(coordinator, RedisCoordinator):
        client = coordinator._require_client()
        found = []
        for occurrence in occurrences:
            value = await client.get(coordinator.key(occurrence))
            _, outcome, *error = value.decode().split(" ", 2)
            found.append((outcome, error[0] if error else None))
        return found
    assert isinstance(coordinator, PostgresCoordinator)
    rows = await coordinator._call(
        "fetch",
        f"SELECT job, status, error FROM {coordinator._tables.runs}"
        " WHERE namespace = $1 ORDER BY job",
        coordinator.namespace,
    )
    return [(row["status"], row["error"]) for row in rows]


async def test_a_failed_batch_skips_every_occurrence_in_it_safely(
    private_redis: RedisServer, namespace: str
) -> None:
    clock = FakeClock(T0)
    ran: list[Any] = []
    skipped: list[RunSkipped] = []
    scheduler = Scheduler(
        coordinator=RedisCoordinator(private_redis.url, namespace=namespace), clock=clock
    )
    scheduler.subscribe(skipped.append, RunSkipped)
    for i in range(20):
        scheduler.add_job(Job.every(S).do(lambda ctx: ran.append(ctx), name=f"j{i}"))
    async with scheduler:
        await asyncio.to_thread(private_redis.stop)
        await clock.advance(S)
        async with asyncio.timeout(30):
            while len(skipped) < 20:
                await asyncio.sleep(0.01)
                await clock.settle()
    assert ran == []
    assert {(e.reason, e.when) for e in skipped} == {("coordinator_down", T0 + S)}
    assert len(skipped) == 20
