"""Differential test of the cron extensions: beat against croniter and cronsim.

A seeded generator builds (expression, zone, start) cases, each with at least one extension
(a leading seconds field, ``L``, ``LW``, ``nW``, ``d#n``, ``dL``), biased towards starts near
DST transitions and towards the Sundays on which zones change their clocks. Each peer is asked
only about the syntax it has:

* croniter 7: seconds (``second_at_beginning=True``), ``L``, ``nW``, ``d#n``, and ``dL``
  written its own way round (``L5`` for ``5L``); no ``LW``;
* cronsim 2.8: seconds, ``L``, ``LW``, ``d#n``, ``dL`` (numeric weekday); no ``nW``.

Every disagreement must be explained by a *known class*: a named peer behaviour that differs
from beat's documented rules (docs/cron.md), checked against the case, not taken on trust.
Each class is a predicate on the peer's answer that beat itself evaluates: "croniter fired in
the second pass of a repeated hour" is checked against the zone and the expression. A
disagreement is explained by the first class whose predicate holds; each class also has a
pinned test below with the correct answer spelled out. Run with ``-s`` to see the counts.
"""

from __future__ import annotations

import collections
import random
import re
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from beat._cron import Cron

from .cron_zones import ZONES, transitions

croniter_module = pytest.importorskip("croniter")
cronsim_module = pytest.importorskip("cronsim")

SEED = 20250330
CASES = 1500
MICRO = timedelta(microseconds=1)
MINUTE = timedelta(minutes=1)
TRANSITIONS = {name: transitions(ZoneInfo(name), 2024, 2026) for name in ZONES}


# --------------------------------------------------------------------------- cases


SECONDS = ("0", "30", "*/15", "10,40", "*", "0-59/20", "5-10")
MINUTES = ("0", "30", "*/20", "*", "15,45", "0-59/30")
HOURS = ("0", "1", "2", "3", "2,3", "1-3", "*", "9", "*/6", "22-23")
# (text, feature) per day-field item; Sundays (0, 7) often, since clocks change on them.
DOM_ITEMS = (
    ("L", "L"),
    ("LW", "LW"),
    ("1W", "W"),
    ("15W", "W"),
    ("29W", "W"),
    ("30W", "W"),
    ("31W", "W"),
    ("1", ""),
    ("15", ""),
)
DOW_ITEMS = (
    ("0#1", "#"),
    ("0#2", "#"),
    ("7#1", "#"),
    ("5#3", "#"),
    ("1#5", "#"),
    ("MON#1", "#"),
    ("fri#2", "#"),
    ("0L", "dL"),
    ("7L", "dL"),
    ("5L", "dL"),
    ("1", ""),
    ("1-5", ""),
)
MONTHS = ("2", "3", "10", "11", "2,3", "3,10,11")
SUPPORT = {
    "croniter": frozenset({"seconds", "L", "W", "#", "dL"}),
    "cronsim": frozenset({"seconds", "L", "LW", "#", "dL"}),
}


@dataclass(frozen=True)
class Case:
    text: str
    zone: str
    start: datetime  # aware, in zone
    features: frozenset[str]

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.zone)

    @property
    def fields(self) -> list[str]:
        """Six fields, seconds first ("0" for a five-field expression)."""
        parts = self.text.split()
        return parts if len(parts) == 6 else ["0", *parts]


def _items(rng: random.Random, pool: tuple[tuple[str, str], ...]) -> tuple[str, set[str]]:
    chosen = rng.sample(pool, rng.choice((1, 1, 1, 2)))
    return ",".join(t for t, _ in chosen), {f for _, f in chosen if f}


def random_case(rng: random.Random) -> Case:
    while True:
        features: set[str] = set()
        second = rng.choice(SECONDS) if rng.random() < 0.5 else None
        if second is not None:
            features.add("seconds")
        dom, dow = "*", "*"
        roll = rng.random()
        if roll < 0.35:
            dom, found = _items(rng, DOM_ITEMS)
            features |= found
        elif roll < 0.7:
            dow, found = _items(rng, DOW_ITEMS)
            features |= found
        elif roll < 0.85:  # both restricted: the OR rule
            dom, found = _items(rng, DOM_ITEMS)
            features |= found
            dow, found = _items(rng, DOW_ITEMS)
            features |= found
        month = rng.choice(MONTHS) if rng.random() < 0.25 else "*"
        fields = [rng.choice(MINUTES), rng.choice(HOURS), dom, month, dow]
        if features:
            break
    text = " ".join(([second] if second else []) + fields)
    zone = rng.choice(ZONES)
    near = TRANSITIONS[zone]
    if near and rng.random() < 0.7:
        start = rng.choice(near) + timedelta(minutes=rng.randint(-180, 180))
    else:
        start = datetime(2025, 1, 1, tzinfo=UTC) + timedelta(minutes=rng.randint(0, 525_600))
    if rng.random() < 0.3:
        start += timedelta(seconds=rng.randint(1, 59))
    return Case(text, zone, start.astimezone(ZoneInfo(zone)), frozenset(features))


# --------------------------------------------------------------------------- peers


Answer = datetime | str  # a fire instant, or "error: <type>"


def croniter_text(text: str) -> str:
    """croniter writes the last weekday d of the month as ``Ld`` (cron, Quartz: ``dL``)."""
    *head, dow = text.split()
    items = [f"L{i[:-1]}" if i.upper().endswith("L") else i for i in dow.split(",")]
    return " ".join([*head, ",".join(items)])


def ask_croniter(text: str, start: datetime) -> Answer:
    seconds_first = len(text.split()) == 6
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            it = croniter_module.croniter(
                croniter_text(text), start, second_at_beginning=seconds_first
            )
            result: datetime = it.get_next(datetime)
    except Exception as exc:  # the peer's own error types; recorded as an answer
        return f"error: {type(exc).__name__}"
    return result


def ask_cronsim(text: str, start: datetime) -> Answer:
    try:
        result: datetime = next(cronsim_module.CronSim(text, start))
    except Exception as exc:
        return f"error: {type(exc).__name__}"
    return result


def same(a: Answer, b: Answer) -> bool:
    """Same instant *and* same UTC offset (a wrong fold shows as a wrong offset)."""
    if isinstance(a, str) or isinstance(b, str):
        return a == b
    return a.astimezone(UTC) == b.astimezone(UTC) and a.utcoffset() == b.utcoffset()


# --------------------------------------------------------------------------- beat as oracle


def beat(text: str, tz: ZoneInfo | str = "UTC") -> Cron:
    return Cron(text, tz, extended=True)


def wall_matches(text: str, wall: datetime) -> bool:
    """Whether the naive wall time matches every field (DST aside: read in UTC)."""
    moment = wall.replace(tzinfo=UTC)
    return beat(text).next_after(moment - MICRO) == moment


def with_days(case: Case, dom: str | None = None, dow: str | None = None) -> str:
    fields = case.fields
    if dom is not None:
        fields[3] = dom
    if dow is not None:
        fields[5] = dow
    return " ".join(fields)


def is_fixed(case: Case) -> bool:
    return not any(f.startswith("*") for f in case.fields[:3])


def or_rule(case: Case) -> bool:
    return not (case.fields[3].startswith("*") or case.fields[5].startswith("*"))


def gap_end(moment: datetime) -> bool:
    before = (moment.astimezone(UTC) - timedelta(seconds=1)).astimezone(moment.tzinfo)
    return before.utcoffset() < moment.utcoffset()  # type: ignore[operator]


def local(case: Case, moment: datetime) -> datetime:
    return moment.astimezone(case.tz)


# --------------------------------------------------------------------------- classes
# Each predicate gets the case, beat's answer and the peer's (a datetime or "error: ...").


def _croniter_gives_up_on_or(case: Case, ours: datetime, peer: Answer) -> bool:
    """croniter raises CroniterBadDateError for ``d#n`` or ``dL`` ORed with a day of month
    (both day fields restricted), although such days exist every month."""
    return (
        peer == "error: CroniterBadDateError"
        and or_rule(case)
        and bool(case.features & {"#", "dL"})
    )


def _croniter_rejects_listed_nearest(case: Case, ours: datetime, peer: Answer) -> bool:
    """croniter rejects ``nW`` listed with other day-of-month items (``1,15W``, ``L,31W``)."""
    items = case.fields[3].split(",")
    return (
        peer == "error: CroniterBadCronError"
        and len(items) > 1
        and any(re.fullmatch(r"\d+W", i) for i in items)
    )


def _croniter_rejects_mixed_weekdays(case: Case, ours: datetime, peer: Answer) -> bool:
    """croniter rejects ``d#n`` or ``dL`` listed with plain weekdays (``1-5,0#2``, ``1,5L``)."""
    items = case.fields[5].split(",")
    special = [i for i in items if "#" in i or i.upper().endswith("L")]
    return peer == "error: CroniterUnsupportedSyntaxError" and 0 < len(special) < len(items)


def _croniter_drops_plain_weekdays(case: Case, ours: datetime, peer: Answer) -> bool:
    """Listed with ``d#n``, a plain weekday is sometimes ignored (``MON#1,1`` is read as
    ``MON#1``): croniter skips cron's fire for a later one of the ``#`` items alone."""
    if isinstance(peer, str) or peer <= ours:
        return False
    special = [i for i in case.fields[5].split(",") if "#" in i or i.upper().endswith("L")]
    wall = local(case, peer).replace(tzinfo=None)
    return bool(special) and wall_matches(with_days(case, dow=",".join(special)), wall)


def _croniter_one_day_field(case: Case, ours: datetime, peer: Answer) -> bool:
    """With both day fields restricted and one holding L, W or #, croniter does not OR them:
    it ANDs them or drops one, and so skips cron's fire for a later day that one field alone
    allows."""
    if isinstance(peer, str) or not or_rule(case) or peer <= ours:
        return False
    wall = local(case, peer).replace(tzinfo=None)
    return wall_matches(with_days(case, dow="*"), wall) or wall_matches(
        with_days(case, dom="*"), wall
    )


def _croniter_clamps_nearest(case: Case, ours: datetime, peer: Answer) -> bool:
    """croniter reads ``nW`` in a month shorter than ``n`` as the weekday nearest the last
    day (``31W`` in April fires on April 30th or the Friday before); cron has no such day in
    that month, so no fire."""
    if isinstance(peer, str) or "W" not in case.features:
        return False
    wall = local(case, peer).replace(tzinfo=None)
    length = ((wall.replace(day=28) + timedelta(days=4)).replace(day=1) - timedelta(days=1)).day
    short = [int(n) for n in re.findall(r"(\d+)W", case.fields[3]) if int(n) > length]
    return bool(short) and wall_matches(with_days(case, dom="LW"), wall)


def _fires_second_pass(case: Case, ours: datetime, peer: Answer) -> bool:
    """The peer fires a fixed-time job again in the second pass of a repeated hour."""
    if isinstance(peer, str) or not is_fixed(case) or peer >= ours:
        return False
    moment = local(case, peer)
    return moment.fold == 1 and wall_matches(case.text, moment.replace(tzinfo=None))


def _croniter_wildcard_into_gap(case: Case, ours: datetime, peer: Answer) -> bool:
    """croniter moves a wildcard job's wall times inside a gap to the gap's end (cron: those
    wall times do not happen)."""
    if isinstance(peer, str) or is_fixed(case) or peer >= ours:
        return False
    moment = local(case, peer).replace(second=0)  # with seconds: in the gap-end minute
    if not gap_end(moment):
        return False
    before = (moment.astimezone(UTC) - timedelta(seconds=1)).astimezone(case.tz)
    end = moment.replace(tzinfo=None)
    wall = end - (moment.utcoffset() - before.utcoffset())  # type: ignore[operator]
    while wall < end:
        if beat(case.text).next_after(wall.replace(tzinfo=UTC) - MICRO) < end.replace(tzinfo=UTC):
            return True
        wall += MINUTE
    return False


def _skips_moved_fire(case: Case, ours: datetime, peer: Answer) -> bool:
    """A six-field fixed-time job's wall times in a gap are dropped instead of firing at the
    gap's end (cronsim applies no DST rule to six-field expressions at all). The peer's
    answer is then exactly beat's fire after the moved one."""
    if isinstance(peer, str) or "seconds" not in case.features or not is_fixed(case):
        return False
    note = beat(case.text, case.tz).dst_note(ours)
    return (
        note is not None
        and note.kind == "moved"
        and same(beat(case.text, case.tz).next_after(ours), peer)
    )


def _cronsim_wall_time_in_gap(case: Case, ours: datetime, peer: Answer) -> bool:
    """The right instant, but written as a wall time that does not exist: a six-field job at
    Santiago's midnight gap comes back as 00:00-04:00 instead of 01:00-03:00."""
    if isinstance(peer, str) or peer.astimezone(UTC) != ours.astimezone(UTC):
        return False
    again = peer.astimezone(UTC).astimezone(case.tz)
    return again.replace(tzinfo=None) != peer.replace(tzinfo=None)


def _cronsim_half_hour_steps(case: Case, ours: datetime, peer: Answer) -> bool:
    """cronsim rolls hours forward in real-time steps of 3600 s; across a 30-minute DST shift
    (Lord Howe) that lands on :30 and skips fires at :00-:29."""
    if isinstance(peer, str) or peer <= ours:
        return False
    since = case.start.astimezone(UTC) - timedelta(hours=2)
    shifts = {
        _shift(t, case.tz) for t in TRANSITIONS[case.zone] if since < t <= peer.astimezone(UTC)
    }
    landed = local(case, peer).replace(tzinfo=None)
    return any(s.total_seconds() % 3600 for s in shifts) and wall_matches(case.text, landed)


def _shift(moment: datetime, tz: ZoneInfo) -> timedelta:
    after = moment.astimezone(tz).utcoffset()
    before = (moment - MINUTE).astimezone(tz).utcoffset()
    assert after is not None and before is not None
    return abs(after - before)


@dataclass(frozen=True)
class Quirk:
    name: str
    explains: Callable[[Case, datetime, Answer], bool]


QUIRKS: dict[str, tuple[Quirk, ...]] = {
    "croniter": (
        Quirk("croniter rejects nW in a list", _croniter_rejects_listed_nearest),
        Quirk(
            "croniter rejects d#n/dL listed with plain weekdays", _croniter_rejects_mixed_weekdays
        ),
        Quirk("croniter drops plain weekdays listed with d#n", _croniter_drops_plain_weekdays),
        Quirk("croniter gives up on d#n/dL ORed with a day of month", _croniter_gives_up_on_or),
        Quirk("croniter ANDs or drops a day field next to L/W/#", _croniter_one_day_field),
        Quirk("croniter clamps nW past the month's end", _croniter_clamps_nearest),
        Quirk("croniter fires twice on fall-back", _fires_second_pass),
        Quirk("croniter shifts wildcard jobs into the gap end", _croniter_wildcard_into_gap),
        Quirk("croniter: six-field jobs drop gap-moved fires", _skips_moved_fire),
    ),
    "cronsim": (
        Quirk("cronsim: six-field jobs fire twice on fall-back", _fires_second_pass),
        Quirk("cronsim: six-field jobs drop gap-moved fires", _skips_moved_fire),
        Quirk("cronsim: six-field jobs name a wall time in the gap", _cronsim_wall_time_in_gap),
        Quirk("cronsim Lord_Howe 30-min mis-steps", _cronsim_half_hour_steps),
    ),
}
ASK: dict[str, Callable[[str, datetime], Answer]] = {
    "croniter": ask_croniter,
    "cronsim": ask_cronsim,
}


def classify(peer: str, case: Case, ours: datetime, theirs: Answer) -> str | None:
    for quirk in QUIRKS[peer]:
        if quirk.explains(case, ours, theirs):
            return quirk.name
    return None


# --------------------------------------------------------------------------- the run


@dataclass
class Report:
    cases: int = 0
    compared: collections.Counter[str] = field(default_factory=collections.Counter)
    agreements: collections.Counter[str] = field(default_factory=collections.Counter)
    classes: dict[str, collections.Counter[str]] = field(
        default_factory=lambda: collections.defaultdict(collections.Counter)
    )
    unexplained: list[tuple[str, ...]] = field(default_factory=list)

    def lines(self) -> Iterator[str]:
        yield f"extended differential: {self.cases} cases (seed {SEED})"
        for peer in ASK:
            seen, agree = self.compared[peer], self.agreements[peer]
            yield f"  {peer}: asked {seen} (its syntax), agrees on {agree} ({agree / seen:.1%})"
            for name, count in self.classes[peer].most_common():
                yield f"    {count:5d}  {name}"
        yield f"  unexplained: {len(self.unexplained)}"


def run_differential(cases: int = CASES, seed: int = SEED) -> Report:
    rng = random.Random(seed)
    report = Report()
    while report.cases < cases:
        case = random_case(rng)
        try:
            ours = beat(case.text, case.tz).next_after(case.start)
        except ValueError:
            continue  # can never fire: rejected by design (test_cron_extended), not compared
        report.cases += 1
        for peer, ask in ASK.items():
            if not case.features <= SUPPORT[peer]:
                continue
            report.compared[peer] += 1
            theirs = ask(case.text, case.start)
            if same(ours, theirs):
                report.agreements[peer] += 1
                continue
            name = classify(peer, case, ours, theirs)
            if name is None:
                shown = theirs if isinstance(theirs, str) else theirs.isoformat()
                row = (peer, case.text, case.zone, case.start.isoformat(), ours.isoformat(), shown)
                report.unexplained.append(row)
            else:
                report.classes[peer][name] += 1
    return report


def test_every_disagreement_is_a_known_class() -> None:
    report = run_differential()
    print("\n" + "\n".join(report.lines()))
    assert report.cases == CASES
    assert min(report.compared.values()) > CASES // 3  # both peers see a good share
    assert report.unexplained == [], "\n".join(map(str, report.unexplained[:20]))


# --------------------------------------------------------------------------- pinned classes
# One case per class: the correct answer (beat's) and the peer's, both spelled out.


def _check(
    peer: str, text: str, zone: str, start: str, correct: str, theirs: str, fold: int = 0
) -> None:
    moment = datetime.fromisoformat(start).replace(tzinfo=ZoneInfo(zone), fold=fold)
    assert beat(text, zone).next_after(moment).isoformat() == correct
    answer = ASK[peer](text, moment)
    shown = answer if isinstance(answer, str) else answer.isoformat()
    assert shown == theirs, f"{peer} changed its answer for {text!r}; update this class"


def test_croniter_rejects_nearest_weekday_in_a_list() -> None:
    # The 1st and the weekday nearest the 15th: Saturday Mar 15 2025 -> Friday the 14th.
    _check(
        "croniter",
        "0 0 1,15W * *",
        "UTC",
        "2025-03-05T00:00:00",
        "2025-03-14T00:00:00+00:00",
        "error: CroniterBadCronError",
    )


def test_croniter_rejects_nth_weekday_listed_with_plain_weekdays() -> None:
    # Weekdays, and the second Sunday too: Monday Oct 27 2025.
    _check(
        "croniter",
        "30 2 * * 1-5,0#2",
        "Europe/Berlin",
        "2025-10-26T03:51:00",
        "2025-10-27T02:30:00+01:00",
        "error: CroniterUnsupportedSyntaxError",
    )


def test_croniter_drops_plain_weekday_listed_with_nth_weekday() -> None:
    # The first Monday, or any Monday: Monday Nov 17 2025. croniter: the first Monday, Dec 1.
    _check(
        "croniter",
        "15 0 * * MON#1,1",
        "UTC",
        "2025-11-16T02:58:45",
        "2025-11-17T00:15:00+00:00",
        "2025-12-01T00:15:00+00:00",
    )


def test_croniter_gives_up_on_nth_weekday_ored_with_day_of_month() -> None:
    # The 15th OR the first Monday: 2025-07-15 is the next. croniter finds nothing.
    _check(
        "croniter",
        "0 2 15 * MON#1",
        "UTC",
        "2025-07-10T10:19:00",
        "2025-07-15T02:00:00+00:00",
        "error: CroniterBadDateError",
    )


def test_croniter_drops_the_day_of_month_next_to_nth_weekday() -> None:
    # The 1st OR the first Monday: Wednesday Oct 1 2025. croniter: Monday Oct 6 only.
    _check(
        "croniter",
        "0 2 1 * MON#1",
        "UTC",
        "2025-09-18T01:21:00",
        "2025-10-01T02:00:00+00:00",
        "2025-10-06T02:00:00+00:00",
    )


def test_croniter_drops_the_day_of_week_next_to_nearest_weekday() -> None:
    # 15W OR Mondays: Monday Nov 24 2025. croniter: the weekday nearest Dec 15 only.
    _check(
        "croniter",
        "0 3 15W * 1",
        "UTC",
        "2025-11-21T20:20:00",
        "2025-11-24T03:00:00+00:00",
        "2025-12-15T03:00:00+00:00",
    )


def test_croniter_clamps_nearest_weekday_past_the_months_end() -> None:
    # 31W AND every day: April has no 31st, so the next fire is May 30 2025 (the 31st is a
    # Saturday). croniter fires on Wednesday April 30.
    _check(
        "croniter",
        "0 2 31W * *",
        "UTC",
        "2025-04-05T12:00:00",
        "2025-05-30T02:00:00+00:00",
        "2025-04-30T02:00:00+00:00",
    )


def test_croniter_fires_fixed_job_twice_on_fall_back() -> None:
    # Berlin 2025-10-26 (the last Sunday, 0L): 02:30:30 fires once, in CEST; started right
    # then, the next fire is on the last Sunday of November.
    _check(
        "croniter",
        "30 30 2 * * 0L",
        "Europe/Berlin",
        "2025-10-26T02:30:30",
        "2025-11-30T02:30:30+01:00",
        "2025-10-26T02:30:30+01:00",
    )


def test_croniter_shifts_wildcard_job_into_gap_end() -> None:
    # New York 2025-03-09 (the second Sunday, 0#2): "0 * 2" is a wildcard job; 02:xx does
    # not happen that day, so the next is April's second Sunday. croniter fires at 03:00.
    # (In March alone it would never fire: the second Sunday of March is always the gap day,
    # and beat says so instead of searching forever; see test_cron_extended.py.)
    _check(
        "croniter",
        "0 * 2 * 3,4 0#2",
        "America/New_York",
        "2025-03-09T01:59:00",
        "2025-04-13T02:00:00-04:00",
        "2025-03-09T03:00:00-04:00",
    )


def test_cronsim_six_field_fires_twice_on_fall_back() -> None:
    _check(
        "cronsim",
        "30 0 2 * * *",
        "Europe/Berlin",
        "2024-10-27T02:17:00",
        "2024-10-28T02:00:30+01:00",
        "2024-10-27T02:00:30+01:00",
    )


def test_cronsim_six_field_drops_gap_moved_fire() -> None:
    # New York 2026-03-08: 02:15:10 does not exist; a fixed-time job fires at 03:00:00.
    _check(
        "cronsim",
        "10,40 15,45 2 * * *",
        "America/New_York",
        "2026-03-07T23:58:00",
        "2026-03-08T03:00:00-04:00",
        "2026-03-09T02:15:10-04:00",
    )


def test_croniter_six_field_drops_gap_moved_fire() -> None:
    # New York 2024-03-10: 02:00:30 does not exist; the fixed-time job fires at 03:00:00.
    _check(
        "croniter",
        "30 0 1-3 * * *",
        "America/New_York",
        "2024-03-10T01:01:00",
        "2024-03-10T03:00:00-04:00",
        "2024-03-10T03:00:30-04:00",
    )


def test_cronsim_six_field_names_a_wall_time_in_the_gap() -> None:
    # Santiago 2024-09-08 (the second Sunday, 0#2): the day starts at 01:00 -03. cronsim's
    # answer is the same instant, written as 00:00 -04, a wall time that does not exist.
    _check(
        "cronsim",
        "0 * * * 5L,0#2",
        "America/Santiago",
        "2024-09-07T21:51:00",
        "2024-09-08T01:00:00-03:00",
        "2024-09-08T00:00:00-04:00",
    )


def test_cronsim_lord_howe_half_hour_mis_step() -> None:
    # Lord Howe 2025-10-05 02:00 -> 02:30 (+10:30 -> +11). cronsim lands on 09:40:05.
    _check(
        "cronsim",
        "5-10 */20 9 * * *",
        "Australia/Lord_Howe",
        "2025-10-05T00:15:12",
        "2025-10-05T09:00:05+11:00",
        "2025-10-05T09:40:05+11:00",
    )


if __name__ == "__main__":
    result = run_differential()
    print("\n".join(result.lines()))
    for row in result.unexplained[:60]:
        print(row)
