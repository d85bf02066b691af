"""The lazily purged heap: ordering, staleness, and its size bound."""

from __future__ import annotations

import random
import uuid
from datetime import timedelta

from beat import Job, Scheduler
from beat._queue import _COMPACT_FACTOR, _COMPACT_FLOOR, TimeEvent, TimerQueue
from beat.testing import FakeClock


def noop(ctx: object) -> None:
    pass


def test_equal_instants_pop_in_insertion_order() -> None:
    q = TimerQueue(lambda e: True)
    ids = [uuid.uuid4().int for _ in range(5)]
    for job_id in ids:
        q.push(100, job_id, 1)
    popped = []
    while q.peek() is not None:
        popped.append(q.pop().job_id)
    assert popped == ids


def test_stale_entries_are_dropped_when_they_reach_the_top() -> None:
    live: set[int] = set()
    q = TimerQueue(lambda e: e.job_id in live)
    a, b = uuid.uuid4().int, uuid.uuid4().int
    q.push(1, a, 1)
    q.push(2, b, 1)
    live.add(b)
    top = q.peek()
    assert isinstance(top, TimeEvent)
    assert top.job_id == b
    assert len(q) == 1  # a's stale entry was popped on the way


def test_compaction_rebuilds_only_past_the_bound() -> None:
    live: set[int] = set()
    q = TimerQueue(lambda e: e.job_id in live)
    keeper = uuid.uuid4().int
    live.add(keeper)
    q.push(0, keeper, 1)
    for i in range(_COMPACT_FACTOR * 1 + _COMPACT_FLOOR - 1):
        q.push(i, uuid.uuid4().int, 1)
    assert len(q) == _COMPACT_FACTOR + _COMPACT_FLOOR
    assert not q.maybe_compact(live=1)  # at the bound: no rebuild
    q.push(99, uuid.uuid4().int, 1)
    assert q.maybe_compact(live=1)  # one past it: rebuilt down to the live entry
    assert q.compactions == 1
    assert len(q) == 1


def test_heap_stays_bounded_through_random_churn() -> None:
    """100k random add/remove operations never let the heap exceed 4 × live + floor."""
    rng = random.Random(1234)
    clock = FakeClock()
    scheduler = Scheduler(clock=clock)
    ids: list[uuid.UUID] = []
    worst = 0
    for _ in range(100_000):
        if ids and rng.random() < 0.5:
            victim = ids.pop(rng.randrange(len(ids)))
            scheduler.remove_job(victim)
        else:
            job = Job.every(timedelta(seconds=rng.randint(1, 3600))).do(noop)
            ids.append(scheduler.add_job(job))
        stats = scheduler.statistics()
        bound = _COMPACT_FACTOR * stats.jobs + _COMPACT_FLOOR
        assert stats.heap_entries <= bound, (stats, bound)
        worst = max(worst, stats.heap_entries - stats.jobs)
    stats = scheduler.statistics()
    assert stats.jobs == len(ids)
    assert stats.compactions > 0
    assert worst > 0  # stale entries did accumulate between rebuilds


def test_readded_job_is_live_only_through_its_new_entry() -> None:
    clock = FakeClock()
    scheduler = Scheduler(clock=clock)
    job = Job.every(timedelta(seconds=10)).do(noop)
    scheduler.add_job(job)
    scheduler.remove_job(job.id)
    scheduler.add_job(job)
    assert scheduler.statistics().heap_entries == 2
    live = [e for e in scheduler._queue._heap if scheduler._is_live(e)]
    assert len(live) == 1
