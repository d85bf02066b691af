"""Every instance of a cluster computes the same instants for the same job.

No server is needed: the instants are fixed when a job is added, before any claim.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from beat import Context, DuplicateJobError, Job, Scheduler
from beat.coordinators.redis import RedisCoordinator
from beat.testing import FakeClock

START = datetime(2026, 3, 1, 12, 0, 0, 250_000, tzinfo=UTC)


async def noop(ctx: Context) -> None:
    pass


def instance(started: datetime) -> Scheduler:
    """An instance whose process (and clock) started at ``started``; never connected."""
    return Scheduler(clock=FakeClock(started), coordinator=RedisCoordinator("redis://127.0.0.1:1"))


@pytest.mark.parametrize("offset", [0.0, 1.0, 1.3, 2.999, 7.5])
def test_every_jobs_land_on_one_grid_whenever_an_instance_started(offset: float) -> None:
    first = instance(START)
    other = instance(START + timedelta(seconds=offset))
    for scheduler in (first, other):
        scheduler.add_job(Job.every(timedelta(seconds=3)).do(noop, name="heartbeat"))
    a, b = (s.jobs()[0] for s in (first, other))
    assert a.next_fire is not None and b.next_fire is not None
    # both on the epoch grid of 3 s steps, each the first grid instant after its own start
    for info in (a, b):
        assert info.next_fire.timestamp() % 3 == 0
    assert (b.next_fire - a.next_fire).total_seconds() % 3 == 0
    assert a.next_fire == datetime(2026, 3, 1, 12, 0, 3, tzinfo=UTC)


def test_alone_an_every_job_starts_one_interval_after_it_is_added() -> None:
    scheduler = Scheduler(clock=FakeClock(START))
    scheduler.add_job(Job.every(timedelta(seconds=3)).do(noop))
    assert scheduler.jobs()[0].next_fire == START + timedelta(seconds=3)


def test_a_rescheduled_every_job_stays_on_the_grid() -> None:
    scheduler = instance(START)
    job_id = scheduler.add_job(Job.cycle(START, timedelta(hours=1)).do(noop, name="j"))
    nxt = scheduler.reschedule_job(job_id, Job.every(timedelta(seconds=10)))
    assert nxt == datetime(2026, 3, 1, 12, 0, 10, tzinfo=UTC)


def test_names_must_be_unique_under_a_coordinator() -> None:
    scheduler = instance(START)
    scheduler.add_job(Job.every(timedelta(seconds=3)).do(noop, name="same"))
    with pytest.raises(DuplicateJobError, match="'same'"):
        scheduler.add_job(Job.every(timedelta(seconds=5)).do(noop, name="same"))
    assert len(scheduler.jobs()) == 1


class _Drifting:
    """A custom timer whose instants depend on when it was made: instances disagree."""

    def __init__(self, made: datetime) -> None:
        self.made = made

    def next_after(self, t: datetime, /) -> datetime | None:
        return t + timedelta(seconds=7)

    def __repr__(self) -> str:
        return "<Drifting>"


class _Declared(_Drifting):
    cluster_safe = True  # its author vouches that instances agree


def test_a_timer_that_does_not_vouch_for_agreement_is_refused_under_a_coordinator() -> None:
    from beat import InvalidScheduleError

    scheduler = instance(START)
    with pytest.raises(InvalidScheduleError, match=r"'custom'.*<Drifting>.*cluster_safe"):
        scheduler.add_job(Job.from_timer(_Drifting(START)).do(noop, name="custom"))
    assert scheduler.jobs() == []
    scheduler.add_job(Job.from_timer(_Declared(START)).do(noop, name="declared"))
    job_id = scheduler.jobs()[0].id
    with pytest.raises(InvalidScheduleError, match="'declared'"):
        scheduler.reschedule_job(job_id, _Drifting(START))
    # Alone, any timer is fine: nobody else has to agree with it.
    Scheduler(clock=FakeClock(START)).add_job(Job.from_timer(_Drifting(START)).do(noop, name="x"))
