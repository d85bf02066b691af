"""The lazily purged min-heap of fire instants. No asyncio in here.

The design is CPython asyncio's timer heap, adapted to jobs that can be removed, re-added,
paused and rescheduled:

* An entry is a :class:`TimeEvent` ``(when, sequence, job_id, generation)``. ``when`` is the
  fire instant in epoch microseconds (UTC); ``sequence`` is unique and increasing, so equal
  instants pop in insertion order and job ids are never compared. ``job_id`` is the job's
  UUID as its 128-bit integer (``UUID.int``): checking an entry then touches no UUID object,
  which is what a rebuild of a large heap spends its time on (cache misses).
* Removing a job is O(1): the job leaves the scheduler's dict and its entry stays behind.
  **Invariant:** an entry is *live* only if its job id is still registered **and** that job's
  current generation equals the entry's. Every add, reschedule, pause or resume gives the job
  a new generation, so a removed-then-re-added id can never fire from an old entry (trio's
  ``Deadlines`` calls these duplicates).
* Stale entries are dropped when they reach the top, and the whole heap is rebuilt once it
  holds more than ``_COMPACT_FACTOR`` entries per live job plus ``_COMPACT_FLOOR``: at that
  point at least three quarters are stale, so the O(n) rebuild is paid for by the O(n)
  removals that made them — amortised O(1) per removal, and the heap never exceeds
  ``4 × live + floor`` (``tests/test_queue.py::test_heap_stays_bounded_through_random_churn``).
"""

from __future__ import annotations

import heapq
from collections.abc import Callable
from typing import NamedTuple

__all__ = ["TimeEvent", "TimerQueue"]

# Rebuild once entries exceed this many per live job: 4 keeps memory within a small constant
# of the live set while making rebuilds rare (three quarters of the heap must be stale).
_COMPACT_FACTOR = 4
# ...plus this many, so a scheduler with a handful of jobs does not rebuild on every removal.
_COMPACT_FLOOR = 64


class TimeEvent(NamedTuple):
    """One heap entry: a job's next fire instant."""

    when: int  # epoch microseconds, UTC
    sequence: int  # unique, increasing: FIFO among equal instants
    job_id: int  # the job's UUID.int
    generation: int  # the job's generation when this entry was pushed


_new_event = tuple.__new__  # builds a TimeEvent without NamedTuple's keyword-parsing __new__


class TimerQueue:
    """A min-heap of :class:`TimeEvent` with lazy deletion and bounded garbage.

    The owner (the scheduler), which holds the jobs, decides liveness: ``is_live(event)`` for
    one entry, and ``live_entries(entries)`` — the same test over a whole list, which the
    owner can write as one comprehension, several times faster per entry than calling
    ``is_live`` — for rebuilds.
    """

    __slots__ = ("_heap", "_is_live", "_live_entries", "_sequence", "compactions")

    def __init__(
        self,
        is_live: Callable[[TimeEvent], bool],
        live_entries: Callable[[list[TimeEvent]], list[TimeEvent]] | None = None,
    ) -> None:
        self._heap: list[TimeEvent] = []
        self._is_live = is_live
        self._live_entries = live_entries or (lambda heap: [e for e in heap if is_live(e)])
        self._sequence = 0
        self.compactions = 0

    def __len__(self) -> int:
        """Entries in the heap, live and stale."""
        return len(self._heap)

    def push(self, when: int, job_id: int, generation: int) -> None:
        """Add an entry; O(log n)."""
        self._sequence += 1
        heapq.heappush(
            self._heap, _new_event(TimeEvent, (when, self._sequence, job_id, generation))
        )

    def new_generation(self) -> int:
        """A fresh generation number, never handed out before (shares the sequence counter).

        A job's first entry is pushed with ``push(when, id, gen)`` right after, so its
        sequence and generation are the same int object: one allocation fewer per job.
        """
        self._sequence += 1
        return self._sequence

    def push_first(self, when: int, job_id: int, generation: int) -> None:
        """Push the entry that opens ``generation`` (from :meth:`new_generation`)."""
        heapq.heappush(self._heap, _new_event(TimeEvent, (when, generation, job_id, generation)))

    def peek(self) -> TimeEvent | None:
        """The earliest live entry, dropping stale ones on the way; ``None`` if empty."""
        heap = self._heap
        is_live = self._is_live
        while heap:
            top = heap[0]
            if is_live(top):
                return top
            heapq.heappop(heap)
        return None

    def pop_due(self, now: int) -> TimeEvent | None:
        """Remove and return the earliest live entry due at or before ``now``, else ``None``."""
        heap = self._heap
        is_live = self._is_live
        while heap:
            top = heap[0]
            if top[0] > now:
                return None
            heapq.heappop(heap)
            if is_live(top):
                return top
        return None

    def pop(self) -> TimeEvent:
        """Remove and return the top entry (call :meth:`peek` first)."""
        return heapq.heappop(self._heap)

    @staticmethod
    def limit(live: int) -> int:
        """Entries allowed for ``live`` jobs before a rebuild."""
        return _COMPACT_FACTOR * live + _COMPACT_FLOOR

    def maybe_compact(self, live: int) -> bool:
        """Rebuild from live entries if garbage exceeds the bound; True if it did."""
        if len(self._heap) <= _COMPACT_FACTOR * live + _COMPACT_FLOOR:
            return False
        self.compact()
        return True

    def compact(self) -> None:
        """Rebuild the heap from its live entries: O(n)."""
        self._heap = self._live_entries(self._heap)
        heapq.heapify(self._heap)
        self.compactions += 1

    def clear(self) -> None:
        self._heap.clear()
