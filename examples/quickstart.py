"""beat in one minute: cron, oneshot and cycle jobs firing, a job removed at runtime, and
durable jobs stored in an SQLite file (no server), run by the scheduler's worker.

python examples/quickstart.py              # real time: ends after the cron job fires (<= 60 s)
python examples/quickstart.py --simulate   # the schedule on a fake clock, over in an instant
"""

from __future__ import annotations

import asyncio
import logging
import sys
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

from beat import Context, Job, JobContext, JobFailedError, Scheduler
from beat.stores import SQLiteStore
from beat.testing import FakeClock


def stamp(ctx: Context) -> str:
    return f"{ctx.when:%H:%M:%S}"


async def main(simulate: bool) -> None:
    clock = FakeClock(datetime(2026, 1, 1, 11, 59, 50, tzinfo=UTC)) if simulate else None
    loop = asyncio.get_running_loop()
    cron_fired = asyncio.Event()

    async def tick(ctx: Context) -> None:
        print(f"{stamp(ctx)}  cycle    tick")

    async def remove_ticker(ctx: Context) -> None:
        ctx.scheduler.remove_job(ticker)
        print(f"{stamp(ctx)}  oneshot  removed the cycle job at runtime")

    def top_of_minute(ctx: Context) -> None:  # a plain function: runs in a worker thread
        print(f"{stamp(ctx)}  cron     '* * * * *' fired at the top of the minute")
        loop.call_soon_threadsafe(cron_fired.set)

    async with Scheduler(clock=clock) as scheduler:
        now = datetime.fromtimestamp(scheduler.clock.time(), UTC)
        ticker = scheduler.add_job(Job.every(timedelta(seconds=1)).do(tick, name="ticker"))
        scheduler.add_job(Job.oneshot(now + timedelta(seconds=3.5)).do(remove_ticker))
        scheduler.add_job(Job.cron("* * * * *").do(top_of_minute, name="minutely"))
        for info in scheduler.jobs():
            print(f"scheduled {info.name:<40} first fire {info.next_fire:%H:%M:%S}")
        if clock is not None:
            while not cron_fired.is_set():
                await clock.advance(timedelta(seconds=1))
                await asyncio.sleep(0.01)  # let the cron job's worker thread report back
        await cron_fired.wait()
    print("scheduler shut down cleanly")


async def durable_jobs(directory: Path) -> None:
    """Jobs kept in a database file: enqueued, run by the worker, results read back."""
    scheduler = Scheduler(store=SQLiteStore(directory / "jobs.db"))

    @scheduler.task(name="reports.build", retries=0)
    async def build_report(ctx: JobContext, customer: str, months: int) -> dict[str, object]:
        return {"customer": customer, "months": months, "attempt": ctx.attempt}

    @scheduler.task(name="reports.broken", retries=0)
    async def broken(ctx: JobContext) -> None:
        raise RuntimeError("the upstream API said no")

    async with scheduler:
        handle = await build_report.enqueue("acme", months=3)  # typed: mypy checks the args
        print(f"durable  enqueued {handle.task} as job {str(handle.id)[:8]}…")
        print(f"durable  result {await handle.result(timeout=30)}")
        failing = await broken.enqueue()
        try:
            await failing.result(timeout=30)
        except JobFailedError as exc:
            print(f"durable  {failing.task} is dead: {exc.error_message}")
        record = await scheduler.client.get(failing.id)
        print(f"durable  status of {failing.task}: {record.status}, attempts {record.attempt}")
    print("durable jobs done")


async def run_all(simulate: bool) -> None:
    await main(simulate)
    with tempfile.TemporaryDirectory() as directory:
        await durable_jobs(Path(directory))


class _OneLine(logging.Formatter):
    """beat logs every failure with its traceback; the demo shows the message only."""

    def formatException(self, ei: object) -> str:
        return ""


if __name__ == "__main__":
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(_OneLine("log      %(levelname)s %(name)s: %(message)s"))
    logging.basicConfig(level=logging.WARNING, handlers=[handler])
    asyncio.run(run_all(simulate="--simulate" in sys.argv[1:]))
