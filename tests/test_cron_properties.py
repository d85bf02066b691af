"""Property tests: ``Cron.next_after`` against a brute-force reference.

The reference is deliberately naive: it walks real time one UTC minute at a time, reads the
wall clock in the zone and applies docs/guarantees.md §2 literally:

* a wildcard job fires at every instant whose wall time matches;
* a fixed-time job fires at a matching wall time on its first occurrence only (``fold=0``),
  and once at the first instant after a gap if a wall time inside the gap matches.

Expressions are generated from the field grammar together with the value sets they mean, so
the reference never sees beat's parser. Starts cluster around the zones' DST transitions.
(All zones used here have whole-minute offsets in 2024-2026, so UTC minutes are wall minutes.)
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from beat._cron import Cron

from .cron_zones import ZONES, transitions

HORIZON = timedelta(hours=36)
MINUTE = timedelta(minutes=1)
BOUNDS = ((0, 59), (0, 23), (1, 31), (1, 12), (0, 7))
NAMES = (
    None,
    None,
    None,
    ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"),
    ("sun", "mon", "tue", "wed", "thu", "fri", "sat"),
)


def _transitions(tz: ZoneInfo) -> list[datetime]:
    return transitions(tz, 2024, 2026)


TRANSITIONS = {name: _transitions(ZoneInfo(name)) for name in ZONES}


# --------------------------------------------------------------------------- generation


@dataclass(frozen=True)
class Spec:
    """An expression with the meaning cron gives it, computed without beat."""

    text: str
    fields: tuple[frozenset[int], ...]
    both_days: bool  # the day rule: AND when either day field starts with '*'
    fixed: bool  # the DST rule: neither minute nor hour starts with '*'

    def matches(self, wall: datetime) -> bool:
        minutes, hours, doms, months, dows = self.fields
        if wall.minute not in minutes or wall.hour not in hours or wall.month not in months:
            return False
        dom = wall.day in doms
        dow = (wall.weekday() + 1) % 7 in dows
        return (dom and dow) if self.both_days else (dom or dow)


def _name(names: tuple[str, ...] | None, index: int, value: int, upper: bool) -> str:
    offset = 1 if index == 3 else 0
    if names is None or value - offset >= len(names):
        return str(value)
    return names[value - offset].upper() if upper else names[value - offset]


@st.composite
def _part(draw: st.DrawFn, index: int) -> tuple[str, set[int]]:
    low, high = BOUNDS[index]
    names = NAMES[index]
    first = draw(st.integers(low, high))
    last = draw(st.integers(first, high))
    step = draw(st.integers(1, high - low + 1))
    use_names = draw(st.booleans())
    a = _name(names if use_names else None, index, first, draw(st.booleans()))
    b = _name(names if use_names else None, index, last, draw(st.booleans()))
    kind = draw(st.sampled_from(("value", "range", "range_step", "star_step", "from")))
    if kind == "value":
        return a, {first}
    if kind == "range":
        return f"{a}-{b}", set(range(first, last + 1))
    if kind == "range_step":
        return f"{a}-{b}/{step}", set(range(first, last + 1, step))
    if kind == "star_step":
        return f"*/{step}", set(range(low, high + 1, step))
    return f"{first}/{step}", set(range(first, high + 1, step))


@st.composite
def _field(draw: st.DrawFn, index: int, star_percent: int) -> tuple[str, frozenset[int]]:
    low, high = BOUNDS[index]
    # (Integers, not floats: hypothesis draws floats of 0.0 far more often than uniformly.)
    if draw(st.integers(0, 99)) < star_percent:
        return "*", frozenset(range(low, high + 1))
    if index == 1 and draw(st.integers(0, 9)) < 7:
        # Hours where the zones above change their clocks, so DST rules come up often.
        hours = draw(st.sets(st.sampled_from((0, 1, 2, 3, 22, 23)), min_size=1, max_size=3))
        return ",".join(map(str, sorted(hours))), frozenset(hours)
    parts = draw(st.lists(_part(index), min_size=1, max_size=3))
    text = ",".join(p[0] for p in parts)
    values: set[int] = set().union(*(p[1] for p in parts))
    return text, frozenset(values)


@st.composite
def specs(draw: st.DrawFn) -> Spec:
    fields = [
        draw(_field(0, 30)),
        draw(_field(1, 30)),
        draw(_field(2, 75)),
        draw(_field(3, 85)),
        draw(_field(4, 75)),
    ]
    texts = [f[0] for f in fields]
    values = [f[1] for f in fields]
    values[4] = frozenset(0 if v == 7 else v for v in values[4])
    return Spec(
        " ".join(texts),
        tuple(values),
        both_days=texts[2].startswith("*") or texts[4].startswith("*"),
        fixed=not (texts[0].startswith("*") or texts[1].startswith("*")),
    )


@st.composite
def starts(draw: st.DrawFn) -> tuple[ZoneInfo, datetime]:
    """A zone and a start instant, mostly within 36 hours before a transition.

    Drawn through a ``Random`` seeded by hypothesis: hypothesis's own draws favour "simple"
    values (the first zone, offset 0), which would put most starts in UTC, far from any
    transition. A failing seed still reproduces and is printed with the example.
    """
    rng = random.Random(draw(st.integers(0, 2**64)))
    zone = rng.choice(ZONES)
    near = TRANSITIONS[zone]
    if near and rng.random() < 0.85:
        moment = rng.choice(near) + timedelta(minutes=rng.randint(-36 * 60, 6 * 60))
    else:
        moment = datetime(2025, 1, 1, tzinfo=UTC) + timedelta(minutes=rng.randint(0, 1_051_200))
    moment += timedelta(seconds=rng.choice((0, 0, 0, 1, 30, 59)))
    return ZoneInfo(zone), moment


# --------------------------------------------------------------------------- reference


def reference(spec: Spec, tz: ZoneInfo, start: datetime, end: datetime) -> tuple[list[str], bool]:
    """Every fire in (start, end] by walking real minutes, as ISO strings with offsets; and
    whether DST skipped or repeated a matching wall time on the way (for statistics)."""
    fires = []
    touched = False
    moment = start.astimezone(UTC).replace(second=0, microsecond=0) + MINUTE
    previous = (moment - MINUTE).astimezone(tz).replace(tzinfo=None)
    while moment <= end:
        local = moment.astimezone(tz)
        wall = local.replace(tzinfo=None)
        matched = spec.matches(wall)
        skipped = [w for w in _between(previous, wall) if spec.matches(w)]
        touched |= bool(skipped) or (matched and local.fold == 1)
        # Fixed-time: a repeated wall time fires on its first pass only, and wall times a
        # gap skipped fire at the first minute after it. Wildcard: exactly what matches.
        first_pass = local.fold == 0 or not spec.fixed
        fire = (matched and first_pass) or (spec.fixed and bool(skipped))
        if fire:
            fires.append(local.isoformat())
        previous, moment = wall, moment + MINUTE
    return fires, touched


def _between(previous: datetime, wall: datetime) -> list[datetime]:
    """Wall minutes a spring-forward gap jumped over between two consecutive minutes."""
    skipped = []
    moment = previous + MINUTE
    while moment < wall:
        skipped.append(moment)
        moment += MINUTE
    return skipped


def beat_fires(cron: Cron, start: datetime, end: datetime) -> list[datetime]:
    """beat's fires in (start, end]; fails fast (not loops) if they stop moving forward."""
    fires: list[datetime] = []
    moment = start
    while True:
        previous = moment.astimezone(UTC)
        moment = cron.next_after(moment)
        assert moment.astimezone(UTC) > previous, f"{moment} is not after {previous}"
        if moment.astimezone(UTC) > end:
            return fires
        fires.append(moment)


# --------------------------------------------------------------------------- properties


@settings(
    max_examples=500,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(spec=specs(), where=starts())
def test_next_after_agrees_with_brute_force_reference(
    spec: Spec, where: tuple[ZoneInfo, datetime]
) -> None:
    tz, start = where
    cron = _build(spec, tz)
    if cron is None:
        return
    end = start + HORIZON
    expected, touched = reference(spec, tz, start, end)
    assert [f.isoformat() for f in beat_fires(cron, start, end)] == expected
    # --hypothesis-show-statistics: how often a matching wall time was skipped or repeated.
    event("DST touched a matching wall time" if touched else "no DST effect")


@settings(max_examples=300, deadline=None)
@given(spec=specs(), where=starts())
def test_results_are_strictly_increasing_existing_wall_times(
    spec: Spec, where: tuple[ZoneInfo, datetime]
) -> None:
    tz, start = where
    cron = _build(spec, tz)
    if cron is None:
        return
    previous = start.astimezone(UTC)
    moment = start
    for _ in range(20):
        moment = cron.next_after(moment)
        assert moment.tzinfo is tz
        instant = moment.astimezone(UTC)
        assert instant > previous
        # The wall time exists and the fold is the right one: a round trip through UTC
        # gives back the same wall time and fold.
        again = instant.astimezone(tz)
        assert (again.replace(tzinfo=None), again.fold) == (
            moment.replace(tzinfo=None),
            moment.fold,
        )
        previous = instant


def _build(spec: Spec, tz: ZoneInfo) -> Cron | None:
    """The Cron for ``spec``, or None when cron itself rejects it (an impossible date)."""
    possible = any(
        day <= (29 if month == 2 else 30 if month in (4, 6, 9, 11) else 31)
        for month in spec.fields[3]
        for day in spec.fields[2]
    )
    if spec.both_days and not possible:
        return None
    return Cron(spec.text, tz)
