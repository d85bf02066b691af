"""``Waits``: which of a store object's waits are parked, so a change can follow them.

A store's ``wait_*`` methods first look (is a job claimable? is this job finished? has the
schedule version moved?) and only then sleep until woken, due or timed out: they *park*. A
change made before a waiter parks is seen by its look; one made after is seen only through
the wake-up (a same-object signal, a doorbell ring, a ``NOTIFY``) or the fallback poll. To
show that a wake-up works, a test must make its change after the waiter parked. Sleeping
"long enough" proves nothing; :meth:`Waits.until_parked` says when.

Each store object owns one ``Waits`` (``store.waits``) and does every sleep of its
``wait_*`` methods through :meth:`Waits.sleep` (or inside :meth:`Waits.parking`). Used on
the store's event loop only.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator

__all__ = ["Waits"]


class Waits:
    """The parked waits of one store object: :attr:`parked` now, :attr:`total` ever."""

    __slots__ = ("_watchers", "parked", "total")

    def __init__(self) -> None:
        self.parked = 0  # waits asleep right now
        self.total = 0  # times any wait has parked; only grows
        # Callers of until_parked: (total to reach, their future).
        self._watchers: list[tuple[int, asyncio.Future[None]]] = []

    @contextlib.contextmanager
    def parking(self) -> Iterator[None]:
        """Around a wait's sleep (after its look): counts it as parked meanwhile."""
        self.parked += 1
        self.total += 1
        if self._watchers:
            self._release()
        try:
            yield
        finally:
            self.parked -= 1

    async def sleep(self, future: asyncio.Future[None], timeout: float | None) -> None:
        """Parked, until ``future`` is done (a wake-up) or ``timeout`` seconds pass
        (``None``: no limit). Never cancels ``future``: its owner may still be woken by it
        or discard it."""
        with self.parking():
            await asyncio.wait((future,), timeout=timeout)

    def _release(self) -> None:
        keep = []
        for target, future in self._watchers:
            if future.done():
                continue
            if self.total >= target:
                future.set_result(None)
            else:
                keep.append((target, future))
        self._watchers = keep

    async def until_parked(self, since: int, count: int = 1) -> None:
        """Return once ``count`` waits have parked after :attr:`total` read ``since``. Read
        ``since`` before starting the waits (they may park before this is called). No
        timeout of its own: wrap it in ``asyncio.timeout``."""
        target = since + count
        if self.total >= target:
            return
        future = asyncio.get_running_loop().create_future()
        self._watchers.append((target, future))
        await future
