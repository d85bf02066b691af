"""Durable schedules on the overview: code-defined ones say what they enqueue, stored ones are
shown once (in the stored table, not again as this process's in-process job), and the
bookkeeping rows of code-defined schedules are neither shown nor acted on."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest
import pytest_asyncio

from beat import Job, Scheduler
from beat.stores import MemoryStore, ScheduleSpec

from .conftest import ADMIN, START, dashboard, http, token

pytestmark = pytest.mark.asyncio


@pytest_asyncio.fixture
async def durable() -> AsyncIterator[tuple[MemoryStore, Scheduler]]:
    from beat.testing import FakeClock

    store = MemoryStore(clock=lambda: START.timestamp())
    scheduler = Scheduler(clock=FakeClock(START), store=store)
    scheduler.add_job(Job.cron("0 3 * * *").enqueue("reports.build", "daily"))
    async with store:
        await store.put_schedule(ScheduleSpec(name="sync-crm", task="crm.sync", every=900.0))
        await store.put_schedule(ScheduleSpec(name="~code:old", task="x", every=60.0))
        async with scheduler:  # returns once started, stored schedules read
            yield store, scheduler


def section(page: str, id: str) -> str:
    start = page.index(f'id="{id}"')
    return page[start : page.index("</section>", start)]


async def test_each_schedule_is_shown_once_with_what_it_enqueues(
    durable: tuple[MemoryStore, Scheduler],
) -> None:
    store, scheduler = durable
    # The premise: the stored schedule is also one of this process's in-process jobs.
    assert {i.name for i in scheduler.jobs()} == {"sync-crm", "reports.build"}
    async with http(dashboard(store=store, scheduler=scheduler)) as client:
        page = (await client.get("/", headers=ADMIN)).text
    in_process = section(page, "scheduler-jobs")
    stored = section(page, "schedules")
    assert "cron 0 3 * * * (UTC) → enqueues reports.build" in in_process
    assert "sync-crm" not in in_process and "sync-crm" in stored
    assert "~code:" not in page
    # every=900 s lies on the epoch grid: the next quarter hour after START (00:00 UTC).
    expected = datetime(2026, 1, 1, 0, 15, tzinfo=UTC).strftime("%Y-%m-%d %H:%M:%S")
    row = re.search(r"sync-crm.*?</tr>", stored, re.S)
    assert row is not None and expected in row.group(0)


async def test_bookkeeping_rows_cannot_be_paused_or_run(
    durable: tuple[MemoryStore, Scheduler],
) -> None:
    store, scheduler = durable
    async with http(dashboard(store=store, scheduler=scheduler)) as client:
        csrf = await token(client)
        for action in ("pause", "resume", "run"):
            response = await client.post(
                f"/schedules/{action}",
                data={"csrf_token": csrf, "name": "~code:old", "once": "1"},
                headers=ADMIN,
            )
            assert response.status_code == 404, action
    record = await store.get_schedule("~code:old")
    assert record is not None and not record.paused
    assert await store.list_jobs(task="x") == []
