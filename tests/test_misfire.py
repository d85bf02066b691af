"""Misfire policies (docs/guarantees.md §3) and wall-clock jumps (§1) on the fake clock."""

from __future__ import annotations

import logging
from datetime import timedelta

import pytest

from beat import ClockJumped, Context, FiresMissed, Job, RunSkipped, Scheduler
from beat.testing import EventRecorder, FakeClock

from .conftest import START

pytestmark = pytest.mark.asyncio

S = timedelta(seconds=1)
M = timedelta(minutes=1)


class Runs:
    def __init__(self) -> None:
        self.whens: list[object] = []

    async def __call__(self, ctx: Context) -> None:
        self.whens.append(ctx.when)


async def down_for(clock: FakeClock, scheduler: Scheduler, downtime: timedelta) -> None:
    """The process was not running for ``downtime``: start the scheduler after it."""
    clock.jump(downtime)
    scheduler.start()
    await clock.settle()


async def test_coalesce_runs_once_with_the_latest_missed_instant(
    clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    runs = Runs()
    scheduler = Scheduler(clock=clock)
    recorder = EventRecorder(scheduler, FiresMissed)
    scheduler.add_job(Job.cycle(START + M, M).do(runs, name="minutely"))
    with caplog.at_level(logging.WARNING, logger="beat"):
        await down_for(clock, scheduler, 10 * M + 30 * S)
    assert runs.whens == [START + 10 * M]
    (event,) = recorder.of(FiresMissed)
    assert (event.missed, event.ran, event.dropped) == (10, 1, 9)
    assert (event.first, event.last) == (START + M, START + 10 * M)
    (line,) = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert "minutely" in line.getMessage() and "10 fire(s) missed" in line.getMessage()
    await clock.advance(30 * S)  # and the schedule goes on from there
    assert runs.whens[-1] == START + 11 * M
    await scheduler.shutdown()


async def test_skip_drops_missed_fires_and_waits_for_the_next(clock: FakeClock) -> None:
    runs = Runs()
    scheduler = Scheduler(clock=clock)
    recorder = EventRecorder(scheduler, FiresMissed)
    scheduler.add_job(Job.cycle(START + M, M).do(runs, name="s", misfire="skip"))
    await down_for(clock, scheduler, 10 * M + 30 * S)
    assert runs.whens == []
    (event,) = recorder.of(FiresMissed)
    assert (event.missed, event.ran, event.dropped) == (10, 0, 10)
    await clock.advance(30 * S)
    assert runs.whens == [START + 11 * M]
    await scheduler.shutdown()


async def test_all_runs_each_missed_fire_in_order_up_to_the_bound(clock: FakeClock) -> None:
    runs = Runs()
    scheduler = Scheduler(clock=clock)
    recorder = EventRecorder(scheduler, FiresMissed)
    scheduler.add_job(Job.cycle(START + M, M).do(runs, misfire="all", misfire_all_limit=4))
    await down_for(clock, scheduler, 10 * M + 30 * S)
    assert runs.whens == [START + k * M for k in (1, 2, 3, 4)]
    (event,) = recorder.of(FiresMissed)
    assert (event.missed, event.ran, event.dropped) == (10, 4, 6)
    await scheduler.shutdown()


async def test_all_default_bound_is_100(clock: FakeClock) -> None:
    runs = Runs()
    scheduler = Scheduler(clock=clock)
    scheduler.add_job(Job.cycle(START + S, S).do(runs, misfire="all"))
    await down_for(clock, scheduler, 500 * S)
    assert len(runs.whens) == 100
    assert runs.whens == sorted(runs.whens)
    await scheduler.shutdown()


@pytest.mark.parametrize("stop", ["pause", "remove"])
async def test_a_backlog_stops_when_its_job_is_paused_or_removed(
    clock: FakeClock, stop: str
) -> None:
    """misfire="all" runs the missed instants one after another; pausing or removing the job
    meanwhile (how an operator stops a backlog) skips the instants still waiting, reported,
    instead of running them."""
    whens: list[object] = []

    async def slow(ctx: Context) -> None:
        whens.append(ctx.when)
        await ctx.sleep(10)

    scheduler = Scheduler(clock=clock)
    recorder = EventRecorder(scheduler, RunSkipped)
    job = scheduler.add_job(Job.cycle(START + M, M).do(slow, name="backlog", misfire="all"))
    await down_for(clock, scheduler, 10 * M + 5 * S)  # 10 missed instants, 10 s each
    await clock.advance(15 * S)  # the second one is running
    assert whens == [START + M, START + 2 * M]
    if stop == "pause":
        scheduler.pause_job(job)
    else:
        scheduler.remove_job(job)
    await clock.advance(5 * M)
    assert whens == [START + M, START + 2 * M]
    reason = "paused" if stop == "pause" else "removed"
    skipped = [e.when for e in recorder.of(RunSkipped) if e.reason == reason]
    assert skipped[:8] == [START + k * M for k in range(3, 11)]
    await scheduler.shutdown()


async def test_grace_drops_a_fire_later_than_it(clock: FakeClock) -> None:
    runs = Runs()
    scheduler = Scheduler(clock=clock)
    recorder = EventRecorder(scheduler, FiresMissed)
    scheduler.add_job(Job.cycle(START + M, 10 * M).do(runs, misfire_grace=timedelta(seconds=30)))
    await down_for(clock, scheduler, M + 45 * S)  # 45 s late > 30 s grace
    assert runs.whens == []
    assert recorder.of(FiresMissed)[0].dropped == 1


async def test_grace_lets_a_fire_within_it_run(clock: FakeClock) -> None:
    runs = Runs()
    scheduler = Scheduler(clock=clock)
    scheduler.add_job(Job.cycle(START + M, 10 * M).do(runs, misfire_grace=60))
    await down_for(clock, scheduler, M + 45 * S)
    assert runs.whens == [START + M]
    await scheduler.shutdown()


async def test_oneshot_added_in_the_past_fires_at_once(
    scheduler: Scheduler, clock: FakeClock
) -> None:
    runs = Runs()
    scheduler.add_job(Job.oneshot(START - 5 * M).do(runs))
    await clock.settle()
    assert runs.whens == [START - 5 * M]
    assert scheduler.jobs() == []


async def test_oneshot_in_the_past_beyond_grace_is_dropped_and_reported(
    scheduler: Scheduler, clock: FakeClock
) -> None:
    runs = Runs()
    recorder = EventRecorder(scheduler, FiresMissed)
    scheduler.add_job(Job.oneshot(START - 5 * M).do(runs, name="late", misfire_grace=60))
    await clock.settle()
    assert runs.whens == []
    (event,) = recorder.of(FiresMissed)
    assert (event.name, event.dropped, event.last) == ("late", 1, START - 5 * M)


async def test_fire_within_threshold_is_not_a_misfire(
    scheduler: Scheduler, clock: FakeClock
) -> None:
    runs = Runs()
    recorder = EventRecorder(scheduler, FiresMissed)
    scheduler.add_job(Job.cycle(START + 10 * S, 10 * S).do(runs, misfire="skip"))
    await clock.advance(9 * S)
    clock.jump(0.5)  # the wake lands half a second late: still on time
    await clock.advance(S)
    assert runs.whens == [START + 10 * S]
    assert recorder.of(FiresMissed) == []


async def test_grace_shorter_than_the_threshold_still_drops_a_late_fire(
    scheduler: Scheduler, clock: FakeClock
) -> None:
    """0.8 s late is on time for the threshold (1 s) but past a 0.5 s grace: dropped."""
    runs = Runs()
    recorder = EventRecorder(scheduler, FiresMissed)
    scheduler.add_job(Job.cycle(START + 10 * S, 10 * S).do(runs, misfire_grace=0.5))
    await clock.advance(9 * S)
    clock.jump(0.8)
    await clock.advance(S)
    assert runs.whens == []
    (missed,) = recorder.of(FiresMissed)
    assert (missed.missed, missed.dropped) == (1, 1)
    await clock.advance(10 * S)  # the next fire is on time and within the grace
    assert runs.whens == [START + 20 * S]


async def test_forward_jump_coalesces_without_a_flood(
    scheduler: Scheduler, clock: FakeClock
) -> None:
    runs = Runs()
    recorder = EventRecorder(scheduler)
    scheduler.add_job(Job.cycle(START + M, M).do(runs, name="m"))
    await clock.advance(M)
    clock.jump(timedelta(days=1))
    await clock.advance(scheduler.max_sleep)  # noticed within the sleep cap
    assert runs.whens == [START + M, START + timedelta(days=1, minutes=2)]
    (jump,) = recorder.of(ClockJumped)
    assert jump.delta == pytest.approx(86400, abs=1)
    (missed,) = recorder.of(FiresMissed)
    assert missed.missed == 1441  # 00:02 on day one through 00:02 on day two


async def test_backward_jump_never_repeats_an_instant(
    scheduler: Scheduler, clock: FakeClock
) -> None:
    runs = Runs()
    recorder = EventRecorder(scheduler, ClockJumped)
    scheduler.add_job(Job.cycle(START + 10 * S, 10 * S).do(runs))
    await clock.advance(30 * S)
    assert runs.whens == [START + 10 * S, START + 20 * S, START + 30 * S]
    clock.jump(-timedelta(hours=1))
    await clock.advance(timedelta(hours=1))  # wall time climbs back to START + 30 s
    assert runs.whens == [START + 10 * S, START + 20 * S, START + 30 * S]
    await clock.advance(20 * S)
    assert runs.whens[3:] == [START + 40 * S, START + 50 * S]
    assert recorder.of(ClockJumped)[0].delta == pytest.approx(-3600, abs=1)


async def test_huge_cron_outage_is_counted_with_a_bound(clock: FakeClock) -> None:
    runs = Runs()
    scheduler = Scheduler(clock=clock)
    recorder = EventRecorder(scheduler, FiresMissed)
    scheduler.add_job(Job.cron("* * * * *").do(runs))
    await down_for(clock, scheduler, timedelta(days=30))
    (event,) = recorder.of(FiresMissed)
    assert event.capped
    assert event.missed >= 10_000
    assert runs.whens == [START + timedelta(days=30)]
    await scheduler.shutdown()
