"""Cron grammar, validation, the day rule and the ``Cron`` interface (DST: test_cron_dst.py)."""

from __future__ import annotations

import datetime as dt
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

from beat._cron import _MAX_YEARS_BETWEEN_FIRES, Cron
from beat._exceptions import CronSyntaxError, InvalidScheduleError


def at(iso: str) -> datetime:
    """An aware UTC instant from a short ISO string."""
    return datetime.fromisoformat(iso).replace(tzinfo=UTC)


def nexts(expr: str, after: str, count: int = 3, tz: str = "UTC") -> list[str]:
    cron = Cron(expr, tz)
    moment = datetime.fromisoformat(after).replace(tzinfo=ZoneInfo(tz))
    out = []
    for _ in range(count):
        moment = cron.next_after(moment)
        out.append(moment.isoformat())
    return out


# --------------------------------------------------------------------------- rejections


@pytest.mark.parametrize(
    ("expr", "field", "message"),
    [
        ("61 * * * *", "minute", "minute value 61 out of range 0-59"),
        ("* 24 * * *", "hour", "hour value 24 out of range 0-23"),
        ("* * 0 * *", "day of month", "day of month value 0 out of range 1-31"),
        ("* * 32 * *", "day of month", "day of month value 32 out of range 1-31"),
        ("* * * 13 *", "month", "month value 13 out of range 1-12"),
        ("* * * 0 *", "month", "month value 0 out of range 1-12"),
        ("* * * * 8", "day of week", "day of week value 8 out of range 0-7"),
        ("5-3 * * * *", "minute", "minute range '5-3' is reversed (5 > 3)"),
        ("* * * * FRI-SUN", "day of week", "day of week range 'FRI-SUN' is reversed (5 > 0)"),
        ("* * * DEC-JAN *", "month", "month range 'DEC-JAN' is reversed (12 > 1)"),
        ("*/0 * * * *", "minute", "minute step 0 in '*/0' must be at least 1"),
        ("* 1-5/0 * * *", "hour", "hour step 0 in '1-5/0' must be at least 1"),
        ("* * * * 1/x", "day of week", "day of week step 'x' in '1/x' is not a number"),
        ("*/2/3 * * * *", "minute", "minute step '2/3' in '*/2/3' is not a number"),
        (
            "* * * JANUARY *",
            "month",
            "month value 'JANUARY' is not valid (expected a number or a three-letter name)",
        ),
        (
            "* * * * MONDAY",
            "day of week",
            "day of week value 'MONDAY' is not valid (expected a number or a three-letter name)",
        ),
        ("mon * * * *", "minute", "minute value 'mon' is not valid"),
        ("* * jan * *", "day of month", "day of month value 'jan' is not valid"),
        ("-5 * * * *", "minute", "minute value '' is not valid"),
        ("1,,2 * * * *", "minute", "minute list '1,,2' has an empty item"),
        ("1, * * * *", "minute", "minute list '1,' has an empty item"),
        ("*-5 * * * *", "minute", "minute value '*' is not valid"),
        ("\u0663 * * * *", "minute", "minute value '\u0663' is not valid"),  # Arabic-Indic 3
        # Extensions are not guessed: L, W and # need extended=True (test_cron_extended.py);
        # ? is not offered at all.
        (
            "0 0 L * *",
            "day of month",
            "'L' in day of month is a cron extension; pass extended=True",
        ),
        (
            "0 0 15W * *",
            "day of month",
            "'15W' in day of month is a cron extension; pass extended=True",
        ),
        (
            "0 0 * * 5#3",
            "day of week",
            "'5#3' in day of week is a cron extension; pass extended=True",
        ),
        ("0 0 ? * 1", "day of month", "day of month value '?' is not valid"),
    ],
)
def test_invalid_field_is_rejected_with_field_named(expr: str, field: str, message: str) -> None:
    with pytest.raises(CronSyntaxError) as caught:
        Cron(expr)
    assert str(caught.value) == f"invalid cron expression {expr!r}: {message}"
    assert caught.value.field == field
    assert caught.value.expression == expr


@pytest.mark.parametrize(
    ("expr", "message"),
    [
        ("* * * *", "expected 5 fields (minute hour day-of-month month day-of-week), got 4"),
        # (Six fields need extended=True; that message names the seconds field.)
        ("0 * * * * * *", "expected 5 fields (minute hour day-of-month month day-of-week), got 7"),
        ("", "expected 5 fields (minute hour day-of-month month day-of-week), got 0"),
        ("0 0 30 2 *", "day of month 30 never occurs in February"),
        ("0 0 31 4,6 *", "day of month 31 never occurs in April or June"),
        ("0 0 31 4,6,9,11 *", "day of month 31 never occurs in April, June, September or November"),
        ("0 0 30,31 2 */1", "day of month 30, 31 never occur in February"),
    ],
)
def test_invalid_expression_is_rejected(expr: str, message: str) -> None:
    with pytest.raises(CronSyntaxError) as caught:
        Cron(expr)
    assert str(caught.value) == f"invalid cron expression {expr!r}: {message}"
    assert caught.value.field is None


@pytest.mark.parametrize("alias", ["@reboot", "@every", "@daily 5", "@"])
def test_unknown_alias_is_rejected(alias: str) -> None:
    with pytest.raises(CronSyntaxError, match=r"unknown alias .* \(supported: @yearly, "):
        Cron(alias)


def test_cron_syntax_error_is_a_value_error() -> None:
    with pytest.raises(ValueError, match="minute"):
        Cron("99 * * * *")


def test_non_string_expression_is_rejected() -> None:
    with pytest.raises(InvalidScheduleError, match="must be a string"):
        Cron(5)  # type: ignore[arg-type]


def test_unknown_zone_is_named() -> None:
    with pytest.raises(InvalidScheduleError, match="unknown time zone 'Mars/Base'"):
        Cron("* * * * *", tz="Mars/Base")


@pytest.mark.parametrize("zone", ["", "Europe", "../etc/passwd", "utc "])
def test_malformed_zone_is_an_invalid_schedule(zone: str) -> None:
    with pytest.raises(InvalidScheduleError, match="unknown time zone"):
        Cron("* * * * *", tz=zone)


# --------------------------------------------------------------------------- what is accepted


def test_feb_29_is_possible_in_leap_years() -> None:
    assert nexts("0 0 29 2 *", "2025-01-01T00:00", 3) == [
        "2028-02-29T00:00:00+00:00",
        "2032-02-29T00:00:00+00:00",
        "2036-02-29T00:00:00+00:00",
    ]


def test_feb_29_skips_century_years() -> None:
    assert nexts("0 0 29 2 *", "2096-03-01T00:00", 1) == ["2104-02-29T00:00:00+00:00"]


def test_day_set_with_one_possible_day_is_valid() -> None:
    # "*/30" is the 1st and the 31st; February has a 1st.
    assert nexts("0 0 */30 2 *", "2025-01-01T00:00", 1) == ["2025-02-01T00:00:00+00:00"]


def test_impossible_day_with_restricted_weekday_is_valid_by_the_or_rule() -> None:
    # Neither day field starts with '*': Feb 30 never comes, Mondays in February do.
    assert nexts("0 0 30 2 1", "2025-01-01T00:00", 2) == [
        "2025-02-03T00:00:00+00:00",
        "2025-02-10T00:00:00+00:00",
    ]


@pytest.mark.parametrize(
    ("names", "numbers"),
    [
        ("0 0 * jan,FEB,Mar *", "0 0 * 1,2,3 *"),
        ("0 0 * * mon-fri", "0 0 * * 1-5"),
        ("0 0 * * SUN,sat", "0 0 * * 0,6"),
        ("0 0 * JAN-MAR/2 *", "0 0 * 1,3 *"),
        ("0 0 * * Tue-Thu", "0 0 * * 2,3,4"),
    ],
)
def test_names_are_case_insensitive_and_work_in_ranges(names: str, numbers: str) -> None:
    assert Cron(names) == Cron(numbers)


@pytest.mark.parametrize("expr", ["0 0 * * 7", "0 0 * * 0", "0 0 * * sun", "0 0 * * 7-7"])
def test_sunday_is_0_or_7(expr: str) -> None:
    assert Cron(expr) == Cron("0 0 * * 0")
    assert nexts(expr, "2025-01-01T00:00", 1) == ["2025-01-05T00:00:00+00:00"]  # a Sunday


def test_weekday_range_up_to_7_includes_sunday() -> None:
    assert Cron("0 0 * * 5-7") == Cron("0 0 * * 0,5,6")
    assert Cron("0 0 * * 0-7") == Cron("0 0 * * 0-6")


@pytest.mark.parametrize(
    ("alias", "expansion"),
    [
        ("@yearly", "0 0 1 1 *"),
        ("@annually", "0 0 1 1 *"),
        ("@monthly", "0 0 1 * *"),
        ("@weekly", "0 0 * * 0"),
        ("@daily", "0 0 * * *"),
        ("@midnight", "0 0 * * *"),
        ("@hourly", "0 * * * *"),
        ("@DAILY", "0 0 * * *"),
        ("  @Hourly ", "0 * * * *"),
    ],
)
def test_aliases(alias: str, expansion: str) -> None:
    assert Cron(alias) == Cron(expansion)
    assert Cron(alias).expr == alias


def test_hourly_is_a_wildcard_job_and_daily_a_fixed_time_job() -> None:
    assert not Cron("@hourly").fixed_time
    assert Cron("@daily").fixed_time
    assert not Cron("5 */2 * * *").fixed_time
    assert not Cron("*/5 3 * * *").fixed_time
    assert Cron("0-59 0-23 * * *").fixed_time  # same values as '* *', but not a wildcard


@pytest.mark.parametrize(
    ("equal", "single"),
    [
        ("3-3 * * * *", "3 * * * *"),
        ("0 0 * FEB-FEB *", "0 0 * 2 *"),
        ("0 0 * feb-2 *", "0 0 * 2 *"),
        ("0 5-5/2 * * *", "0 5 * * *"),
        ("0 0 * * MON-MON", "0 0 * * 1"),
    ],
)
def test_equal_range_is_that_single_value(equal: str, single: str) -> None:
    assert Cron(equal) == Cron(single)


def test_equal_range_fires_once_an_hour() -> None:
    assert nexts("3-3 * * * *", "2025-01-01T10:04:30", 2) == [
        "2025-01-01T11:03:00+00:00",
        "2025-01-01T12:03:00+00:00",
    ]


@pytest.mark.parametrize(
    ("expr", "same_as"),
    [
        ("*/15 * * * *", "0,15,30,45 * * * *"),
        ("5/15 * * * *", "5,20,35,50 * * * *"),  # cronie: N/s runs from N to the maximum
        ("10-30/10 * * * *", "10,20,30 * * * *"),
        ("*/90 * * * *", "0 * * * *"),  # a step past the range still takes the first value
        ("0 0 * * 5/1", "0 0 * * 0,5,6"),  # weekday N/s runs to 7, which is Sunday
        ("0 0 * * */2", "0 0 * * 0,2,4,6"),
        ("07 * * * *", "7 * * * *"),
        ("1,1,1 * * * *", "1 * * * *"),
    ],
)
def test_steps_and_lists(expr: str, same_as: str) -> None:
    # Compare the fire times: the '*'-flags (day and DST rules) may differ between spellings.
    assert nexts(expr, "2025-01-01T00:00", 8) == nexts(same_as, "2025-01-01T00:00", 8)


def test_fields_may_be_separated_by_tabs_and_runs_of_spaces() -> None:
    assert Cron("0\t9  *   * 1-5") == Cron("0 9 * * 1-5")


# --------------------------------------------------------------------------- the day rule


def test_both_days_restricted_means_either() -> None:
    # 1st of the month OR a Monday (Jan 2025: Wed 1, Mon 6, Mon 13).
    assert nexts("0 0 1 * 1", "2024-12-31T12:00", 3) == [
        "2025-01-01T00:00:00+00:00",
        "2025-01-06T00:00:00+00:00",
        "2025-01-13T00:00:00+00:00",
    ]


def test_star_day_of_month_means_weekday_only() -> None:
    assert nexts("0 0 * * 1", "2025-01-01T00:00", 2) == [
        "2025-01-06T00:00:00+00:00",
        "2025-01-13T00:00:00+00:00",
    ]


def test_star_step_day_field_means_both_the_cron_quirk() -> None:
    # "*/2" starts with '*': odd days AND Mondays (Mar 2025: 3, 17, 31).
    assert nexts("0 0 */2 * 1", "2025-03-01T00:00", 3) == [
        "2025-03-03T00:00:00+00:00",
        "2025-03-17T00:00:00+00:00",
        "2025-03-31T00:00:00+00:00",
    ]


def test_star_step_weekday_field_also_means_both() -> None:
    # dow "*/7" is {0, 7}: Sundays; dom 1: the 1st. Both: a 1st that is a Sunday.
    assert nexts("0 0 1 * */7", "2025-01-01T00:00", 2) == [
        "2025-06-01T00:00:00+00:00",
        "2026-02-01T00:00:00+00:00",
    ]


def test_full_range_spelled_out_is_not_a_star() -> None:
    # "1-31" does not start with '*', so the OR rule applies: every day.
    assert nexts("0 0 1-31 * 1", "2025-01-01T00:00", 2) == [
        "2025-01-02T00:00:00+00:00",
        "2025-01-03T00:00:00+00:00",
    ]
    # "*/1" does: Mondays only.
    assert nexts("0 0 */1 * 1", "2025-01-01T00:00", 1) == ["2025-01-06T00:00:00+00:00"]


# --------------------------------------------------------------------------- next_after


def test_next_after_is_strictly_after() -> None:
    cron = Cron("*/5 * * * *")
    assert cron.next_after(at("2025-01-01T10:05:00")) == at("2025-01-01T10:10:00")
    assert cron.next_after(at("2025-01-01T10:04:59.999999")) == at("2025-01-01T10:05:00")
    assert cron.next_after(at("2025-01-01T10:05:00.000001")) == at("2025-01-01T10:10:00")


def test_next_after_rolls_over_hour_day_month_and_year() -> None:
    assert nexts("59 23 31 12 *", "2025-12-31T23:59", 1) == ["2026-12-31T23:59:00+00:00"]
    assert nexts("0 0 1 * *", "2025-12-31T23:59:59", 1) == ["2026-01-01T00:00:00+00:00"]
    assert nexts("0 0 31 * *", "2025-04-01T00:00", 1) == ["2025-05-31T00:00:00+00:00"]


def test_naive_datetime_is_rejected_naming_the_value() -> None:
    with pytest.raises(InvalidScheduleError, match=r"aware datetime, got datetime\.datetime\(2025"):
        Cron("* * * * *").next_after(datetime(2025, 1, 1))


def test_non_datetime_is_rejected() -> None:
    with pytest.raises(InvalidScheduleError, match="aware datetime, got '2025-01-01'"):
        Cron("* * * * *").next_after("2025-01-01")  # type: ignore[arg-type]


def test_tzinfo_without_offset_counts_as_naive() -> None:
    class NoOffset(dt.tzinfo):
        def utcoffset(self, moment: datetime | None) -> None:
            return None

    with pytest.raises(InvalidScheduleError):
        Cron("* * * * *").next_after(datetime(2025, 1, 1, tzinfo=NoOffset()))


def test_any_aware_input_zone_gives_result_in_cron_zone() -> None:
    cron = Cron("0 9 * * *", tz="Asia/Kolkata")
    fixed = dt.timezone(dt.timedelta(hours=-7))
    fire = cron.next_after(datetime(2024, 12, 31, 12, 0, tzinfo=fixed))  # 00:30 in Kolkata
    assert fire.isoformat() == "2025-01-01T09:00:00+05:30"
    assert fire.tzinfo is ZoneInfo("Asia/Kolkata")


def test_search_bound_covers_the_rarest_day() -> None:
    """The bound in the module docstring: over the 400-year Gregorian cycle, no (month, day,
    weekday) combination waits longer than _MAX_YEARS_BETWEEN_FIRES for its next date."""
    years: dict[tuple[int, int, int], list[int]] = {}
    day = dt.date(2000, 1, 1)
    while day.year < 2400:
        years.setdefault((day.month, day.day, day.weekday()), []).append(day.year)
        day += dt.timedelta(days=1)
    worst = max(
        max(b - a for a, b in zip(seen, [*seen[1:], seen[0] + 400], strict=True))
        for seen in years.values()
    )
    assert worst == _MAX_YEARS_BETWEEN_FIRES == 40


def test_rarest_expression_is_found_across_the_full_bound() -> None:
    # 29 February on a Sunday: 2088, then (2100 is not a leap year) 2128.
    assert nexts("0 0 29 2 */7", "2088-03-01T00:00", 1) == ["2128-02-29T00:00:00+00:00"]


def test_no_fire_before_year_10000_raises_overflow() -> None:
    with pytest.raises(OverflowError, match="no fire time before year 10000"):
        Cron("0 0 29 2 *").next_after(at("9996-03-01T00:00"))


# --------------------------------------------------------------------------- the object


def test_attributes_and_repr() -> None:
    cron = Cron("*/5 * * * *", tz="Europe/Berlin")
    assert cron.expr == "*/5 * * * *"
    assert cron.tz is ZoneInfo("Europe/Berlin")
    assert repr(cron) == "Cron('*/5 * * * *', tz='Europe/Berlin')"
    assert Cron("@daily").tz is ZoneInfo("UTC")


def test_zoneinfo_object_is_accepted() -> None:
    assert Cron("0 0 * * *", ZoneInfo("America/New_York")) == Cron("0 0 * * *", "America/New_York")


def test_equality_and_hash_follow_meaning_and_zone() -> None:
    assert Cron("0 0 * * 7") == Cron("0 0 * * 0")
    assert hash(Cron("0 0 * * 7")) == hash(Cron("0 0 * * 0"))
    assert Cron("0 0 * * *") != Cron("0 0 * * *", "Europe/Berlin")
    assert Cron("0 0 * * *") != Cron("0 1 * * *")
    assert Cron("0 0 * * *") != "0 0 * * *"
    assert len({Cron("@daily"), Cron("@midnight"), Cron("0 0 * * *")}) == 1
