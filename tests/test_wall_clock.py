"""Wall-clock travel under a live loop (real SystemClock; time-machine moves time.time).

These tests wait for *events* (a run, a ClockJumped) with a deadline; they never sleep to see
what happens.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest
import time_machine

from beat import ClockJumped, Context, Event, FiresMissed, Job, RunSucceeded, Scheduler
from beat.testing import EventRecorder

pytestmark = pytest.mark.asyncio

T0 = datetime(2031, 5, 1, 12, 0, tzinfo=UTC)


async def wait_for(recorder: EventRecorder, kind: type[Event], count: int = 1) -> None:
    async with asyncio.timeout(10):
        await recorder.wait_for(kind, count)


async def loop_asleep(scheduler: Scheduler) -> None:
    """Wait until the scheduler loop has observed the clocks and gone to sleep."""
    async with asyncio.timeout(10):
        while scheduler._sleeping_until is None:  # noqa: ASYNC110 - white-box: no event for it
            await asyncio.sleep(0.001)


async def test_forward_one_day_runs_one_coalesced_run() -> None:
    whens: list[datetime] = []

    async def job(ctx: Context) -> None:
        whens.append(ctx.when)

    with time_machine.travel(T0, tick=True) as traveller:
        async with Scheduler(max_sleep=0.05) as scheduler:
            recorder = EventRecorder(scheduler)
            scheduler.add_job(Job.cycle(T0 + timedelta(hours=1), timedelta(hours=1)).do(job))
            await loop_asleep(scheduler)
            traveller.shift(timedelta(days=1))
            await wait_for(recorder, RunSucceeded)
            assert len(recorder.of(ClockJumped)) >= 1
            (missed,) = recorder.of(FiresMissed)
            assert missed.missed == 24
            assert missed.ran == 1
            assert whens == [T0 + timedelta(days=1)]
            assert scheduler.jobs()[0].next_fire == T0 + timedelta(days=1, hours=1)


async def test_backward_one_hour_repeats_nothing() -> None:
    whens: list[datetime] = []

    async def job(ctx: Context) -> None:
        whens.append(ctx.when)

    step = timedelta(milliseconds=200)
    with time_machine.travel(T0, tick=True) as traveller:
        async with Scheduler(max_sleep=0.05) as scheduler:
            recorder = EventRecorder(scheduler)
            job_id = scheduler.add_job(Job.cycle(T0 + step, step).do(job))
            await wait_for(recorder, RunSucceeded, 2)
            traveller.shift(-timedelta(hours=1))
            await wait_for(recorder, ClockJumped)
            before = list(whens)
            assert scheduler.job_info(job_id).next_fire > before[-1]
            traveller.shift(timedelta(hours=1))  # back to where it was: fires resume
            await wait_for(recorder, RunSucceeded, len(before) + 2)
    assert whens == sorted(set(whens)), "an instant fired twice"
