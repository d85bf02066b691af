"""Property tests for the cron extensions: ``next_after`` against brute-force references.

The references never see beat's parser or tables. Expressions are generated together with
the meaning cron gives them, and each day-field extension is decided from its definition:

* ``L``: the day after is in the next month; ``LW``: the last Monday-Friday of the month;
  ``nW``: of the month's Monday-Fridays, the one closest to day ``n`` (none without day ``n``);
* ``d#n``: weekday ``d`` whose occurrence count so far in the month is ``n``;
  ``dL``: weekday ``d`` with no ``d`` a week later in the same month.

Two references:

* :func:`walk_seconds` walks real time one UTC minute at a time near DST transitions, reads the
  wall clock, and inside each minute looks at every second: a wildcard job fires at every
  instant whose wall time matches; a fixed-time job fires at a matching wall time on its first
  pass only, and once at the first instant after a gap (second 0) when a wall time inside the
  gap matched. (The zones used have whole-minute offsets, so a real minute is a wall minute.)
* :func:`walk_days` walks calendar days over years in zones without DST, for the day
  extensions' long-range behaviour (leap Februaries, months without a fifth Monday).
"""

from __future__ import annotations

import calendar
import functools
import random
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from beat._cron import Cron

from .cron_zones import ZONES, transitions

MINUTE = timedelta(minutes=1)
MAX_FIRES = 60
TRANSITIONS = {name: transitions(ZoneInfo(name), 2024, 2026) for name in ZONES}
DAYS = ("sun", "mon", "tue", "wed", "thu", "fri", "sat")


# --------------------------------------------------------------------------- meaning


@dataclass(frozen=True)
class DaySpec:
    values: frozenset[int] = frozenset()
    last: bool = False  # L
    last_weekday: bool = False  # LW
    nearest: frozenset[int] = frozenset()  # nW
    nth: frozenset[tuple[int, int]] = frozenset()  # d#n, Sunday 0
    last_of: frozenset[int] = frozenset()  # dL, Sunday 0


def _month_days(d: date) -> list[date]:
    length = calendar.monthrange(d.year, d.month)[1]
    return [d.replace(day=k) for k in range(1, length + 1)]


def dom_matches(spec: DaySpec, d: date) -> bool:
    if d.day in spec.values:
        return True
    if spec.last and (d + timedelta(days=1)).month != d.month:
        return True
    weekdays = [x for x in _month_days(d) if x.weekday() < 5]
    if spec.last_weekday and d == weekdays[-1]:
        return True
    for n in spec.nearest:
        if n <= len(_month_days(d)) and d == min(weekdays, key=lambda x: abs(x.day - n)):
            return True
    return False


def dow_matches(spec: DaySpec, d: date) -> bool:
    dow = d.isoweekday() % 7
    if dow in spec.values:
        return True
    count = sum(1 for x in _month_days(d) if x <= d and x.isoweekday() % 7 == dow)
    if (dow, count) in spec.nth:
        return True
    return dow in spec.last_of and (d + timedelta(days=7)).month != d.month


@dataclass(frozen=True)
class Spec:
    text: str
    seconds: frozenset[int]
    minutes: frozenset[int]
    hours: frozenset[int]
    dom: DaySpec
    months: frozenset[int]
    dow: DaySpec
    both_days: bool
    fixed: bool

    def day_matches(self, d: date) -> bool:
        return _day_matches(self, d)

    def minute_matches(self, wall: datetime) -> bool:
        """Every field but seconds."""
        return (
            wall.minute in self.minutes
            and wall.hour in self.hours
            and self.day_matches(wall.date())
        )


@functools.lru_cache(maxsize=65536)  # the walks ask about the same day for every minute
def _day_matches(spec: Spec, d: date) -> bool:
    if d.month not in spec.months:
        return False
    by_dom, by_dow = dom_matches(spec.dom, d), dow_matches(spec.dow, d)
    return (by_dom and by_dow) if spec.both_days else (by_dom or by_dow)


# --------------------------------------------------------------------------- generation


@st.composite
def _plain(draw: st.DrawFn, low: int, high: int, star_percent: int) -> tuple[str, frozenset[int]]:
    """A classic field: ``*``, ``*/s``, ``a-b/s``, ``N`` or a list of values."""
    roll = draw(st.integers(0, 99))
    if roll < star_percent:
        return "*", frozenset(range(low, high + 1))
    # "full": "0-59" allows every value yet, not starting with '*', keeps a job fixed-time.
    kind = draw(st.sampled_from(("star_step", "range_step", "list", "full")))
    if kind == "full":
        return f"{low}-{high}", frozenset(range(low, high + 1))
    if kind == "star_step":
        step = draw(st.integers(1, (high - low) // 2 + 1))
        return f"*/{step}", frozenset(range(low, high + 1, step))
    if kind == "range_step":
        first = draw(st.integers(low, high))
        last = draw(st.integers(first, high))
        step = draw(st.integers(1, 7))
        return f"{first}-{last}/{step}", frozenset(range(first, last + 1, step))
    values = draw(st.sets(st.integers(low, high), min_size=1, max_size=4))
    return ",".join(map(str, sorted(values))), frozenset(values)


@st.composite
def _dom(draw: st.DrawFn) -> tuple[str, DaySpec]:
    if draw(st.integers(0, 99)) < 45:
        return "*", DaySpec(frozenset(range(1, 32)))
    items = draw(
        st.lists(
            st.one_of(
                st.just("L"),
                st.just("LW"),
                st.integers(1, 31).map(lambda n: f"{n}W"),
                st.sampled_from((1, 15, 28, 29, 30, 31)).map(lambda n: f"{n}W"),
                st.integers(1, 31).map(str),
            ),
            min_size=1,
            max_size=3,
            unique=True,
        )
    )
    spec = DaySpec(
        values=frozenset(int(i) for i in items if i.isdigit()),
        last="L" in items,
        last_weekday="LW" in items,
        nearest=frozenset(int(i[:-1]) for i in items if i[:-1].isdigit() and i.endswith("W")),
    )
    return ",".join(items), spec


@st.composite
def _dow(draw: st.DrawFn) -> tuple[str, DaySpec]:
    roll = draw(st.integers(0, 99))
    if roll < 40:
        return "*", DaySpec(frozenset(range(7)))
    if roll < 50:
        return "*/2", DaySpec(frozenset({0, 2, 4, 6}))
    # Sunday-based items come up often: DST changes on the last (0L), second (0#2, New York
    # in March) and first (0#1, New York in November) Sundays.
    day = st.one_of(st.integers(0, 7), st.just(0), st.just(7))
    items = draw(
        st.lists(
            st.one_of(
                st.tuples(day, st.integers(1, 5)).map(lambda p: f"{p[0]}#{p[1]}"),
                day.map(lambda d: f"{d}L"),
                st.integers(0, 6).map(lambda d: DAYS[d] + "L"),
                st.integers(0, 7).map(str),
            ),
            min_size=1,
            max_size=3,
            unique=True,
        )
    )
    values, nth, last_of = set(), set(), set()
    for item in items:
        if "#" in item:
            d, n = item.split("#")
            nth.add((int(d) % 7, int(n)))
        elif item.endswith("L"):
            head = item[:-1]
            last_of.add(int(head) % 7 if head.isdigit() else DAYS.index(head))
        else:
            values.add(int(item) % 7)
    spec = DaySpec(frozenset(values), nth=frozenset(nth), last_of=frozenset(last_of))
    return ",".join(items), spec


@st.composite
def _few(draw: st.DrawFn, high: int) -> tuple[str, frozenset[int]]:
    values = draw(st.sets(st.integers(0, high), min_size=1, max_size=2))
    return ",".join(map(str, sorted(values))), frozenset(values)


@st.composite
def specs(draw: st.DrawFn, *, dst_hours: bool) -> Spec:
    """``dst_hours``: any time fields, hours mostly where DST changes happen. Otherwise a few
    fire times a day, so that walks over years are about the days."""
    if dst_hours:
        seconds = draw(_plain(0, 59, 25))
        minutes = draw(_plain(0, 59, 30))
        if draw(st.integers(0, 9)) < 7:
            hour_set = draw(st.sets(st.sampled_from((0, 1, 2, 3, 23)), min_size=1, max_size=2))
            hours = ",".join(map(str, sorted(hour_set))), frozenset(hour_set)
        else:
            hours = draw(_plain(0, 23, 30))
    else:
        seconds, minutes, hours = draw(_few(59)), draw(_few(59)), draw(_few(23))
    dom = draw(_dom())
    months = draw(_plain(1, 12, 75))
    dow = draw(_dow())
    texts = (seconds[0], minutes[0], hours[0], dom[0], months[0], dow[0])
    return Spec(
        " ".join(texts),
        seconds[1],
        minutes[1],
        hours[1],
        dom[1],
        months[1],
        dow[1],
        both_days=dom[0].startswith("*") or dow[0].startswith("*"),
        fixed=not any(t.startswith("*") for t in texts[:3]),
    )


def _possible(spec: Spec) -> bool:
    """Whether any day can ever match (beat must reject exactly the others).

    Every definition above reads a month only through its calendar, which its length and
    the weekday of its 1st determine; so one month of each such shape in the 400-year
    Gregorian cycle stands for all of them.
    """
    seen = set()
    for year in range(2000, 2400):
        for month in sorted(spec.months):
            first = date(year, month, 1)
            shape = (month, calendar.monthrange(year, month)[1], first.weekday())
            if shape in seen:
                continue
            seen.add(shape)
            if any(spec.day_matches(d) for d in _month_days(first)):
                return True
    return False


def build(spec: Spec) -> Cron | None:
    """The Cron for ``spec``; checks that beat rejects exactly the impossible day fields."""
    try:
        cron = Cron(spec.text, "UTC", extended=True)
    except ValueError:
        assert not _possible(spec), f"{spec.text!r} rejected but can fire"
        return None
    return cron


# --------------------------------------------------------------------------- references


def walk_seconds(
    spec: Spec, tz: ZoneInfo, start: datetime, end: datetime
) -> tuple[list[str], bool]:
    """Fires in (start, end], at most MAX_FIRES, as ISO strings; and whether DST touched a
    matching wall time on the way."""
    fires: list[str] = []
    touched = False
    moment = start.astimezone(UTC).replace(second=0, microsecond=0)
    previous = (moment - MINUTE).astimezone(tz).replace(tzinfo=None)
    while moment <= end and len(fires) < MAX_FIRES:
        local = moment.astimezone(tz)
        wall = local.replace(tzinfo=None)
        matched = spec.minute_matches(wall)
        gap = wall - previous > MINUTE
        skipped = gap and any(
            spec.minute_matches(previous + k * MINUTE)
            for k in range(1, (wall - previous) // MINUTE)
        )
        touched |= skipped or (matched and local.fold == 1)
        for second in range(60) if matched or skipped else ():
            instant = moment + timedelta(seconds=second)
            fire = (matched and second in spec.seconds and (local.fold == 0 or not spec.fixed)) or (
                second == 0 and spec.fixed and skipped
            )
            if fire and start < instant <= end and len(fires) < MAX_FIRES:
                fires.append(instant.astimezone(tz).isoformat())
        previous, moment = wall, moment + MINUTE
    return fires, touched


def walk_days(spec: Spec, tz: ZoneInfo, start: datetime, years: int) -> list[str]:
    """Fires after ``start`` found by walking calendar days, at most MAX_FIRES (no DST)."""
    times = sorted((h, m, s) for h in spec.hours for m in spec.minutes for s in spec.seconds)
    fires: list[str] = []
    local = start.astimezone(tz)
    day = local.date()
    while day.year < local.year + years and len(fires) < MAX_FIRES:
        if spec.day_matches(day):
            for h, m, s in times:
                fire = datetime(day.year, day.month, day.day, h, m, s, tzinfo=tz)
                if fire > start and len(fires) < MAX_FIRES:
                    fires.append(fire.isoformat())
        day += timedelta(days=1)
    return fires


def beat_fires(cron: Cron, start: datetime, end: datetime) -> list[str]:
    """beat's fires in (start, end], at most MAX_FIRES; each strictly after the one before,
    in the zone, and a wall time that exists with the right fold."""
    fires: list[str] = []
    moment = start
    while len(fires) < MAX_FIRES:
        previous = moment.astimezone(UTC)
        moment = cron.next_after(moment)
        instant = moment.astimezone(UTC)
        assert instant > previous, f"{moment} is not after {previous}"
        again = instant.astimezone(cron.tz)
        assert (again.replace(tzinfo=None), again.fold) == (
            moment.replace(tzinfo=None),
            moment.fold,
        )
        if instant > end:
            break
        fires.append(moment.isoformat())
    return fires


# --------------------------------------------------------------------------- properties


@st.composite
def dst_starts(draw: st.DrawFn) -> tuple[ZoneInfo, datetime]:
    """A DST zone and a start just before one of its transitions (seeded ``Random``: see
    test_cron_properties.starts for why)."""
    rng = random.Random(draw(st.integers(0, 2**64)))
    zone = rng.choice([z for z in ZONES if len(TRANSITIONS[z]) > 0])
    near = rng.choice(TRANSITIONS[zone])
    roll = rng.random()
    if roll < 0.4:
        moment = near + timedelta(seconds=rng.randint(-240, 30))  # dense specs see the change
    elif roll < 0.7:
        moment = near + timedelta(seconds=rng.randint(0, 3600))  # in a second pass, if any
    else:
        moment = near + timedelta(minutes=rng.randint(-6 * 60, 60))
    moment += timedelta(microseconds=rng.choice((0, 0, 1, 500_000)))
    return ZoneInfo(zone), moment


@settings(
    max_examples=250,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(spec=specs(dst_hours=True), where=dst_starts())
def test_seconds_and_days_near_dst_agree_with_second_walk(
    spec: Spec, where: tuple[ZoneInfo, datetime]
) -> None:
    tz, start = where
    if build(spec) is None:
        return
    cron = Cron(spec.text, tz, extended=True)
    end = start + timedelta(hours=8)
    expected, touched = walk_seconds(spec, tz, start, end)
    got = beat_fires(cron, start, end)
    assert got == expected[: len(got)] and len(got) == len(expected)
    event("DST touched a matching wall time" if touched else "no DST effect")


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    spec=specs(dst_hours=False),
    zone=st.sampled_from(("UTC", "Asia/Kolkata")),
    days=st.integers(0, 365 * 30),
)
def test_day_extensions_over_years_agree_with_day_walk(spec: Spec, zone: str, days: int) -> None:
    cron = build(spec)
    if cron is None:
        return
    tz = ZoneInfo(zone)
    start = datetime(2020, 1, 1, 7, 30, 15, tzinfo=tz) + timedelta(days=days)
    cron = Cron(spec.text, tz, extended=True)
    expected = walk_days(spec, tz, start, years=2)
    end = datetime(start.year + 2, 1, 1, tzinfo=tz) - timedelta(microseconds=1)
    assert beat_fires(cron, start, end) == expected
    event("has fires" if expected else "no fire within two years")
