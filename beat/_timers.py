"""Timers: when a job fires.

A timer is any object with ``next_after(t) -> datetime | None``: the first fire instant
**strictly after** the aware datetime ``t``, or ``None`` once the timer is exhausted.
Results must be strictly increasing in ``t``'s order; the scheduler relies on that to keep a
per-job high-water mark (a backward wall-clock jump never repeats an instant).

Internally the scheduler works in integer microseconds since the Unix epoch (UTC): exact, so a
:class:`Cycle` lands on ``start_at + k·interval`` for every ``k`` with no float drift, and cheap
to compare in the heap. :func:`next_fire_us` is the bridge; built-in timers answer it with
integer arithmetic, user timers through ``next_after``.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Protocol, runtime_checkable

from ._cron import Cron
from ._exceptions import InvalidScheduleError

__all__ = [
    "Cron",
    "Cycle",
    "Oneshot",
    "Timer",
    "anchor_every",
    "fires_once",
    "first_fire_us",
    "from_us",
    "interval_us",
    "next_fire_us",
    "to_us",
]

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_ONE_US = timedelta(microseconds=1)


@runtime_checkable
class Timer(Protocol):
    """Anything that can say when it next fires."""

    def next_after(self, t: datetime, /) -> datetime | None:
        """The first fire instant strictly after aware ``t``; ``None`` when exhausted."""
        ...


def require_aware(value: datetime, what: str) -> datetime:
    """Return ``value`` if it is an aware datetime, else raise :class:`InvalidScheduleError`."""
    if not isinstance(value, datetime):
        raise InvalidScheduleError(f"{what} must be a datetime, got {value!r}")
    if value.tzinfo is None or value.utcoffset() is None:
        raise InvalidScheduleError(
            f"{what} must be timezone-aware, got naive {value.isoformat()!r} "
            "(beat never guesses local time; attach a zone, e.g. tzinfo=ZoneInfo(...))"
        )
    return value


def to_us(t: datetime) -> int:
    """Microseconds since the epoch for aware ``t`` (exact)."""
    return (t - _EPOCH) // _ONE_US


def from_us(us: int) -> datetime:
    """The aware UTC datetime ``us`` microseconds after the epoch (exact)."""
    return _EPOCH + timedelta(microseconds=us)


class Oneshot:
    """Fires once, at ``at``.

    ``next_after(t)`` is ``at`` while ``t < at`` and ``None`` after. When a job with a
    Oneshot already in the past is added, the scheduler fires it at once as a late fire,
    subject to the job's ``misfire_grace`` (docs/guarantees.md §3).
    """

    __slots__ = ("_at_us", "at")

    def __init__(self, at: datetime) -> None:
        self.at = require_aware(at, "Oneshot instant")
        self._at_us = to_us(at)

    def next_after(self, t: datetime, /) -> datetime | None:
        return self.at if to_us(require_aware(t, "t")) < self._at_us else None

    def _next_us(self, after_us: int) -> int | None:
        return self._at_us if after_us < self._at_us else None

    def __repr__(self) -> str:
        return f"Oneshot({self.at.isoformat()!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Oneshot) and other._at_us == self._at_us

    def __hash__(self) -> int:
        return hash(("Oneshot", self._at_us))


class Cycle:
    """Fires at ``start_at + k·interval`` for k = 0, 1, 2, … and never after ``end_at``.

    The grid is fixed by ``start_at``: however late a run is, the next fire stays on the grid
    (no drift). ``end_at`` is inclusive. ``start_at=None`` is only built by
    :meth:`beat.Job.every`: the grid is then anchored one interval after the job is added.
    """

    # Integers only: a registered job's timer is a few words, not three datetime objects
    # (interval, start_at and end_at are rebuilt from them when read).
    __slots__ = ("_end_us", "_interval_us", "_start_us")

    def __init__(
        self,
        start_at: datetime | None,
        interval: timedelta,
        end_at: datetime | None = None,
    ) -> None:
        if not isinstance(interval, timedelta):
            raise InvalidScheduleError(f"Cycle interval must be a timedelta, got {interval!r}")
        interval_us = interval // _ONE_US
        if interval_us <= 0:
            raise InvalidScheduleError(f"Cycle interval must be positive, got {interval!r}")
        start_us = None if start_at is None else to_us(require_aware(start_at, "Cycle start_at"))
        end_us = None
        if end_at is not None:
            end_us = to_us(require_aware(end_at, "Cycle end_at"))
            if start_us is not None and end_us < start_us:
                raise InvalidScheduleError(
                    f"Cycle end_at {end_at.isoformat()!r} is before start_at "
                    f"{start_at.isoformat() if start_at else None!r}"
                )
        self._interval_us = interval_us
        self._start_us = start_us
        self._end_us = end_us

    @property
    def interval(self) -> timedelta:
        return timedelta(microseconds=self._interval_us)

    @property
    def end_at(self) -> datetime | None:
        """The last instant the grid may fire at (inclusive), if bounded."""
        return None if self._end_us is None else from_us(self._end_us)

    @property
    def start_at(self) -> datetime | None:
        """The grid's first instant (``None`` until an every-job is added)."""
        return None if self._start_us is None else from_us(self._start_us)

    def anchored(self, first_us: int) -> Cycle:
        """A copy whose grid starts at ``first_us`` (used for ``Job.every`` on add)."""
        copy = Cycle.__new__(Cycle)
        copy._interval_us = self._interval_us
        copy._start_us = first_us
        copy._end_us = self._end_us
        return copy

    def next_after(self, t: datetime, /) -> datetime | None:
        if self._start_us is None:
            raise InvalidScheduleError("this Cycle is anchored when its job is added")
        nxt = self._next_us(to_us(require_aware(t, "t")))
        return None if nxt is None else from_us(nxt)

    def _next_us(self, after_us: int) -> int | None:
        start = self._start_us
        assert start is not None  # internal: the scheduler anchors every-cycles on add
        if after_us < start:
            nxt = start
        else:
            step = self._interval_us
            nxt = start + ((after_us - start) // step + 1) * step
        end = self._end_us
        return nxt if end is None or nxt <= end else None

    def _last_at_or_before(self, us: int) -> int | None:
        """The last grid instant ≤ ``us`` (for counting misfires without iterating)."""
        start = self._start_us
        if start is None or us < start:
            return None
        last = start + ((us - start) // self._interval_us) * self._interval_us
        if self._end_us is not None and last > self._end_us:
            last = start + ((self._end_us - start) // self._interval_us) * self._interval_us
        return last

    def __repr__(self) -> str:
        start = self.start_at.isoformat() if self._start_us is not None else None  # type: ignore[union-attr]
        end = f", end_at={self.end_at.isoformat()!r}" if self.end_at else ""
        return f"Cycle(start_at={start!r}, interval={self.interval!r}{end})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Cycle) and (
            other._start_us,
            other._interval_us,
            other._end_us,
        ) == (self._start_us, self._interval_us, self._end_us)

    def __hash__(self) -> int:
        return hash(("Cycle", self._start_us, self._interval_us, self._end_us))


# Timers that answer in integer microseconds themselves (no datetime round trip).
_INTEGER_TIMERS = frozenset({Cycle, Oneshot})


def next_fire_us(timer: Timer, after_us: int) -> int | None:
    """The timer's first instant strictly after ``after_us``, in epoch microseconds.

    The one bridge between timers and the scheduler's integer time: built-in cycles and
    oneshots answer with integer arithmetic, every other timer through ``next_after``.
    """
    if type(timer) in _INTEGER_TIMERS:
        return timer._next_us(after_us)  # type: ignore[attr-defined, no-any-return]
    nxt = timer.next_after(from_us(after_us))
    if nxt is None:
        return None
    nxt_us = to_us(require_aware(nxt, f"{timer!r}.next_after() result"))
    if nxt_us <= after_us:
        # A timer that does not move forward would make the scheduler fire forever.
        raise InvalidScheduleError(
            f"{timer!r}.next_after({from_us(after_us).isoformat()}) returned "
            f"{nxt.isoformat()}, which is not strictly after it"
        )
    return nxt_us


def first_fire_us(
    timer: Timer, now_us: int, *, on_epoch_grid: bool = False
) -> tuple[Timer, int | None]:
    """The timer a newly added job runs on, and its first instant.

    An ``every`` cycle (no ``start_at``) is anchored one interval after ``now_us`` by making a
    new, anchored timer: timers never change after construction. A oneshot's instant is
    returned even if already past: that is a late fire, subject to the job's grace.
    """
    timer = anchor_every(timer, now_us, on_epoch_grid=on_epoch_grid)
    if type(timer) is Oneshot:
        return timer, timer._at_us
    return timer, next_fire_us(timer, now_us)


def anchor_every(timer: Timer, now_us: int, *, on_epoch_grid: bool = False) -> Timer:
    """``timer``, or for an ``every`` cycle a new, anchored cycle.

    Alone, an every-cycle starts one interval after ``now_us``. ``on_epoch_grid`` (many
    instances, one schedule) puts it on the grid of whole intervals since the Unix epoch
    instead, so every instance computes the same instants whenever it started: the first is
    the next grid instant after ``now_us``.
    """
    if type(timer) is Cycle and timer._start_us is None:
        step = timer._interval_us
        first = (now_us // step + 1) * step if on_epoch_grid else now_us + step
        return timer.anchored(first)
    return timer


def check_shared(timer: Timer, name: str) -> None:
    """Under a coordinator every instance must compute the same instants, or their claims
    never meet and each runs its own. Beat's timers do (cron and oneshots by construction,
    cycles from their start or the epoch grid). Any other timer must say so with a true
    ``cluster_safe`` attribute: its instants depend only on its own parameters, never on
    when, where or by which process it was made. Otherwise :class:`InvalidScheduleError`.
    """
    if type(timer) in (Cron, Cycle, Oneshot) or getattr(timer, "cluster_safe", False) is True:
        return
    raise InvalidScheduleError(
        f"job {name!r}: with a coordinator every instance must compute the same instants, "
        f"and {timer!r} does not say it does; give its class cluster_safe = True if its "
        "instants depend only on its own parameters"
    )


def fires_once(timer: Timer) -> bool:
    """True for a oneshot: it has no series to catch up on."""
    return type(timer) is Oneshot


def interval_us(timer: Timer) -> int | None:
    """The fixed distance between fires of a regular timer (a cycle), else ``None``."""
    return timer._interval_us if type(timer) is Cycle else None
