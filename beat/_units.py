"""Time units and the one validator for durations given in seconds.

Inside the scheduler every instant and duration is an integer number of microseconds: exact,
so a cycle lands on ``start + k·interval`` with no float drift, and cheap to compare. Public
APIs take seconds (float) or :class:`~datetime.timedelta`; these helpers are the only place
the two meet.
"""

from __future__ import annotations

import math
from datetime import timedelta

from ._exceptions import InvalidJobError

__all__ = ["US_PER_S", "positive_seconds", "seconds_to_us", "us_to_seconds"]

US_PER_S = 1_000_000


def seconds_to_us(seconds: float) -> int:
    """``seconds`` as whole microseconds (rounded to the nearest)."""
    return round(seconds * US_PER_S)


def us_to_seconds(us: int) -> float:
    return us / US_PER_S


def positive_seconds(
    value: object,
    what: str,
    *,
    allow_zero: bool = False,
    error: type[Exception] = InvalidJobError,
) -> float:
    """``value`` (a number of seconds or a timedelta) as float seconds, validated.

    Raises ``error`` naming ``what`` and the value for anything that is not a finite,
    positive (or, with ``allow_zero``, non-negative) duration. ``bool`` is not a number here.
    """
    if isinstance(value, bool) or not isinstance(value, (timedelta, int, float)):
        raise error(f"{what} must be a number of seconds or a timedelta, got {value!r}")
    seconds = value.total_seconds() if isinstance(value, timedelta) else float(value)
    if not math.isfinite(seconds) or seconds < 0 or (seconds == 0 and not allow_zero):
        kind = "non-negative" if allow_zero else "positive"
        raise error(f"{what} must be a {kind} number of seconds, got {value!r}")
    return seconds
