"""Time units and the one validator for durations given in seconds.

Inside the scheduler every instant and duration is an integer number of microseconds: exact,
so a cycle lands on ``start + k·interval`` with no float drift, and cheap to compare. Public
APIs take seconds (float) or :class:`~datetime.timedelta`; these helpers are the only place
the two meet.

The bounds of what a durable job may carry live here too, shared by the task options and the
stores: :data:`MAX_DURATION` for every duration a job is stored or waited with, and
:data:`LATEST_INSTANT` for every instant a store keeps (see :func:`aware_instant`).
"""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

from ._exceptions import InvalidJobError

__all__ = [
    "LATEST_INSTANT",
    "MAX_DURATION",
    "US_PER_S",
    "aware_instant",
    "positive_seconds",
    "seconds_to_us",
    "us_to_seconds",
]

US_PER_S = 1_000_000

MAX_DURATION = 100 * 365.25 * 86_400.0
"""100 years in seconds: the longest ``delay``, ``timeout``, unique ``period``, lease, ttl or
wait a durable job or a store takes. Longer is a mistake, not a plan (``None`` means "no
limit" wherever there is one), and the bound keeps every sum with a clock inside what the
stores hold (SQLite's 64-bit microseconds, Python's year 9999)."""

LATEST_INSTANT = datetime(9999, 1, 1, tzinfo=UTC)
"""The latest instant a store keeps (a due time, a retry time, a log's time...). Python's
datetimes end with the year 9999; the year of margin lets a stored instant be shifted to any
time zone, or have a lease added, without overflowing on the way back."""


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
    maximum: float | None = None,
) -> float:
    """``value`` (a number of seconds or a timedelta) as float seconds, validated.

    Raises ``error`` naming ``what`` and the value for anything that is not a finite,
    positive (or, with ``allow_zero``, non-negative) duration, or that is longer than
    ``maximum`` seconds when given. ``bool`` is not a number here.
    """
    if isinstance(value, bool) or not isinstance(value, (timedelta, int, float)):
        raise error(f"{what} must be a number of seconds or a timedelta, got {value!r}")
    try:
        seconds = value.total_seconds() if isinstance(value, timedelta) else float(value)
    except OverflowError:  # an int beyond any float
        seconds = math.inf
    if maximum is not None and seconds > maximum:  # inf too
        raise error(f"{what} must be at most {_seconds_text(maximum)}, got {_short(value)}")
    if not math.isfinite(seconds) or seconds < 0 or (seconds == 0 and not allow_zero):
        kind = "non-negative" if allow_zero else "positive"
        raise error(f"{what} must be a {kind} number of seconds, got {_short(value)}")
    return seconds


def aware_instant(
    value: object, what: str, *, error: type[Exception] = InvalidJobError
) -> datetime:
    """``value`` (an aware datetime) in UTC, no later than :data:`LATEST_INSTANT`.

    Raises ``error`` naming ``what`` and the value for a naive datetime, anything that is not
    a datetime, or an instant out of that range (one that cannot even be expressed in UTC,
    like ``datetime.max`` at UTC-5, included).
    """
    if not isinstance(value, datetime) or value.utcoffset() is None:
        raise error(f"{what} must be an aware datetime, got {value!r}")
    try:
        utc = value.astimezone(UTC)
    except OverflowError:  # before year 1 or after 9999 once in UTC
        utc = None
    if utc is None or utc > LATEST_INSTANT:
        raise error(
            f"{what} must lie between the year 1 and {LATEST_INSTANT:%Y-%m-%d} UTC, got {value!r}"
        )
    return utc


def _seconds_text(seconds: float) -> str:
    """``"100 years (3,155,760,000 s)"`` for :data:`MAX_DURATION`, else ``"3,600 s"``."""
    text = f"{seconds:,.0f} s"
    return f"100 years ({text})" if seconds == MAX_DURATION else text


def _short(value: object) -> str:
    """``repr(value)``, cut to 80 characters (a huge int has no repr at all)."""
    try:
        text = repr(value)
    except ValueError:  # an int past sys.get_int_max_str_digits()
        return f"<an int of {value.bit_length()} bits>" if isinstance(value, int) else "<?>"
    return text if len(text) <= 80 else text[:77] + "..."
