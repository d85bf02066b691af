"""Liveness: :class:`Health` (what a readiness probe reads) and the instance heartbeat.

``Scheduler.health()`` builds a :class:`Health` from plain attribute reads, never awaiting
anything, so a probe handler can call it on the loop as often as it likes.

A scheduler with a store records itself in the store (:meth:`Store.record_instance`) when it
starts and then every ``every`` seconds on its clock, with a ``ttl`` of three periods, so
``store.list_instances()`` (the dashboard, ``python -m beat instances``) lists every live
instance and forgets a dead one within ``3 × every`` seconds. A clean shutdown removes the
record at once. A heartbeat that fails is logged once per outage and tried again next period;
it never stops the scheduler.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from ._timers import from_us
from ._units import seconds_to_us

if TYPE_CHECKING:
    from ._clock import Clock
    from .stores import Store

__all__ = ["HEARTBEAT_TTL_PERIODS", "Health", "InstanceHeartbeat"]

log = logging.getLogger("beat.scheduler")

#: An instance is listed until this many heartbeat periods after its last one.
HEARTBEAT_TTL_PERIODS = 3


@dataclass(frozen=True, slots=True)
class Health:
    """A scheduler's liveness at one moment (``Scheduler.health()``).

    ``alive``: the loop task is running. ``last_tick``: when the loop last read the clocks
    (each wake-up; ``None`` before the first). ``lag``: seconds the loop is overdue — past
    the deadline it went to sleep for, or awake and busy since ``last_tick`` — ``0.0`` when
    on time; a blocked event loop shows here. ``running``: scheduled runs plus durable jobs
    in progress. ``store_outage`` / ``coordinator_outage``: seconds the worker's store / the
    coordinator has been unreachable (``None`` when reachable or not used). ``heartbeat``:
    when this instance last recorded itself in the store (``None`` without a store).
    """

    alive: bool
    state: str
    last_tick: datetime | None
    lag: float
    running: int
    store_outage: float | None
    coordinator_outage: float | None
    heartbeat: datetime | None

    def ok(self, max_lag: float = 5.0) -> bool:
        """Ready to serve: the loop runs, is at most ``max_lag`` s behind, and nothing it
        depends on is unreachable."""
        return (
            self.alive
            and self.lag <= max_lag
            and self.store_outage is None
            and self.coordinator_outage is None
        )


class InstanceHeartbeat:
    """Records one instance in the store every ``every`` seconds until :meth:`stop`."""

    def __init__(
        self,
        store: Store,
        name: str,
        clock: Clock,
        every: float,
        info: Callable[[], Mapping[str, Any]],
    ) -> None:
        self._store = store
        self._name = name
        self._clock = clock
        self._every = every
        self._info = info
        self._task: asyncio.Task[None] | None = None
        self._started_at: datetime | None = None
        self._failing = False
        self.last: datetime | None = None  # wall time of the last recorded heartbeat

    @property
    def name(self) -> str:
        return self._name

    def start(self) -> None:
        """Record now, then every period (a task of the running loop)."""
        if self._task is None:
            self._started_at = from_us(seconds_to_us(self._clock.time()))
            self._task = asyncio.get_running_loop().create_task(
                self._loop(), name=f"beat-instance-heartbeat:{self._name}"
            )

    async def stop(self) -> None:
        """Stop beating and remove the record (a clean shutdown). Never raises."""
        task, self._task = self._task, None
        if task is None:
            return
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        try:
            await self._store.remove_instance(self._name)
        except Exception as exc:
            log.warning(
                "instance %s: could not remove its record (%s); it expires in %g s",
                self._name,
                exc,
                self._every * HEARTBEAT_TTL_PERIODS,
            )

    async def _loop(self) -> None:
        while True:
            await self.beat()
            await self._clock.sleep(self._every)

    async def beat(self) -> None:
        """Record this instance now; log (once per outage) instead of raising."""
        assert self._started_at is not None  # internal: start() sets it first
        try:
            await self._store.record_instance(
                self._name,
                host=socket.gethostname(),
                pid=os.getpid(),
                started_at=self._started_at,
                info=dict(self._info()),
                ttl=self._every * HEARTBEAT_TTL_PERIODS,
            )
        except Exception as exc:
            if not self._failing:
                log.warning("instance %s: heartbeat not recorded: %s", self._name, exc)
            self._failing = True
            return
        if self._failing:
            log.info("instance %s: heartbeat recorded again", self._name)
        self._failing = False
        self.last = from_us(seconds_to_us(self._clock.time()))
