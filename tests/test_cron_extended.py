"""Cron extensions behind ``extended=True``: seconds, ``L``, ``LW``, ``nW``, ``d#n``, ``dL``.

Fires are pinned as ISO strings *with offsets*, so a wrong fold or a lost DST shift shows.
Calendar facts used below (checked with :mod:`datetime`):

* 2025: Feb 1 and Mar 1 are Saturdays, Jun 1, Aug 31 and Nov 30 are Sundays, May 31 is a
  Saturday; the months with five Mondays are March, June, September and December.
* Leap Februaries: 2024-02-29 is a Thursday, 2032-02-29 a Sunday, 2048-02-29 a Saturday;
  the first February after 2025 with five Mondays is 2044 (the 1st and 29th are Mondays).
* DST: Europe/Berlin 2025-03-30 02:00 -> 03:00 and 2025-10-26 03:00 -> 02:00 (the last
  Sundays of March and October); America/New_York 2025-03-09 02:00 -> 03:00 (second Sunday
  of March) and 2025-11-02 02:00 -> 01:00 (first Sunday of November).
"""

from __future__ import annotations

import datetime as dt
from datetime import UTC, datetime, time
from zoneinfo import ZoneInfo

import pytest

from beat._cli import main
from beat._cron import _MAX_YEARS_BETWEEN_FIRES, Cron, DstNote
from beat._exceptions import CronSyntaxError, InvalidScheduleError


def fires(expr: str, after: str, count: int, zone: str = "UTC", fold: int = 0) -> list[str]:
    cron = Cron(expr, zone, extended=True)
    moment = datetime.fromisoformat(after).replace(tzinfo=ZoneInfo(zone), fold=fold)
    out = []
    for _ in range(count):
        nxt = cron.next_after(moment)
        assert nxt.astimezone(UTC) > moment.astimezone(UTC)
        moment = nxt
        out.append(moment.isoformat())
    return out


# --------------------------------------------------------------------------- the opt-in


@pytest.mark.parametrize(
    ("expr", "field", "message"),
    [
        (
            "0 0 0 * * *",
            "second",
            "a sixth field (seconds, written first) is a cron extension; pass extended=True",
        ),
        (
            "0 0 L * *",
            "day of month",
            "'L' in day of month is a cron extension; pass extended=True",
        ),
        (
            "0 0 lw * *",
            "day of month",
            "'lw' in day of month is a cron extension; pass extended=True",
        ),
        (
            "0 0 1,15W * *",
            "day of month",
            "'15W' in day of month is a cron extension; pass extended=True",
        ),
        (
            "0 0 * * 5L",
            "day of week",
            "'5L' in day of week is a cron extension; pass extended=True",
        ),
        (
            "0 0 * * FRI#2",
            "day of week",
            "'FRI#2' in day of week is a cron extension; pass extended=True",
        ),
    ],
)
def test_extensions_need_the_flag(expr: str, field: str, message: str) -> None:
    with pytest.raises(CronSyntaxError) as caught:
        Cron(expr)
    assert str(caught.value) == f"invalid cron expression {expr!r}: {message}"
    assert caught.value.field == field
    Cron(expr, extended=True)  # and the same text is fine with it


def test_names_that_contain_l_or_w_are_not_extensions() -> None:
    # jul, wed: letters of the extensions inside ordinary names.
    assert fires("0 0 * jul wed", "2025-07-01T00:00", 1)[0] == "2025-07-02T00:00:00+00:00"
    assert Cron("0 0 * JUL WED-FRI") == Cron("0 0 * 7 3-5", extended=True)


def test_five_fields_stay_five_fields_with_the_flag() -> None:
    # Never a seconds field guessed from the count: this is minute 30 of hour 9.
    assert fires("30 9 * * *", "2025-01-01T00:00", 2) == [
        "2025-01-01T09:30:00+00:00",
        "2025-01-02T09:30:00+00:00",
    ]
    assert Cron("30 9 * * *", extended=True) == Cron("30 9 * * *")


def test_aliases_work_with_the_flag() -> None:
    assert fires("@hourly", "2025-01-01T00:30", 1) == ["2025-01-01T01:00:00+00:00"]


def test_extended_must_be_a_bool() -> None:
    with pytest.raises(InvalidScheduleError, match="extended must be True or False"):
        Cron("0 0 * * *", extended=1)  # type: ignore[arg-type]


def test_repr_eq_hash() -> None:
    cron = Cron("0 0 0 L * *", "Europe/Berlin", extended=True)
    assert cron.extended is True
    assert repr(cron) == "Cron('0 0 0 L * *', tz='Europe/Berlin', extended=True)"
    assert repr(Cron("0 0 * * *")) == "Cron('0 0 * * *', tz='UTC')"
    # The flag permits syntax; equality follows meaning: a five-field job fires at second 0.
    assert Cron("0 0 0 * * *", extended=True) == Cron("0 0 * * *")
    assert hash(Cron("0 0 0 * * *", extended=True)) == hash(Cron("0 0 * * *"))
    assert Cron("30 0 0 * * *", extended=True) != Cron("0 0 * * *")
    assert Cron("0 0 L * *", extended=True) == Cron("0 0 l * *", extended=True)
    assert Cron("0 0 * * 7#2", extended=True) == Cron("0 0 * * sun#2", extended=True)
    assert Cron("0 0 * * 0L", extended=True) == Cron("0 0 * * 7L", extended=True)
    assert Cron("0 0 L * *", extended=True) != Cron("0 0 LW * *", extended=True)
    assert Cron("0 0 * * 1#1", extended=True) != Cron("0 0 * * 1L", extended=True)
    assert Cron("0 0 15W * *", extended=True) != Cron("0 0 15 * *")
    # Fixed-time versus wildcard seconds is a different DST rule, hence not equal.
    assert Cron("*/30 0 2 * * *", extended=True) != Cron("0,30 0 2 * * *", extended=True)


def test_fixed_time_includes_seconds() -> None:
    assert Cron("15 30 2 * * *", extended=True).fixed_time
    assert not Cron("*/15 30 2 * * *", extended=True).fixed_time
    assert not Cron("0 * 2 * * *", extended=True).fixed_time


# --------------------------------------------------------------------------- validation


@pytest.mark.parametrize(
    ("expr", "field", "message"),
    [
        ("60 * * * * *", "second", "second value 60 out of range 0-59"),
        ("*/0 * * * * *", "second", "second step 0 in '*/0' must be at least 1"),
        ("a * * * * *", "second", "second value 'a' is not valid"),
        ("5-1 * * * * *", "second", "second range '5-1' is reversed (5 > 1)"),
        ("0 0 32W * *", "day of month", "day of month value 32 out of range 1-31"),
        ("0 0 0W * *", "day of month", "day of month value 0 out of range 1-31"),
        *(
            (
                f"0 0 {item} * *",
                "day of month",
                f"day of month item {item!r} is not valid: the extensions are L, LW and nW "
                "(e.g. 15W), each standing alone, without a range or step",
            )
            for item in ("W", "1-5W", "L/2", "L-3", "WL", "15WW", "5L", "*/2W")
        ),
        (
            "0 0 * * 1#6",
            "day of week",
            "day of week '1#6': the n in d#n must be 1-5, got '6'",
        ),
        (
            "0 0 * * 1#0",
            "day of week",
            "day of week '1#0': the n in d#n must be 1-5, got '0'",
        ),
        ("0 0 * * 1#", "day of week", "day of week '1#': the n in d#n must be 1-5, got ''"),
        ("0 0 * * 8#1", "day of week", "day of week value 8 out of range 0-7"),
        ("0 0 * * #1", "day of week", "day of week value '' is not valid"),
        (
            "0 0 * * L",
            "day of week",
            "day of week 'L' needs a weekday before it, e.g. 5L for the last Friday",
        ),
        (
            "0 0 * * 8L",
            "day of week",
            "day of week value 8 out of range 0-7",
        ),
        *(
            (
                f"0 0 * * {item}",
                "day of week",
                f"day of week item {item!r} is not valid: d#n and dL take one weekday, "
                "not a range or step",
            )
            for item in ("1-5#2", "1-5L", "*/2#1", "*L")
        ),
        ("0 0 * * 5W", "day of week", "day of week value '5W' is not valid"),
        ("0 0 * * LW", "day of week", "day of week value 'LW' is not valid"),
        (
            "L 0 * * *",
            "minute",
            "minute value 'L' is not valid "
            "(L, W and # belong to the day-of-month and day-of-week fields)",
        ),
        (
            "0 0 * 1#1 *",
            "month",
            "month value '1#1' is not valid (expected a number or a three-letter name) "
            "(L, W and # belong to the day-of-month and day-of-week fields)",
        ),
        (
            "L 0 0 * * *",
            "second",
            "second value 'L' is not valid "
            "(L, W and # belong to the day-of-month and day-of-week fields)",
        ),
    ],
)
def test_invalid_extension_is_rejected(expr: str, field: str, message: str) -> None:
    with pytest.raises(CronSyntaxError) as caught:
        Cron(expr, extended=True)
    assert str(caught.value).startswith(f"invalid cron expression {expr!r}: {message}")
    assert caught.value.field == field


@pytest.mark.parametrize(
    ("expr", "message"),
    [
        (
            "0 0 0 * * * *",
            "expected 5 fields (minute hour day-of-month month day-of-week) or 6 "
            "with seconds first, got 7",
        ),
        (
            "* * * *",
            "expected 5 fields (minute hour day-of-month month day-of-week) or 6 with "
            "seconds first, got 4",
        ),
        # Classic checks still apply, with their classic message.
        ("0 0 0 30 2 *", "day of month 30 never occurs in February"),
        # Combinations that can never fire, whatever the year:
        (
            "0 0 0 30W 2 *",
            "day of month '30W' with day of week '*' never matches a day in February",
        ),
        (
            "0 0 31W 4,6,9,11 *",
            "day of month '31W' with day of week '*' never matches a day in "
            "April, June, September or November",
        ),
        # the weekday nearest the 1st is never a Sunday (AND: the day of week starts with '*')
        (
            "0 0 1W * */7",
            "day of month '1W' with day of week '*/7' never matches a day in "
            "January, February, March, April, May, June, July, August, September, October, "
            "November or December",
        ),
        ("0 0 LW 1 */6", "day of month 'LW' with day of week '*/6' never matches a day in January"),
        # odd days 1 and 31 AND the fifth Monday of February (only ever the 29th)
        (
            "0 0 */30 2 1#5",
            "day of month '*/30' with day of week '1#5' never matches a day in February",
        ),
    ],
)
def test_impossible_expression_is_rejected(expr: str, message: str) -> None:
    with pytest.raises(CronSyntaxError) as caught:
        Cron(expr, extended=True)
    assert str(caught.value) == f"invalid cron expression {expr!r}: {message}"
    assert caught.value.field is None


@pytest.mark.parametrize(
    "expr",
    [
        "0 0 29W 2 *",  # leap years only
        "0 0 * 2 1#5",  # February of 29 days starting on a Monday: 2044, 2072, ...
        "0 0 30W 2 1#5",  # OR: 30W never happens in February, but 1#5 does
        "0 0 */2 2 1#5",  # AND: the 29th is odd
        "0 0 31W 1-4 *",  # skips the months without a 31st
    ],
)
def test_rare_but_possible_expressions_are_accepted(expr: str) -> None:
    cron = Cron(expr, extended=True)
    assert cron.next_after(datetime(2025, 1, 1, tzinfo=UTC)).year <= 2025 + 40


# --------------------------------------------------------------------------- seconds


def test_seconds_step() -> None:
    assert fires("*/15 * * * * *", "2025-01-01T00:00:10", 4) == [
        "2025-01-01T00:00:15+00:00",
        "2025-01-01T00:00:30+00:00",
        "2025-01-01T00:00:45+00:00",
        "2025-01-01T00:01:00+00:00",
    ]


def test_seconds_list_then_next_minute() -> None:
    assert fires("5,50 */10 * * * *", "2025-01-01T00:00:50", 3) == [
        "2025-01-01T00:10:05+00:00",
        "2025-01-01T00:10:50+00:00",
        "2025-01-01T00:20:05+00:00",
    ]


def test_seconds_strictly_after_a_start_with_microseconds() -> None:
    assert fires("* * * * * *", "2025-01-01T00:00:05.000001", 2) == [
        "2025-01-01T00:00:06+00:00",
        "2025-01-01T00:00:07+00:00",
    ]
    assert fires("5 * * * * *", "2025-01-01T00:00:05", 1) == ["2025-01-01T00:01:05+00:00"]


def test_seconds_roll_over_the_year() -> None:
    assert fires("59 59 23 31 12 *", "2024-12-31T23:59:59", 1) == ["2025-12-31T23:59:59+00:00"]
    assert fires("0 0 0 1 1 *", "2024-12-31T23:59:59.5", 1) == ["2025-01-01T00:00:00+00:00"]


def test_seconds_with_names_and_day_rule() -> None:
    # OR rule: the 1st or any Friday, at 12:00:30.
    assert fires("30 0 12 1 * FRI", "2025-01-01T13:00", 3) == [
        "2025-01-03T12:00:30+00:00",
        "2025-01-10T12:00:30+00:00",
        "2025-01-17T12:00:30+00:00",
    ]


# --------------------------------------------------------------------------- L, LW


def test_last_day_of_month_with_leap_february() -> None:
    assert fires("0 0 L * *", "2024-01-15T00:00", 4) == [
        "2024-01-31T00:00:00+00:00",
        "2024-02-29T00:00:00+00:00",
        "2024-03-31T00:00:00+00:00",
        "2024-04-30T00:00:00+00:00",
    ]
    assert fires("0 0 L 2 *", "2023-01-01T00:00", 3) == [
        "2023-02-28T00:00:00+00:00",
        "2024-02-29T00:00:00+00:00",
        "2025-02-28T00:00:00+00:00",
    ]


def test_last_day_in_a_list() -> None:
    assert fires("0 0 1,L * *", "2025-01-15T00:00", 3) == [
        "2025-01-31T00:00:00+00:00",
        "2025-02-01T00:00:00+00:00",
        "2025-02-28T00:00:00+00:00",
    ]


def test_last_weekday_of_month() -> None:
    # May 31 2025 is a Saturday, Aug 31 a Sunday, Nov 30 a Sunday.
    assert fires("0 18 LW * *", "2025-05-01T00:00", 7) == [
        "2025-05-30T18:00:00+00:00",
        "2025-06-30T18:00:00+00:00",
        "2025-07-31T18:00:00+00:00",
        "2025-08-29T18:00:00+00:00",
        "2025-09-30T18:00:00+00:00",
        "2025-10-31T18:00:00+00:00",
        "2025-11-28T18:00:00+00:00",
    ]


# --------------------------------------------------------------------------- nW


def test_nearest_weekday_does_not_leave_the_month() -> None:
    # Feb 1 and Mar 1 2025 are Saturdays: the nearest weekday inside the month is Monday 3rd
    # (Friday the day before is in the previous month). Jun 1 is a Sunday: Monday 2nd.
    assert fires("0 0 1W * *", "2025-01-01T00:00", 6) == [
        "2025-02-03T00:00:00+00:00",
        "2025-03-03T00:00:00+00:00",
        "2025-04-01T00:00:00+00:00",
        "2025-05-01T00:00:00+00:00",
        "2025-06-02T00:00:00+00:00",
        "2025-07-01T00:00:00+00:00",
    ]


def test_nearest_weekday_skips_months_without_the_day() -> None:
    # No 31st in Feb, Apr, Jun, Sep, Nov; Aug 31 2025 is a Sunday and the last day: Friday.
    assert fires("0 0 31W * *", "2025-01-01T00:00", 7) == [
        "2025-01-31T00:00:00+00:00",
        "2025-03-31T00:00:00+00:00",
        "2025-05-30T00:00:00+00:00",  # May 31 is a Saturday
        "2025-07-31T00:00:00+00:00",
        "2025-08-29T00:00:00+00:00",
        "2025-10-31T00:00:00+00:00",
        "2025-12-31T00:00:00+00:00",
    ]


def test_nearest_weekday_in_leap_februaries() -> None:
    # 29W: only leap years; Sunday the 29th (2032) goes back to Friday the 27th, Saturday
    # the 29th (2048) to Friday the 28th.
    assert fires("0 0 29W 2 *", "2025-01-01T00:00", 7) == [
        "2028-02-29T00:00:00+00:00",
        "2032-02-27T00:00:00+00:00",
        "2036-02-29T00:00:00+00:00",
        "2040-02-29T00:00:00+00:00",
        "2044-02-29T00:00:00+00:00",
        "2048-02-28T00:00:00+00:00",
        "2052-02-29T00:00:00+00:00",
    ]


def test_nearest_weekday_is_or_with_a_restricted_day_of_week() -> None:
    # Neither day field starts with '*': the weekday nearest the 15th OR any Monday.
    # Jun 15 2025 is a Sunday, so 15W is Monday the 16th (a Monday anyway).
    assert fires("0 9 15W * MON", "2025-06-07T00:00", 4) == [
        "2025-06-09T09:00:00+00:00",
        "2025-06-16T09:00:00+00:00",
        "2025-06-23T09:00:00+00:00",
        "2025-06-30T09:00:00+00:00",
    ]
    # Mar 15 2025 is a Saturday: Friday the 14th, and the Mondays.
    assert fires("0 9 15W * 1", "2025-03-08T00:00", 3) == [
        "2025-03-10T09:00:00+00:00",
        "2025-03-14T09:00:00+00:00",
        "2025-03-17T09:00:00+00:00",
    ]


def test_nearest_weekday_and_with_star_day_of_week() -> None:
    # '*/2' in day of week starts with '*': AND. 15W on an even weekday (Sun, Tue, Thu, Sat;
    # of those only Tuesday and Thursday are weekdays).
    got = fires("0 0 15W * */2", "2025-01-01T00:00", 3)
    for iso in got:
        assert datetime.fromisoformat(iso).isoweekday() in (2, 4)
    assert got == [
        "2025-04-15T00:00:00+00:00",
        "2025-05-15T00:00:00+00:00",
        "2025-07-15T00:00:00+00:00",
    ]


# --------------------------------------------------------------------------- d#n, dL


def test_nth_weekday() -> None:
    assert fires("0 0 * * FRI#2", "2025-01-01T00:00", 3) == [
        "2025-01-10T00:00:00+00:00",
        "2025-02-14T00:00:00+00:00",
        "2025-03-14T00:00:00+00:00",
    ]


def test_fifth_weekday_skips_months_without_one() -> None:
    assert fires("0 0 * * 1#5", "2025-01-01T00:00", 4) == [
        "2025-03-31T00:00:00+00:00",
        "2025-06-30T00:00:00+00:00",
        "2025-09-29T00:00:00+00:00",
        "2025-12-29T00:00:00+00:00",
    ]


def test_fifth_monday_of_february_needs_a_leap_year_starting_on_monday() -> None:
    assert fires("0 0 * 2 1#5", "2025-01-01T00:00", 2) == [
        "2044-02-29T00:00:00+00:00",
        "2072-02-29T00:00:00+00:00",
    ]


def test_sunday_as_seven_and_lists() -> None:
    assert fires("0 0 * * 7#1,0L", "2025-01-01T00:00", 4) == [
        "2025-01-05T00:00:00+00:00",
        "2025-01-26T00:00:00+00:00",
        "2025-02-02T00:00:00+00:00",
        "2025-02-23T00:00:00+00:00",
    ]


def test_last_weekday_of_kind() -> None:
    assert fires("0 0 * * 5L", "2025-01-01T00:00", 4) == [
        "2025-01-31T00:00:00+00:00",
        "2025-02-28T00:00:00+00:00",
        "2025-03-28T00:00:00+00:00",
        "2025-04-25T00:00:00+00:00",
    ]


def test_nth_weekday_or_day_of_month() -> None:
    # Both restricted: the 1st OR the first Monday.
    assert fires("0 0 1 * 1#1", "2025-01-01T00:00", 4) == [
        "2025-01-06T00:00:00+00:00",
        "2025-02-01T00:00:00+00:00",
        "2025-02-03T00:00:00+00:00",
        "2025-03-01T00:00:00+00:00",
    ]


def test_last_day_and_last_friday_in_a_leap_february() -> None:
    # OR: Feb 29 2024 (Thursday, the last day) and Friday Feb 23 (the last Friday).
    assert fires("0 0 L 2 5L", "2024-01-01T00:00", 3) == [
        "2024-02-23T00:00:00+00:00",
        "2024-02-29T00:00:00+00:00",
        "2025-02-28T00:00:00+00:00",
    ]


# --------------------------------------------------------------------------- DST


DST = [
    # Europe/Berlin, spring forward on the last Sunday of March (0L): the fixed-time job
    # fires once at the first instant after the gap, seconds not kept.
    (
        "30 30 2 * 3 0L",
        "Europe/Berlin",
        "2025-03-01T00:00",
        ["2025-03-30T03:00:00+02:00", "2026-03-29T03:00:00+02:00"],
    ),
    (
        "15 30 2 * * *",
        "Europe/Berlin",
        "2025-03-29T12:00",
        ["2025-03-30T03:00:00+02:00", "2025-03-31T02:30:15+02:00"],
    ),
    # two skipped wall times collapse into the gap end, the 03:00 minute's later second follows
    (
        "0,30 0 2,3 * * *",
        "Europe/Berlin",
        "2025-03-30T01:00",
        [
            "2025-03-30T03:00:00+02:00",
            "2025-03-30T03:00:30+02:00",
            "2025-03-31T02:00:00+02:00",
            "2025-03-31T02:00:30+02:00",
        ],
    ),
    # a gap-end fire when the gap end's own minute does not match
    (
        "15 30 2,3 * * *",
        "Europe/Berlin",
        "2025-03-30T01:00",
        ["2025-03-30T03:00:00+02:00", "2025-03-30T03:30:15+02:00", "2025-03-31T02:30:15+02:00"],
    ),
    # wildcard seconds: the wall seconds in the gap do not happen
    (
        "*/20 30 2 * * *",
        "Europe/Berlin",
        "2025-03-30T01:00",
        ["2025-03-31T02:30:00+02:00", "2025-03-31T02:30:20+02:00"],
    ),
    (
        "*/30 * * * * *",
        "Europe/Berlin",
        "2025-03-30T01:59:00",
        ["2025-03-30T01:59:30+01:00", "2025-03-30T03:00:00+02:00", "2025-03-30T03:00:30+02:00"],
    ),
    # fall back, last Sunday of October: fixed-time fires in the first pass only
    (
        "30 30 2 * 10 0L",
        "Europe/Berlin",
        "2025-10-01T00:00",
        ["2025-10-26T02:30:30+02:00", "2026-10-25T02:30:30+02:00"],
    ),
    # wildcard seconds fire in both passes
    (
        "*/20 30 2 * * *",
        "Europe/Berlin",
        "2025-10-26T02:29:30",
        [
            "2025-10-26T02:30:00+02:00",
            "2025-10-26T02:30:20+02:00",
            "2025-10-26T02:30:40+02:00",
            "2025-10-26T02:30:00+01:00",
            "2025-10-26T02:30:20+01:00",
            "2025-10-26T02:30:40+01:00",
            "2025-10-27T02:30:00+01:00",
        ],
    ),
    # America/New_York, spring forward on the second Sunday of March (0#2)
    (
        "15 30 2 * 3 0#2",
        "America/New_York",
        "2025-03-01T00:00",
        ["2025-03-09T03:00:00-04:00", "2026-03-08T03:00:00-04:00"],
    ),
    (
        "0 */30 * * * *",
        "America/New_York",
        "2025-03-09T01:15",
        ["2025-03-09T01:30:00-05:00", "2025-03-09T03:00:00-04:00", "2025-03-09T03:30:00-04:00"],
    ),
    # fall back on the first Sunday of November (0#1; in 2026 that is Nov 1): first pass only
    (
        "45 30 1 * 11 0#1",
        "America/New_York",
        "2025-10-01T00:00",
        ["2025-11-02T01:30:45-04:00", "2026-11-01T01:30:45-04:00"],
    ),
    (
        "*/20 30 1 * * *",
        "America/New_York",
        "2025-11-02T01:30:30",
        [
            "2025-11-02T01:30:40-04:00",
            "2025-11-02T01:30:00-05:00",
            "2025-11-02T01:30:20-05:00",
            "2025-11-02T01:30:40-05:00",
            "2025-11-03T01:30:00-05:00",
        ],
    ),
    # the last weekday of the month on a fall-back day (Sunday Nov 30 is no weekday)
    (
        "0 0 9 LW * *",
        "America/New_York",
        "2025-10-30T00:00",
        ["2025-10-31T09:00:00-04:00", "2025-11-28T09:00:00-05:00"],
    ),
]


@pytest.mark.parametrize(
    ("expr", "zone", "after", "want"),
    [pytest.param(*row, id=f"{row[1]}:{row[0]}:{row[2]}") for row in DST],
)
def test_dst(expr: str, zone: str, after: str, want: list[str]) -> None:
    assert fires(expr, after, len(want), zone) == want


def test_fixed_job_started_in_second_pass_waits_for_next_day() -> None:
    got = fires("30 30 2 * * *", "2025-10-26T02:30:10", 1, "Europe/Berlin", fold=1)
    assert got == ["2025-10-27T02:30:30+01:00"]


def test_fixed_job_started_in_first_pass_fires_later_that_minute() -> None:
    got = fires("30 30 2 * * *", "2025-10-26T02:30:10", 1, "Europe/Berlin", fold=0)
    assert got == ["2025-10-26T02:30:30+02:00"]


def test_wildcard_job_started_in_second_pass_stays_there() -> None:
    got = fires("*/20 30 2 * * *", "2025-10-26T02:30:10", 2, "Europe/Berlin", fold=1)
    assert got == ["2025-10-26T02:30:20+01:00", "2025-10-26T02:30:40+01:00"]


def test_start_at_the_moved_fire_continues_in_the_gap_end_minute() -> None:
    got = fires("0,30 0 2,3 * * *", "2025-03-30T03:00:00", 1, "Europe/Berlin")
    assert got == ["2025-03-30T03:00:30+02:00"]


def test_wildcard_job_whose_matches_all_fall_in_gaps_reports_instead_of_looping() -> None:
    # The last Sunday of March at 02:xx never exists in Berlin.
    # Nor does 02:xx on the second Sunday of March in New York.
    for expr, zone in (
        ("* 2 * 3 0L", "Europe/Berlin"),
        ("* 0 2 * 3 0L", "Europe/Berlin"),
        ("0 * 2 * 3 0#2", "America/New_York"),
    ):
        cron = Cron(expr, zone, extended=True)
        with pytest.raises(InvalidScheduleError, match="daylight-saving gap"):
            cron.next_after(datetime(2025, 1, 1, tzinfo=UTC))


def test_dst_notes_show_seconds() -> None:
    cron = Cron("0,30 0 2,3 * * *", "Europe/Berlin", extended=True)
    moved = cron.dst_note(datetime.fromisoformat("2025-03-30T03:00:00+02:00"))
    assert moved == DstNote("moved", (time(2, 0, 0), time(2, 0, 30)))
    assert str(moved) == "moved: 02:00:00, 02:00:30 do not exist, spring-forward gap"
    assert cron.dst_note(datetime.fromisoformat("2025-03-30T03:00:30+02:00")) is None
    fixed = Cron("30 30 2 * * *", "Europe/Berlin", extended=True)
    note = fixed.dst_note(datetime.fromisoformat("2025-10-26T02:30:30+02:00"))
    assert str(note) == "fall-back: 02:30:30 repeats; fired on first occurrence only"


def test_dst_note_for_many_skipped_seconds_is_short() -> None:
    cron = Cron("0-59 30 2 * * *", "Europe/Berlin", extended=True)
    note = cron.dst_note(datetime.fromisoformat("2025-03-30T03:00:00+02:00"))
    assert note is not None and len(note.nominal) == 60
    assert str(note) == (
        "moved: 02:30:00, 02:30:01, 02:30:02, ..., 02:30:59, (60 wall times) "
        "do not exist, spring-forward gap"
    )


# --------------------------------------------------------------------------- search bound


def test_search_bound_covers_every_month_shape() -> None:
    """What L, W and # match depends on the month, its length and the weekday of its 1st.
    Over the 400-year Gregorian cycle no such shape waits longer than the search bound."""
    years: dict[tuple[int, int, int], list[int]] = {}
    for year in range(2000, 2400):
        for month in range(1, 13):
            first = dt.date(year, month, 1)
            length = ((first + dt.timedelta(days=32)).replace(day=1) - first).days
            years.setdefault((month, length, first.weekday()), []).append(year)
    assert len(years) == 12 * 7 + 7  # every shape occurs, February twice over
    worst = max(
        max(b - a for a, b in zip(seen, [*seen[1:], seen[0] + 400], strict=True))
        for seen in years.values()
    )
    assert worst == _MAX_YEARS_BETWEEN_FIRES == 40


def test_rarest_extended_expression_is_found_across_the_full_bound() -> None:
    # The fifth Sunday of February: leap years whose Feb 1 is a Sunday, 2088 then 2128.
    assert fires("0 0 * 2 0#5", "2088-03-01T00:00", 1) == ["2128-02-29T00:00:00+00:00"]


def test_no_fire_before_year_10000_raises_overflow() -> None:
    with pytest.raises(OverflowError, match="no fire time before year 10000"):
        Cron("0 0 0 L 2 *", extended=True).next_after(datetime(9999, 3, 1, tzinfo=UTC))


# --------------------------------------------------------------------------- command line


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, list[str], str]:
    code = main(["next", *argv])
    out, err = capsys.readouterr()
    return code, out.splitlines(), err


def test_cli_prints_extended_fires(capsys: pytest.CaptureFixture[str]) -> None:
    code, lines, err = run(
        capsys,
        "30 0 9 LW * *",
        "--extended",
        "--tz",
        "Europe/Berlin",
        "--after",
        "2025-05-01",
        "-n",
        "2",
    )
    assert (code, err) == (0, "")
    assert lines == ["2025-05-30T09:00:30+02:00", "2025-06-30T09:00:30+02:00"]


def test_cli_marks_moved_fire_with_seconds(capsys: pytest.CaptureFixture[str]) -> None:
    code, lines, _ = run(
        capsys,
        "15 30 2 * 3 0L",
        "--extended",
        "--tz",
        "Europe/Berlin",
        "--after",
        "2025-03-01",
        "-n",
        "1",
    )
    assert code == 0
    assert lines == [
        "2025-03-30T03:00:00+02:00  (moved: 02:30:15 does not exist, spring-forward gap)"
    ]


@pytest.mark.parametrize(
    ("expr", "message"),
    [
        (
            "0 0 0 * * *",
            "beat: invalid cron expression '0 0 0 * * *': a sixth field (seconds, written first) "
            "is a cron extension; pass --extended\n",
        ),
        (
            "0 0 L * *",
            "beat: invalid cron expression '0 0 L * *': 'L' in day of month is a cron "
            "extension; pass --extended\n",
        ),
        (
            "0 0 * * 1#2",
            "beat: invalid cron expression '0 0 * * 1#2': '1#2' in day of week is a cron "
            "extension; pass --extended\n",
        ),
    ],
)
def test_cli_without_the_flag_says_to_pass_it(
    capsys: pytest.CaptureFixture[str], expr: str, message: str
) -> None:
    code, lines, err = run(capsys, expr)
    assert (code, lines, err) == (2, [], message)


def test_cli_bad_extended_expression_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    code, lines, err = run(capsys, "0 0 * * 1#6", "--extended")
    assert (code, lines) == (2, [])
    assert err == (
        "beat: invalid cron expression '0 0 * * 1#6': "
        "day of week '1#6': the n in d#n must be 1-5, got '6'\n"
    )


def test_job_cron_passes_the_opt_in_through() -> None:
    from beat import Job

    job = Job.cron("*/15 * * * * *", extended=True).do(lambda ctx: None)
    assert job.timer == Cron("*/15 * * * * *", extended=True)
    with pytest.raises(CronSyntaxError, match="extended=True"):
        Job.cron("*/15 * * * * *")
