"""PostgresCoordinator against a real server: claims, leases, re-claims, catch-up, bad config."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import pytest_asyncio

from beat import (
    Context,
    CoordinatorConfigError,
    CoordinatorUnavailableError,
    Job,
    Outcome,
    Scheduler,
)
from beat.coordinators import Claim, JobSpec
from beat.coordinators.postgres import PostgresCoordinator

from .conftest import PostgresServer, free_port

pytestmark = pytest.mark.asyncio

# Recent: rows older than the retention (7 days by default) are pruned in the background.
T0 = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=1)
S = timedelta(seconds=1)
SPECS = [JobSpec(name="j", interval=1.0, misfire_grace=None)]

Make = Callable[..., Awaitable[PostgresCoordinator]]


@pytest_asyncio.fixture
async def make(postgres_server: PostgresServer, namespace: str) -> AsyncIterator[Make]:
    """``await make(**options)``: an opened coordinator of this test's cluster."""
    opened: list[PostgresCoordinator] = []

    async def factory(**options: Any) -> PostgresCoordinator:
        coordinator = PostgresCoordinator(postgres_server.dsn(), namespace=namespace, **options)
        await coordinator.open(SPECS)
        opened.append(coordinator)
        return coordinator

    yield factory
    for coordinator in opened:
        await coordinator.close()


async def row(server: PostgresServer, claim: Claim) -> dict[str, object]:
    occ = claim.occurrence
    rows = await server.aquery(
        "SELECT status, owner, attempt, lease_expires - now() AS lease_left, error,"
        " finished_at IS NOT NULL AS finished FROM beat_runs"
        f" WHERE namespace = '{occ.namespace}' AND job = '{occ.job}'"
        f" AND fire_time = '{occ.fire_time.isoformat()}'"
    )
    assert len(rows) == 1
    return dict(rows[0])


async def test_second_claim_of_an_occurrence_gets_none(
    make: Make, postgres_server: PostgresServer
) -> None:
    a, b = await make(), await make()
    occ = a.occurrence("j", T0)
    claim = await a.claim(occ)
    assert claim == Claim(occ, attempt=1)
    assert await b.claim(occ) is None
    assert await a.claim(occ) is None
    assert await b.claim(b.occurrence("j", T0 + S)) is not None
    stored = await row(postgres_server, claim)
    assert stored == {
        "status": "running",
        "owner": a.owner,
        "attempt": 1,
        "lease_left": None,  # no lease: the claim is final
        "error": None,
        "finished": False,
    }


async def test_concurrent_claims_have_one_winner(make: Make) -> None:
    coordinators = [await make() for _ in range(4)]
    for k in range(20):
        occ = coordinators[0].occurrence("j", T0 + k * S)
        results = await asyncio.gather(*(c.claim(occ) for c in coordinators))
        assert sum(r is not None for r in results) == 1


async def test_finish_records_outcome_and_error(
    make: Make, postgres_server: PostgresServer
) -> None:
    a = await make()
    claim = await a.claim(a.occurrence("j", T0))
    assert claim is not None
    await a.finish(claim, Outcome.FAILED, "ValueError: boom")
    stored = await row(postgres_server, claim)
    assert (stored["status"], stored["error"], stored["finished"]) == (
        "failed",
        "ValueError: boom",
        True,
    )


async def test_lease_is_set_and_renewed_on_the_database_clock(
    make: Make, postgres_server: PostgresServer
) -> None:
    a, b = await make(lease=30), await make(lease=30)
    claim = await a.claim(a.occurrence("j", T0))
    assert claim is not None
    left = (await row(postgres_server, claim))["lease_left"]
    assert isinstance(left, timedelta)
    assert timedelta(seconds=29) < left <= timedelta(seconds=30)
    await postgres_server.aquery(
        f"UPDATE beat_runs SET lease_expires = now() + interval '1 second'"
        f" WHERE namespace = '{a.namespace}'"
    )
    assert await a.renew(claim) is True
    left = (await row(postgres_server, claim))["lease_left"]
    assert isinstance(left, timedelta)
    assert left > timedelta(seconds=29)
    assert await b.renew(claim) is False  # not b's claim


async def test_expired_lease_is_reclaimed_once_with_the_next_attempt(
    make: Make, postgres_server: PostgresServer
) -> None:
    a, b, c = await make(lease=0.3), await make(lease=30), await make(lease=30)
    claim = await a.claim(a.occurrence("j", T0))
    assert claim is not None
    assert await b.reclaim_expired() == []  # still leased
    await asyncio.sleep(0.5)
    taken = await asyncio.gather(b.reclaim_expired(), c.reclaim_expired())
    assert sorted(len(t) for t in taken) == [0, 1]
    (again,) = taken[0] or taken[1]
    assert again == Claim(claim.occurrence, attempt=2)
    winner = b if taken[0] else c
    stored = await row(postgres_server, again)
    assert (stored["owner"], stored["attempt"], stored["status"]) == (winner.owner, 2, "running")
    # The first owner is fenced off: its lease is gone and its outcome does not count.
    assert await a.renew(claim) is False
    await a.finish(claim, Outcome.SUCCEEDED, None)
    assert (await row(postgres_server, again))["status"] == "running"
    await winner.finish(again, Outcome.SUCCEEDED, None)
    assert (await row(postgres_server, again))["status"] == "succeeded"
    assert await b.reclaim_expired() == []


async def test_reclaim_only_takes_jobs_this_instance_knows(
    postgres_server: PostgresServer, make: Make, namespace: str
) -> None:
    a = await make(lease=0.1)
    assert await a.claim(a.occurrence("j", T0))
    stranger = PostgresCoordinator(postgres_server.dsn(), namespace=namespace, lease=30)
    await stranger.open([JobSpec(name="other", interval=None, misfire_grace=None)])
    try:
        await asyncio.sleep(0.3)
        assert await stranger.reclaim_expired() == []
    finally:
        await stranger.close()


async def test_a_run_past_max_attempts_is_abandoned(
    make: Make, postgres_server: PostgresServer
) -> None:
    a, b = await make(lease=0.1, max_attempts=2), await make(lease=0.1, max_attempts=2)
    claim = await a.claim(a.occurrence("j", T0))
    assert claim is not None
    await asyncio.sleep(0.25)
    assert [c.attempt for c in await b.reclaim_expired()] == [2]
    await asyncio.sleep(0.25)
    assert await a.reclaim_expired() == []
    stored = await row(postgres_server, claim)
    assert (stored["status"], stored["error"]) == ("abandoned", "lease expired after 2 attempt(s)")


async def test_last_fired_is_the_latest_claimed_instant(make: Make) -> None:
    a, b = await make(), await make()
    assert await a.last_fired("j") is None
    for k in (1, 3, 2):
        assert await (a if k % 2 else b).claim(a.occurrence("j", T0 + k * S))
    assert await b.last_fired("j") == T0 + 3 * S
    assert await b.claim(b.occurrence("j", T0 + 3 * S)) is None  # a lost claim changes nothing
    assert await a.last_fired("j") == T0 + 3 * S


async def test_last_fired_many_answers_for_every_known_job_at_once(make: Make) -> None:
    a = await make()
    assert await a.last_fired_many([]) == {}
    for job, k in (("x", 1), ("x", 4), ("y", 2)):
        assert await a.claim(a.occurrence(job, T0 + k * S))
    found = await a.last_fired_many(["x", "y", "never-claimed"])
    assert found == {"x": T0 + 4 * S, "y": T0 + 2 * S}
    assert found == {j: await a.last_fired(j) for j in ("x", "y")}


async def test_prune_deletes_rows_older_than_the_retention(
    make: Make, postgres_server: PostgresServer
) -> None:
    a = await make(retention=3600)
    now = datetime.now(UTC)
    for when in (now - timedelta(hours=2), now - timedelta(minutes=30)):
        assert await a.claim(a.occurrence("j", when))
    assert await a.prune() == 1
    assert await a.last_fired("j") == now - timedelta(minutes=30)


async def test_schema_is_created_once_under_concurrent_opens(
    postgres_server: PostgresServer, namespace: str
) -> None:
    coordinators = [
        PostgresCoordinator(postgres_server.dsn(), namespace=namespace, table_prefix="race")
        for _ in range(4)
    ]
    await asyncio.gather(*(c.open(SPECS) for c in coordinators))
    for c in coordinators:
        await c.close()
    rows = await postgres_server.aquery("SELECT version FROM race_schema")
    assert [r["version"] for r in rows] == [1]


async def test_newer_schema_version_is_a_config_error(
    postgres_server: PostgresServer, namespace: str
) -> None:
    first = PostgresCoordinator(postgres_server.dsn(), namespace=namespace, table_prefix="newer")
    await first.open(SPECS)
    await first.close()
    await postgres_server.aquery("UPDATE newer_schema SET version = 99")
    with pytest.raises(CoordinatorConfigError, match="schema version 99"):
        await PostgresCoordinator(postgres_server.dsn(), table_prefix="newer").open(SPECS)


async def test_down_server_fails_fast_and_claims_work_again_after_restart(
    private_postgres: PostgresServer, namespace: str
) -> None:
    coordinator = PostgresCoordinator(private_postgres.dsn(), namespace=namespace, timeout=1.0)
    await coordinator.open(SPECS)
    try:
        assert await coordinator.claim(coordinator.occurrence("j", T0))
        private_postgres.stop()
        for k in (1, 2):
            began = time.monotonic()
            with pytest.raises(CoordinatorUnavailableError, match="PostgreSQL"):
                await coordinator.claim(coordinator.occurrence("j", T0 + k * S))
            assert time.monotonic() - began < 2.5
        private_postgres.start()
        assert await coordinator.claim(coordinator.occurrence("j", T0 + S))
        assert await coordinator.claim(coordinator.occurrence("j", T0)) is None  # durable
    finally:
        await coordinator.close()


# -------------------------------------------------------------------------------------------
# Through the scheduler
# -------------------------------------------------------------------------------------------
async def test_first_instance_back_catches_up_once(
    postgres_server: PostgresServer, namespace: str
) -> None:
    """After a full outage, missed fires coalesce into one run across the restarted cluster."""
    ran: list[tuple[str, datetime]] = []

    async def job(ctx: Context, who: str) -> None:
        ran.append((who, ctx.when))

    step = timedelta(milliseconds=200)
    start = datetime.now(UTC) + timedelta(milliseconds=300)
    end = start + 9 * step

    def scheduler(who: str) -> Scheduler:
        s = Scheduler(coordinator=PostgresCoordinator(postgres_server.dsn(), namespace=namespace))
        s.add_job(Job.cycle(start, step).end_at(end).do(job, who, name="c"))
        return s

    async with scheduler("first"):
        await asyncio.sleep((start + step - datetime.now(UTC)).total_seconds() + 0.1)
    await asyncio.sleep((end - datetime.now(UTC)).total_seconds() + 0.1)  # all down
    async with scheduler("a"), scheduler("b"):
        await asyncio.sleep(0.5)
    assert ran == [("first", start), ("first", start + step), (ran[2][0], end)]


async def test_a_job_added_after_start_catches_up_like_one_present_at_start(
    postgres_server: PostgresServer, namespace: str
) -> None:
    """The gate's add hook: a job added to a running scheduler resumes from the cluster's
    last fired instant too, instead of starting afresh."""
    ran: list[tuple[str, datetime]] = []

    async def job(ctx: Context, who: str) -> None:
        ran.append((who, ctx.when))

    step = timedelta(milliseconds=200)
    start = datetime.now(UTC) + timedelta(milliseconds=300)
    end = start + 9 * step

    def coordinator() -> PostgresCoordinator:
        return PostgresCoordinator(postgres_server.dsn(), namespace=namespace)

    first = Scheduler(coordinator=coordinator())
    first.add_job(Job.cycle(start, step).end_at(end).do(job, "first", name="c"))
    async with first:
        await asyncio.sleep((start + step - datetime.now(UTC)).total_seconds() + 0.1)
    await asyncio.sleep((end - datetime.now(UTC)).total_seconds() + 0.1)  # all down
    late = Scheduler(coordinator=coordinator())
    async with late:  # started with no jobs at all
        late.add_job(Job.cycle(start, step).end_at(end).do(job, "late", name="c"))
        await asyncio.sleep(0.5)
    assert ran == [("first", start), ("first", start + step), ("late", end)]


# -------------------------------------------------------------------------------------------
# Bad configuration: refused at start
# -------------------------------------------------------------------------------------------
async def _start(dsn: str) -> None:
    async def noop(ctx: Context) -> None:
        pass

    scheduler = Scheduler(coordinator=PostgresCoordinator(dsn, namespace="cfg"))
    scheduler.add_job(Job.every(timedelta(hours=1)).do(noop, name="noop"))
    async with scheduler:
        pass


async def test_no_server_at_the_dsn_is_a_config_error() -> None:
    with pytest.raises(CoordinatorConfigError, match="cannot connect to PostgreSQL"):
        await _start(f"postgresql://beat:beat@127.0.0.1:{free_port()}/postgres")


async def test_wrong_password_is_a_config_error(postgres_server: PostgresServer) -> None:
    with pytest.raises(CoordinatorConfigError, match="password") as info:
        await _start(postgres_server.dsn(password="wrong"))
    assert "wrong" not in str(info.value)  # the DSN is redacted


async def test_missing_database_is_a_config_error(postgres_server: PostgresServer) -> None:
    with pytest.raises(CoordinatorConfigError, match="does not exist"):
        await _start(postgres_server.dsn(database="nosuchdb"))


async def test_role_without_create_on_the_schema_is_a_config_error(
    postgres_server: PostgresServer,
) -> None:
    await postgres_server.aquery(
        "CREATE ROLE nocreate LOGIN PASSWORD 'pw'", "CREATE DATABASE fresh_nocreate"
    )
    with pytest.raises(CoordinatorConfigError, match="permission denied for schema public"):
        await _start(postgres_server.dsn("nocreate", "pw", "fresh_nocreate"))


async def test_role_without_table_privileges_is_a_config_error_until_granted(
    postgres_server: PostgresServer,
) -> None:
    await postgres_server.aquery("CREATE ROLE dmlonly LOGIN PASSWORD 'pw'", "CREATE DATABASE pre")
    await _start(postgres_server.dsn(database="pre"))  # a superuser creates the tables
    with pytest.raises(CoordinatorConfigError, match="lacks SELECT on beat_schema"):
        await _start(postgres_server.dsn("dmlonly", "pw", "pre"))
    await postgres_server.aquery(
        "GRANT SELECT, INSERT, UPDATE, DELETE ON beat_runs, beat_jobs TO dmlonly",
        "GRANT SELECT ON beat_schema TO dmlonly",
        database="pre",
    )
    await _start(postgres_server.dsn("dmlonly", "pw", "pre"))  # no CREATE needed any more


async def test_bad_arguments_are_config_errors() -> None:
    with pytest.raises(CoordinatorConfigError, match="table_prefix"):
        PostgresCoordinator("postgresql://x", table_prefix="Robert'); DROP TABLE")
    with pytest.raises(CoordinatorConfigError, match="lease"):
        PostgresCoordinator("postgresql://x", lease=0)
    with pytest.raises(CoordinatorConfigError, match="max_attempts"):
        PostgresCoordinator("postgresql://x", max_attempts=0)
