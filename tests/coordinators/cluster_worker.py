"""One instance of a test cluster: ``python cluster_worker.py '<json config>'``.

Runs ``jobs`` coordinated jobs named ``job000``… on the grid ``start + k·interval`` (ending at
``end`` inclusive), plus optionally one long ``Oneshot`` named ``long``, until ``exit_at``
(epoch seconds), then shuts down and exits 0. Prints ``ready`` once the scheduler has opened
its coordinator.

The record is the test's independent witness, not the coordinator's own store: one
append-only file per process, one ``os.write`` per line (so a SIGKILL loses no finished line):

    run,<job>,<ISO instant>,<pid>,<attempt>,<ms>  a run started, <ms> after its instant
    done,<job>,<ISO instant>,<pid>,<attempt>     that run returned
    skip,<job>,<ISO instant>,<pid>,<reason>      a fire skipped (RunSkipped)
    missed,<job>,<ISO first>,<ISO last>,<pid>,<missed>,<ran>   FiresMissed
    down,<pid> / up,<pid>                        coordinator unavailable / recovered
    calls,<pid>,<claim calls>                    at exit: round trips spent claiming

``kinds`` (optional, e.g. ``["every", "cron", "cycle"]``) replaces those jobs by ``jobs`` jobs
of each kind named ``<kind><nnn>``, every ``period`` seconds (2 by default): ``Job.every``,
an extended cron ``*/period`` on the seconds field, and a cycle from ``start``. ``skew``
(seconds) shifts this process's wall clock, as a host whose clock is off would.

``backend`` may be ``"none"``: no coordinator (every instance runs every fire; the
benchmark's baseline).
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
import time
from datetime import UTC, datetime, timedelta
from typing import Any

from beat import (
    Context,
    CoordinatorRecovered,
    CoordinatorUnavailable,
    Event,
    FiresMissed,
    Job,
    RunSkipped,
    Scheduler,
)
from beat._clock import SystemClock
from beat.coordinators import Coordinator


class SkewedClock(SystemClock):
    """The system clock, ``skew`` seconds off (a host whose NTP is behind or ahead)."""

    def __init__(self, skew: float) -> None:
        self.skew = skew

    def time(self) -> float:
        return time.time() + self.skew


class Record:
    def __init__(self, path: str) -> None:
        self.fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        self.pid = os.getpid()

    def write(self, *fields: object) -> None:
        os.write(self.fd, (",".join(map(str, fields)) + "\n").encode())


def make_coordinator(config: dict[str, Any]) -> Coordinator | None:
    if config["backend"] == "none":
        return None
    if config["backend"] == "redis":
        from beat.coordinators.redis import RedisCoordinator

        return RedisCoordinator(config["url"], namespace=config["namespace"])
    from beat.coordinators.postgres import PostgresCoordinator

    return PostgresCoordinator(
        config["url"],
        namespace=config["namespace"],
        lease=config.get("lease"),
        reclaim_interval=config.get("reclaim_interval", 5.0),
    )


async def main(config: dict[str, Any]) -> None:
    record = Record(config["record"])
    pid = record.pid
    work = float(config.get("work", 0.0))

    async def run(ctx: Context, duration: float) -> None:
        when = ctx.when.isoformat()
        lag_ms = (time.time() - ctx.when.timestamp()) * 1000
        record.write("run", ctx.name, when, pid, ctx.attempt, f"{lag_ms:.1f}")
        if duration:
            await asyncio.sleep(duration)
        record.write("done", ctx.name, when, pid, ctx.attempt)

    def on_event(event: Event) -> None:
        if isinstance(event, RunSkipped):
            record.write("skip", event.name, event.when.isoformat(), pid, event.reason)
        elif isinstance(event, FiresMissed):
            first, last = event.first.isoformat(), event.last.isoformat()
            record.write("missed", event.name, first, last, pid, event.missed, event.ran)
        elif isinstance(event, CoordinatorUnavailable):
            record.write("down", pid)
        elif isinstance(event, CoordinatorRecovered):
            record.write("up", pid)

    start = datetime.fromtimestamp(config["start"], UTC)
    interval = timedelta(seconds=config["interval"])
    end = datetime.fromtimestamp(config["end"], UTC)
    coordinator = make_coordinator(config)
    calls = 0

    def counting(call: Any) -> Any:
        async def counted(*args: Any) -> Any:
            nonlocal calls
            calls += 1
            return await call(*args)

        return counted

    # Count the claim round trips, single or batched (``claim_many`` may be missing when the
    # benchmark runs an older beat for comparison).
    if coordinator is not None:
        coordinator.claim = counting(coordinator.claim)  # type: ignore[method-assign]
        if hasattr(coordinator, "claim_many"):
            coordinator.claim_many = counting(coordinator.claim_many)  # type: ignore[method-assign]
    skew = float(config.get("skew", 0.0))
    scheduler = Scheduler(coordinator=coordinator, clock=SkewedClock(skew) if skew else None)
    scheduler.subscribe(on_event)
    kinds = config.get("kinds")
    period = int(config.get("period", 2))
    for i in range(config["jobs"]):
        if not kinds:
            job = Job.cycle(start, interval).end_at(end).do(run, work, name=f"job{i:03d}")
            scheduler.add_job(job)
            continue
        builders = {
            "every": Job.every(timedelta(seconds=period)),
            "cron": Job.cron(f"*/{period} * * * * *", extended=True),
            "cycle": Job.cycle(start, timedelta(seconds=period)).end_at(end),
        }
        for kind in kinds:
            scheduler.add_job(builders[kind].do(run, work, name=f"{kind}{i:03d}"))
    long = config.get("long")
    if long:
        at = datetime.fromtimestamp(long["at"], UTC)
        scheduler.add_job(Job.oneshot(at).do(run, long["duration"], name="long"))

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    async with scheduler:
        print("ready", flush=True)
        try:
            async with asyncio.timeout(max(0.0, config["exit_at"] - time.time())):
                await stop.wait()
        except TimeoutError:
            pass
    record.write("calls", pid, calls)


if __name__ == "__main__":
    asyncio.run(main(json.loads(sys.argv[1])))
