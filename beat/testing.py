"""Tools for testing code that uses beat — and for beat's own tests.

:class:`FakeClock` replaces the real clock: nothing moves until the test says so, and
``await clock.advance(...)`` runs everything that comes due, in order, deterministically::

    clock = FakeClock(datetime(2026, 3, 1, tzinfo=UTC))
    async with Scheduler(clock=clock) as scheduler:
        scheduler.add_job(Job.every(timedelta(minutes=5)).do(job))
        await clock.advance(timedelta(minutes=15))   # job ran three times, instantly

What it drives: the scheduler's sleeps, run timeouts, retry backoff, jitter, shutdown
deadlines, and ``ctx.sleep`` inside jobs. What it cannot drive: ``asyncio.sleep`` called
directly and plain (sync) job functions, which run in real threads — await
:meth:`beat.Scheduler.wait_next_run` for those.

:class:`EventRecorder` collects the scheduler's events for assertions.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from types import TracebackType
from typing import TYPE_CHECKING, TypeVar

from ._events import Event, RunEvent, RunSucceeded
from ._units import seconds_to_us, us_to_seconds

if TYPE_CHECKING:
    from ._scheduler import Scheduler

__all__ = ["EventRecorder", "FakeClock"]

E = TypeVar("E", bound=Event)

_DEFAULT_START = datetime(2026, 1, 1, tzinfo=UTC)
# Yields per settle when the loop's ready queue cannot be inspected (e.g. uvloop).
_BLIND_SETTLE_ROUNDS = 64


class _Handle:
    __slots__ = ("callback", "cancelled")

    def __init__(self, callback: Callable[[], None]) -> None:
        self.callback = callback
        self.cancelled = False

    def cancel(self) -> None:
        self.cancelled = True


class FakeClock:
    """A clock that moves only when told to; implements :class:`beat.Clock`.

    ``start`` is the initial wall time (aware; default 2026-01-01T00:00Z). Wall time is kept
    in integer microseconds so instants computed from it are exact.
    """

    def __init__(self, start: datetime = _DEFAULT_START) -> None:
        if start.tzinfo is None:
            raise ValueError(f"FakeClock start must be timezone-aware, got {start!r}")
        self._wall_us = (start - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(microseconds=1)
        self._mono_us = 0
        self._timers: list[tuple[int, int, _Handle]] = []
        self._sequence = itertools.count()

    # -- the Clock protocol ------------------------------------------------------------
    def time(self) -> float:
        return us_to_seconds(self._wall_us)

    def monotonic(self) -> float:
        return us_to_seconds(self._mono_us)

    async def sleep(self, delay: float) -> None:
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()

        def wake() -> None:
            if not future.done():
                future.set_result(None)

        handle = self._call_later(delay, wake)
        try:
            await future
        finally:
            handle.cancel()

    def timeout(self, delay: float | None) -> _FakeTimeout:
        return _FakeTimeout(self, delay)

    # -- moving time -----------------------------------------------------------------------
    @property
    def now(self) -> datetime:
        """The current fake wall time (aware, UTC)."""
        return datetime(1970, 1, 1, tzinfo=UTC) + timedelta(microseconds=self._wall_us)

    async def advance(self, delta: timedelta | float) -> None:
        """Move both clocks forward by ``delta``, running everything due on the way.

        Time moves to each pending deadline in turn; after each step the event loop runs
        until nothing is ready, so each fire's consequences happen before the next deadline.
        """
        step_us = _to_us(delta)
        if step_us < 0:
            raise ValueError(f"advance() cannot go backwards ({delta!r}); use jump() for that")
        target = self._mono_us + step_us
        await self.settle()
        while self._timers and self._timers[0][0] <= target:
            when, _, handle = heapq.heappop(self._timers)
            if handle.cancelled:
                continue
            self._move_to(when)
            handle.callback()
            await self.settle()
        self._move_to(target)
        await self.settle()

    def jump(self, delta: timedelta | float) -> None:
        """Step the wall clock only (NTP step, ``date -s``, VM restore); monotonic stays.

        The scheduler notices at its next wake, at most its ``max_sleep`` later.
        """
        self._wall_us += _to_us(delta)

    async def settle(self) -> None:
        """Let the event loop run until no callback is ready."""
        loop = asyncio.get_running_loop()
        ready = getattr(loop, "_ready", None)
        if ready is None:
            for _ in range(_BLIND_SETTLE_ROUNDS):
                await asyncio.sleep(0)
            return
        await asyncio.sleep(0)
        quiet = 0
        while quiet < 2:  # twice in a row, so callbacks queued by the last ones ran too
            quiet = quiet + 1 if not ready else 0
            await asyncio.sleep(0)

    # -- internals -------------------------------------------------------------------------
    def _move_to(self, mono_us: int) -> None:
        if mono_us > self._mono_us:
            self._wall_us += mono_us - self._mono_us
            self._mono_us = mono_us

    def _call_later(self, delay: float, callback: Callable[[], None]) -> _Handle:
        handle = _Handle(callback)
        delay_us = max(0, seconds_to_us(delay))
        if delay_us == 0:
            asyncio.get_running_loop().call_soon(lambda: None if handle.cancelled else callback())
        else:
            entry = (self._mono_us + delay_us, next(self._sequence), handle)
            heapq.heappush(self._timers, entry)
        return handle

    def __repr__(self) -> str:
        return f"FakeClock(now={self.now.isoformat()!r}, monotonic={self.monotonic():.6f})"


class _FakeTimeout:
    """``asyncio.timeout`` on fake time: cancels the task at the deadline, raises TimeoutError."""

    __slots__ = ("_clock", "_delay", "_expired", "_handle", "_task")

    def __init__(self, clock: FakeClock, delay: float | None) -> None:
        self._clock = clock
        self._delay = delay
        self._expired = False
        self._handle: _Handle | None = None
        self._task: asyncio.Task[object] | None = None

    async def __aenter__(self) -> None:
        if self._delay is None:
            return
        self._task = asyncio.current_task()
        self._handle = self._clock._call_later(self._delay, self._expire)

    def _expire(self) -> None:
        if self._task is not None and not self._task.done():
            self._expired = True
            self._task.cancel()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._handle is not None:
            self._handle.cancel()
        if (
            self._expired
            and exc_type is asyncio.CancelledError
            and self._task is not None
            and self._task.uncancel() == 0
        ):
            raise TimeoutError from exc


class EventRecorder:
    """Subscribes to a scheduler and keeps every event, for assertions.

    ``recorder.of(RunSucceeded)`` lists events of a type; ``recorder.fired(name)`` lists the
    scheduled instants of successful runs of a job, in order.
    """

    def __init__(self, scheduler: Scheduler, *types: type[Event]) -> None:
        self.events: list[Event] = []
        self._scheduler = scheduler
        self._arrived = asyncio.Event()
        self._token = scheduler.subscribe(self._record, *types)

    def _record(self, event: Event) -> None:
        self.events.append(event)
        self._arrived.set()

    async def wait_for(self, kind: type[E], count: int = 1) -> list[E]:
        """Wait until at least ``count`` events of ``kind`` arrived; return them.

        Bound it with ``asyncio.timeout`` when the scheduler runs on real time.
        """
        while len(found := self.of(kind)) < count:
            self._arrived.clear()
            await self._arrived.wait()
        return found

    def of(self, kind: type[E]) -> list[E]:
        return [e for e in self.events if isinstance(e, kind)]

    def fired(self, name: str) -> list[datetime]:
        return [e.when for e in self.of(RunSucceeded) if e.name == name]

    def runs(self, name: str, kind: type[RunEvent] = RunEvent) -> list[RunEvent]:
        return [e for e in self.of(kind) if e.name == name]

    def close(self) -> None:
        self._scheduler.unsubscribe(self._token)


def _to_us(delta: timedelta | float) -> int:
    if isinstance(delta, timedelta):
        return delta // timedelta(microseconds=1)
    return seconds_to_us(delta)
