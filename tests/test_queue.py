"""The lazily purged heap: ordering, staleness, its size bound, and incremental compaction."""

from __future__ import annotations

import heapq
import random
import uuid
from datetime import timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from beat import Job, Scheduler
from beat._queue import _COMPACT_CHUNK, _COMPACT_FACTOR, _COMPACT_FLOOR, DEAD, TimerQueue
from beat._registry import Registry
from beat.testing import FakeClock


class Owner:
    """Stands in for a job's runtime state: the queue only reads ``gen``."""

    def __init__(self, key: int, gen: int) -> None:
        self.key = key
        self.gen = gen


def new_queue() -> tuple[TimerQueue, dict[int, Owner]]:
    owners: dict[int, Owner] = {}
    return TimerQueue(owners), owners


def noop(ctx: object) -> None:
    pass


def push_owner(q: TimerQueue, when: int) -> Owner:
    """Register a new owner in the queue's dict and push its first entry."""
    owners: dict[int, Owner] = q._owners  # type: ignore[assignment]
    gen = q.new_generation()
    owner = Owner(uuid.uuid4().int, gen)
    owners[owner.key] = owner
    q.push_first(when, owner.key, gen)
    return owner


def test_equal_instants_pop_in_insertion_order() -> None:
    q, _ = new_queue()
    owners = [push_owner(q, 100) for _ in range(5)]
    popped = []
    while (top := q.pop_due(100)) is not None:
        popped.append(top)
        top.gen = DEAD
    assert popped == owners


def test_stale_entries_are_dropped_when_they_reach_the_top() -> None:
    q, _ = new_queue()
    a = push_owner(q, 1)
    b = push_owner(q, 2)
    a.gen = DEAD
    top = q.peek()
    assert top is not None
    assert top.job_id == b.key
    assert len(q) == 1  # a's stale entry was popped on the way


def test_compaction_is_wanted_only_past_the_bound() -> None:
    """The registry compacts once stale entries pass (factor - 1) per live job + floor."""
    registry = Registry()
    keeper = Job.every(timedelta(hours=1)).do(noop)
    registry.add(keeper, 0)
    doomed = [Job.every(timedelta(hours=1)).do(noop) for _ in range(200)]
    for job in doomed:
        registry.add(job, 0)
    for removed, job in enumerate(doomed, start=1):
        registry.remove(job.id)
        live = 1 + len(doomed) - removed
        past_bound = removed > (_COMPACT_FACTOR - 1) * live + _COMPACT_FLOOR
        # no loop owns this registry, so it compacts at once, exactly when past the bound
        assert registry.queue.compactions == int(past_bound), removed
        if past_bound:
            assert len(registry.queue) == live
            break
    else:
        pytest.fail("never compacted")
    top = registry.queue.peek()
    assert top is not None and top.job_id in {j.id.int for j in (keeper, *doomed)}


def test_each_compaction_step_examines_at_most_one_chunk() -> None:
    """The loop runs one step per iteration: a step's work is bounded by the chunk size."""
    q, _ = new_queue()
    owners = [push_owner(q, i) for i in range(10 * _COMPACT_CHUNK)]
    for owner in owners[::2]:
        owner.gen = DEAD
    before = len(q)
    steps = 0
    while True:
        held = len(q)
        more = q.compact_step()
        steps += 1
        assert held - len(q) <= _COMPACT_CHUNK  # at most one chunk's stale entries dropped
        if not more:
            break
    assert steps == before // _COMPACT_CHUNK
    assert len(q) == len(owners) // 2


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.tuples(st.sampled_from(["push", "kill", "step", "pop"]), st.integers(0, 200)),
        max_size=300,
    )
)
def test_pops_during_compaction_match_a_sorted_model(ops: list[tuple[str, int]]) -> None:
    """Whatever interleaving of pushes, removals, pops and compaction steps: every live entry
    pops exactly once, in (when, insertion) order, and no removed one ever does."""
    q, _ = new_queue()
    live: dict[Owner, int] = {}
    seq = 0
    model: list[tuple[int, int, Owner]] = []
    for op, value in ops:
        if op == "push":
            seq += 1
            owner = push_owner(q, value)
            live[owner] = value
            heapq.heappush(model, (value, seq, owner))
        elif op == "kill" and live:
            owner = list(live)[value % len(live)]
            owner.gen = DEAD
            del live[owner]
        elif op == "step":
            q.compact_step()
        elif op == "pop":
            top = q.pop_due(value)
            while model and model[0][2] not in live:
                heapq.heappop(model)
            expected = model[0] if model and model[0][0] <= value else None
            if expected is None:
                assert top is None
            else:
                heapq.heappop(model)
                assert top is expected[2]
                del live[top]
                top.gen = DEAD  # fired: a real job would get a new entry
    rest = []
    while (top := q.pop_due(10**9)) is not None:
        rest.append(top)
        top.gen = DEAD
    assert set(rest) == set(live)
    assert len(rest) == len(live)


def test_heap_stays_bounded_through_random_churn() -> None:
    """100k random add/remove operations never let the heap exceed 4 × live + floor.

    The scheduler is not started, so there is no loop to spread compaction over: it compacts
    at once when garbage passes the bound.
    """
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


@pytest.mark.asyncio
async def test_running_scheduler_compacts_a_mass_removal_step_by_step() -> None:
    """remove_job never rebuilds the heap itself; the loop does, a chunk per iteration, and
    jobs keep firing on time meanwhile."""
    clock = FakeClock()
    scheduler = Scheduler(clock=clock)
    fired: list[object] = []

    async def record(ctx: object) -> None:
        fired.append(ctx)

    n = 6 * _COMPACT_CHUNK
    doomed = [scheduler.add_job(Job.every(timedelta(hours=1)).do(noop)) for _ in range(n)]
    keeper = scheduler.add_job(Job.every(timedelta(seconds=1)).do(record, name="keeper"))
    async with scheduler:
        for job_id in doomed:
            scheduler.remove_job(job_id)
        stats = scheduler.statistics()
        assert stats.heap_entries == n + 1  # nothing rebuilt on the remove path
        await clock.advance(0)
        steps = 0
        while scheduler.statistics().compacting:
            assert steps < 2 * n // _COMPACT_CHUNK
            await clock.advance(0)
            steps += 1
        stats = scheduler.statistics()
        assert stats.compactions == 1
        assert stats.heap_entries <= _COMPACT_FACTOR * stats.jobs + _COMPACT_FLOOR
        await clock.advance(3)
        assert len(fired) == 3
        assert scheduler.get_job(keeper).name == "keeper"
        await scheduler.shutdown(timeout=0)


def test_readded_job_is_live_only_through_its_new_entry() -> None:
    clock = FakeClock()
    scheduler = Scheduler(clock=clock)
    job = Job.every(timedelta(seconds=10)).do(noop)
    scheduler.add_job(job)
    scheduler.remove_job(job.id)
    scheduler.add_job(job)
    assert scheduler.statistics().heap_entries == 2
    queue = scheduler._registry.queue
    live = [e for e in queue._heap + queue._draining if queue.owner_if_live(e) is not None]
    assert len(live) == 1


def test_peek_and_pop_drop_at_most_one_chunk_of_stale_entries_per_call() -> None:
    """A long run of stale entries at the top is dropped over several loop iterations, never
    in one (a peek returning a stale top only makes the loop wake early)."""
    q, _ = new_queue()
    stale = [push_owner(q, when) for when in range(3 * _COMPACT_CHUNK)]
    keeper = push_owner(q, 10**9)
    for owner in stale:
        owner.gen = DEAD
    held = len(q)
    q.peek()
    assert held - len(q) == _COMPACT_CHUNK
    assert q.pop_due(10**9) is None  # one more chunk dropped, nothing live reached yet
    assert held - len(q) == 2 * _COMPACT_CHUNK
    assert q.pop_due(10**9) is None
    assert q.pop_due(10**9) is keeper
