"""Conformance: prune deletes exactly what its rules say (and the logs of what it deletes),
never an unfinished job; instances are upserted, expire after their ttl, and are removed."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from uuid import UUID

import pytest

from beat import InvalidJobError
from beat.stores import JobNotFoundError, JobStatus, LogEntry, PruneRule, SerializationError, Store

from ._util import claim, one
from .conftest import Harness

pytestmark = pytest.mark.asyncio

SUCCEEDED, DEAD, CANCELLED = JobStatus.SUCCEEDED, JobStatus.DEAD, JobStatus.CANCELLED


async def finish(harness: Harness, task: str, outcome: JobStatus, n: int = 1) -> list[UUID]:
    """``n`` jobs of ``task`` finished ``outcome``, one second apart (oldest first)."""
    store = harness.store
    ids = []
    for _ in range(n):
        job = await one(store, task)
        if outcome is CANCELLED:
            await store.cancel(job.id)
        else:
            [run] = await claim(store, tasks=(task,), limit=1)
            if outcome is SUCCEEDED:
                assert await store.complete(run.id, run.attempt, "w1")
            else:
                assert await store.fail(run.id, run.attempt, "w1", error_type="E", message="m")
        ids.append(job.id)
        await harness.advance(1)
    return ids


async def remaining(store: Store) -> set[UUID]:
    return {r.id for r in await store.list_jobs(limit=1000)}


async def test_max_count_keeps_the_newest_of_its_status_and_task(harness: Harness) -> None:
    store = harness.store
    ok_a = await finish(harness, "a", SUCCEEDED, 4)
    ok_b = await finish(harness, "b", SUCCEEDED, 2)
    dead = await finish(harness, "a", DEAD, 2)
    waiting = (await one(store, "a")).id
    [running] = await claim(store, tasks=("a",), limit=1)
    fresh = (await one(store, "a")).id
    assert await store.prune([PruneRule(SUCCEEDED, task="a", max_count=1)]) == 3
    assert waiting == running.id
    assert await remaining(store) == {ok_a[3], *ok_b, *dead, running.id, fresh}
    # Across tasks: the two newest successes overall.
    assert await store.prune([PruneRule("succeeded", max_count=2)]) == 1  # type: ignore[arg-type]
    assert await remaining(store) == {*ok_b, *dead, running.id, fresh}


async def test_max_age_uses_the_store_clock(harness: Harness) -> None:
    store = harness.store
    old = await finish(harness, "t", DEAD, 2)
    await harness.advance(100)
    young = await finish(harness, "t", DEAD, 1)
    # Ages now: 103, 102 and 1 s. A rule for another status or task deletes nothing.
    assert await store.prune([PruneRule(SUCCEEDED, max_age=10)]) == 0
    assert await store.prune([PruneRule(DEAD, task="other", max_age=10)]) == 0
    assert await store.prune([PruneRule(DEAD, max_age=102.5)]) == 1
    assert await remaining(store) == {old[1], *young}
    assert await store.prune([PruneRule(DEAD, max_age=50)]) == 1
    assert await remaining(store) == set(young)


async def test_rules_are_judged_together_and_any_rule_deletes(harness: Harness) -> None:
    store = harness.store
    ok = await finish(harness, "t", SUCCEEDED, 3)
    cancelled = await finish(harness, "t", CANCELLED, 3)
    rules = [
        PruneRule(SUCCEEDED, max_count=2),
        PruneRule(SUCCEEDED, task="t", max_count=1),
        PruneRule(CANCELLED, max_age=2.5, max_count=5),
    ]
    # successes: the second rule keeps only the newest; cancelled: age 3, 2, 1 -> the oldest.
    assert await store.prune(rules) == 3
    assert await remaining(store) == {ok[2], cancelled[1], cancelled[2]}


async def test_a_prune_of_many_batches_deletes_exactly_what_one_would(
    harness: Harness,
) -> None:
    """Batches of three, rules whose tasks interleave in finishing order: every batch
    starts where the last one stopped, and the sum is what the rules select."""
    store = harness.store
    store.prune_batch = 3
    a: list[UUID] = []
    b: list[UUID] = []
    for _ in range(8):  # a, b, a, b, ... one second apart; the newest last
        a += await finish(harness, "a", SUCCEEDED)
        b += await finish(harness, "b", SUCCEEDED)
    dead = await finish(harness, "a", DEAD, 7)
    # Ages now: a 23, 21, ... 9 s; b 22, 20, ... 8 s; the dead 7, 6, ... 1 s.
    rules = [
        PruneRule(SUCCEEDED, task="a", max_count=2),  # 6 of a
        PruneRule(SUCCEEDED, task="b", max_age=12.5),  # b aged 22, 20, 18, 16, 14: 5
        PruneRule(DEAD, max_count=0),  # all 7
    ]
    assert await store.prune(rules) == 18
    assert await remaining(store) == {*a[6:], *b[5:]}
    assert not set(dead) & await remaining(store)
    assert await store.prune(rules) == 0


async def test_unfinished_jobs_are_never_touched(harness: Harness) -> None:
    store = harness.store
    waiting = await one(store)
    later = await one(store, delay=3600)
    running = (await claim(store, limit=1))[0]
    await store.cancel(running.id)  # cancel requested only: still running
    await harness.advance(10_000)
    rules = [PruneRule(s, max_age=0, max_count=0) for s in (SUCCEEDED, DEAD, CANCELLED)]
    assert await store.prune(rules) == 0
    assert await remaining(store) == {waiting.id, later.id, running.id}


async def test_pruned_jobs_take_their_logs_along(harness: Harness) -> None:
    store = harness.store
    gone, kept = await finish(harness, "t", SUCCEEDED, 2)
    at = datetime.now(UTC)
    for id in (gone, kept):
        await store.add_logs(id, 1, [LogEntry(1, at, "INFO", "l", f"log of {id}")])
    assert await store.prune([PruneRule(SUCCEEDED, max_count=1)]) == 1
    with pytest.raises(JobNotFoundError):
        await store.get_logs(gone)
    assert [e.message for e in await store.get_logs(kept)] == [f"log of {kept}"]
    # A job with the same logs table but a new id starts without any.
    assert await store.get_logs((await one(store)).id) == []


@pytest.mark.parametrize(
    ("rules", "match"),
    [
        ([PruneRule(JobStatus.QUEUED, max_age=1)], "finished"),
        ([PruneRule(JobStatus.RUNNING, max_count=1)], "finished"),
        ([PruneRule("bogus", max_age=1)], "bogus"),  # type: ignore[arg-type]
        ([PruneRule(SUCCEEDED)], "max_age, max_count"),
        ([PruneRule(SUCCEEDED, max_age=-1)], "max_age"),
        ([PruneRule(SUCCEEDED, max_count=-1)], "max_count"),
        ([PruneRule(SUCCEEDED, max_count=1.5)], "max_count"),  # type: ignore[arg-type]
        ([PruneRule(SUCCEEDED, task="", max_age=1)], "task"),
        (["succeeded"], "PruneRule"),
        (PruneRule(SUCCEEDED, max_age=1), "sequence"),
    ],
)
async def test_bad_rules_delete_nothing(harness: Harness, rules: Any, match: str) -> None:
    await finish(harness, "t", SUCCEEDED, 2)
    if isinstance(rules, list):  # a good rule first: the batch is refused as a whole
        rules = [PruneRule(SUCCEEDED, max_count=0), *rules]
    with pytest.raises(InvalidJobError, match=match):
        await harness.store.prune(rules)
    assert len(await remaining(harness.store)) == 2
    assert await harness.store.prune([]) == 0


# -- instances ---------------------------------------------------------------------------------
STARTED = datetime(2026, 3, 4, 5, 6, 7, tzinfo=UTC)


async def test_instances_upsert_expire_and_go(harness: Harness) -> None:
    store = harness.store
    assert await store.list_instances() == []
    info = {"queues": ["default"], "concurrency": 4, "running": 1}
    before = await store.now()
    await store.record_instance("b", host="h1", pid=10, started_at=STARTED, info=info, ttl=30)
    await store.record_instance("a", host="h2", pid=11, started_at=STARTED, info={}, ttl=10)
    a, b = await store.list_instances()
    assert (a.name, b.name) == ("a", "b")
    assert (b.host, b.pid, b.info) == ("h1", 10, info)
    assert b.started_at == STARTED and before <= b.last_seen <= await store.now()
    await harness.advance(11)  # a expired, b not
    assert [i.name for i in await store.list_instances()] == ["b"]
    await store.record_instance("a", host="h3", pid=12, started_at=STARTED, info={"n": 2}, ttl=10)
    a2, _ = await store.list_instances()
    assert (a2.host, a2.pid, a2.info) == ("h3", 12, {"n": 2})
    await store.remove_instance("b")
    await store.remove_instance("never-there")
    assert [i.name for i in await store.list_instances()] == ["a"]


@pytest.mark.parametrize(
    ("changes", "error"),
    [
        ({"name": ""}, InvalidJobError),
        ({"host": None}, InvalidJobError),
        ({"pid": -1}, InvalidJobError),
        ({"pid": True}, InvalidJobError),
        ({"started_at": datetime(2026, 1, 1)}, InvalidJobError),
        ({"ttl": 0}, InvalidJobError),
        ({"info": {"x": object()}}, SerializationError),
        ({"info": ["list"]}, SerializationError),
    ],
)
async def test_bad_instances_are_refused(
    store: Store, changes: dict[str, Any], error: type
) -> None:
    args: dict[str, Any] = {
        "name": "i",
        "host": "h",
        "pid": 1,
        "started_at": STARTED,
        "info": {},
        "ttl": 5,
    }
    args.update(changes)
    name = args.pop("name")
    with pytest.raises(error):
        await store.record_instance(name, **args)
    assert await store.list_instances() == []
