"""beat.metrics: what the scheduler, its worker and its store's queues report to Prometheus."""

from __future__ import annotations

import asyncio
import logging
import os
import subprocess
import sys
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path

import pytest
import pytest_asyncio
from prometheus_client import CollectorRegistry, generate_latest

from beat import (
    Backoff,
    Context,
    Event,
    FiresMissed,
    InvalidJobError,
    Job,
    JobContext,
    RunSkipped,
    RunStarted,
    RunSucceeded,
    Scheduler,
    SchedulerStateError,
    metrics,
)
from beat.coordinators.redis import RedisCoordinator
from beat.stores import JobStatus, MemoryStore, NewJob, PruneRule, SQLiteStore
from beat.testing import EventRecorder, FakeClock, drain
from tests.coordinators.conftest import (  # the session's real Redis
    RedisServer,
    redis_server,  # noqa: F401
    server_dir,  # noqa: F401
)

S = timedelta(seconds=1)


def value(registry: CollectorRegistry, name: str, **labels: str) -> float:
    found = registry.get_sample_value(name, labels)
    return 0.0 if found is None else found


def sample(registry: CollectorRegistry, name: str, **labels: str) -> float | None:
    """The exported value, or ``None`` when the series is absent from the scrape."""
    return registry.get_sample_value(name, labels)


async def until(condition: Callable[[], bool], what: str) -> None:
    """Wait (bounded) for work on a real store's thread: the fake clock does not move."""
    try:
        async with asyncio.timeout(10):
            while not condition():  # noqa: ASYNC110 - a scrape is read, nothing to await
                await asyncio.sleep(0.01)
    except TimeoutError:
        raise AssertionError(f"timed out waiting until {what}") from None


async def drained(scheduler: Scheduler) -> None:
    """Let the metrics listener take every event emitted so far (delivery is asynchronous)."""
    for _ in range(50):
        await asyncio.sleep(0)


@pytest.fixture
def registry() -> CollectorRegistry:
    return CollectorRegistry()


@pytest_asyncio.fixture
async def clock() -> FakeClock:
    return FakeClock()


async def ok(ctx: Context) -> str:
    return "ok"


async def boom(ctx: Context) -> None:
    raise RuntimeError("no")


async def slow(ctx: Context) -> None:
    await ctx.sleep(2.5)


def test_importing_beat_metrics_imports_no_prometheus() -> None:
    code = "import sys, beat, beat.metrics; print('prometheus_client' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


@pytest.mark.asyncio
async def test_fires_runs_durations_and_skips_by_job(
    clock: FakeClock, registry: CollectorRegistry
) -> None:
    scheduler = Scheduler(clock=clock)
    scheduler.add_job(Job.every(10 * S).do(ok, name="tick"))
    scheduler.add_job(Job.every(10 * S).do(boom, name="bad"))
    scheduler.add_job(Job.every(1 * S).do(slow, name="slow", overlap="skip"))
    metrics.instrument(scheduler, registry)
    async with scheduler:
        await clock.advance(30 * S)
        await drained(scheduler)
        await scheduler.shutdown(timeout=0)
    assert value(registry, "beat_fires_total", job="tick") == 3
    assert value(registry, "beat_runs_total", job="tick", outcome="succeeded") == 3
    assert value(registry, "beat_runs_total", job="bad", outcome="failed") == 3
    assert value(registry, "beat_run_duration_seconds_count", job="bad", outcome="failed") == 3
    # on time with a fake clock: every lateness lands in the first bucket
    assert value(registry, "beat_fire_lateness_seconds_bucket", job="tick", le="0.0005") == 3
    # "slow" runs 2.5 s every 1 s under overlap="skip": two of every three fires are skipped
    skipped = value(registry, "beat_skips_total", job="slow", reason="overlap")
    started = value(registry, "beat_fires_total", job="slow")
    assert started + skipped == 30
    assert skipped == 20
    assert value(registry, "beat_scheduler_jobs") == 3
    assert value(registry, "beat_scheduler_fires_total") == 3 + 3 + started


@pytest.mark.asyncio
async def test_a_misfire_counts_missed_instants_and_its_lateness(
    clock: FakeClock, registry: CollectorRegistry
) -> None:
    scheduler = Scheduler(clock=clock)
    scheduler.add_job(Job.every(10 * S).do(ok, name="tick"))  # misfire="coalesce"
    metrics.instrument(scheduler, registry)
    async with scheduler:
        recorder = EventRecorder(scheduler, RunSucceeded, FiresMissed)
        clock.jump(35 * S)  # the wall clock steps forward; the loop notices at its next wake
        await clock.advance(10 * S)
        async with asyncio.timeout(5):
            await recorder.wait_for(RunSucceeded)
        await drained(scheduler)
        await scheduler.shutdown(timeout=0)
    (missed,) = recorder.of(FiresMissed)
    assert missed.missed == 4 and missed.dropped == 3  # instants +10 s ... +40 s, at +45 s
    assert value(registry, "beat_misfires_total", job="tick", policy="coalesce") == 4
    assert value(registry, "beat_misfires_dropped_total", job="tick") == 3
    assert value(registry, "beat_clock_jumps_total") == 1
    # the one coalesced run started at least 5 s after its instant
    assert value(registry, "beat_fire_lateness_seconds_count", job="tick") == 1
    assert value(registry, "beat_fire_lateness_seconds_sum", job="tick") >= 5.0
    assert value(registry, "beat_fire_lateness_seconds_bucket", job="tick", le="1.0") == 0


@pytest.mark.asyncio
async def test_one_registry_takes_one_scheduler_and_close_frees_it(
    registry: CollectorRegistry,
) -> None:
    first = metrics.instrument(Scheduler(), registry)
    with pytest.raises(InvalidJobError, match="already registered"):
        metrics.instrument(Scheduler(), registry)
    first.close()
    first.close()  # idempotent
    metrics.instrument(Scheduler(), registry).close()
    assert b"beat_fires" not in generate_latest(registry)


@pytest.mark.asyncio
async def test_instrument_refuses_what_is_not_a_scheduler(registry: CollectorRegistry) -> None:
    with pytest.raises(InvalidJobError, match=r"beat\.Scheduler"):
        metrics.instrument("scheduler", registry)  # type: ignore[arg-type]
    with pytest.raises(InvalidJobError, match="queue_interval"):
        metrics.instrument(Scheduler(), registry, queue_interval=0)
    assert list(registry.collect()) == []


@pytest.mark.asyncio
async def test_queue_depth_is_refreshed_on_the_schedulers_clock(
    clock: FakeClock, registry: CollectorRegistry
) -> None:
    store = MemoryStore(clock=clock.time)
    scheduler = Scheduler(clock=clock, store=store)
    async with scheduler:
        metrics.instrument(scheduler, registry, queue_interval=5)  # after start
        await store.enqueue(
            [NewJob("later", delay=60), NewJob("later", delay=60), NewJob("now", queue="q")]
        )
        # nobody runs these tasks: they stay waiting
        assert value(registry, "beat_queue_jobs", queue="default", status="scheduled") == 0
        await clock.advance(5 * S)
        await drained(scheduler)
        assert value(registry, "beat_queue_jobs", queue="default", status="scheduled") == 2
        assert value(registry, "beat_queue_jobs", queue="q", status="queued") == 1
        assert value(registry, "beat_queue_depth_updated_timestamp_seconds") == clock.time()
        await scheduler.shutdown(timeout=0)


@pytest.mark.asyncio
async def test_durable_jobs_report_claims_reclaims_and_outcomes(
    clock: FakeClock, registry: CollectorRegistry
) -> None:
    store = MemoryStore(clock=clock.time)
    scheduler = Scheduler(clock=clock, store=store)

    @scheduler.task(name="ok")
    async def ok_task(ctx: JobContext) -> int:
        return 1

    @scheduler.task(name="flaky", retries=1, backoff=Backoff(initial=1.0))
    async def flaky(ctx: JobContext) -> int:
        if ctx.attempt == 1:
            raise RuntimeError("first try fails")
        return 2

    metrics.instrument(scheduler, registry)
    await store.open()
    await store.enqueue([NewJob("ok"), NewJob("flaky"), NewJob("ok", queue="default")])
    # a worker that claims one "ok" job and dies: its lease expires, ours re-claims it
    (orphan,) = await store.claim("ghost", queues=["default"], tasks=["ok"], limit=1, lease=5)
    clock.jump(6)
    assert await drain(scheduler, advance=True) == 4
    await store.close()

    assert value(registry, "beat_job_claims_total", task="ok", queue="default") == 2
    assert value(registry, "beat_job_claims_total", task="flaky", queue="default") == 2
    assert value(registry, "beat_job_reclaims_total", task="ok", queue="default") == 1
    assert value(registry, "beat_job_reclaims_total", task="flaky", queue="default") == 1
    assert value(registry, "beat_job_executions_total", task="ok", outcome="succeeded") == 2
    assert value(registry, "beat_job_executions_total", task="flaky", outcome="retried") == 1
    assert value(registry, "beat_job_executions_total", task="flaky", outcome="succeeded") == 1
    assert value(registry, "beat_job_duration_seconds_count", task="flaky", outcome="retried") == 1
    assert orphan.attempt == 1


@pytest.mark.asyncio
async def test_claims_won_and_lost_under_a_real_coordinator(
    request: pytest.FixtureRequest,
) -> None:
    """Two instances share one Redis: each occurrence is won by one and lost by the other."""
    server: RedisServer = request.getfixturevalue("redis_server")
    namespace = f"m{os.urandom(6).hex()}"
    seen: dict[datetime, list[str]] = {}
    three = asyncio.Event()

    def listener(name: str) -> Callable[[Event], None]:
        def record(event: Event) -> None:
            if isinstance(event, RunStarted) or (
                isinstance(event, RunSkipped) and event.reason == "not_claimed"
            ):
                seen.setdefault(event.when, []).append(f"{name}:{type(event).__name__}")
                if sum(len(v) == 2 for v in seen.values()) >= 3:
                    three.set()

        return record

    registries = {"a": CollectorRegistry(), "b": CollectorRegistry()}
    schedulers = {}
    for name, registry in registries.items():
        scheduler = Scheduler(coordinator=RedisCoordinator(server.url, namespace=namespace))
        scheduler.add_job(Job.every(timedelta(seconds=0.2)).do(ok, name="shared"))
        metrics.instrument(scheduler, registry)
        scheduler.subscribe(listener(name), RunStarted, RunSkipped)
        schedulers[name] = scheduler
    async with schedulers["a"], schedulers["b"]:
        async with asyncio.timeout(10):
            await three.wait()
        for scheduler in schedulers.values():
            await scheduler.shutdown()
    both = [sorted(v) for v in seen.values() if len(v) == 2]
    assert len(both) >= 3
    for outcome in both:  # one winner, one loser, never two runs
        assert {o.split(":")[1] for o in outcome} == {"RunStarted", "RunSkipped"}
    for name, registry in registries.items():
        mine = [o for v in seen.values() for o in v if o.startswith(name)]
        won = value(registry, "beat_coordinator_claims_total", job="shared", result="won")
        lost = value(registry, "beat_coordinator_claims_total", job="shared", result="lost")
        assert won == mine.count(f"{name}:RunStarted")
        assert lost == mine.count(f"{name}:RunSkipped")
        assert value(registry, "beat_coordinator_up") == 1
    total_won = sum(
        value(r, "beat_coordinator_claims_total", job="shared", result="won")
        for r in registries.values()
    )
    assert total_won >= 3


@pytest.mark.asyncio
async def test_a_running_scheduler_is_instrumented_from_its_loop(
    clock: FakeClock, registry: CollectorRegistry
) -> None:
    async with Scheduler(clock=clock) as scheduler:
        with pytest.raises(SchedulerStateError, match="event loop"):
            await asyncio.to_thread(metrics.instrument, scheduler, registry)
        assert list(registry.collect()) == []  # nothing left registered
        metrics.instrument(scheduler, registry).close()  # on the loop: fine
        await scheduler.shutdown(timeout=0)


@pytest.mark.asyncio
async def test_instrumented_before_start_the_queue_depth_is_there_at_once_and_quietly(
    tmp_path: Path, clock: FakeClock, registry: CollectorRegistry, caplog: pytest.LogCaptureFixture
) -> None:
    """SchedulerStarted comes before the scheduler opens its store: the first refresh waits
    for the store, instead of failing ("not open", a WARNING) and waiting a whole interval."""
    path = tmp_path / "jobs.db"
    async with SQLiteStore(path, clock=clock.time) as setup:
        await setup.enqueue([NewJob("report.build", delay=3600)])
    scheduler = Scheduler(clock=clock, store=SQLiteStore(path, clock=clock.time))
    metrics.instrument(scheduler, registry, queue_interval=15)  # before start(): documented
    caplog.set_level(logging.WARNING, logger="beat.metrics")
    async with scheduler:
        await until(
            lambda: sample(registry, "beat_queue_depth_updated_timestamp_seconds") is not None,
            "the first queue-depth refresh, with the fake clock still at start",
        )
        assert value(registry, "beat_queue_depth_updated_timestamp_seconds") == clock.time()
        assert value(registry, "beat_queue_jobs", queue="default", status="scheduled") == 1
        await scheduler.shutdown(timeout=0)
    assert [r.getMessage() for r in caplog.records if r.name == "beat.metrics"] == []


@pytest.mark.asyncio
async def test_queue_depth_reads_zero_for_every_status_of_a_known_queue(
    tmp_path: Path, clock: FakeClock, registry: CollectorRegistry
) -> None:
    """A count that drops to 0 reads 0 (``== 0`` alerts match, a drained backlog is no gap);
    a queue left with no job at all is dropped after EMPTY_QUEUE_KEPT, unless it is served."""
    store = SQLiteStore(tmp_path / "jobs.db", clock=clock.time)
    scheduler = Scheduler(clock=clock, store=store)  # its worker serves "default"
    instrumentation = metrics.instrument(scheduler, registry)
    statuses = [str(status) for status in JobStatus]

    def queue(name: str) -> dict[str, float | None]:
        return {s: sample(registry, "beat_queue_jobs", queue=name, status=s) for s in statuses}

    async with store:  # not started: refresh by hand
        await instrumentation.refresh_queue_depth()
        assert queue("default") == dict.fromkeys(statuses, 0.0)  # served, never had a job
        (job,) = await store.enqueue([NewJob("nobody.handles.this", queue="reports")])
        await instrumentation.refresh_queue_depth()
        assert queue("reports") == {**dict.fromkeys(statuses, 0.0), "queued": 1.0}

        await store.cancel(job.id)
        await instrumentation.refresh_queue_depth()
        assert queue("reports") == {**dict.fromkeys(statuses, 0.0), "cancelled": 1.0}

        assert await store.prune([PruneRule(JobStatus.CANCELLED, max_count=0)]) == 1
        clock.jump(metrics.EMPTY_QUEUE_KEPT)  # its last job was seen exactly that long ago
        await instrumentation.refresh_queue_depth()
        assert queue("reports") == dict.fromkeys(statuses, 0.0)

        clock.jump(1)
        await instrumentation.refresh_queue_depth()
        assert queue("reports") == dict.fromkeys(statuses, None)  # expired: no series
        assert queue("default") == dict.fromkeys(statuses, 0.0)  # served: never dropped
    instrumentation.close()
