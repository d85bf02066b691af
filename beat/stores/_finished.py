"""``ResultWaits``: the ``wait_finished`` callers of one database store object, and the one
sweep that looks for all of them.

A result wait registers a future under its job's id, reads the job, and sleeps until the
future is woken or its timeout passes. Two things wake futures:

- a wake-up naming the job (a PostgreSQL ``NOTIFY`` carries the ids it finished):
  :meth:`ResultWaits.finished` wakes that job's waiters only;
- the *sweep*, one task per store object that runs while any result is awaited: after a
  wake-up that names no job (a SQLite doorbell ring: :meth:`ResultWaits.look_now`) and every
  ``poll`` seconds, one statement (``settled``) says which awaited jobs have finished or are
  gone, and only their waiters wake to read their job.

Without the sweep each waiter looked on its own: 1,000 results awaited in one process cost
~500 reads per finished job on SQLite, and 200 reads a second of fallback polling on
PostgreSQL, in bursts that held up that process's enqueues. Used on the store's event loop
only.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING
from uuid import UUID

from ._errors import JobNotFoundError, StoreUnavailableError

if TYPE_CHECKING:
    from ._base import JobRecord, Store

__all__ = ["ResultWaits"]

Settled = Callable[[list[UUID]], Awaitable[list[UUID]]]
"""Of these job ids, those that are finished or no longer stored: one statement."""


class ResultWaits:
    """The result waits of ``store`` (see the module docstring).

    ``settled`` answers the sweep's look; ``before_look`` (optional) runs before each of the
    sweep's looks, and may raise :class:`StoreUnavailableError` (PostgreSQL reopens its
    notification connection there, so waits parked across a lost connection are notified
    again)."""

    __slots__ = ("_before_look", "_poll", "_rung", "_settled", "_store", "_sweeper", "_waiters")

    def __init__(
        self,
        store: Store,
        settled: Settled,
        poll: float,
        before_look: Callable[[], Awaitable[None]] | None = None,
    ) -> None:
        self._store = store
        self._settled = settled
        self._poll = poll
        self._before_look = before_look
        # job id -> the futures of its waiters. A key is present exactly while some wait
        # on that job is registered; the sweep runs while the dict is not empty.
        self._waiters: dict[UUID, set[asyncio.Future[None]]] = {}
        self._sweeper: asyncio.Task[None] | None = None
        # The running sweep's; set: it looks at once, not at its next poll. A new one per
        # sweep, so a store reopened on another event loop gets one of that loop.
        self._rung: asyncio.Event | None = None

    async def wait(self, key: UUID, timeout: float) -> JobRecord:
        """:meth:`Store.wait_finished`: register, read the job, sleep until woken or timed
        out; repeat. Registered before each read, so a finish between the two still wakes
        it."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            future = loop.create_future()
            registered = self._waiters.setdefault(key, set())
            registered.add(future)
            try:
                record = await self._store.get(key)
                if record is None:
                    raise JobNotFoundError(f"no job with id {key}")
                if record.status.finished:
                    return record
                left = deadline - loop.time()
                if left <= 0:
                    raise TimeoutError(f"job {key} is still {record.status} after {timeout:g} s")
                if self._sweeper is None or self._sweeper.done():
                    # Its first look covers a finish since this read.
                    self._rung = asyncio.Event()
                    self._sweeper = loop.create_task(self._sweep(self._rung), name="beat-results")
                await self._store.waits.sleep(future, left)
            finally:
                registered.discard(future)
                if not registered and self._waiters.get(key) is registered:
                    del self._waiters[key]

    def finished(self, key: UUID) -> None:
        """Job ``key`` may have finished: its waiters read it again."""
        self._wake(self._waiters.get(key))

    def look_now(self) -> None:
        """Some job may have finished: the sweep looks at once for every awaited one."""
        if self._rung is not None:
            self._rung.set()

    def close(self) -> None:
        """The store closed: stop the sweep; every waiter wakes (its read then fails)."""
        if self._sweeper is not None:
            self._sweeper.cancel()
        for waiters in self._waiters.values():
            self._wake(waiters)

    @staticmethod
    def _wake(waiters: set[asyncio.Future[None]] | None) -> None:
        for future in waiters or ():
            if not future.done():
                future.set_result(None)

    async def _sweep(self, rung: asyncio.Event) -> None:
        """While any job is awaited: look once, then after each ring or ``poll`` seconds,
        whichever comes first. Rings during a look make one more look."""
        while self._waiters:
            rung.clear()
            keys = list(self._waiters)
            try:
                if self._before_look is not None:
                    await self._before_look()
                settled = await self._settled(keys)
            except StoreUnavailableError:
                settled = keys  # each waiter's own read reports it
            for key in settled:
                self.finished(key)
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self._poll):
                    await rung.wait()
