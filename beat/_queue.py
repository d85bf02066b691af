"""The lazily purged min-heap of fire instants. No asyncio in here.

The design is CPython asyncio's timer heap, adapted to jobs that can be removed, re-added,
paused and rescheduled:

* An entry is a :class:`TimeEvent` ``(when, sequence, job_id, generation)``. ``when`` is the
  fire instant in epoch microseconds (UTC); ``sequence`` is unique and increasing, so equal
  instants pop in insertion order and job ids are never compared; ``job_id`` is the job's
  ``UUID.int``. Entries hold integers only: the cyclic GC untracks them, so a million waiting
  jobs add nothing to its collections.
* **Invariant (the one liveness test, :meth:`TimerQueue.owner_if_live`):** an entry is live
  only if its job id is registered (in ``owners``, the registry's dict) **and** that owner's
  current generation equals the entry's. Every add, reschedule and catch-up gives the job a
  new generation, so removing is O(1) (the entry just goes stale) and a removed-then-re-added
  job can never fire from an old entry (trio's ``Deadlines`` calls these duplicates). A job
  has at most one live entry, at its ``next_us``.
* Stale entries are dropped when they come due. Once the heap holds more than
  ``_COMPACT_FACTOR`` entries per live job plus ``_COMPACT_FLOOR`` (the registry counts the
  entries it makes stale and decides), it is compacted, **incrementally**: the full heap
  becomes the *draining* heap and a fresh heap takes new pushes; each
  :meth:`TimerQueue.compact_step` cuts a chunk off the draining heap's end (a prefix of a
  heap array is still a heap) and moves its live entries over. Both heaps stay valid heaps
  throughout, so pops take the smaller top of the two and nothing is skipped or seen twice.
  The owner (the scheduler's loop) runs one step per loop iteration, so no rebuild holds the
  loop for longer than one chunk, however large the heap (``tests/test_queue.py``).
"""

from __future__ import annotations

import heapq
from collections.abc import Mapping
from typing import Any, NamedTuple, Protocol

__all__ = ["DEAD", "TimeEvent", "TimerQueue"]

# Compact once entries exceed this many per live job: at that point at least three quarters
# of the heap is stale, so the O(n) rebuild is paid for by the removals that made the garbage.
_COMPACT_FACTOR = 4
# ...plus this many, so a scheduler with a handful of jobs does not compact on every removal.
_COMPACT_FLOOR = 64
# Entries examined per compaction step, and stale entries dropped per peek or pop: the most
# cleanup one loop iteration does, so none holds the loop for long whatever the heap size
# (benchmarks/README.md, "loop stall").
_COMPACT_CHUNK = 1024

#: The generation of a removed job: never handed out, so none of its entries is live.
DEAD = 0


class TimeEvent(NamedTuple):
    """One heap entry: a job's next fire instant."""

    when: int  # epoch microseconds, UTC
    sequence: int  # unique, increasing: FIFO among equal instants
    job_id: int  # the job's UUID.int
    generation: int  # the job's generation when this entry was pushed


class _Owner(Protocol):
    gen: int


_new_event = tuple.__new__  # builds a TimeEvent without NamedTuple's keyword-parsing __new__


class TimerQueue:
    """A min-heap of :class:`TimeEvent` with lazy deletion and incremental compaction.

    ``owners`` maps job ids to their runtime state (anything with ``gen``); the queue only
    reads it.
    """

    __slots__ = ("_draining", "_heap", "_owners", "_sequence", "compactions")

    def __init__(self, owners: Mapping[int, Any]) -> None:
        self._owners = owners
        self._heap: list[TimeEvent] = []  # takes every push; a valid heap at all times
        # The heap being compacted: only shrinks (chunks cut off its end), a valid heap at
        # all times; empty unless a compaction is in progress.
        self._draining: list[TimeEvent] = []
        self._sequence = 0
        self.compactions = 0

    def __len__(self) -> int:
        """Entries held, live and stale."""
        return len(self._heap) + len(self._draining)

    def owner_if_live(self, entry: TimeEvent) -> Any:
        """The entry's owner if the entry is live (see the module docstring), else ``None``."""
        owner = self._owners.get(entry[2])
        return owner if owner is not None and owner.gen == entry[3] else None

    def push(self, when: int, job_id: int, generation: int) -> None:
        """Add an entry for an existing generation; O(log n)."""
        self._sequence += 1
        heapq.heappush(
            self._heap, _new_event(TimeEvent, (when, self._sequence, job_id, generation))
        )

    def new_generation(self) -> int:
        """A fresh generation number, never handed out before (shares the sequence counter)."""
        self._sequence += 1
        return self._sequence

    def push_first(self, when: int, job_id: int, generation: int) -> None:
        """Push the entry that opens ``generation`` (from :meth:`new_generation`): its
        sequence and generation are the same int object, one allocation fewer per job."""
        heapq.heappush(self._heap, _new_event(TimeEvent, (when, generation, job_id, generation)))

    def peek(self) -> TimeEvent | None:
        """The earliest entry, dropping stale ones on the way; ``None`` if empty.

        At most ``_COMPACT_CHUNK`` stale entries are dropped per call, and while compacting
        the draining heap's top is returned even if stale: dropping a long run of stale
        entries one ``heappop`` at a time is exactly the work compaction spreads out. A stale
        top only makes the loop wake at its instant and pop it.
        """
        heap = self._heap
        for _ in range(_COMPACT_CHUNK):  # bounded: a stale top left here only wakes early
            if not heap or self.owner_if_live(heap[0]) is not None:
                break
            heapq.heappop(heap)
        top = heap[0] if heap else None
        draining = self._draining
        if draining and (top is None or draining[0] < top):
            return draining[0]
        return top

    def pop_due(self, now: int) -> Any:
        """Remove the earliest live entry due at or before ``now`` and return its owner (the
        entry's instant is the owner's ``next_us``), or ``None``. Stale entries are dropped
        only once due, at most ``_COMPACT_CHUNK`` per call (then ``None``: the caller's
        next peek sees a due top and comes back at once)."""
        heap = self._heap
        draining = self._draining
        for _ in range(_COMPACT_CHUNK):
            if draining and (not heap or draining[0] < heap[0]):
                source = draining
            elif heap:
                source = heap
            else:
                return None
            top = source[0]
            if top[0] > now:
                return None
            heapq.heappop(source)
            owner = self.owner_if_live(top)
            if owner is not None:
                return owner
        return None

    # -- compaction ----------------------------------------------------------------------
    @property
    def compacting(self) -> bool:
        return bool(self._draining)

    def compact_step(self) -> bool:
        """Do one bounded step of compaction (starting one if none runs); True if unfinished."""
        if not self._draining:
            self._draining, self._heap = self._heap, []
            self.compactions += 1
        draining = self._draining
        chunk = draining[-_COMPACT_CHUNK:]
        del draining[-_COMPACT_CHUNK:]
        heap = self._heap
        push = heapq.heappush
        live = self.owner_if_live
        for entry in chunk:
            if live(entry) is not None:
                push(heap, entry)
        return bool(draining)

    def clear(self) -> None:
        self._heap.clear()
        self._draining.clear()
