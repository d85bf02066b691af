"""beat in one minute: cron, oneshot and cycle jobs firing, and a job removed at runtime.

python examples/quickstart.py              # real time: ends after the cron job fires (<= 60 s)
python examples/quickstart.py --simulate   # the same on a fake clock, over in an instant
"""

from __future__ import annotations

import asyncio
import sys
from datetime import UTC, datetime, timedelta

from beat import Context, Job, Scheduler
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


if __name__ == "__main__":
    asyncio.run(main(simulate="--simulate" in sys.argv[1:]))
