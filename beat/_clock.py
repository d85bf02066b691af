"""Where the scheduler gets its time from.

A :class:`Clock` gives two readings and two ways to wait:

* ``time()`` — the wall clock, POSIX seconds. Fire instants are wall-clock instants, so the
  scheduler re-reads this after every wake; it may jump (NTP, ``date -s``, suspend, VM restore).
* ``monotonic()`` — seconds that never go backwards; used to measure how long a sleep really
  lasted, which is how a wall-clock jump is told apart from ordinary progress.
* ``sleep(delay)`` and ``timeout(delay)`` — waiting measured on this clock.

Every wait in beat goes through the scheduler's clock, so a test that injects
:class:`beat.testing.FakeClock` drives the whole scheduler — fires, timeouts, retries,
backoff and shutdown deadlines — without real sleeping.
"""

from __future__ import annotations

import asyncio
import time
from contextlib import AbstractAsyncContextManager
from typing import Protocol, runtime_checkable

__all__ = ["Clock", "SystemClock"]


@runtime_checkable
class Clock(Protocol):
    """The time source and waiting primitive a :class:`~beat.Scheduler` uses."""

    def time(self) -> float:
        """Wall-clock time in POSIX seconds (may jump in either direction)."""
        ...

    def monotonic(self) -> float:
        """Seconds from an arbitrary origin; never decreases."""
        ...

    async def sleep(self, delay: float) -> None:
        """Suspend the calling task for ``delay`` seconds of this clock."""
        ...

    def timeout(self, delay: float | None) -> AbstractAsyncContextManager[object]:
        """An ``async with`` block cancelled after ``delay`` seconds; raises ``TimeoutError``.

        ``None`` means no limit. Semantics match :func:`asyncio.timeout`.
        """
        ...


class SystemClock:
    """The real clocks: :func:`time.time`, the running loop's monotonic time, asyncio waits."""

    __slots__ = ()

    def time(self) -> float:
        return time.time()

    def monotonic(self) -> float:
        return time.monotonic()

    async def sleep(self, delay: float) -> None:
        await asyncio.sleep(delay)

    def timeout(self, delay: float | None) -> AbstractAsyncContextManager[object]:
        return asyncio.timeout(delay)

    def __repr__(self) -> str:
        return "SystemClock()"
