"""Conformance: stored schedules — put/get/list, versions, pause, delete, advance (max only),
validation through beat's own Cron, and wait_schedules_changed woken by another handle and by
another process (PostgreSQL NOTIFY; SQLite doorbell, with polling as the fallback)."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest

from beat import CronSyntaxError, InvalidJobError, InvalidScheduleError
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
