"""DST behaviour of Cron, pinned per zone as ISO strings *with offsets*, so fold errors show.

Transitions used (2025, from tzdata):

* Europe/Berlin       2025-03-30 02:00 CET  -> 03:00 CEST  (01:00Z; 02:00-02:59 skipped)
                      2025-10-26 03:00 CEST -> 02:00 CET   (01:00Z; 02:00-02:59 twice)
* America/New_York    2025-03-09 02:00 EST  -> 03:00 EDT   (07:00Z; 02:00-02:59 skipped)
                      2025-11-02 02:00 EDT  -> 01:00 EST   (06:00Z; 01:00-01:59 twice)
* Australia/Lord_Howe 2025-04-06 02:00 +11  -> 01:30 +1030 (15:00Z Apr 5; 01:30-01:59 twice)
                      2025-10-05 02:00 +1030 -> 02:30 +11  (15:30Z Oct 4; 02:00-02:29 skipped)
* America/Santiago    2025-04-06 00:00 -03  -> 2025-04-05 23:00 -04
                                               (03:00Z; 23:00-23:59 on Apr 5 twice)
                      2025-09-07 00:00 -04  -> 01:00 -03   (04:00Z; the day starts at 01:00)

Fixed-time jobs (minute and hour do not start with '*'): a skipped wall time fires once at
the first instant after the gap; a repeated one fires once, on its first occurrence.
Wildcard jobs follow real time: nothing in the gap, both passes of a repeated hour.
"""

from __future__ import annotations

from datetime import datetime, time
from zoneinfo import ZoneInfo

import pytest

from beat._cron import Cron, DstNote


def fires(expr: str, zone: str, after: str, count: int, fold: int = 0) -> list[str]:
    cron = Cron(expr, zone)
    moment = datetime.fromisoformat(after).replace(tzinfo=ZoneInfo(zone), fold=fold)
    out = []
    for _ in range(count):
        moment = cron.next_after(moment)
        out.append(moment.isoformat())
    return out


BERLIN = [
    # spring forward: fixed-time jobs in the gap fire once at 03:00 CEST
    ("30 2 * * *", "2025-03-29T12:00", ["2025-03-30T03:00:00+02:00", "2025-03-31T02:30:00+02:00"]),
    ("0 2 * * *", "2025-03-29T12:00", ["2025-03-30T03:00:00+02:00", "2025-03-31T02:00:00+02:00"]),
    (
        "0,30 2 * * *",
        "2025-03-29T12:00",
        ["2025-03-30T03:00:00+02:00", "2025-03-31T02:00:00+02:00", "2025-03-31T02:30:00+02:00"],
    ),
    ("0 3 * * *", "2025-03-29T12:00", ["2025-03-30T03:00:00+02:00", "2025-03-31T03:00:00+02:00"]),
    # spring forward: wildcard jobs skip the gap
    (
        "*/30 * * * *",
        "2025-03-30T00:45",
        ["2025-03-30T01:00:00+01:00", "2025-03-30T01:30:00+01:00", "2025-03-30T03:00:00+02:00"],
    ),
    ("@hourly", "2025-03-30T00:30", ["2025-03-30T01:00:00+01:00", "2025-03-30T03:00:00+02:00"]),
    ("* 2 * * *", "2025-03-30T01:58", ["2025-03-31T02:00:00+02:00", "2025-03-31T02:01:00+02:00"]),
    # fall back: fixed-time jobs fire on the first occurrence only
    ("30 2 * * *", "2025-10-25T12:00", ["2025-10-26T02:30:00+02:00", "2025-10-27T02:30:00+01:00"]),
    # fall back: wildcard jobs fire in both passes, in real-time order
    (
        "*/30 * * * *",
        "2025-10-26T01:15",
        [
            "2025-10-26T01:30:00+02:00",
            "2025-10-26T02:00:00+02:00",
            "2025-10-26T02:30:00+02:00",
            "2025-10-26T02:00:00+01:00",
            "2025-10-26T02:30:00+01:00",
            "2025-10-26T03:00:00+01:00",
        ],
    ),
    (
        "30 * * * *",
        "2025-10-26T01:00",
        [
            "2025-10-26T01:30:00+02:00",
            "2025-10-26T02:30:00+02:00",
            "2025-10-26T02:30:00+01:00",
            "2025-10-26T03:30:00+01:00",
        ],
    ),
    (
        "@hourly",
        "2025-10-26T01:30",
        ["2025-10-26T02:00:00+02:00", "2025-10-26T02:00:00+01:00", "2025-10-26T03:00:00+01:00"],
    ),
]

NEW_YORK = [
    ("30 2 * * *", "2025-03-08T12:00", ["2025-03-09T03:00:00-04:00", "2025-03-10T02:30:00-04:00"]),
    (
        "*/20 * * * *",
        "2025-03-09T01:30",
        ["2025-03-09T01:40:00-05:00", "2025-03-09T03:00:00-04:00", "2025-03-09T03:20:00-04:00"],
    ),
    ("30 1 * * *", "2025-11-01T12:00", ["2025-11-02T01:30:00-04:00", "2025-11-03T01:30:00-05:00"]),
    (
        "*/30 * * * *",
        "2025-11-02T00:45",
        [
            "2025-11-02T01:00:00-04:00",
            "2025-11-02T01:30:00-04:00",
            "2025-11-02T01:00:00-05:00",
            "2025-11-02T01:30:00-05:00",
            "2025-11-02T02:00:00-05:00",
        ],
    ),
    (
        "0 9 * * 1-5",
        "2025-03-07T10:00",
        ["2025-03-10T09:00:00-04:00", "2025-03-11T09:00:00-04:00"],
    ),
]

LORD_HOWE = [
    # spring forward by 30 minutes: 02:00-02:29 skipped
    ("15 2 * * *", "2025-10-04T12:00", ["2025-10-05T02:30:00+11:00", "2025-10-06T02:15:00+11:00"]),
    ("0 2 * * *", "2025-10-04T12:00", ["2025-10-05T02:30:00+11:00", "2025-10-06T02:00:00+11:00"]),
    ("45 2 * * *", "2025-10-04T12:00", ["2025-10-05T02:45:00+11:00", "2025-10-06T02:45:00+11:00"]),
    (
        "*/15 * * * *",
        "2025-10-05T01:40",
        ["2025-10-05T01:45:00+10:30", "2025-10-05T02:30:00+11:00", "2025-10-05T02:45:00+11:00"],
    ),
    (
        "*/15 2 * * *",
        "2025-10-05T01:00",
        ["2025-10-05T02:30:00+11:00", "2025-10-05T02:45:00+11:00", "2025-10-06T02:00:00+11:00"],
    ),
    # fall back by 30 minutes: 01:30-01:59 twice
    ("45 1 * * *", "2025-04-05T12:00", ["2025-04-06T01:45:00+11:00", "2025-04-07T01:45:00+10:30"]),
    (
        "*/15 * * * *",
        "2025-04-06T01:20",
        [
            "2025-04-06T01:30:00+11:00",
            "2025-04-06T01:45:00+11:00",
            "2025-04-06T01:30:00+10:30",
            "2025-04-06T01:45:00+10:30",
            "2025-04-06T02:00:00+10:30",
        ],
    ),
]

SANTIAGO = [
    # spring forward at midnight: the day starts at 01:00
    ("0 0 * * *", "2025-09-06T12:00", ["2025-09-07T01:00:00-03:00", "2025-09-08T00:00:00-03:00"]),
    (
        "*/30 * * * *",
        "2025-09-06T23:15",
        ["2025-09-06T23:30:00-04:00", "2025-09-07T01:00:00-03:00", "2025-09-07T01:30:00-03:00"],
    ),
    ("* 0 * * *", "2025-09-06T23:59", ["2025-09-08T00:00:00-03:00", "2025-09-08T00:01:00-03:00"]),
    # fall back at midnight: 23:00-23:59 on Apr 5 twice
    ("30 23 * * *", "2025-04-05T12:00", ["2025-04-05T23:30:00-03:00", "2025-04-06T23:30:00-04:00"]),
    ("0 0 * * *", "2025-04-05T12:00", ["2025-04-06T00:00:00-04:00", "2025-04-07T00:00:00-04:00"]),
    (
        "*/30 * * * *",
        "2025-04-05T22:45",
        [
            "2025-04-05T23:00:00-03:00",
            "2025-04-05T23:30:00-03:00",
            "2025-04-05T23:00:00-04:00",
            "2025-04-05T23:30:00-04:00",
            "2025-04-06T00:00:00-04:00",
        ],
    ),
]


def _table(zone: str, rows: list[tuple[str, str, list[str]]]) -> list[object]:
    return [
        pytest.param(zone, expr, after, want, id=f"{zone}:{expr}:{after}")
        for expr, after, want in rows
    ]


@pytest.mark.parametrize(
    ("zone", "expr", "after", "want"),
    _table("Europe/Berlin", BERLIN)
    + _table("America/New_York", NEW_YORK)
    + _table("Australia/Lord_Howe", LORD_HOWE)
    + _table("America/Santiago", SANTIAGO),
)
def test_dst_table(zone: str, expr: str, after: str, want: list[str]) -> None:
    assert fires(expr, zone, after, len(want)) == want


# --------------------------------------------------------------------------- starts inside


def test_fixed_job_started_in_second_pass_waits_for_next_day() -> None:
    # 02:45 CEST (first pass) is over at 02:15 CET; the second pass does not fire.
    got = fires("45 2 * * *", "Europe/Berlin", "2025-10-26T02:15", 1, fold=1)
    assert got == ["2025-10-27T02:45:00+01:00"]


def test_fixed_job_started_in_first_pass_fires_later_in_first_pass() -> None:
    got = fires("45 2 * * *", "Europe/Berlin", "2025-10-26T02:15", 1, fold=0)
    assert got == ["2025-10-26T02:45:00+02:00"]


def test_wildcard_job_started_late_in_first_pass_continues_in_second_pass() -> None:
    got = fires("15,45 * * * *", "Europe/Berlin", "2025-10-26T02:50", 3, fold=0)
    assert got == [
        "2025-10-26T02:15:00+01:00",
        "2025-10-26T02:45:00+01:00",
        "2025-10-26T03:15:00+01:00",
    ]


def test_wildcard_job_started_in_second_pass_stays_in_second_pass() -> None:
    got = fires("*/20 * * * *", "America/New_York", "2025-11-02T01:25", 3, fold=1)
    assert got == [
        "2025-11-02T01:40:00-05:00",
        "2025-11-02T02:00:00-05:00",
        "2025-11-02T02:20:00-05:00",
    ]


def test_start_just_before_gap_still_gets_the_moved_fire() -> None:
    got = fires("30 2 * * *", "Europe/Berlin", "2025-03-30T01:59:59.999999", 1)
    assert got == ["2025-03-30T03:00:00+02:00"]


def test_start_exactly_at_gap_end_is_past_the_moved_fire() -> None:
    got = fires("30 2 * * *", "Europe/Berlin", "2025-03-30T03:00", 1)
    assert got == ["2025-03-31T02:30:00+02:00"]


def test_result_is_in_the_cron_zone_whatever_zone_t_is_in() -> None:
    cron = Cron("30 2 * * *", "Europe/Berlin")
    fire = cron.next_after(datetime.fromisoformat("2025-03-29T23:00:00+00:00"))
    assert fire.tzinfo is ZoneInfo("Europe/Berlin")
    assert fire.isoformat() == "2025-03-30T03:00:00+02:00"


def test_wildcard_job_whose_matches_all_fall_in_gaps_reports_instead_of_looping() -> None:
    # Last Sunday of March at 02:xx never exists in Berlin (EU rule since 1996).
    cron = Cron("* 2 25-31 3 */7", "Europe/Berlin")
    with pytest.raises(ValueError, match="daylight-saving gap"):
        cron.next_after(datetime.fromisoformat("2025-01-01T00:00:00+00:00"))


# --------------------------------------------------------------------------- dst_note


def _note(expr: str, zone: str, iso: str) -> DstNote | None:
    return Cron(expr, zone).dst_note(datetime.fromisoformat(iso))


def test_note_moved_fire_names_every_nominal_time() -> None:
    note = _note("0,30 2 * * *", "Europe/Berlin", "2025-03-30T03:00:00+02:00")
    assert note == DstNote("moved", (time(2, 0), time(2, 30)))
    assert str(note) == "moved: 02:00, 02:30 do not exist, spring-forward gap"


def test_note_moved_fire_at_santiago_midnight() -> None:
    note = _note("0 0 * * *", "America/Santiago", "2025-09-07T01:00:00-03:00")
    assert str(note) == "moved: 00:00 does not exist, spring-forward gap"


def test_note_suppressed_repeat_for_fixed_job() -> None:
    note = _note("30 2 * * *", "Europe/Berlin", "2025-10-26T02:30:00+02:00")
    assert str(note) == "fall-back: 02:30 repeats; fired on first occurrence only"


def test_note_passes_for_wildcard_job() -> None:
    cron = Cron("*/30 * * * *", "Europe/Berlin")
    first = datetime.fromisoformat("2025-10-26T02:30:00+02:00").astimezone(cron.tz)
    second = datetime.fromisoformat("2025-10-26T02:30:00+01:00").astimezone(cron.tz)
    assert cron.dst_note(first) == DstNote("first", (time(2, 30),))
    assert cron.dst_note(second) == DstNote("second", (time(2, 30),))


@pytest.mark.parametrize(
    ("expr", "iso"),
    [
        ("0 3 * * *", "2025-03-31T03:00:00+02:00"),  # ordinary day
        ("*/30 * * * *", "2025-03-30T03:00:00+02:00"),  # wildcard at gap end: not moved
        ("0 3 * * *", "2025-03-30T03:00:00+02:00"),  # nominal 03:00, nothing in the gap
    ],
)
def test_no_note_for_ordinary_fires(expr: str, iso: str) -> None:
    assert _note(expr, "Europe/Berlin", iso) is None
