"""Runs on a bad day: overlap, timeouts, retries, pause/resume, run_now, history, listeners."""

from __future__ import annotations

import asyncio
import threading
from datetime import timedelta

import pytest

from beat import (
    Backoff,
    Context,
    Event,
    InvalidJobError,
    Job,
    Outcome,
    RunCancelled,
    RunFailed,
    RunQueued,
    RunSkipped,
    RunStarted,
    RunSucceeded,
    RunTimedOut,
    Scheduler,
)
from beat.testing import EventRecorder, FakeClock

from .conftest import START

pytestmark = pytest.mark.asyncio

S = timedelta(seconds=1)


def long_job(seconds: float, log: list[tuple[str, object]]):  # type: ignore[no-untyped-def]
    async def run(ctx: Context) -> None:
        log.append(("start", ctx.when))
        await ctx.sleep(seconds)
        log.append(("end", ctx.when))

    return run


# -- overlap ---------------------------------------------------------------------------------
async def test_overlap_skip_drops_and_reports_fires_during_a_run(
    scheduler: Scheduler, clock: FakeClock, recorder: EventRecorder
) -> None:
    log: list[tuple[str, object]] = []
    scheduler.add_job(Job.cycle(START + 10 * S, 10 * S).do(long_job(25, log), name="long"))
    await clock.advance(40 * S)
    assert log == [("start", START + 10 * S), ("end", START + 10 * S), ("start", START + 40 * S)]
    skipped = recorder.of(RunSkipped)
    assert [(e.when, e.reason) for e in skipped] == [
        (START + 20 * S, "overlap"),
        (START + 30 * S, "overlap"),
    ]


async def test_overlap_allow_respects_max_instances(
    scheduler: Scheduler, clock: FakeClock, recorder: EventRecorder
) -> None:
    log: list[tuple[str, object]] = []
    job = Job.cycle(START + 10 * S, 10 * S).do(long_job(25, log), overlap="allow", max_instances=2)
    scheduler.add_job(job)
    await clock.advance(30 * S)
    starts = [w for kind, w in log if kind == "start"]
    assert starts == [START + 10 * S, START + 20 * S]
    assert [(e.when, e.reason) for e in recorder.of(RunSkipped)] == [
        (START + 30 * S, "max_instances")
    ]


async def test_overlap_replace_cancels_the_old_run(
    scheduler: Scheduler, clock: FakeClock, recorder: EventRecorder
) -> None:
    log: list[tuple[str, object]] = []
    scheduler.add_job(Job.cycle(START + 10 * S, 10 * S).do(long_job(25, log), overlap="replace"))
    await clock.advance(20 * S)
    assert log == [("start", START + 10 * S), ("start", START + 20 * S)]
    (cancelled,) = recorder.of(RunCancelled)
    assert (cancelled.when, cancelled.reason) == (START + 10 * S, "replaced")


async def test_overlap_queue_runs_after_and_holds_at_most_one(
    scheduler: Scheduler, clock: FakeClock, recorder: EventRecorder
) -> None:
    log: list[tuple[str, object]] = []
    scheduler.add_job(Job.cycle(START + 10 * S, 10 * S).do(long_job(25, log), overlap="queue"))
    await clock.advance(36 * S)
    assert log == [
        ("start", START + 10 * S),
        ("end", START + 10 * S),
        ("start", START + 20 * S),  # queued at 20 s, started when the first run ended at 35 s
    ]
    assert [(e.when, e.reason) for e in recorder.of(RunSkipped)] == [(START + 30 * S, "queue_full")]
    assert [e.when for e in recorder.of(RunQueued)] == [START + 20 * S]


async def test_a_queued_fire_of_a_removed_job_is_dropped_and_reported(
    scheduler: Scheduler, clock: FakeClock, recorder: EventRecorder
) -> None:
    log: list[tuple[str, object]] = []
    job = scheduler.add_job(
        Job.cycle(START + 10 * S, 10 * S).do(long_job(25, log), overlap="queue")
    )
    await clock.advance(21 * S)  # running since 10 s; the 20 s fire waits
    scheduler.remove_job(job)
    await clock.advance(15 * S)  # the run ends at 35 s: the waiting fire must not start
    assert log == [("start", START + 10 * S), ("end", START + 10 * S)]
    assert [(e.when, e.reason) for e in recorder.of(RunSkipped)] == [(START + 20 * S, "removed")]


async def test_a_queued_fire_at_shutdown_is_dropped_and_reported(
    scheduler: Scheduler, clock: FakeClock, recorder: EventRecorder
) -> None:
    log: list[tuple[str, object]] = []
    scheduler.add_job(Job.cycle(START + 10 * S, 10 * S).do(long_job(25, log), overlap="queue"))
    await clock.advance(21 * S)
    await scheduler.shutdown(timeout=0)  # cancels the run; the waiting fire never starts
    assert log == [("start", START + 10 * S)]
    assert [(e.when, e.reason) for e in recorder.of(RunSkipped)] == [(START + 20 * S, "shutdown")]


# -- timeouts --------------------------------------------------------------------------------
async def test_timeout_cancels_the_run_and_the_next_fire_still_happens(
    scheduler: Scheduler, clock: FakeClock, recorder: EventRecorder
) -> None:
    log: list[tuple[str, object]] = []
    job = scheduler.add_job(Job.cycle(START + 10 * S, 10 * S).do(long_job(100, log), timeout=5))
    await clock.advance(20 * S)
    timed_out = recorder.of(RunTimedOut)
    assert [(e.when, e.timeout, e.abandoned_thread) for e in timed_out] == [
        (START + 10 * S, 5.0, False)
    ]
    assert [w for kind, w in log if kind == "start"] == [START + 10 * S, START + 20 * S]
    assert scheduler.get_job(job).history[0].outcome is Outcome.TIMED_OUT


async def test_a_timed_out_plain_function_holds_its_run_until_its_thread_returns(
    scheduler: Scheduler, clock: FakeClock, recorder: EventRecorder
) -> None:
    """A thread cannot be killed: the attempt is recorded as timed out at the deadline, and
    the run keeps its place until the function returns, so the next fire (overlap "skip")
    does not start a second call beside the first."""
    release = threading.Event()
    calls = 0

    def stuck(ctx: Context) -> None:
        nonlocal calls
        calls += 1
        release.wait(10)

    job = Job.cycle(START + 10 * S, 10 * S).do(stuck, name="stuck", timeout=2)
    scheduler.add_job(job)
    try:
        await clock.advance(13 * S)  # fired at +10, timed out at +12
        (event,) = recorder.of(RunTimedOut)
        assert event.abandoned_thread
        assert scheduler.get_job(job.id).history[0].outcome is Outcome.TIMED_OUT
        assert scheduler.statistics().running == 1
        await clock.advance(10 * S)  # the fire at +20 finds the thread still running
        assert [(e.when, e.reason) for e in recorder.of(RunSkipped)] == [
            (START + 20 * S, "overlap")
        ]
        assert calls == 1
    finally:
        release.set()
    # Fake time stands still: the drain ends only because the thread returned.
    assert await scheduler.shutdown(timeout=60) == 0
    assert calls == 1


async def test_the_retry_of_a_timed_out_plain_function_waits_for_its_thread(
    scheduler: Scheduler, clock: FakeClock, recorder: EventRecorder
) -> None:
    release = threading.Event()
    lock = threading.Lock()
    running, most, attempts = 0, 0, []

    def slow_first(ctx: Context) -> str:
        nonlocal running, most
        with lock:
            running += 1
            most = max(most, running)
            attempts.append(ctx.attempt)
        try:
            if ctx.attempt == 1:
                release.wait(10)
            return "done"
        finally:
            with lock:
                running -= 1

    job = Job.oneshot(START + S).do(slow_first, timeout=2, retries=1, backoff=Backoff.constant(0))
    scheduler.add_job(job)
    finished = asyncio.ensure_future(scheduler.wait_next_run(job.id))
    await clock.advance(4 * S)  # fired at +1, timed out at +3
    assert [e.will_retry for e in recorder.of(RunTimedOut)] == [True]
    assert attempts == [1]  # the retry waits for the first call's thread
    release.set()
    record = await asyncio.wait_for(finished, 10)
    assert record.outcome is Outcome.SUCCEEDED
    assert attempts == [1, 2] and most == 1


async def test_a_job_raising_timeout_error_itself_is_a_failure(
    scheduler: Scheduler, clock: FakeClock, recorder: EventRecorder
) -> None:
    async def raises(ctx: Context) -> None:
        raise TimeoutError("upstream timed out")

    scheduler.add_job(Job.oneshot(START + S).do(raises, timeout=30))
    await clock.advance(S)
    assert recorder.of(RunTimedOut) == []
    assert "upstream timed out" in recorder.of(RunFailed)[0].error


# -- retries ---------------------------------------------------------------------------------
async def test_retries_follow_the_backoff_and_keep_the_fire_instant(
    scheduler: Scheduler, clock: FakeClock
) -> None:
    attempts: list[tuple[int, float, object]] = []

    async def flaky(ctx: Context) -> str:
        attempts.append((ctx.attempt, clock.monotonic(), ctx.when))
        if ctx.attempt < 4:
            raise ConnectionError("try again")
        return "done"

    backoff = Backoff.exponential(2, factor=3, cap=10)
    job_id = scheduler.add_job(Job.oneshot(START + S).do(flaky, retries=5, backoff=backoff))
    job = scheduler.get_job(job_id)
    await clock.advance(60 * S)
    assert [(a, t) for a, t, _ in attempts] == [(1, 1.0), (2, 3.0), (3, 9.0), (4, 19.0)]
    assert {w for _, _, w in attempts} == {START + S}  # retries never shift the instant
    assert [(r.attempt, r.outcome) for r in job.history] == [
        (1, Outcome.FAILED),
        (2, Outcome.FAILED),
        (3, Outcome.FAILED),
        (4, Outcome.SUCCEEDED),
    ]


async def test_retries_stop_at_the_limit(
    scheduler: Scheduler, clock: FakeClock, recorder: EventRecorder
) -> None:
    async def broken(ctx: Context) -> None:
        raise ValueError(f"attempt {ctx.attempt}")

    scheduler.add_job(Job.oneshot(START + S).do(broken, retries=2, backoff=Backoff.constant(1)))
    await clock.advance(60 * S)
    failures = recorder.of(RunFailed)
    assert [(f.attempt, f.will_retry) for f in failures] == [(1, True), (2, True), (3, False)]


async def test_backoff_jitter_and_cap() -> None:
    import random

    backoff = Backoff.exponential(1, factor=2, cap=5, jitter=0.5)
    rng = random.Random(7)
    delays = [backoff.delay(n, rng) for n in range(1, 8)]
    assert all(0.5 <= d <= 1.5 for d in delays[:1])
    assert all(2.5 <= d <= 7.5 for d in delays[4:])
    assert len(set(delays)) == len(delays)
    with pytest.raises(InvalidJobError, match="factor"):
        Backoff(factor=0.5)


async def test_jitter_delays_the_start_but_not_the_schedule(
    scheduler: Scheduler, clock: FakeClock
) -> None:
    starts: list[tuple[float, object]] = []

    async def job(ctx: Context) -> None:
        starts.append((clock.monotonic(), ctx.when))

    scheduler.add_job(Job.cycle(START + 10 * S, 10 * S).do(job, jitter=5))
    await clock.advance(65 * S)
    assert [w for _, w in starts] == [START + k * 10 * S for k in range(1, 7)]
    assert len({round(t % 10, 6) for t, _ in starts}) > 1  # the delays differ
    for t, w in starts:
        scheduled = (w - START).total_seconds()
        assert scheduled <= t <= scheduled + 5


# -- control ---------------------------------------------------------------------------------
async def test_pause_skips_and_reports_fires_resume_restarts(
    scheduler: Scheduler, clock: FakeClock, recorder: EventRecorder
) -> None:
    log: list[tuple[str, object]] = []
    job_id = scheduler.add_job(Job.cycle(START + 10 * S, 10 * S).do(long_job(0, log)))
    await clock.advance(10 * S)
    scheduler.pause_job(job_id)
    await clock.advance(20 * S)
    scheduler.resume_job(job_id)
    await clock.advance(10 * S)
    assert [w for kind, w in log if kind == "start"] == [START + 10 * S, START + 40 * S]
    assert [(e.when, e.reason) for e in recorder.of(RunSkipped)] == [
        (START + 20 * S, "paused"),
        (START + 30 * S, "paused"),
    ]


async def test_reschedule_changes_the_timer(scheduler: Scheduler, clock: FakeClock) -> None:
    log: list[tuple[str, object]] = []
    job_id = scheduler.add_job(Job.cycle(START + 10 * S, 10 * S).do(long_job(0, log)))
    await clock.advance(10 * S)
    nxt = scheduler.reschedule_job(job_id, Job.cycle(START + 15 * S, 3 * S))
    assert nxt == START + 15 * S
    await clock.advance(10 * S)
    assert [w for kind, w in log if kind == "start"] == [
        START + 10 * S,
        START + 15 * S,
        START + 18 * S,
    ]


async def test_run_now_returns_the_result(scheduler: Scheduler) -> None:
    async def answer(ctx: Context, x: int) -> int:
        return x * 2

    job_id = scheduler.add_job(Job.every(timedelta(hours=1)).do(answer, 21))
    assert await scheduler.run_now(job_id) == 42


async def test_run_now_raises_the_error(scheduler: Scheduler) -> None:
    def fails(ctx: Context) -> None:
        raise KeyError("missing")

    job_id = scheduler.add_job(Job.every(timedelta(hours=1)).do(fails))
    with pytest.raises(KeyError, match="missing"):
        await scheduler.run_now(job_id)


class Unprintable(Exception):
    def __str__(self) -> str:
        raise RuntimeError("cannot render")


@pytest.mark.parametrize("body", ["async", "sync"])
async def test_sys_exit_and_unprintable_errors_fail_the_run_not_the_scheduler(
    scheduler: Scheduler, clock: FakeClock, recorder: EventRecorder, body: str
) -> None:
    """``sys.exit()`` in a job (CLI code reused in a job) used to stop the event loop; an
    exception whose ``str()`` raises failed the reporting of the run. Both are the run's
    failure, reported and recorded, and the scheduler goes on firing. ``run_now`` raises
    the ``SystemExit`` wrapped: raised out of its task, it would stop the loop."""

    def exits(ctx: Context) -> None:
        raise SystemExit(3)

    def unprintable(ctx: Context) -> None:
        raise Unprintable

    ran: list[object] = []

    def as_body(fn):  # type: ignore[no-untyped-def]
        if body == "sync":
            return fn

        async def run(ctx: Context) -> None:
            fn(ctx)

        return run

    scheduler.add_job(Job.oneshot(START + S).do(as_body(exits), name="exits"))
    scheduler.add_job(Job.oneshot(START + 2 * S).do(as_body(unprintable), name="unprintable"))
    later = scheduler.add_job(Job.oneshot(START + 3 * S).do(lambda ctx: ran.append(ctx.when)))
    waiter = asyncio.ensure_future(scheduler.wait_next_run(later))
    await clock.advance(3 * S)
    assert (await waiter).outcome is Outcome.SUCCEEDED
    assert [(e.name, e.error) for e in recorder.of(RunFailed)] == [
        ("exits", "SystemExit: 3"),
        ("unprintable", "Unprintable: <Unprintable: str() failed>"),
    ]
    assert ran[0] == START + 3 * S
    with pytest.raises(RuntimeError, match="the job raised SystemExit: 3") as info:
        await scheduler.run_now(scheduler.add_job(Job.every(3600 * S).do(as_body(exits))))
    assert isinstance(info.value.__cause__, SystemExit)


async def test_a_plain_job_raising_stop_iteration_fails_instead_of_hanging(
    scheduler: Scheduler, clock: FakeClock, recorder: EventRecorder
) -> None:
    """An asyncio future refuses ``StopIteration``: the run of a plain function raising it
    never ended, and every later fire was skipped as an overlap."""

    def first_row(ctx: Context) -> object:
        return next(iter([]))

    job_id = scheduler.add_job(Job.every(10 * S).do(first_row, name="rows"))
    for _ in range(2):
        waiter = asyncio.ensure_future(scheduler.wait_next_run(job_id))
        await clock.advance(10 * S)
        assert (await asyncio.wait_for(waiter, 10)).outcome is Outcome.FAILED
    assert [e.error for e in recorder.of(RunFailed)] == [
        "RuntimeError: coroutine raised StopIteration"
    ] * 2
    assert recorder.of(RunSkipped) == []


async def test_wait_next_run_returns_its_record(scheduler: Scheduler, clock: FakeClock) -> None:
    async def value(ctx: Context) -> dict[str, int]:
        return {"rows": 3}

    job_id = scheduler.add_job(Job.every(10 * S).do(value))
    waiter = asyncio.ensure_future(scheduler.wait_next_run(job_id))
    await clock.advance(10 * S)
    record = await waiter
    assert record.outcome is Outcome.SUCCEEDED
    assert record.result == "{'rows': 3}"
    assert record.when == START + 10 * S


# -- history ---------------------------------------------------------------------------------
async def test_history_stays_bounded_over_100k_runs(scheduler: Scheduler, clock: FakeClock) -> None:
    count = 0

    async def tick(ctx: Context) -> None:
        nonlocal count
        count += 1

    ids = [scheduler.add_job(Job.every(S).do(tick, history=5)) for _ in range(100)]
    await clock.advance(1000 * S)
    assert count == 100_000
    for job_id in ids:
        history = scheduler.get_job(job_id).history
        assert len(history) == 5
        assert history[-1].when == START + 1000 * S


async def test_history_zero_keeps_nothing(scheduler: Scheduler, clock: FakeClock) -> None:
    async def tick(ctx: Context) -> None:
        pass

    job_id = scheduler.add_job(Job.every(S).do(tick, history=0))
    await clock.advance(10 * S)
    assert scheduler.get_job(job_id).history == []


# -- events ----------------------------------------------------------------------------------
async def test_a_raising_listener_is_isolated(
    scheduler: Scheduler, clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    seen: list[Event] = []

    def bad(event: Event) -> None:
        raise RuntimeError("listener bug")

    scheduler.subscribe(bad)
    scheduler.subscribe(seen.append, RunSucceeded)

    async def tick(ctx: Context) -> None:
        pass

    scheduler.add_job(Job.every(S).do(tick))
    await clock.advance(3 * S)
    assert len(seen) == 3
    assert any("listener bug" in r.getMessage() or r.exc_info for r in caplog.records)


async def test_a_slow_listener_does_not_stall_the_loop(
    scheduler: Scheduler, clock: FakeClock
) -> None:
    gate = asyncio.Event()
    slow_seen: list[Event] = []

    async def slow(event: Event) -> None:
        await gate.wait()
        slow_seen.append(event)

    scheduler.subscribe(slow, RunStarted)
    runs: list[object] = []

    async def tick(ctx: Context) -> None:
        runs.append(ctx.when)

    scheduler.add_job(Job.every(S).do(tick))
    await clock.advance(5 * S)
    assert len(runs) == 5 and slow_seen == []
    gate.set()
    await clock.settle()
    assert len(slow_seen) == 5


async def test_unsubscribe_stops_delivery(scheduler: Scheduler, clock: FakeClock) -> None:
    seen: list[Event] = []
    token = scheduler.subscribe(seen.append, RunSucceeded)

    async def tick(ctx: Context) -> None:
        pass

    scheduler.add_job(Job.every(S).do(tick))
    await clock.advance(2 * S)
    scheduler.unsubscribe(token)
    await clock.advance(2 * S)
    assert len(seen) == 2


# -- decorators ------------------------------------------------------------------------------
async def test_decorators_register_jobs(scheduler: Scheduler, clock: FakeClock) -> None:
    seen: list[str] = []

    @scheduler.every(timedelta(seconds=30), name="half-minute")
    async def half(ctx: Context) -> None:
        seen.append(ctx.name)

    @scheduler.cron("* * * * *", name="minute")
    async def minute(ctx: Context) -> None:
        seen.append(ctx.name)

    await clock.advance(60 * S)
    assert sorted(seen) == ["half-minute", "half-minute", "minute"]
    assert half.__name__ == "half"  # the function is returned unchanged


async def test_bad_options_fail_at_do(scheduler: Scheduler) -> None:
    async def f(ctx: Context) -> None:
        pass

    with pytest.raises(InvalidJobError, match="overlap"):
        Job.every(S).do(f, overlap="sometimes")
    with pytest.raises(InvalidJobError, match="unknown job option"):
        Job.every(S).do(f, retires=3)
    with pytest.raises(InvalidJobError, match="max_instances"):
        Job.every(S).do(f, max_instances=2)
    with pytest.raises(InvalidJobError, match="-1"):
        Job.every(S).do(f, timeout=-1)
    with pytest.raises(InvalidJobError, match="callable"):
        Job.every(S).do("not callable")  # type: ignore[arg-type]
    assert scheduler.statistics().jobs == 0


async def test_run_without_events_subscribers_builds_no_events(
    clock: FakeClock,
) -> None:
    # No subscriber: the bus is falsy, so the run path creates no event objects at all.
    scheduler = Scheduler(clock=clock)
    assert not scheduler._events.active
    async with scheduler:

        async def tick(ctx: Context) -> None:
            pass

        scheduler.add_job(Job.every(S).do(tick))
        await clock.advance(3 * S)
        assert scheduler.statistics().fires == 3
