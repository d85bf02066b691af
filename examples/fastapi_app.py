"""beat inside a FastAPI service: the scheduler lives in the app's lifespan.

    pip install -e '.[examples]'
    uvicorn examples.fastapi_app:app

Started with the app, it fires while requests are served, and stops gracefully (waiting for
running jobs) when the server shuts down. One scheduler per process: under several workers or
replicas, pass a coordinator (see the README) so each fire runs once.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta
from typing import Any

from fastapi import FastAPI, HTTPException, Request

from beat import Context, Job, JobLookupError, Scheduler

HEARTBEAT = timedelta(seconds=float(os.environ.get("BEAT_HEARTBEAT_SECONDS", "5")))


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    async with Scheduler(shutdown_timeout=10) as scheduler:
        app.state.scheduler = scheduler
        app.state.beats = 0
        scheduler.add_job(Job.every(HEARTBEAT).do(count_beat, app, name="heartbeat"))
        scheduler.add_job(Job.cron("0 3 * * *", tz="Europe/Berlin").do(nightly, name="nightly"))
        yield
    # leaving the block: no new fires, running jobs finish (up to 10 s), then we return


async def count_beat(ctx: Context, app: FastAPI) -> int:
    app.state.beats += 1
    return int(app.state.beats)


async def nightly(ctx: Context) -> None:
    print(f"nightly maintenance for {ctx.when:%Y-%m-%d}")


app = FastAPI(lifespan=lifespan)


@app.get("/jobs")
async def list_jobs(request: Request) -> list[dict[str, Any]]:
    scheduler: Scheduler = request.app.state.scheduler
    return [
        {
            "name": info.name,
            "next_fire": info.next_fire.isoformat() if info.next_fire else None,
            "running": info.running,
            "paused": info.paused,
        }
        for info in scheduler.jobs()
    ]


@app.get("/beats")
async def beats(request: Request) -> dict[str, int]:
    return {"beats": request.app.state.beats}


@app.post("/jobs/{name}/run")
async def run_job(name: str, request: Request) -> dict[str, Any]:
    scheduler: Scheduler = request.app.state.scheduler
    for info in scheduler.jobs():
        if info.name == name:
            try:
                result = await scheduler.run_now(info.id)
            except JobLookupError:
                break
            return {"name": name, "result": result}
    raise HTTPException(status_code=404, detail=f"no job named {name!r}")
