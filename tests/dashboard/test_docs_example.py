"""The FastAPI example of docs/dashboard.md, run as written against a real PostgreSQL."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import httpx
import pytest

from beat.stores import NewJob
from tests.coordinators.conftest import PostgresServer

pytest.importorskip("fastapi")
pytestmark = pytest.mark.asyncio

DOC = Path(__file__).resolve().parents[2] / "docs" / "dashboard.md"


def fastapi_example() -> str:
    blocks = re.findall(r"```python\n(.*?)```", DOC.read_text(), re.S)
    [example] = [b for b in blocks if "app = FastAPI(lifespan=lifespan)" in b]
    return example


async def test_the_documented_fastapi_mount_lets_operators_look_and_admins_act(
    store_postgres: PostgresServer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("DATABASE_URL", store_postgres.dsn())
    monkeypatch.setenv("BEAT_DASHBOARD_SECRET", "s" * 32)
    namespace: dict[str, Any] = {"__name__": "docs_example"}
    exec(compile(fastapi_example(), str(DOC), "exec"), namespace)
    app, scheduler = namespace["app"], namespace["scheduler"]
    transport = httpx.ASGITransport(app=app)
    async with scheduler, httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        ana = {"x-auth-request-email": "ana@example.com"}
        ben = {"x-auth-request-email": "ben@example.com"}
        assert (await client.get("/beat/", headers={})).status_code == 403
        page = await client.get("/beat/", headers=ben)
        assert page.status_code == 200 and "Queues" in page.text
        [job] = await scheduler.client.store.enqueue([NewJob("emails.send")])
        page = await client.get(f"/beat/jobs/{job.id}", headers=ben)
        csrf = re.search(r'name="csrf_token" value="(\w+)"', page.text)
        assert csrf is not None
        form = {"csrf_token": csrf.group(1)}
        refused = await client.post(f"/beat/jobs/{job.id}/cancel", data=form, headers=ben)
        assert refused.status_code == 403
        done = await client.post(f"/beat/jobs/{job.id}/cancel", data=form, headers=ana)
        assert done.status_code == 303
        assert (await scheduler.client.get(job.id)).status.value == "cancelled"
