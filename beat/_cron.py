"""Cron expressions: parsed once, evaluated by rolling fields forward in wall time.

Contract (docs/guarantees.md §2; the full grammar is in docs/cron.md):

* Grammar: five fields, ``minute hour day-of-month month day-of-week``, in the Vixie/cronie
  syntax: ``*``, ``N``, ``a-b``, ``*/s``, ``a-b/s``, ``N/s`` (``N`` to the field's maximum,
  step ``s``) and comma lists of those. Months and weekdays accept three-letter English names,
  case-insensitive, also as range ends. Sunday is ``0`` or ``7``. The aliases ``@yearly``,
  ``@annually``, ``@monthly``, ``@weekly``, ``@daily``, ``@midnight`` and ``@hourly`` stand for
  their usual expansions. An equal range such as ``3-3`` is the single value ``3``. Reversed
  ranges, step 0, out-of-range values, a wrong field count and day/month combinations that
  never occur (``0 0 30 2 *``) raise :class:`~beat.CronSyntaxError` when the :class:`Cron` is
  built; the message names the expression and the field.
* Extensions, accepted only with ``Cron(..., extended=True)`` (without it they are rejected,
  and the message says to pass the flag): a leading *seconds* field (six fields,
  ``second minute hour day-of-month month day-of-week``, as Quartz, tokio-cron-scheduler and
  aiocron write it); in day-of-month ``L`` (last day), ``LW`` (last weekday, Monday-Friday)
  and ``nW`` (the weekday nearest to day ``n`` without leaving the month; no fire in a month
  without day ``n``); in day-of-week ``d#n`` (the ``n``-th weekday ``d``, ``n`` = 1..5; no
  fire in a month without one) and ``dL`` (the last weekday ``d``). These items stand alone
  (no ranges or steps) but may be listed with others: ``1,L``. A five-field expression stays
  five fields with the flag: seconds are never guessed from the field count.
* Day rule: when the text of either day field (day-of-month, day-of-week) starts with ``*``,
  a day matches when **both** fields match; otherwise it matches when **either** does. This is
  classic cron, quirk included: ``0 0 */2 * 1`` means "odd days that are Mondays", and
  ``0 0 15W * 1`` means "the weekday nearest the 15th, or any Monday".
* Time zone: fields are matched against wall-clock time in ``tz``. A job is *fixed-time* when
  none of its seconds (if present), minute and hour fields starts with ``*``; otherwise it is a
  *wildcard* job (``@hourly`` is one, so is ``*/10 30 2 * * *``).

  - Fixed-time jobs: a wall time that a spring-forward gap skips fires once, at the first
    instant after the gap (several skipped wall times collapse into that one fire, and the
    seconds are not kept: 02:30:15 fires at 03:00:00); a wall time that a fall-back repeats
    fires once, on its first occurrence (``fold=0``).
  - Wildcard jobs follow real elapsed time: wall times inside a gap do not happen, and each
    repeated wall time fires in both passes (``fold=0`` then ``fold=1``).

  The rules are written in terms of offsets and transitions, not "one hour at 2 am", so they
  hold for 30-minute shifts (Australia/Lord_Howe) and for shifts at midnight
  (America/Santiago, where a day may start at 01:00).
* :meth:`Cron.next_after` returns the first fire instant strictly after ``t``, as an aware
  datetime in ``tz`` whose wall time exists and whose ``fold`` is right. It is strictly
  increasing in ``t``.
* Search bound: no loop is open-ended. A day that the expression allows recurs at most
  :data:`_MAX_YEARS_BETWEEN_FIRES` (40) years later: which days of a month match depends only
  on the month, its length and the weekday of its 1st (true of ``L``, ``W`` and ``#`` too),
  and the rarest such month is a February of 29 days starting on one given weekday; in the
  400-year Gregorian cycle the longest wait between two of those is 40 years. The day search
  therefore stops at the start year + 40. If nothing is found by then (only possible when
  every matching wall time of a wildcard job falls into a DST gap of ``tz``),
  :class:`~beat.InvalidScheduleError` says so; past year 9999 :class:`OverflowError` is
  raised, as :mod:`datetime` itself does.

The evaluation follows cronsim's design: the text becomes lookup tables once; ``next_after``
rolls month, day, hour and minute forward in naive wall time, each step re-checking the
coarser fields only when a finer one overflows. The day extensions cost nothing there: they
are folded into the per-month-shape day tables when the expression is compiled. Seconds are
a thin layer on top of the minute search (see :meth:`Cron.next_after`). Turning the
wall time into an instant is the only time-zone work: on the common path, four offset
look-ups that prove no transition is involved (see :meth:`Cron.next_after`); the DST rules
live in a slower path entered only near transitions.
"""

from __future__ import annotations

import calendar
import functools
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta, timezone
from typing import Final, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from ._exceptions import CronSyntaxError, InvalidScheduleError

__all__ = ["Cron", "DstNote"]

# Longest wait, in years, between two days an expression allows (29 February on a given
# weekday; see the module docstring and test_search_bound_covers_the_rarest_day).
_MAX_YEARS_BETWEEN_FIRES: Final = 40
# Slow-path hops, each past one DST transition. Zones have at most a handful of transitions
# a year, so this is far above what the year bound lets happen; it only makes the bound local.
_MAX_TRANSITION_HOPS: Final = 8 * (_MAX_YEARS_BETWEEN_FIRES + 1)

# Field indices: the classic five keep 0-4 (in their order of appearance); the optional
# leading seconds field is 5, so the five-field code paths need not know about it.
_MINUTE, _HOUR, _DOM, _MONTH, _DOW, _SECOND_FIELD = range(6)
_FIELD_NAMES: Final = ("minute", "hour", "day of month", "month", "day of week", "second")
# Inclusive bounds per field; day-of-week accepts 7 as a second Sunday.
_FIELD_BOUNDS: Final = ((0, 59), (0, 23), (1, 31), (1, 12), (0, 7), (0, 59))
# The end of every "needs the flag" message; the CLI swaps it for its own flag's name.
EXTENDED_HINT: Final = "pass extended=True"
_MONTH_NAMES: Final = {
    name: number
    for number, name in enumerate(
        ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"),
        start=1,
    )
}
_DOW_NAMES: Final = {
    name: number for number, name in enumerate(("sun", "mon", "tue", "wed", "thu", "fri", "sat"))
}
_ALIASES: Final = {
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
    "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@hourly": "0 * * * *",
}
# Longest each month can be; February counts its leap day, so 29 February is possible.
_MAX_MONTH_DAYS: Final = (0, 31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)
_MONTH_LABELS: Final = (  # not calendar.month_name: that follows the locale
    "",
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
)

_EPOCH: Final = datetime(1970, 1, 1)  # naive: wall-time arithmetic is done on naive values
_SECOND: Final = timedelta(seconds=1)
_MICROSECOND: Final = timedelta(microseconds=1)

# Year*12+month -> index of the month's shape (length, weekday of the 1st). Shared by all
# Cron objects; cleared when large so a long scan over centuries cannot grow it unbounded.
_MONTH_SHAPES: dict[int, int] = {}
_MONTH_SHAPES_MAX: Final = 4096

# tzinfo types whose utcoffset() is never None, so an aware check can skip the call.
_ALWAYS_AWARE: Final = (ZoneInfo, timezone)

Wall = tuple[int, int, int, int, int]  # (year, month, day, hour, minute), naive wall time


# --------------------------------------------------------------------------- parsing


def _fail(expr: str, message: str, field: int | None = None) -> CronSyntaxError:
    name = None if field is None else _FIELD_NAMES[field]
    return CronSyntaxError(
        f"invalid cron expression {expr!r}: {message}", expression=expr, field=name
    )


def _needs_flag(expr: str, what: str, field: int | None) -> CronSyntaxError:
    return _fail(expr, f"{what} is a cron extension; {EXTENDED_HINT}", field)


def _parse_value(text: str, field: int, expr: str) -> int:
    """One number or (month/weekday fields only) three-letter name, range-checked."""
    name = _FIELD_NAMES[field]
    low, high = _FIELD_BOUNDS[field]
    if text.isascii() and text.isdigit():
        value = int(text)
    else:
        names = _MONTH_NAMES if field == _MONTH else _DOW_NAMES if field == _DOW else None
        if names is None or text.lower() not in names:
            hint = " (expected a number or a three-letter name)" if names else ""
            if field not in (_DOM, _DOW) and any(c in text.upper() for c in "LW#"):
                hint += " (L, W and # belong to the day-of-month and day-of-week fields)"
            raise _fail(expr, f"{name} value {text!r} is not valid{hint}", field)
        value = names[text.lower()]
    if not low <= value <= high:
        raise _fail(expr, f"{name} value {value} out of range {low}-{high}", field)
    return value


def _parse_part(part: str, field: int, expr: str) -> range:
    """One comma-separated item: ``*``, ``N``, ``a-b``, each with an optional ``/step``."""
    name = _FIELD_NAMES[field]
    low, high = _FIELD_BOUNDS[field]
    span, slash, step_text = part.partition("/")
    step = 1
    if slash:
        if not (step_text.isascii() and step_text.isdigit()):
            raise _fail(expr, f"{name} step {step_text!r} in {part!r} is not a number", field)
        step = int(step_text)
        if step == 0:
            raise _fail(expr, f"{name} step 0 in {part!r} must be at least 1", field)
    if span == "*":
        return range(low, high + 1, step)
    first_text, dash, last_text = span.partition("-")
    first = _parse_value(first_text, field, expr)
    if not dash:
        # cronie: "N/s" runs from N to the field's maximum; a bare "N" is just N.
        return range(first, (high if slash else first) + 1, step)
    last = _parse_value(last_text, field, expr)
    if first > last:
        raise _fail(expr, f"{name} range {span!r} is reversed ({first} > {last})", field)
    return range(first, last + 1, step)


def _parse_field(text: str, field: int, expr: str) -> frozenset[int]:
    values: set[int] = set()
    for part in text.split(","):
        if not part:
            raise _fail(expr, f"{_FIELD_NAMES[field]} list {text!r} has an empty item", field)
        values.update(_parse_part(part, field, expr))
    if field == _DOW and 7 in values:  # Sunday's second number
        values.discard(7)
        values.add(0)
    return frozenset(values)


@dataclass(frozen=True, slots=True)
class _DayField:
    """What one day field allows: plain values and the extension items (empty by default).

    Day-of-month uses ``last`` (``L``), ``last_weekday`` (``LW``) and ``nearest`` (``nW``);
    day-of-week uses ``nth`` (``d#n``, as ``(d, n)``) and ``last_of`` (``dL``), with Sunday
    always 0. Hashable, so compiled day tables can be shared between expressions.
    """

    values: frozenset[int]
    last: bool = False
    last_weekday: bool = False
    nearest: frozenset[int] = frozenset()
    nth: frozenset[tuple[int, int]] = frozenset()
    last_of: frozenset[int] = frozenset()

    @property
    def has_extensions(self) -> bool:
        return bool(self.last or self.last_weekday or self.nearest or self.nth or self.last_of)

    def extras(self) -> tuple[object, ...]:
        """The extension items in a canonical form (for equality of Cron objects)."""
        return (
            self.last,
            self.last_weekday,
            tuple(sorted(self.nearest)),
            tuple(sorted(self.nth)),
            tuple(sorted(self.last_of)),
        )


def _parse_dom(text: str, expr: str, extended: bool) -> _DayField:
    """Day-of-month: the classic items plus ``L``, ``LW`` and ``nW``, each standing alone."""
    plain: list[str] = []
    last = last_weekday = False
    nearest: set[int] = set()
    for part in text.split(","):
        upper = part.upper()
        if "L" not in upper and "W" not in upper:
            plain.append(part)
            continue
        if not extended:
            raise _needs_flag(expr, f"{part!r} in day of month", _DOM)
        if upper == "L":
            last = True
        elif upper == "LW":
            last_weekday = True
        elif upper.endswith("W") and upper[:-1].isascii() and upper[:-1].isdigit():
            nearest.add(_parse_value(upper[:-1], _DOM, expr))
        else:
            raise _fail(
                expr,
                f"day of month item {part!r} is not valid: the extensions are L, LW and nW "
                "(e.g. 15W), each standing alone, without a range or step",
                _DOM,
            )
    values = _parse_field(",".join(plain), _DOM, expr) if plain else frozenset()
    return _DayField(values, last, last_weekday, frozenset(nearest))


def _parse_dow(text: str, expr: str, extended: bool) -> _DayField:
    """Day-of-week: the classic items plus ``d#n`` and ``dL``, each standing alone."""
    plain: list[str] = []
    nth: set[tuple[int, int]] = set()
    last_of: set[int] = set()
    for part in text.split(","):
        # No weekday name ends in L or contains #, so these tests cannot misread a name.
        if "#" not in part and not part.upper().endswith("L"):
            plain.append(part)
            continue
        if not extended:
            raise _needs_flag(expr, f"{part!r} in day of week", _DOW)
        if "-" in part or "/" in part or "*" in part:
            raise _fail(
                expr,
                f"day of week item {part!r} is not valid: d#n and dL take one weekday, "
                "not a range or step",
                _DOW,
            )
        if "#" in part:
            day_text, _, nth_text = part.partition("#")
            day = _parse_value(day_text, _DOW, expr) % 7
            if not (nth_text.isascii() and nth_text.isdigit() and 1 <= int(nth_text) <= 5):
                raise _fail(
                    expr,
                    f"day of week {part!r}: the n in d#n must be 1-5, got {nth_text!r}",
                    _DOW,
                )
            nth.add((day, int(nth_text)))
        elif len(part) == 1:
            raise _fail(
                expr,
                "day of week 'L' needs a weekday before it, e.g. 5L for the last Friday",
                _DOW,
            )
        else:
            last_of.add(_parse_value(part[:-1], _DOW, expr) % 7)
    values = _parse_field(",".join(plain), _DOW, expr) if plain else frozenset()
    return _DayField(values, nth=frozenset(nth), last_of=frozenset(last_of))


def _split_fields(expr: str, extended: bool) -> tuple[str | None, list[str]]:
    """The seconds field's text (``None`` without one) and the five classic fields."""
    text = expr.strip()
    if text.startswith("@"):
        expansion = _ALIASES.get(text.lower())
        if expansion is None:
            known = ", ".join(_ALIASES)
            raise _fail(expr, f"unknown alias {text!r} (supported: {known})")
        return None, expansion.split()
    fields = text.split()
    if len(fields) == 5:
        return None, fields
    if len(fields) == 6:
        if not extended:
            raise _needs_flag(expr, "a sixth field (seconds, written first)", _SECOND_FIELD)
        return fields[0], fields[1:]
    if extended:
        raise _fail(
            expr,
            "expected 5 fields (minute hour day-of-month month day-of-week) or 6 with "
            f"seconds first, got {len(fields)}",
        )
    raise _fail(
        expr,
        f"expected 5 fields (minute hour day-of-month month day-of-week), got {len(fields)}",
    )


def _check_days_possible(expr: str, doms: frozenset[int], months: frozenset[int]) -> None:
    """Reject a day-of-month set that no allowed month is long enough for."""
    if any(day <= _MAX_MONTH_DAYS[month] for month in months for day in doms):
        return
    days = ", ".join(str(d) for d in sorted(doms))
    verb = "occurs" if len(doms) == 1 else "occur"
    raise _fail(expr, f"day of month {days} never {verb} in {_month_list(months)}")


def _check_extended_days_possible(
    expr: str,
    texts: tuple[str, str],
    months: frozenset[int],
    tables: tuple[tuple[int, ...], ...],
) -> None:
    """Reject day fields that match no day in any allowed month, whatever the year.

    Every (month, length, weekday of the 1st) that the month can have does occur in the
    Gregorian calendar, so looking at the compiled table of each such shape is exact.
    """
    for month in months:
        lengths = (28, 29) if month == 2 else (_MAX_MONTH_DAYS[month],)
        for length in lengths:
            for first_dow in range(7):
                if tables[(length - 28) * 7 + first_dow][1] >= 0:
                    return
    dom, dow = texts
    raise _fail(
        expr,
        f"day of month {dom!r} with day of week {dow!r} never matches a day in "
        f"{_month_list(months)}",
    )


def _month_list(months: frozenset[int]) -> str:
    *others, last = (_MONTH_LABELS[m] for m in sorted(months))
    return f"{', '.join(others)} or {last}" if others else last


# --------------------------------------------------------------------------- tables


def _next_table(values: Iterable[int], size: int) -> tuple[int, ...]:
    """``table[v]`` = smallest allowed value ≥ v, or -1; ``size`` includes one overflow slot."""
    table = [-1] * size
    nxt = -1
    allowed = set(values)
    for v in range(size - 1, -1, -1):
        if v in allowed:
            nxt = v
        table[v] = nxt
    return tuple(table)


def _month_shape(year: int, month: int) -> int:
    """Index of (length - 28, cron weekday of the 1st) for the month: 0..27."""
    key = year * 12 + month
    shape = _MONTH_SHAPES.get(key)
    if shape is None:
        first_weekday, length = calendar.monthrange(year, month)  # Monday = 0
        shape = (length - 28) * 7 + (first_weekday + 1) % 7  # cron: Sunday = 0
        if len(_MONTH_SHAPES) >= _MONTH_SHAPES_MAX:
            _MONTH_SHAPES.clear()
        _MONTH_SHAPES[key] = shape
    return shape


def _last_weekday(length: int, first_dow: int) -> int:
    """``LW``: the last Monday-Friday of a month."""
    last_dow = (first_dow + length - 1) % 7  # cron: Sunday = 0, Saturday = 6
    return length - 1 if last_dow == 6 else length - 2 if last_dow == 0 else length


def _nearest_weekday(day: int, length: int, first_dow: int) -> int:
    """``nW``: the Monday-Friday nearest to ``day`` (which exists) without leaving the month.

    A Saturday moves back to Friday, unless it is the 1st (then on to Monday the 3rd); a
    Sunday moves on to Monday, unless it is the last day (then back to Friday).
    """
    dow = (first_dow + day - 1) % 7
    if dow == 6:
        return day - 1 if day > 1 else day + 2
    if dow == 0:
        return day + 1 if day < length else day - 2
    return day


def _dom_days(spec: _DayField, length: int, first_dow: int) -> set[int]:
    days = {day for day in spec.values if day <= length}
    if spec.last:
        days.add(length)
    if spec.last_weekday:
        days.add(_last_weekday(length, first_dow))
    # A month without day n has no nW fire at all (Quartz does the same).
    days.update(_nearest_weekday(n, length, first_dow) for n in spec.nearest if n <= length)
    return days


def _dow_days(spec: _DayField, length: int, first_dow: int) -> set[int]:
    days = set()
    for day in range(1, length + 1):
        dow = (first_dow + day - 1) % 7
        if (
            dow in spec.values
            or (dow, (day + 6) // 7) in spec.nth  # the k-th such weekday has day 7k-6..7k
            or (dow in spec.last_of and day + 7 > length)
        ):
            days.add(day)
    return days


def _day_tables(dom: _DayField, dow: _DayField, both: bool) -> tuple[tuple[int, ...], ...]:
    """For each of the 28 month shapes, the next-matching-day table (index 0..32).

    Everything the day fields can say (plain days, L, W, #) depends on the month only
    through its length and the weekday of its 1st, so the extensions are resolved here,
    once, and evaluation never looks at them.
    """
    tables = []
    for shape in range(28):
        length, first_dow = 28 + shape // 7, shape % 7
        by_dom = _dom_days(dom, length, first_dow)
        by_dow = _dow_days(dow, length, first_dow)
        days = (by_dom & by_dow) if both else (by_dom | by_dow)
        tables.append(_next_table(days, 33))
    return tuple(tables)


def _zone(tz: str | ZoneInfo) -> ZoneInfo:
    if isinstance(tz, ZoneInfo):
        return tz
    if not isinstance(tz, str):
        raise InvalidScheduleError(f"tz must be a zone name or a ZoneInfo, got {tz!r}")
    try:
        return ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        raise InvalidScheduleError(f"unknown time zone {tz!r}") from None


# --------------------------------------------------------------------------- DST helpers


def _offset_at(tz: ZoneInfo, second: int) -> timedelta:
    offset = datetime.fromtimestamp(second, tz).utcoffset()
    assert offset is not None  # a ZoneInfo always has an offset
    return offset


def _find_transition(tz: ZoneInfo, before: int, after: int) -> int:
    """The epoch second at which ``tz`` changes offset, given seconds on either side.

    tzdata stores transitions in whole seconds, so bisection over seconds is exact. The
    interval is at most one DST shift long and holds one transition.
    """
    base = _offset_at(tz, before)
    while after - before > 1:
        middle = (before + after) // 2
        if _offset_at(tz, middle) == base:
            before = middle
        else:
            after = middle
    return after


def _seconds(wall: datetime, offset: timedelta) -> int:
    """Floor of the epoch second of ``wall`` read with ``offset``."""
    return (wall - offset - _EPOCH) // _SECOND


def _offsets(wall: datetime, tz: ZoneInfo) -> tuple[timedelta, timedelta]:
    """Offsets of a naive wall time for fold 0 and fold 1 (PEP 495: before/after the shift)."""
    first = wall.replace(tzinfo=tz, fold=0).utcoffset()
    second = wall.replace(tzinfo=tz, fold=1).utcoffset()
    assert first is not None and second is not None
    return first, second


@dataclass(frozen=True, slots=True)
class _Transition:
    """One offset change around a wall time, with the wall interval it skips or repeats."""

    at: int  # epoch second of the change
    start: datetime  # naive wall times [start, end) are skipped (gap) or repeated (fold)
    end: datetime

    @classmethod
    def around(cls, wall: datetime, tz: ZoneInfo) -> _Transition:
        """The transition that makes ``wall`` nonexistent or ambiguous."""
        before, after = _offsets(wall, tz)  # PEP 495: fold=0 reads the pre-change offset
        low, high = sorted((_seconds(wall, before), _seconds(wall, after)))
        at = _find_transition(tz, low, high + 1)
        moment = _EPOCH + timedelta(seconds=at)
        first, second = sorted((moment + before, moment + after))
        return cls(at, first, second)


@dataclass(frozen=True, slots=True)
class DstNote:
    """Why a fire instant differs from plain wall-clock reading (for display).

    ``kind`` is ``"moved"`` (the nominal wall times in ``nominal`` fell into a
    spring-forward gap; the job fired at the gap's end instead), ``"suppressed"`` (a
    fixed-time job at a repeated wall time; its second occurrence does not fire),
    ``"first"`` or ``"second"`` (a wildcard job firing in that pass of a repeated hour).
    """

    kind: Literal["moved", "suppressed", "first", "second"]
    nominal: tuple[time, ...]

    def __str__(self) -> str:
        # Seconds are shown only when some nominal time has them (six-field expressions).
        form = "%H:%M:%S" if any(t.second for t in self.nominal) else "%H:%M"
        shown = [t.strftime(form) for t in self.nominal]
        if len(shown) > 6:  # "0-59 30 2 * * *" stands for 60 wall times; keep the line short
            shown = [*shown[:3], "...", shown[-1], f"({len(shown)} wall times)"]
        names = ", ".join(shown)
        if self.kind == "moved":
            verb = "does" if len(self.nominal) == 1 else "do"
            return f"moved: {names} {verb} not exist, spring-forward gap"
        if self.kind == "suppressed":
            return f"fall-back: {names} repeats; fired on first occurrence only"
        return f"fall-back: {names} repeats; this is the {self.kind} occurrence"


# --------------------------------------------------------------------------- Cron


@dataclass(frozen=True, slots=True)
class _Compiled:
    """An expression parsed into lookup tables; shared by every Cron with the same text."""

    fixed: bool
    seconds: tuple[int, ...] | None  # next-second table, None without a seconds field
    minutes: tuple[int, ...]
    hours: tuple[int, ...]
    months: tuple[int, ...]
    days: tuple[tuple[int, ...], ...]
    first_second: int
    first_minute: int
    first_hour: int
    key: tuple[object, ...]  # what equality compares (value sets and rules, not the text)


# Tables are shared per *field* as well as per expression: thousands of distinct daily jobs
# ("17 3 * * *", "42 9 * * *"...) have a handful of distinct minute, hour and day fields, so a
# Cron costs its own few objects, not ~9 KB of tables (benchmarks/: memory per cron job).
@functools.lru_cache(maxsize=4096)
def _shared_table(values: frozenset[int], size: int) -> tuple[int, ...]:
    return _next_table(values, size)


@functools.lru_cache(maxsize=1024)
def _shared_day_tables(dom: _DayField, dow: _DayField, both: bool) -> tuple[tuple[int, ...], ...]:
    return _day_tables(dom, dow, both)


@functools.lru_cache(maxsize=4096)
def _sorted(values: frozenset[int]) -> tuple[int, ...]:
    return tuple(sorted(values))


@functools.lru_cache(maxsize=1024)
def _compile(expr: str, extended: bool) -> _Compiled:
    """Parse and check ``expr`` once per distinct text (and flag).

    The day tables alone are ~9 KB; services register many jobs on a handful of
    expressions, so every Cron shares its tables instead of holding a copy (the cache is
    bounded; an evicted expression is simply parsed again). Errors are not cached.
    """
    second_text, fields = _split_fields(expr, extended)
    minutes, hours, months = (
        _parse_field(fields[index], index, expr) for index in (_MINUTE, _HOUR, _MONTH)
    )
    dom = _parse_dom(fields[_DOM], expr, extended)
    dow = _parse_dow(fields[_DOW], expr, extended)
    seconds = None if second_text is None else _parse_field(second_text, _SECOND_FIELD, expr)
    # The day rule and the DST rule both look at the text, not the value sets: "*/1"
    # and "0-59" allow the same minutes but only the first makes a wildcard job.
    both_days = fields[_DOM].startswith("*") or fields[_DOW].startswith("*")
    days = _shared_day_tables(dom, dow, both_days)
    if not (dom.has_extensions or dow.has_extensions):
        if both_days:
            # Under the OR rule no check is needed: every month has every weekday.
            _check_days_possible(expr, dom.values, months)
    else:
        # L, W and # can fail under either rule (30W in February, 2#5 OR 31W in February
        # is fine, 2-28/2 AND 1#5 in February is not): ask the tables themselves.
        _check_extended_days_possible(expr, (fields[_DOM], fields[_DOW]), months, days)
    time_texts = [fields[_MINUTE], fields[_HOUR]]
    if second_text is not None:
        time_texts.append(second_text)
    fixed = not any(text.startswith("*") for text in time_texts)
    return _Compiled(
        fixed=fixed,
        seconds=None if seconds is None else _shared_table(seconds, 61),
        minutes=_shared_table(minutes, 61),
        hours=_shared_table(hours, 25),
        months=_shared_table(months, 14),
        days=days,
        first_second=0 if seconds is None else min(seconds),
        first_minute=min(minutes),
        first_hour=min(hours),
        key=(
            _sorted(minutes),
            _sorted(hours),
            _sorted(dom.values),
            _sorted(months),
            _sorted(dow.values),
            both_days,
            fixed,
            # A five-field expression fires at second 0: "0 0 0 * * *" equals "0 0 * * *".
            (0,) if seconds is None else _sorted(seconds),
            dom.extras(),
            dow.extras(),
        ),
    )


class Cron:
    """A cron schedule in a time zone: ``Cron("*/5 * * * *", tz="Europe/Berlin")``.

    ``tz`` is an IANA zone name or a :class:`~zoneinfo.ZoneInfo` (default ``"UTC"``). The
    expression is parsed and checked here, once; invalid input raises
    :class:`~beat.CronSyntaxError` (bad expression) or :class:`~beat.InvalidScheduleError`
    (unknown zone). ``extended=True`` opts into the extensions (a leading seconds field, and
    ``L``, ``W``, ``#`` in the day fields; see the module docstring and docs/cron.md).

    Two ``Cron`` objects are equal when they allow the same values in every field under the
    same day rule and DST rule, in the same zone. ``extended`` only permits syntax, so it is
    not compared: ``Cron("0 0 * * *")`` equals ``Cron("0 0 * * *", extended=True)`` and
    ``Cron("0 0 0 * * *", extended=True)``. It is shown by ``repr`` when set.
    """

    __slots__ = (
        "_days",
        "_first_hour",
        "_first_minute",
        "_first_second",
        "_fixed",
        "_hours",
        "_key",
        "_minutes",
        "_months",
        "_seconds",
        "expr",
        "extended",
        "tz",
    )

    def __init__(self, expr: str, tz: str | ZoneInfo = "UTC", *, extended: bool = False) -> None:
        if not isinstance(expr, str):
            raise InvalidScheduleError(f"cron expression must be a string, got {expr!r}")
        if not isinstance(extended, bool):
            raise InvalidScheduleError(f"extended must be True or False, got {extended!r}")
        self.expr = expr
        self.extended = extended
        self.tz = _zone(tz)
        compiled = _compile(expr, extended)
        self._fixed = compiled.fixed
        self._seconds = compiled.seconds
        self._minutes = compiled.minutes
        self._hours = compiled.hours
        self._months = compiled.months
        self._days = compiled.days
        self._first_second = compiled.first_second
        self._first_minute = compiled.first_minute
        self._first_hour = compiled.first_hour
        self._key = (compiled.key, self.tz.key if self.tz.key is not None else self.tz)

    @property
    def fixed_time(self) -> bool:
        """True when none of seconds, minute and hour starts with ``*`` (the DST rule in use)."""
        return self._fixed

    def __repr__(self) -> str:
        flag = ", extended=True" if self.extended else ""
        return f"Cron({self.expr!r}, tz={str(self.tz)!r}{flag})"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Cron):
            return NotImplemented
        return self._key == other._key

    def __hash__(self) -> int:
        return hash(self._key)

    # ----------------------------------------------------------------- wall-time search

    def _first_day(self, year: int, month: int, day: int, last_year: int) -> tuple[int, int, int]:
        """First allowed date on or after (year, month, day); ``day`` may be one past the end."""
        months = self._months
        while year <= last_year:
            allowed = months[month]
            if allowed != month:
                if allowed < 0:
                    year += 1
                    allowed = months[1]
                month, day = allowed, 1
                if year > last_year:
                    break
            found = self._days[_month_shape(year, month)][day]
            if found >= 0:
                return year, month, found
            month, day = month + 1, 1
        if last_year >= 9999:
            raise OverflowError(f"{self!r} has no fire time before year 10000")
        raise InvalidScheduleError(
            f"{self!r} has no fire time up to the end of {last_year}: every wall time it "
            "matches falls into a daylight-saving gap"
        )

    def _first_match(self, wall: Wall, last_year: int) -> Wall:
        """First matching wall time at or after ``wall`` (minute may be 60, hour 24)."""
        year, month, day, hour, minute = wall
        found = self._first_day(year, month, day, last_year)
        if found == (year, month, day):
            hours = self._hours
            next_hour = hours[hour]
            if next_hour == hour:
                next_minute = self._minutes[minute]
                if next_minute >= 0:
                    return year, month, day, hour, next_minute
                next_hour = hours[hour + 1]
            if next_hour >= 0:
                return year, month, day, next_hour, self._first_minute
            found = self._first_day(year, month, day + 1, last_year)
        return found[0], found[1], found[2], self._first_hour, self._first_minute

    # ----------------------------------------------------------------- instants

    def next_after(self, t: datetime) -> datetime:
        """The first fire instant strictly after aware ``t``, in :attr:`tz`.

        Common path: read ``t`` on the zone's wall clock, roll the fields to the next matching
        wall time and attach the zone. That is exact whenever ``t`` is not inside a repeated
        hour and the result is not inside a gap: between two such wall times the wall clock
        and real time are ordered the same way, and a repeated wall time's first pass is
        ``fold=0``. Everything else goes through :meth:`_next_near_transition`.

        With a seconds field, the search is still by wall minute: zone offsets are whole
        minutes, so a wall minute exists, is skipped or repeats as a whole, and the DST rules
        can be decided per minute. Seconds add two things: a later allowed second in ``t``'s
        own wall minute comes first (in the same pass; a fixed-time job has none in a second
        pass), and a found minute fires at its first allowed second (see
        :meth:`_at_first_second` for the one exception, a fire moved out of a gap).
        """
        zone = getattr(t, "tzinfo", None)
        if (
            not isinstance(t, datetime)
            or zone is None
            or (type(zone) not in _ALWAYS_AWARE and t.utcoffset() is None)
        ):
            raise _not_aware(t)
        tz = self.tz
        local = t.astimezone(tz)
        year, month, day = local.year, local.month, local.day
        hour, minute = local.hour, local.minute
        seconds = self._seconds
        if seconds is not None:
            later = seconds[local.second + 1]
            if later >= 0 and not (self._fixed and local.fold) and self._matches_minute(local):
                return datetime(year, month, day, hour, minute, later, 0, tz, fold=local.fold)
        last_year = min(year + _MAX_YEARS_BETWEEN_FIRES, 9999)
        start = (year, month, day, hour, minute + 1)
        wall = self._first_match(start, last_year)
        if not local.fold:
            # Is the query's wall time read twice (first pass of a fall-back)? Positional
            # constructors are several times cheaper than datetime.replace().
            second, micro = local.second, local.microsecond
            again = datetime(year, month, day, hour, minute, second, micro, tz, fold=1)
            if again.utcoffset() == local.utcoffset():
                y, mo, d, h, mi = wall
                fire = datetime(y, mo, d, h, mi, self._first_second, 0, tz)
                # In a gap, fold=0 reads the earlier (smaller) offset (PEP 495).
                skipped = datetime(y, mo, d, h, mi, 0, 0, tz, fold=1).utcoffset()
                if fire.utcoffset() >= skipped:  # type: ignore[operator]
                    return fire
        fire = self._next_near_transition(local, start, last_year)
        return fire if seconds is None else self._at_first_second(fire)

    def _at_first_second(self, fire: datetime) -> datetime:
        """A minute found near a transition, at its first allowed second.

        The exception: a fixed-time fire at the end of a gap that stands for skipped wall
        times fires exactly there, seconds not kept (02:30:15 skipped fires at 03:00:00). If
        the gap's end matches too, the two collapse into that one fire, as without seconds;
        the end minute's later seconds still follow.
        """
        first = self._first_second
        if self._fixed and first and _follows_gap(fire) and self._skipped_walls(fire):
            return fire
        return datetime(
            fire.year,
            fire.month,
            fire.day,
            fire.hour,
            fire.minute,
            first,
            0,
            self.tz,
            fold=fire.fold,
        )

    def _matches_minute(self, local: datetime) -> bool:
        """Whether the wall minute of ``local`` matches every field but seconds."""
        month, day = local.month, local.day
        return (
            self._minutes[local.minute] == local.minute
            and self._hours[local.hour] == local.hour
            and self._months[month] == month
            and self._days[_month_shape(local.year, month)][day] == day
        )

    def _next_near_transition(self, local: datetime, start: Wall, last_year: int) -> datetime:
        """The DST-aware search: ``local`` is the query instant, ``start`` the first wall
        time after it. Each loop passes one transition, so it ends within the year bound.
        """
        tz = self.tz
        for _ in range(_MAX_TRANSITION_HOPS):
            wall = self._next_past_fold(local, start, last_year)
            if isinstance(wall, datetime):
                return wall
            naive = datetime(*wall)
            before, after = _offsets(naive, tz)
            if before >= after:  # exists; if repeated, fold=0 is its first pass
                return naive.replace(tzinfo=tz)
            gap_end = datetime.fromtimestamp(_Transition.around(naive, tz).at, tz)
            if self._fixed:
                return gap_end  # skipped wall times fire once, at the first instant after
            # Wildcard: nothing happens in the gap; carry on from its end.
            # (Real-time arithmetic: subtracting from a zoned datetime would move its wall.)
            local = (gap_end.astimezone(UTC) - _MICROSECOND).astimezone(tz)
            start = _wall(gap_end.replace(tzinfo=None))
        raise InvalidScheduleError(f"{self!r}: too many DST transitions in the search")

    def _next_past_fold(self, local: datetime, start: Wall, last_year: int) -> datetime | Wall:
        """Handle a query instant inside a repeated hour.

        Returns the fire if it lies in that hour's first or second pass, else the first
        matching wall time after the repeated hour (or after ``start`` when ``local`` is not
        in one), still to be checked for a gap.
        """
        naive = local.replace(tzinfo=None)
        before, after = _offsets(naive, self.tz)
        if before == after:
            return self._first_match(start, last_year)
        fold = _Transition.around(naive, self.tz)
        if local.fold == 0 or not self._fixed:
            # Still in the first pass (fold=0), or a wildcard job in the second pass: later
            # wall times of the same pass come first.
            wall = self._first_match(start, last_year)
            if datetime(*wall) < fold.end:
                return datetime(*wall, tzinfo=self.tz, fold=local.fold)
        if local.fold == 0 and not self._fixed:
            # A wildcard job then runs through the repeated wall times again.
            wall = self._first_match(_wall(fold.start), last_year)
            if datetime(*wall) < fold.end:
                return datetime(*wall, tzinfo=self.tz, fold=1)
        # Fixed-time jobs never fire in the second pass.
        return self._first_match(max(start, _wall(fold.end)), last_year)

    # ----------------------------------------------------------------- explanations

    def dst_note(self, fire: datetime) -> DstNote | None:
        """Explain how DST shaped ``fire`` (a result of :meth:`next_after`), or ``None``.

        Spring-forward: for a fixed-time job firing at the first instant after a gap, the
        nominal wall times in the gap that it stands for. Fall-back: for a fire at a repeated
        wall time, whether the repeat was suppressed (fixed-time) or which pass this is.
        """
        local = fire.astimezone(self.tz)
        naive = local.replace(tzinfo=None)
        before, after = _offsets(naive, self.tz)
        if before != after:
            kind: Literal["suppressed", "first", "second"]
            kind = "suppressed" if self._fixed else ("first", "second")[local.fold]
            return DstNote(kind, (naive.time(),))
        if not self._fixed:
            return None
        moved = self._skipped_walls(local)
        return DstNote("moved", moved) if moved else None

    def _skipped_walls(self, local: datetime) -> tuple[time, ...]:
        """Matching wall times in a gap that ends exactly at ``local``, if any."""
        if local.second or local.microsecond:
            return ()
        offset = local.utcoffset()
        previous = _offset_at(self.tz, int(local.timestamp()) - 1)
        assert offset is not None  # local is in self.tz
        if previous >= offset:
            return ()
        end = local.replace(tzinfo=None)
        last_year = min(end.year + _MAX_YEARS_BETWEEN_FIRES, 9999)
        wall = _wall(end - (offset - previous))
        seconds = (0,) if self._seconds is None else _allowed(self._seconds, 60)
        found: list[time] = []
        while True:
            wall = self._first_match(wall, last_year)
            if datetime(*wall) >= end:
                return tuple(found)
            found.extend(time(wall[3], wall[4], second) for second in seconds)
            wall = (*wall[:4], wall[4] + 1)


def _not_aware(t: object) -> InvalidScheduleError:
    return InvalidScheduleError(
        f"next_after() needs an aware datetime, got {t!r} (beat never guesses a zone)"
    )


def _follows_gap(moment: datetime) -> bool:
    """Whether the wall time one second before aware ``moment`` falls into a DST gap.

    PEP 495: inside a gap, fold=0 reads the offset from before the change, which is the
    smaller one; anywhere else fold=0's offset is equal or (in a repeat) larger.
    """
    before = moment.replace(fold=0) - _SECOND  # wall-clock arithmetic: same tzinfo
    return before.utcoffset() < before.replace(fold=1).utcoffset()  # type: ignore[operator]


def _allowed(table: tuple[int, ...], size: int) -> tuple[int, ...]:
    """The values a next-value table allows, in order."""
    return tuple(value for value in range(size) if table[value] == value)


def _wall(moment: datetime) -> Wall:
    """The first whole wall minute at or after naive ``moment``."""
    minute = moment.minute + (1 if moment.second or moment.microsecond else 0)
    return moment.year, moment.month, moment.day, moment.hour, minute
