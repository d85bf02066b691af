"""The FastAPI example, started for real under uvicorn on a loopback port."""

from __future__ import annotations

import asyncio
import importlib
import socket

import pytest

pytest.importorskip("fastapi")
uvicorn = pytest.importorskip("uvicorn")
httpx = pytest.importorskip("httpx")

pytestmark = pytest.mark.asyncio


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def test_example_starts_fires_and_shuts_down_cleanly(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BEAT_HEARTBEAT_SECONDS", "0.1")
    module = importlib.reload(importlib.import_module("examples.fastapi_app"))
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(module.app, host="127.0.0.1", port=port, log_level="warning", lifespan="on")
    )
    serving = asyncio.ensure_future(server.serve())
    async with asyncio.timeout(20):
        while not server.started:  # noqa: ASYNC110 - uvicorn exposes no event for this
            await asyncio.sleep(0.01)
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as client:
            jobs = (await client.get("/jobs")).json()
            assert {j["name"] for j in jobs} == {"heartbeat", "nightly"}
            scheduler = module.app.state.scheduler
            heartbeat = next(i.id for i in scheduler.jobs() if i.name == "heartbeat")
            record = await scheduler.wait_next_run(heartbeat)  # a real fire, on real time
            assert record.outcome.value == "succeeded"
            assert (await client.get("/beats")).json()["beats"] >= 1
            ran = (await client.post("/jobs/heartbeat/run")).json()
            assert ran["name"] == "heartbeat" and ran["result"] >= 2
            assert (await client.post("/jobs/nope/run")).status_code == 404
        server.should_exit = True
        await serving
    assert not scheduler.running
    assert scheduler.statistics().running == 0
