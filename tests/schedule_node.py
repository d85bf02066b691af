"""One replica of the multi-process schedule tests: ``schedule_node.py '<json config>'``.

Runs a ``Scheduler(store=...)`` on a :class:`~beat.testing.FakeClock` starting at
``config["start"]`` with the code-defined durable schedules of ``config["schedules"]``
(``{"name", "cron", "misfire"}``, each enqueuing task ``work``). It registers no task, so its
worker runs nothing: the jobs stay in the store for the test to count.

Protocol: one JSON object per line on stdout. ``{"ready": ...}`` once started; then for each
command read from stdin:

* ``advance <seconds>`` — move the fake clock, one fire at a time, waiting for each fire's
  enqueue to finish; answers ``{"advanced": <ISO now>, "results": [...]}`` with the result of
  every enqueue run of its jobs so far (``"enqueued <id>"`` or ``"exists <id>"``);
* ``stop`` — shut down and exit 0.

In between, every job added, removed, paused or resumed is reported at once as
``{"event": "JobAdded", "name": ..., "t": <time.time()>}`` (the propagation measurement).
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from datetime import datetime, timedelta
from typing import Any

from beat import Event, Job, JobAdded, JobPaused, JobRemoved, JobResumed, Scheduler
from beat.stores import Store
from beat.testing import FakeClock


def say(**fields: Any) -> None:
    print(json.dumps(fields), flush=True)


def make_store(config: dict[str, Any]) -> Store:
    if config["kind"] == "sqlite":
        from beat.stores import SQLiteStore

        return SQLiteStore(config["target"], busy_timeout=30)
    from beat.stores import PostgresStore

    return PostgresStore(config["target"], schema=config["schema"])


async def advance(clock: FakeClock, scheduler: Scheduler, seconds: float) -> None:
    target = clock.now + timedelta(seconds=seconds)
    while True:
        due = [i.next_fire for i in scheduler.jobs() if i.next_fire is not None]
        step = min([target, *due]) - clock.now
        await clock.advance(max(step, timedelta(0)))
        async with asyncio.timeout(30):  # the enqueues wait on real store I/O
            while scheduler.statistics().running:  # noqa: ASYNC110 - no event to await
                await asyncio.sleep(0.002)
        if clock.now >= target:
            return


async def main(config: dict[str, Any]) -> None:
    clock = FakeClock(datetime.fromisoformat(config["start"]))
    scheduler = Scheduler(store=make_store(config), clock=clock)
    for spec in config.get("schedules", []):
        builder = Job.cron(spec["cron"]).schedule(spec["name"], misfire=spec["misfire"])
        scheduler.add_job(builder.enqueue("work", spec["name"]))

    def on_event(event: Event) -> None:
        say(event=type(event).__name__, name=getattr(event, "name", None), t=time.time())

    scheduler.subscribe(on_event, JobAdded, JobRemoved, JobPaused, JobResumed)
    async with scheduler:
        say(ready=True)
        while True:
            line = (await asyncio.to_thread(sys.stdin.readline)).split()
            if not line or line[0] == "stop":
                break
            await advance(clock, scheduler, float(line[1]))
            results = [
                str(run.result).strip("'")
                for info in scheduler.jobs()
                for run in scheduler.get_job(info.id).history
            ]
            say(advanced=clock.now.isoformat(), results=results)
        await scheduler.shutdown(timeout=0)


if __name__ == "__main__":
    asyncio.run(main(json.loads(sys.argv[1])))
