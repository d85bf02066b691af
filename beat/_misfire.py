"""Deciding what to do with fires that could not start on time (docs/guarantees.md §3).

Pure functions over epoch microseconds; the scheduler applies the decision.
"""

from __future__ import annotations

from dataclasses import dataclass

from ._job import JobOptions
from ._timers import Cycle, Timer, next_fire_us
from ._units import seconds_to_us

__all__ = ["MisfireDecision", "decide"]

# Counting missed instants of an irregular timer walks them one by one; stop after this many
# and look only at the last day (so a cron job down for a year costs ~10k steps, not 500k).
_SCAN_LIMIT = 10_000
_RESCAN_WINDOW_US = 86_400_000_000


@dataclass(frozen=True, slots=True)
class MisfireDecision:
    run: list[int]  # instants to run, in order
    missed: int  # due instants found (a minimum when ``capped``)
    first: int
    last: int  # latest due instant: the job's new high-water mark
    next_us: int | None  # first instant after now
    capped: bool

    @property
    def dropped(self) -> int:
        return self.missed - len(self.run)


def decide(
    timer: Timer, options: JobOptions, first: int, now: int, threshold_us: int
) -> MisfireDecision:
    """Every instant of ``timer`` in ``[first, now]`` is due; choose which run.

    * ``coalesce``: the latest due instant runs once (unless past the grace);
    * ``skip``: only an instant still within ``threshold_us`` (on time) runs;
    * ``all``: the due instants run in order, the first ``misfire_all_limit`` of them within
      the grace; the rest are dropped.
    """
    keep = options.misfire_all_limit if options.misfire == "all" else 1
    head, count, last, nxt, capped = _due_instants(timer, first, now, keep)
    grace = options.misfire_grace
    grace_us = None if grace is None else seconds_to_us(grace)

    def in_grace(t: int) -> bool:
        return grace_us is None or now - t <= grace_us

    if options.misfire == "coalesce":
        run = [last] if in_grace(last) else []
    elif options.misfire == "skip":
        run = [last] if now - last <= threshold_us and in_grace(last) else []
    else:
        run = [t for t in head if in_grace(t)]
    return MisfireDecision(run, count, first, last, nxt, capped)


def _due_instants(
    timer: Timer, first: int, now: int, keep: int
) -> tuple[list[int], int, int, int | None, bool]:
    """(first ``keep`` due instants, count, last due, next after now, capped)."""
    if isinstance(timer, Cycle):
        last = timer._last_at_or_before(now)
        assert last is not None and last >= first
        step = timer._interval_us
        count = (last - first) // step + 1
        head = [first + k * step for k in range(min(count, keep))]
        return head, count, last, timer._next_us(now), False
    head = [first]
    count, last, capped = 1, first, False
    cur = next_fire_us(timer, first)
    while cur is not None and cur <= now:
        count += 1
        last = cur
        if len(head) < keep:
            head.append(cur)
        if count == _SCAN_LIMIT and not capped:
            capped = True
            cur = next_fire_us(timer, max(cur, now - _RESCAN_WINDOW_US))
            continue
        if count > 2 * _SCAN_LIMIT:  # even the last day is too dense: stop counting
            cur = next_fire_us(timer, now)
            break
        cur = next_fire_us(timer, cur)
    return head, count, last, cur, capped
