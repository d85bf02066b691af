"""One adapter per system under test, all speaking the same few verbs.

The add/remove scenario times ``add`` and ``remove`` only; whatever an API lets you prepare
ahead of registering (beat's ``Job``, APScheduler's trigger, aiocron's ``Cron``) is made by
``build_interval`` / ``build_cron`` before the clock starts, and timed separately so the
"build + add" total can be reported too. ``schedule_cycle`` (build and add in one, untimed)
serves the scenarios that measure firing.

An adapter may define ``async def settle(self)``: work the system deferred to later loop
iterations (beat's incremental heap compaction) that the worker must wait out inside the
timed section, so it is charged to the operation that caused it.

Callbacks: raw asyncio calls a plain function straight from its timer (the floor);
``raw+task`` wraps the same work in a coroutine started with ``loop.create_task`` (the floor
for *async* callbacks); beat, APScheduler and aiocron run ``async def`` callbacks.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

Probe = Callable[[], None]
"""What a scenario wants run on each fire; each adapter wraps it in its native callback."""


def _wall_to_utc(wall: float) -> datetime:
    return datetime.fromtimestamp(wall, UTC)


def _noop() -> None:
    pass


async def _async_noop(*_args: object) -> None:
    pass


class RawAsyncio:
    """``loop.call_at(when, cb)`` per job; remove is ``handle.cancel()``."""

    key = "raw"
    label = "raw asyncio"
    kinds = frozenset({"interval", "cycle"})

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop

    async def start(self) -> None:
        pass

    def build_interval(self, period: float) -> float:
        return period  # nothing to prepare: the handle is the job

    def add(self, delay: float) -> asyncio.TimerHandle:
        return self.loop.call_at(self.loop.time() + delay, _noop)

    def remove(self, handle: asyncio.TimerHandle) -> None:
        handle.cancel()

    def schedule_cycle(self, first_wall: float, period: float, probe: Probe) -> None:
        # Map the wall instant onto the loop's clock once, as a hand-written timer would.
        when = first_wall - time.time() + self.loop.time()
        self.loop.call_at(when, self._fire, when, period, probe)

    def _fire(self, when: float, period: float, probe: Probe) -> None:
        probe()
        self.loop.call_at(when + period, self._fire, when + period, period, probe)


class RawAsyncioTask(RawAsyncio):
    """Raw timers that start a task per fire: the floor for ``async def`` callbacks."""

    key = "raw+task"
    label = "raw asyncio + task"

    def _fire(self, when: float, period: float, probe: Probe) -> None:
        self.loop.create_task(_run_probe(probe))
        self.loop.call_at(when + period, self._fire, when + period, period, probe)


async def _run_probe(probe: Probe) -> None:
    probe()


class Beat:
    """beat's public API: build a ``Job``, ``add_job`` it to a started ``Scheduler``."""

    key = "beat"
    label = "beat"
    kinds = frozenset({"interval", "cron", "cycle"})

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        import beat

        self._beat = beat
        self.scheduler = beat.Scheduler()

    async def start(self) -> None:
        self.scheduler.start()

    def build_interval(self, period: float) -> Any:
        return self._beat.Job.every(timedelta(seconds=period)).do(_async_noop)

    def build_cron(self, expr: str) -> Any:
        return self._beat.Job.cron(expr, tz="UTC").do(_async_noop)

    def add(self, job: Any) -> Any:
        return self.scheduler.add_job(job)

    def remove(self, job_id: Any) -> None:
        self.scheduler.remove_job(job_id)

    async def settle(self) -> None:
        """Wait until a heap compaction the removals started has finished.

        ``remove_job`` only marks the heap entry stale; the run loop compacts one bounded
        chunk per loop iteration while ``statistics().compacting``. Versions of beat without
        that field compact synchronously and have nothing to wait for. beat offers no event
        for "compaction done", and one check per loop iteration is exactly its step rate.
        """
        while getattr(self.scheduler.statistics(), "compacting", False):  # noqa: ASYNC110
            await asyncio.sleep(0)

    def schedule_cycle(self, first_wall: float, period: float, probe: Probe) -> None:
        async def run(ctx: object) -> None:
            probe()

        job = self._beat.Job.cycle(_wall_to_utc(first_wall), timedelta(seconds=period))
        self.scheduler.add_job(job.do(run))


class APScheduler:
    """APScheduler 3 ``AsyncIOScheduler`` with a ``MemoryJobStore``, running.

    Its ``add_job`` builds the ``Job`` itself, so only the trigger can be prepared ahead.
    Misfire grace is unlimited, as in beat's default, so late fires are run, not dropped.
    """

    key = "apscheduler"
    label = "APScheduler 3"
    kinds = frozenset({"interval", "cron", "cycle"})

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        from apscheduler.jobstores.memory import MemoryJobStore  # type: ignore[import-untyped]
        from apscheduler.schedulers.asyncio import AsyncIOScheduler  # type: ignore[import-untyped]
        from apscheduler.triggers.cron import CronTrigger  # type: ignore[import-untyped]
        from apscheduler.triggers.interval import IntervalTrigger  # type: ignore[import-untyped]

        self._cron = CronTrigger
        self._interval = IntervalTrigger
        self.scheduler = AsyncIOScheduler(
            jobstores={"default": MemoryJobStore()},
            job_defaults={"misfire_grace_time": None, "coalesce": False, "max_instances": 1},
            event_loop=loop,
            timezone=UTC,
        )

    async def start(self) -> None:
        self.scheduler.start()

    def build_interval(self, period: float) -> Any:
        return self._interval(seconds=period, timezone=UTC)

    def build_cron(self, expr: str) -> Any:
        return self._cron.from_crontab(expr, timezone=UTC)

    def add(self, trigger: Any) -> str:
        job_id: str = self.scheduler.add_job(_async_noop, trigger).id
        return job_id

    def remove(self, job_id: str) -> None:
        self.scheduler.remove_job(job_id)

    def schedule_cycle(self, first_wall: float, period: float, probe: Probe) -> None:
        async def run() -> None:
            probe()

        trigger = self._interval(seconds=period, start_date=_wall_to_utc(first_wall), timezone=UTC)
        self.scheduler.add_job(run, trigger)


class Aiocron:
    """aiocron: one ``Cron`` per job, each owning one loop timer. Cron jobs only."""

    key = "aiocron"
    label = "aiocron"
    kinds = frozenset({"cron"})

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        import aiocron  # type: ignore[import-untyped]

        self._aiocron = aiocron
        self.loop = loop

    async def start(self) -> None:
        pass

    def build_cron(self, expr: str) -> Any:
        return self._aiocron.Cron(expr, func=_async_noop, start=False, loop=self.loop, tz=UTC)

    def add(self, cron: Any) -> Any:
        cron.start()  # parses the expression and arms a loop timer
        return cron

    def remove(self, cron: Any) -> None:
        cron.stop()


SYSTEMS: dict[str, type] = {
    cls.key: cls for cls in (RawAsyncio, RawAsyncioTask, Beat, APScheduler, Aiocron)
}
