"""beat.metrics: what the scheduler, its worker and its store's queues report to Prometheus."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from datetime import timedelta

import pytest
import pytest_asyncio
from prometheus_client import CollectorRegistry, generate_latest

from beat import (
    Context,
    FiresMissed,
    InvalidJobError,
    Job,
    RunSucceeded,
    Scheduler,
    metrics,
)
from beat.stores import MemoryStore, NewJob
from beat.testing import EventRecorder, FakeClock

S = timedelta(seconds=1)


def value(registry: CollectorRegistry, name: str, **labels: str) -> float:
    found = registry.get_sample_value(name, labels)
    return 0.0 if found is None else found


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
