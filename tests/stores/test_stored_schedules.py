"""Conformance: stored schedules — put/get/list, versions, pause, delete, advance (max only),
validation through beat's own Cron, and wait_schedules_changed woken by another handle and by
another process (PostgreSQL NOTIFY; SQLite doorbell, with polling as the fallback)."""

from __future__ import annotations

import asyncio
import dataclasses
import time
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest

from beat import CronSyntaxError, InvalidJobError, InvalidScheduleError
from beat._schedules import instant_us, timer_of_spec
from beat._timers import from_us, next_fire_us
from beat.stores import JobNotFoundError, ScheduleRecord, ScheduleSpec, SerializationError, Store

from ._processes import act_in_processes
from ._util import parked
from .conftest import Harness

pytestmark = pytest.mark.asyncio

PROMPT = 5.0  # seconds a wake-up may take at most (it takes milliseconds)
AT = datetime(2027, 1, 1, 12, 0, tzinfo=timezone(timedelta(hours=2)))


async def test_put_get_list(store: Store) -> None:
    assert await store.schedules_version() == 0
    assert await store.list_schedules() == []
    nightly = await store.put_schedule(
        ScheduleSpec(
            "nightly",
            "report",
            cron="0 3 * * *",
            timezone="Europe/Berlin",
            args=("a", 1),
            kwargs={"k": [1]},
            queue="reports",
            priority=3,
            max_attempts=2,
            misfire="skip",
        )
    )
    assert isinstance(nightly, ScheduleRecord)
    assert (nightly.args, nightly.kwargs, nightly.timezone) == (
        ["a", 1],
        {"k": [1]},
        "Europe/Berlin",
    )
    assert (nightly.queue, nightly.priority, nightly.max_attempts) == ("reports", 3, 2)
    assert nightly.misfire == "skip" and not nightly.paused and nightly.last_instant is None
    assert nightly.version == 1 and nightly.created_at == nightly.updated_at
    once = await store.put_schedule(ScheduleSpec("a-once", "t", at=AT))
    assert once.at == AT and once.at.tzinfo == UTC and once.version == 2
    every = await store.put_schedule(ScheduleSpec("b-every", "t", every=90))
    assert every.every == 90.0 and every.cron is None and every.at is None
    assert await store.get_schedule("nightly") == nightly
    assert await store.get_schedule("missing") is None
    assert [s.name for s in await store.list_schedules()] == ["a-once", "b-every", "nightly"]
    assert await store.schedules_version() == 3
    assert nightly.spec == ScheduleSpec(
        "nightly",
        "report",
        cron="0 3 * * *",
        timezone="Europe/Berlin",
        args=["a", 1],
        kwargs={"k": [1]},
        queue="reports",
        priority=3,
        max_attempts=2,
        misfire="skip",
    )


async def test_a_change_bumps_the_version_an_equal_put_does_not(harness: Harness) -> None:
    store = harness.store
    first = await store.put_schedule(ScheduleSpec("s", "t", every=60, args=[1]))
    assert await store.advance_schedule("s", AT)
    await harness.advance(5)
    same = await store.put_schedule(ScheduleSpec("s", "t", every=60.0, args=(1,)))
    assert same.version == first.version and same.updated_at == first.updated_at
    changed = await store.put_schedule(ScheduleSpec("s", "t", every=60, args=[2]))
    assert changed.version == first.version + 1 == await store.schedules_version()
    assert changed.args == [2] and changed.created_at == first.created_at
    assert changed.updated_at >= first.updated_at and changed.last_instant == AT
    assert await store.put_schedule(changed.spec) == changed  # a record's spec puts back as is


async def test_pause_resume_and_delete(store: Store) -> None:
    put = await store.put_schedule(ScheduleSpec("s", "t", cron="*/5 * * * *"))
    paused = await store.set_schedule_paused("s", True)
    assert paused.paused and paused.version == put.version + 1
    again = await store.set_schedule_paused("s", True)
    assert again == paused  # no change, no bump
    resumed = await store.set_schedule_paused("s", False)
    assert not resumed.paused and resumed.version == paused.version + 1
    with pytest.raises(JobNotFoundError, match="'nope'"):
        await store.set_schedule_paused("nope", True)
    with pytest.raises(InvalidJobError, match="paused"):
        await store.set_schedule_paused("s", "yes")  # type: ignore[arg-type]
    assert await store.delete_schedule("s")
    assert await store.schedules_version() == resumed.version + 1
    assert not await store.delete_schedule("s")
    assert await store.schedules_version() == resumed.version + 1
    assert await store.get_schedule("s") is None


async def test_advance_only_moves_forward_and_is_not_a_change(store: Store) -> None:
    await store.put_schedule(ScheduleSpec("s", "t", every=60))
    version = await store.schedules_version()
    assert await store.advance_schedule("s", AT)
    assert not await store.advance_schedule("s", AT)
    assert not await store.advance_schedule("s", AT - timedelta(minutes=1))
    assert (await store.get_schedule("s")).last_instant == AT  # type: ignore[union-attr]
    assert await store.advance_schedule("s", AT + timedelta(seconds=1))
    assert (await store.get_schedule("s")).last_instant == AT + timedelta(seconds=1)  # type: ignore[union-attr]
    assert not await store.advance_schedule("missing", AT)
    assert await store.schedules_version() == version
    with pytest.raises(InvalidJobError, match="aware"):
        await store.advance_schedule("s", datetime(2027, 1, 1))


# -- last_instant on resume and update: no catch-up of what lies before the change ----------
def caught_up(record: ScheduleRecord, until: datetime) -> list[datetime]:
    """The instants a scheduler's catch-up from ``record.last_instant`` would find missed by
    ``until`` (beat/_schedule_sync.py: the first instant after it, and on)."""
    last, end = instant_us(record.last_instant), instant_us(until)
    assert last is not None and end is not None
    timer, found = timer_of_spec(record), []
    while (nxt := next_fire_us(timer, last)) is not None and nxt <= end:
        found.append(from_us(nxt))
        last = nxt
    return found


async def _behind(harness: Harness, spec: ScheduleSpec) -> tuple[ScheduleRecord, datetime]:
    """``spec`` stored, with last_instant ten minutes before the store's now (the time of the
    put: ``updated_at``); the record, then five minutes pass."""
    put = await harness.store.put_schedule(spec)
    last = put.updated_at.replace(second=0, microsecond=0) - timedelta(minutes=10)
    assert await harness.store.advance_schedule(spec.name, last)
    await harness.advance(300)
    record = await harness.store.get_schedule(spec.name)
    assert record is not None and record.last_instant == last
    return record, last


async def test_a_resume_moves_last_instant_to_the_stores_now(harness: Harness) -> None:
    store = harness.store
    _, last = await _behind(harness, ScheduleSpec("s", "t", every=60, misfire="all"))
    paused = await store.set_schedule_paused("s", True)
    assert paused.last_instant == last  # a pause moves nothing
    await harness.advance(300)
    resumed = await store.set_schedule_paused("s", False)
    assert resumed.last_instant == resumed.updated_at > paused.updated_at
    if harness.kind != "postgres":  # the fake clock (PostgreSQL's cannot be moved)
        assert resumed.updated_at == paused.updated_at + timedelta(seconds=300)
    assert await store.get_schedule("s") == resumed
    assert await store.list_schedules() == [resumed]
    assert resumed.version == paused.version + 1 == await store.schedules_version()
    # A scheduler starting now catches nothing of the paused span up (before: 10+ instants).
    assert len(caught_up(paused, resumed.updated_at)) >= 10
    assert caught_up(resumed, resumed.updated_at) == []
    # Resuming a running schedule changes nothing, last_instant included.
    assert await store.set_schedule_paused("s", False) == resumed


async def test_a_resume_of_a_schedule_never_enqueued_sets_last_instant(store: Store) -> None:
    await store.put_schedule(ScheduleSpec("s", "t", cron="* * * * *", paused=True))
    resumed = await store.set_schedule_paused("s", False)
    assert resumed.last_instant == resumed.updated_at


@pytest.mark.parametrize(
    "changes",
    [
        {"every": 30},
        {"every": None, "cron": "*/2 * * * *"},
        {"args": [2]},
        {"queue": "other", "priority": 5},
        {"misfire": "coalesce"},
        {"paused": False},  # a resume through put
        {"paused": False, "args": [2]},
        {"args": [2], "paused": True, "was_paused": True},  # changed while paused
    ],
)
async def test_a_new_definition_or_a_resume_through_put_moves_last_instant_to_the_stores_now(
    harness: Harness, changes: dict[str, Any]
) -> None:
    store, changes = harness.store, dict(changes)  # the parameter is shared by every store
    was_paused = changes.pop("was_paused", "paused" in changes and not changes["paused"])
    spec = ScheduleSpec("s", "t", every=60, args=[1], misfire="all", paused=was_paused)
    before, _ = await _behind(harness, spec)
    changed = await store.put_schedule(dataclasses.replace(spec, **changes))
    assert changed.version == before.version + 1
    assert changed.last_instant == changed.updated_at > before.updated_at
    assert await store.get_schedule("s") == changed
    assert len(caught_up(before, changed.updated_at)) >= 10
    assert caught_up(changed, changed.updated_at) == []


async def test_a_pause_or_an_equal_put_leaves_last_instant_alone(harness: Harness) -> None:
    store = harness.store
    spec = ScheduleSpec("s", "t", every=60, args=[1])
    before, last = await _behind(harness, spec)
    same = await store.put_schedule(ScheduleSpec("s", "t", every=60.0, args=(1,)))
    assert same == before  # no change: no version, no updated_at, no last_instant
    paused = await store.put_schedule(dataclasses.replace(spec, paused=True))
    assert paused.version == before.version + 1 and paused.last_instant == last
    assert (await store.set_schedule_paused("s", True)).last_instant == last
    assert (await store.put_schedule(paused.spec)).last_instant == last


async def test_last_instant_never_moves_back_on_resume_or_update(harness: Harness) -> None:
    store = harness.store
    put = await store.put_schedule(ScheduleSpec("s", "t", every=60))
    ahead = put.updated_at.replace(microsecond=0) + timedelta(days=1)  # enqueued ahead
    assert await store.advance_schedule("s", ahead)
    await store.set_schedule_paused("s", True)
    await harness.advance(60)
    resumed = await store.set_schedule_paused("s", False)
    assert resumed.last_instant == ahead and resumed.updated_at < ahead
    updated = await store.put_schedule(ScheduleSpec("s", "t", every=30))
    assert updated.last_instant == ahead
    assert (await store.get_schedule("s")).last_instant == ahead  # type: ignore[union-attr]
    # and advance still moves it on from there
    assert not await store.advance_schedule("s", ahead - timedelta(seconds=1))
    assert await store.advance_schedule("s", ahead + timedelta(seconds=30))


@pytest.mark.parametrize(
    ("changes", "error", "match"),
    [
        ({"cron": "61 * * * *"}, CronSyntaxError, "61"),
        ({"cron": "* * *"}, CronSyntaxError, r"\* \* \*"),
        ({"cron": "0 3 * * *", "timezone": "Mars/Olympus"}, InvalidScheduleError, "Mars/Olympus"),
        ({"every": 5, "timezone": ""}, InvalidScheduleError, "timezone"),
        ({}, InvalidScheduleError, "exactly one"),
        ({"every": 5, "cron": "* * * * *"}, InvalidScheduleError, "cron, every"),
        ({"every": 0}, InvalidScheduleError, "every"),
        ({"every": float("inf")}, InvalidScheduleError, "every"),
        ({"at": datetime(2027, 1, 1)}, InvalidScheduleError, "aware"),
        ({"every": 5, "misfire": "later"}, InvalidScheduleError, "later"),
        ({"every": 5, "misfire": ["all"]}, InvalidScheduleError, "misfire"),
        ({"every": 5, "paused": 1}, InvalidScheduleError, "paused"),
        ({"every": 5, "args": [object()]}, SerializationError, "args"),
        ({"every": 5, "kwargs": {"x": float("nan")}}, SerializationError, "kwargs"),
        ({"every": 5, "task": ""}, InvalidJobError, "task"),
        ({"every": 5, "name": ""}, InvalidJobError, "name"),
        ({"every": 5, "queue": ""}, InvalidJobError, "queue"),
        ({"every": 5, "priority": 2**40}, InvalidJobError, "priority"),
        ({"every": 5, "max_attempts": 0}, InvalidJobError, "max_attempts"),
        # Past what every store keeps: OverflowError on SQLite's 64-bit bind, before.
        ({"every": 5, "max_attempts": 2**63}, InvalidJobError, "max_attempts"),
        ({"every": 1e300}, InvalidScheduleError, "every must be at most 100 years"),
        # Below the timers' microsecond: named here, not as a zero timedelta later.
        ({"every": 1e-7}, InvalidScheduleError, "schedule 's'.*every must be at least 1 µs.*1e-07"),
        ({"every": True}, InvalidScheduleError, "every"),
    ],
)
async def test_bad_specs_store_nothing(
    store: Store, changes: dict[str, Any], error: type, match: str
) -> None:
    spec: dict[str, Any] = {"name": "s", "task": "t", **changes}
    with pytest.raises(error, match=match):
        await store.put_schedule(ScheduleSpec(**spec))
    assert await store.list_schedules() == []
    assert await store.schedules_version() == 0


async def test_extended_cron_is_accepted(store: Store) -> None:
    record = await store.put_schedule(ScheduleSpec("s", "t", cron="30 0 12 L * *"))
    assert record.cron == "30 0 12 L * *"


async def test_misfire_all_is_stored_as_run_all(store: Store) -> None:
    record = await store.put_schedule(ScheduleSpec("s", "t", every=5, misfire="all"))
    assert record.misfire == "run_all"
    same = await store.put_schedule(ScheduleSpec("s", "t", every=5, misfire="run_all"))
    assert same.version == record.version


# -- waiting for changes -----------------------------------------------------------------------
async def test_wait_returns_at_once_when_the_version_differs(store: Store) -> None:
    await store.put_schedule(ScheduleSpec("s", "t", every=1))
    assert await asyncio.wait_for(store.wait_schedules_changed(0, 60), PROMPT) == 1
    assert await store.wait_schedules_changed(1, 0) == 1
    assert await store.wait_schedules_changed(1, 0.05) == 1  # timed out: still 1
    with pytest.raises(InvalidJobError, match="version"):
        await store.wait_schedules_changed(-1, 1)


async def test_wait_is_woken_by_a_change_through_another_handle(harness: Harness) -> None:
    store, other = harness.store, await harness.other()
    version = await store.schedules_version()
    async with parked(store):
        waiter = asyncio.create_task(store.wait_schedules_changed(version, 60))
    assert not waiter.done()
    started = time.monotonic()
    await other.put_schedule(ScheduleSpec("s", "t", every=1))
    assert await asyncio.wait_for(waiter, PROMPT) == version + 1
    assert time.monotonic() - started < PROMPT


async def test_wait_is_woken_by_a_change_from_another_process(harness: Harness) -> None:
    """Propagation across processes: the waiter wakes within milliseconds of the commit
    (PostgreSQL: NOTIFY; SQLite: the doorbell — its poll here is 20 ms anyway)."""
    if harness.kind == "memory":
        pytest.skip("a memory store lives in one process")
    store: Any = harness.store
    sqlite = harness.kind == "sqlite"
    target, schema = (str(store.path), "") if sqlite else (store.dsn, store.schema)
    version = await store.schedules_version()
    waiter = asyncio.create_task(store.wait_schedules_changed(version, 60))
    woke: list[float] = []
    waiter.add_done_callback(lambda _: woke.append(time.time()))
    [report] = await asyncio.to_thread(
        act_in_processes, harness.kind, target, schema, "schedule", 1
    )
    assert await asyncio.wait_for(waiter, PROMPT) == version + 1
    latency = woke[0] - report["committed"]
    assert latency < 1.0, latency
    assert (await store.get_schedule("s")).every == 7.0  # type: ignore[union-attr]
