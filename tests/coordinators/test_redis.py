"""RedisCoordinator against a real redis-server: claims, TTLs, outcomes, outages, bad config."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest
import pytest_asyncio
from redis.asyncio import Redis

from beat import (
    Context,
    CoordinatorConfigError,
    CoordinatorRecovered,
    CoordinatorUnavailable,
    CoordinatorUnavailableError,
    Job,
    Outcome,
    RunSkipped,
    Scheduler,
)
from beat.coordinators import Claim, JobSpec
from beat.coordinators.redis import RedisCoordinator

from .conftest import RedisServer, free_port

pytestmark = pytest.mark.asyncio

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
SPECS = [
    JobSpec(name="every-second", interval=1.0, misfire_grace=None),
    JobSpec(name="graced", interval=1.0, misfire_grace=30.0),
    JobSpec(name="cron", interval=None, misfire_grace=None),
]


@pytest_asyncio.fixture
async def raw(redis_server: RedisServer) -> AsyncIterator[Redis]:
    client = Redis.from_url(redis_server.url, decode_responses=True)
    yield client
    await client.aclose()


@pytest_asyncio.fixture
async def pair(redis_server: RedisServer, namespace: str) -> AsyncIterator[list[RedisCoordinator]]:
    """Two instances of one cluster."""
    coordinators = [RedisCoordinator(redis_server.url, namespace=namespace) for _ in range(2)]
    for coordinator in coordinators:
        await coordinator.open(SPECS)
    yield coordinators
    for coordinator in coordinators:
        await coordinator.close()


async def test_second_claim_of_an_occurrence_gets_none(pair: list[RedisCoordinator]) -> None:
    a, b = pair
    occ = a.occurrence("every-second", T0)
    claim = await a.claim(occ)
    assert claim == Claim(occ)
    assert await b.claim(occ) is None
    assert await a.claim(occ) is None  # not even the winner claims twice


async def test_other_instants_jobs_and_namespaces_are_separate(
    pair: list[RedisCoordinator], redis_server: RedisServer
) -> None:
    a, b = pair
    assert await a.claim(a.occurrence("every-second", T0))
    assert await b.claim(b.occurrence("every-second", T0 + timedelta(seconds=1)))
    assert await b.claim(b.occurrence("cron", T0))
    other = RedisCoordinator(redis_server.url, namespace=a.namespace + "-other")
    await other.open([])
    try:
        assert await other.claim(other.occurrence("every-second", T0))
    finally:
        await other.close()


async def test_key_layout_and_ttl_follow_the_schedule(
    pair: list[RedisCoordinator], raw: Redis
) -> None:
    a, _ = pair
    for job, ttl in (("every-second", 61.0), ("graced", 90.0), ("cron", 86_460.0)):
        occ = a.occurrence(job, T0)
        assert await a.claim(occ)
        key = f"beat:{a.namespace}:occ:{job}@2026-03-01T12:00:00+00:00"
        assert a.key(occ) == key
        assert await raw.get(key) == f"{a.owner} running"
        assert ttl - 1 < await raw.pttl(key) / 1000 <= ttl
        assert a.ttl(job) == ttl
    assert a.ttl("added-later") == 86_460.0


async def test_finish_records_the_outcome_without_extending_the_key(
    pair: list[RedisCoordinator], raw: Redis
) -> None:
    a, _ = pair
    claim = await a.claim(a.occurrence("every-second", T0))
    assert claim is not None
    key = a.key(claim.occurrence)
    await raw.pexpire(key, 5000)
    await a.finish(claim, Outcome.FAILED, "ValueError: boom")
    assert await raw.get(key) == f"{a.owner} failed ValueError: boom"
    assert 0 < await raw.pttl(key) <= 5000
    await raw.delete(key)
    await a.finish(claim, Outcome.SUCCEEDED, None)  # an expired key is not re-created
    assert await raw.exists(key) == 0


async def test_redis_has_no_catch_up_and_no_leases(pair: list[RedisCoordinator]) -> None:
    a, _ = pair
    assert await a.claim(a.occurrence("every-second", T0))
    assert await a.last_fired("every-second") is None
    assert a.lease is None
    assert await a.reclaim_expired() == []


async def test_down_server_fails_fast_and_claims_work_again_after_restart(
    private_redis: RedisServer, namespace: str
) -> None:
    coordinator = RedisCoordinator(private_redis.url, namespace=namespace, timeout=1.0)
    await coordinator.open(SPECS)
    try:
        assert await coordinator.claim(coordinator.occurrence("every-second", T0))
        private_redis.stop()
        began = time.monotonic()
        with pytest.raises(CoordinatorUnavailableError, match="Redis"):
            await coordinator.claim(coordinator.occurrence("every-second", T0))
        assert time.monotonic() - began < 2.5
        private_redis.start()  # no persistence: the key of T0 is gone
        assert await coordinator.claim(coordinator.occurrence("every-second", T0))
    finally:
        await coordinator.close()


# -------------------------------------------------------------------------------------------
# Through the scheduler
# -------------------------------------------------------------------------------------------
async def test_two_schedulers_share_the_runs_of_a_job(
    redis_server: RedisServer, namespace: str
) -> None:
    seen: list[tuple[str, datetime]] = []

    async def record(ctx: Context, who: str) -> None:
        seen.append((who, ctx.when))

    start = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=1)
    end = start + timedelta(seconds=1.2)
    schedulers = []
    for who in "ab":
        scheduler = Scheduler(coordinator=RedisCoordinator(redis_server.url, namespace=namespace))
        step = timedelta(milliseconds=200)
        scheduler.add_job(Job.cycle(start, step).end_at(end).do(record, who, name="j"))
        schedulers.append(scheduler)
    async with schedulers[0], schedulers[1]:
        await asyncio.sleep((end - datetime.now(UTC)).total_seconds() + 0.3)
    whens = sorted(when for _, when in seen)
    assert whens == [start + timedelta(milliseconds=200 * k) for k in range(7)]


async def test_the_instance_that_lost_a_claim_reports_it_as_not_claimed(
    redis_server: RedisServer, namespace: str
) -> None:
    """Every occurrence runs on one instance and is a RunSkipped(not_claimed) on the other."""
    from beat import RunSkipped, RunSucceeded
    from beat.testing import EventRecorder

    async def noop(ctx: Context) -> None:
        pass

    start = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=1)
    step = timedelta(milliseconds=200)
    end = start + 4 * step
    schedulers, recorders = [], []
    for _ in range(2):
        scheduler = Scheduler(coordinator=RedisCoordinator(redis_server.url, namespace=namespace))
        scheduler.add_job(Job.cycle(start, step).end_at(end).do(noop, name="j"))
        schedulers.append(scheduler)
        recorders.append(EventRecorder(scheduler, RunSucceeded, RunSkipped))
    async with schedulers[0], schedulers[1]:
        await asyncio.sleep((end - datetime.now(UTC)).total_seconds() + 0.3)
    ran = sorted(e.when for r in recorders for e in r.of(RunSucceeded))
    lost = sorted(e.when for r in recorders for e in r.of(RunSkipped))
    expected = [start + k * step for k in range(5)]
    assert ran == expected
    assert lost == expected
    assert all(e.reason == "not_claimed" for r in recorders for e in r.of(RunSkipped))


async def test_a_job_added_after_start_gets_the_ttl_of_one_present_at_start(
    redis_server: RedisServer, namespace: str
) -> None:
    async def noop(ctx: Context) -> None:
        pass

    coordinator = RedisCoordinator(redis_server.url, namespace=namespace)
    scheduler = Scheduler(coordinator=coordinator)
    scheduler.add_job(Job.cycle(T0, timedelta(seconds=5)).do(noop, name="early"))
    async with scheduler:
        scheduler.add_job(Job.cycle(T0, timedelta(seconds=5)).do(noop, name="late"))
        assert coordinator.ttl("late") == coordinator.ttl("early") == 5 + coordinator.ttl_margin
        assert coordinator.ttl("never-added") == coordinator.default_ttl + coordinator.ttl_margin


async def test_outage_skips_occurrences_and_recovery_is_reported(
    private_redis: RedisServer, namespace: str
) -> None:
    events: list[object] = []
    ran: list[datetime] = []

    async def job(ctx: Context) -> None:
        ran.append(ctx.when)

    scheduler = Scheduler(coordinator=RedisCoordinator(private_redis.url, namespace=namespace))
    scheduler.subscribe(events.append, RunSkipped, CoordinatorUnavailable, CoordinatorRecovered)
    scheduler.add_job(Job.every(timedelta(milliseconds=100)).do(job, name="tick"))
    async with scheduler:
        await asyncio.sleep(0.35)
        private_redis.stop()
        await asyncio.sleep(0.6)
        down = len(ran)
        private_redis.start()
        await asyncio.sleep(2.5)  # > the retry pauses so far (0.25 + 0.5 + 1 s)
    skipped = [e for e in events if isinstance(e, RunSkipped)]
    assert skipped
    assert {e.reason for e in skipped} == {"coordinator_down"}
    assert [type(e) for e in events if not isinstance(e, RunSkipped)] == [
        CoordinatorUnavailable,
        CoordinatorRecovered,
    ]
    assert len(ran) > down  # runs resumed
    assert len(set(ran)) == len(ran)


# -------------------------------------------------------------------------------------------
# Bad configuration: refused at start
# -------------------------------------------------------------------------------------------
async def _start(url: str, namespace: str = "cfg") -> None:
    async def noop(ctx: Context) -> None:
        pass

    scheduler = Scheduler(coordinator=RedisCoordinator(url, namespace=namespace))
    scheduler.add_job(Job.every(timedelta(hours=1)).do(noop, name="noop"))
    async with scheduler:
        pass


async def test_no_server_at_the_url_is_a_config_error() -> None:
    with pytest.raises(CoordinatorConfigError, match="cannot use Redis"):
        await _start(f"redis://127.0.0.1:{free_port()}/0")


async def test_a_bad_url_is_a_config_error() -> None:
    with pytest.raises(CoordinatorConfigError, match="bad Redis URL"):
        await _start("http://127.0.0.1:6379")


async def test_wrong_password_is_a_config_error(redis_server: RedisServer, raw: Redis) -> None:
    await raw.execute_command("ACL", "SETUSER", "pwuser", "on", ">right", "~*", "+@all")
    url = f"redis://pwuser:wrong@127.0.0.1:{redis_server.port}/0"
    with pytest.raises(CoordinatorConfigError, match="pwuser:\\*\\*\\*@") as info:
        await _start(url)
    assert "wrong" not in str(info.value)
    await _start(f"redis://pwuser:right@127.0.0.1:{redis_server.port}/0")


async def test_user_without_set_permission_is_a_config_error(
    redis_server: RedisServer, raw: Redis
) -> None:
    await raw.execute_command("ACL", "SETUSER", "noset", "on", ">pw", "~*", "+@all", "-set")
    with pytest.raises(CoordinatorConfigError, match="NoPermissionError"):
        await _start(f"redis://noset:pw@127.0.0.1:{redis_server.port}/0")


async def test_user_limited_to_other_keys_is_a_config_error(
    redis_server: RedisServer, raw: Redis
) -> None:
    await raw.execute_command("ACL", "SETUSER", "otherkeys", "on", ">pw", "~app:*", "+@all")
    with pytest.raises(CoordinatorConfigError, match="beat:cfg:"):
        await _start(f"redis://otherkeys:pw@127.0.0.1:{redis_server.port}/0")


async def test_bad_arguments_are_config_errors() -> None:
    with pytest.raises(CoordinatorConfigError, match="ttl_margin"):
        RedisCoordinator("redis://x", ttl_margin=0)
    with pytest.raises(CoordinatorConfigError, match="timeout"):
        RedisCoordinator("redis://x", timeout=-1)


async def test_a_oneshot_re_added_after_it_ran_does_not_run_again(
    redis_server: RedisServer, namespace: str, raw: Redis
) -> None:
    # A restarted process declares the same oneshot again (its instant now past): the
    # occurrence key, kept for oneshot_ttl, must still be there to refuse the claim.
    runs: list[str] = []
    ran = asyncio.Event()

    async def once(ctx: Context) -> None:
        runs.append(ctx.fire_key)
        ran.set()

    at = datetime.now(UTC) - timedelta(seconds=1)  # due at once, then "past" for the re-add
    first = RedisCoordinator(redis_server.url, namespace=namespace)
    scheduler = Scheduler(coordinator=first)
    scheduler.add_job(Job.oneshot(at).do(once, name="migrate"))
    async with scheduler:
        await asyncio.wait_for(ran.wait(), 10)
    key = f"beat:{namespace}:occ:migrate@{at.isoformat()}"
    ttl = await raw.ttl(key)
    assert ttl > first.default_ttl  # the oneshot's own, longer TTL
    assert first.ttl("migrate") == first.oneshot_ttl + first.ttl_margin
    skipped: list[RunSkipped] = []
    seen = asyncio.Event()

    def on_skip(event: RunSkipped) -> None:
        skipped.append(event)
        seen.set()

    again = Scheduler(coordinator=RedisCoordinator(redis_server.url, namespace=namespace))
    again.subscribe(on_skip, RunSkipped)
    again.add_job(Job.oneshot(at).do(once, name="migrate"))
    async with again:
        await asyncio.wait_for(seen.wait(), 10)
    assert len(runs) == 1
    assert [e.reason for e in skipped] == ["not_claimed"]


async def test_run_now_runs_on_this_instance_without_a_claim(
    redis_server: RedisServer, namespace: str, raw: Redis
) -> None:
    async def manual(ctx: Context) -> int:
        return ctx.attempt

    scheduler = Scheduler(coordinator=RedisCoordinator(redis_server.url, namespace=namespace))
    job_id = scheduler.add_job(Job.every(timedelta(hours=1)).do(manual, name="manual"))
    async with scheduler:
        assert await scheduler.run_now(job_id) == 1
        assert await scheduler.run_now(job_id) == 1  # an explicit call always runs
    assert await raw.keys(f"beat:{namespace}:occ:*") == []  # nothing was claimed
