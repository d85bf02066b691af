"""Fixtures: a seeded MemoryStore, a scheduler with in-process jobs, dashboards over them and
an httpx client speaking ASGI to a dashboard (no server, no network)."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest_asyncio

from beat import Job, Scheduler
from beat.dashboard import Dashboard
from beat.stores import MemoryStore, Store
from beat.testing import FakeClock
from tests.stores.conftest import store_postgres  # noqa: F401 - one PostgreSQL server for these tests

from ._seed import Seeded, seed

START = datetime(2026, 1, 1, tzinfo=UTC)
ADMIN = {"x-user": "admin"}
TOKEN = re.compile(r'name="csrf_token" value="([0-9a-f]{64})"')


def is_admin(request: Any) -> bool:
    return bool(request.headers.get("x-user") == "admin")


@pytest_asyncio.fixture
async def store() -> AsyncIterator[MemoryStore]:
    async with MemoryStore() as store:
        yield store


@pytest_asyncio.fixture
async def seeded(store: MemoryStore) -> Seeded:
    return await seed(store)


class Calls:
    def __init__(self) -> None:
        self.count = 0

    async def __call__(self, ctx: Any) -> int:
        self.count += 1
        return self.count


@pytest_asyncio.fixture
async def scheduler() -> AsyncIterator[Scheduler]:
    s = Scheduler(clock=FakeClock(START))
    s.add_job(Job.cron("0 3 * * *").do(Calls(), name="nightly"))
    s.add_job(Job.every(timedelta(minutes=5)).do(Calls(), name="heartbeat"))
    s.start()
    yield s
    await s.shutdown(timeout=0)


def http(app: Any, root_path: str = "") -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=app, root_path=root_path)
    return httpx.AsyncClient(transport=transport, base_url="http://testserver")


async def token(client: httpx.AsyncClient, path: str = "/", **headers: str) -> str:
    """Load a page as a browser would (keeping its cookie) and read its forms' CSRF token."""
    page = await client.get(path, headers=headers or ADMIN)
    assert page.status_code == 200, page.text
    found = TOKEN.search(page.text)
    assert found is not None, "the page carries no CSRF token"
    return found.group(1)


async def snapshot(store: Store) -> list[Any]:
    """Everything an action could change."""
    jobs = await store.list_jobs(limit=1000)
    state: list[Any] = [(j.id, j.status, j.attempt, j.cancel_requested) for j in jobs]
    state += [(s.name, s.paused, s.version) for s in await store.list_schedules()]
    return state


def dashboard(**kwargs: Any) -> Dashboard:
    kwargs.setdefault("authorize", is_admin)
    return Dashboard(**kwargs)
