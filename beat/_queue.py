"""The lazily purged min-heap of fire instants. No asyncio in here.

The design is CPython asyncio's timer heap, adapted to jobs that can be removed, re-added,
paused and rescheduled:

* An entry is a :class:`TimeEvent` ``(when, sequence, owner, generation)``. ``when`` is the
  fire instant in epoch microseconds (UTC); ``sequence`` is unique and increasing, so equal
  instants pop in insertion order and owners are never compared. ``owner`` is the job's
  runtime state (anything with a ``gen`` attribute: ``_registry.JobState``).
* **Invariant (the one liveness test, :func:`is_live`):** an entry is live only if its owner's
  current generation equals the entry's. Every add, reschedule and catch-up gives the job a new
  generation and removal sets it to :data:`DEAD`, so removing is O(1) (the entry just goes
  stale) and a removed-then-re-added job can never fire from an old entry (trio's
  ``Deadlines`` calls these duplicates). A job has at most one live entry.
* Stale entries are dropped when they reach the top. Once the heap holds more than
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
from typing import Any, NamedTuple

__all__ = ["DEAD", "TimeEvent", "TimerQueue", "is_live"]

# Compact once entries exceed this many per live job: at that point at least three quarters
# of the heap is stale, so the O(n) rebuild is paid for by the removals that made the garbage.
_COMPACT_FACTOR = 4
# ...plus this many, so a scheduler with a handful of jobs does not compact on every removal.
_COMPACT_FLOOR = 64
# Entries examined per compaction step: a step costs well under 5 ms even when every entry
# of the chunk is live and has to be pushed (see benchmarks/README.md, "loop stall").
_COMPACT_CHUNK = 4096

#: The generation of a removed job: never handed out, so none of its entries is live.
DEAD = 0


class TimeEvent(NamedTuple):
    """One heap entry: a job's next fire instant."""

    when: int  # epoch microseconds, UTC
    sequence: int  # unique, increasing: FIFO among equal instants
    owner: Any  # the job's runtime state (has .gen); never compared: sequence is unique
    generation: int  # the owner's generation when this entry was pushed

    @property
    def job_id(self) -> int:
        """The job's id as ``UUID.int`` (kept for compatibility)."""
        return int(self.owner.job.id.int)


_new_event = tuple.__new__  # builds a TimeEvent without NamedTuple's keyword-parsing __new__


def is_live(entry: TimeEvent) -> bool:
    """The liveness test: the entry's generation is still its owner's."""
    return bool(entry[2].gen == entry[3])


class TimerQueue:
    """A min-heap of :class:`TimeEvent` with lazy deletion and incremental compaction."""

    __slots__ = ("_draining", "_heap", "_sequence", "compactions")

    def __init__(self) -> None:
        self._heap: list[TimeEvent] = []  # takes every push; a valid heap at all times
        # The heap being compacted: only shrinks (chunks cut off its end), a valid heap at
        # all times; empty unless a compaction is in progress.
        self._draining: list[TimeEvent] = []
        self._sequence = 0
        self.compactions = 0

    def __len__(self) -> int:
        """Entries held, live and stale."""
        return len(self._heap) + len(self._draining)

    def new_generation(self) -> int:
        """A fresh generation number, never handed out before (shares the sequence counter).

        A job's first entry is pushed with :meth:`push_first` right after, so its sequence
        and generation are the same int object: one allocation fewer per job.
        """
        self._sequence += 1
        return self._sequence

    def push(self, when: int, owner: Any, generation: int) -> None:
        """Add an entry; O(log n)."""
        self._sequence += 1
        heapq.heappush(self._heap, _new_event(TimeEvent, (when, self._sequence, owner, generation)))

    def push_first(self, when: int, owner: Any, generation: int) -> None:
        """Push the entry that opens ``generation`` (from :meth:`new_generation`)."""
        heapq.heappush(self._heap, _new_event(TimeEvent, (when, generation, owner, generation)))

    def peek(self) -> TimeEvent | None:
        """The earliest entry, dropping stale ones on the way; ``None`` if empty.

        While compacting, the draining heap's top is returned even if stale: dropping every
        stale entry there one ``heappop`` at a time is exactly the work compaction spreads
        out. A stale top only makes the loop wake once at its instant and pop it.
        """
        heap = self._heap
        while heap and not is_live(heap[0]):
            heapq.heappop(heap)
        top = heap[0] if heap else None
        draining = self._draining
        if draining and (top is None or draining[0] < top):
            return draining[0]
        return top

    def pop_due(self, now: int) -> TimeEvent | None:
        """Remove and return the earliest live entry due at or before ``now``, else ``None``.

        Stale entries are dropped only once due, so the cost stays with the entries popped.
        """
        heap = self._heap
        draining = self._draining
        if not draining:  # the common case: one heap
            while heap:
                top = heap[0]
                if top[0] > now:
                    return None
                heapq.heappop(heap)
                if is_live(top):
                    return top
            return None
        while True:
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
            if is_live(top):
                return top

    # -- compaction ----------------------------------------------------------------------
    @property
    def compacting(self) -> bool:
        return bool(self._draining)

    def compact_step(self) -> bool:
        """Do one bounded step of compaction (starting one if none runs); True while unfinished."""
        if not self._draining:
            self._draining, self._heap = self._heap, []
            self.compactions += 1
        draining = self._draining
        chunk = draining[-_COMPACT_CHUNK:]
        del draining[-_COMPACT_CHUNK:]
        heap = self._heap
        push = heapq.heappush
        for entry in chunk:
            if entry[2].gen == entry[3]:  # is_live, inlined: the step's inner loop
                push(heap, entry)
        return bool(draining)

    def clear(self) -> None:
        self._heap.clear()
        self._draining.clear()
