"""Differential test: beat's cron engine against croniter and cronsim.

A seeded generator builds a few thousand (expression, zone, start) cases, biased towards
starts within hours of a DST transition. For each case the first fire strictly after the
start is asked of beat and of each peer. Every disagreement must be explained by a *known
class*: a named, documented peer behaviour that differs from cron (cronie/Vixie).

Classes come in two kinds:

* syntax classes are models: the peer's reading of the expression is rebuilt as a different
  expression that means, in cron, what the peer computes (croniter widens ``3-3`` to ``*``,
  so the model replaces the part by the whole range). beat evaluates the model; the
  disagreement is explained when that equals the peer's answer;
* DST classes are predicates on the peer's answer: "the peer fired a fixed-time job in the
  second pass of a repeated hour" is checked against the zone, not taken on trust.

A disagreement is explained by the smallest combination of one peer's classes that
reproduces its answer; combinations are counted under their joined name. Each class also has
a pinned test below with cron's answer spelled out. Run with ``-s`` to see the counts.
"""

from __future__ import annotations

import collections
import itertools
import random
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from beat._cron import Cron

from .cron_zones import ZONES, transitions

croniter_module = pytest.importorskip("croniter")
cronsim_module = pytest.importorskip("cronsim")


SEED = 20250330
CASES = 3000

# cron (cronie) field bounds; day-of-week 7 is Sunday again.
BOUNDS = ((0, 59), (0, 23), (1, 31), (1, 12), (0, 7))
MONTHS = ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")
DAYS = ("sun", "mon", "tue", "wed", "thu", "fri", "sat")
ALIASES = {
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
    "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@hourly": "0 * * * *",
}
MINUTE = timedelta(minutes=1)


# --------------------------------------------------------------------------- expressions


@dataclass(frozen=True)
class Part:
    """One comma item of a field, with what cron means by it."""

    text: str
    kind: str  # "star" (*, */s), "value" (N), "range" (a-b, a-b/s), "from" (N/s), "list"
    first: int = 0
    last: int = 0
    step: int = 1
    stepped: bool = False  # the text has an explicit "/s"
    values: frozenset[int] = frozenset()  # for "list" parts only

    def cron_values(self, index: int) -> set[int]:
        low, high = BOUNDS[index]
        if self.kind == "list":
            found = set(self.values)
        elif self.kind == "star":
            found = set(range(low, high + 1, self.step))
        elif self.kind == "value":
            found = {self.first}
        elif self.kind == "range":
            found = set(range(self.first, self.last + 1, self.step))
        else:
            found = set(range(self.first, high + 1, self.step))
        return {0 if index == 4 and v == 7 else v for v in found}


def list_part(values: set[int]) -> Part:
    return Part(",".join(map(str, sorted(values))), "list", values=frozenset(values))


@dataclass(frozen=True)
class Expr:
    fields: tuple[tuple[Part, ...], ...]
    alias: str | None = None

    @property
    def text(self) -> str:
        if self.alias:
            return self.alias
        return " ".join(",".join(p.text for p in parts) for parts in self.fields)

    def field_text(self, index: int) -> str:
        return ",".join(p.text for p in self.fields[index])

    def values(self, index: int) -> set[int]:
        return set().union(*(p.cron_values(index) for p in self.fields[index]))

    def with_field(self, index: int, parts: tuple[Part, ...]) -> Expr:
        fields = list(self.fields)
        fields[index] = parts
        return replace(self, fields=tuple(fields), alias=None)

    def map_parts(self, index: int, fn: Callable[[Part], Part]) -> Expr:
        return self.with_field(index, tuple(fn(p) for p in self.fields[index]))


def parse_simple(text: str) -> tuple[tuple[Part, ...], ...]:
    """Structure for the few fixed expressions used here (aliases' expansions)."""
    out = []
    for index, field_text in enumerate(text.split()):
        low, _ = BOUNDS[index]
        if field_text == "*":
            out.append((Part("*", "star", low),))
        else:
            out.append((Part(field_text, "value", int(field_text)),))
    return tuple(out)


def _number(rng: random.Random, index: int, value: int) -> str:
    """A value as digits or, in month/weekday fields, sometimes as a name."""
    names = MONTHS if index == 3 else DAYS if index == 4 else None
    if names is None or rng.random() < 0.6:
        return str(value)
    offset = 1 if index == 3 else 0
    if value - offset >= len(names):
        return str(value)  # 7 (Sunday) has no name of its own
    name = names[value - offset]
    return rng.choice((name, name.upper(), name.title()))


def _random_part(rng: random.Random, index: int) -> Part:
    low, high = BOUNDS[index]
    first = rng.randint(low, high)
    last = rng.randint(first, high)
    step = rng.randint(1, max(1, (high - low) // 3))
    a, b = _number(rng, index, first), _number(rng, index, last)
    roll = rng.random()
    if roll < 0.25:
        return Part(a, "value", first)
    if roll < 0.5:
        return Part(f"{a}-{b}", "range", first, last)
    if roll < 0.54:  # equal range, the classic croniter trap
        return Part(f"{a}-{_number(rng, index, first)}", "range", first, first)
    if roll < 0.7:
        return Part(f"*/{step}", "star", low, high, step, True)
    if roll < 0.85:
        equal = rng.random() < 0.1
        last = first if equal else last
        b = _number(rng, index, last)
        return Part(f"{a}-{b}/{step}", "range", first, last, step, True)
    return Part(f"{first}/{step}", "from", first, high, step, True)


def _random_field(rng: random.Random, index: int, star: float) -> tuple[Part, ...]:
    if rng.random() < star:
        return (Part("*", "star", BOUNDS[index][0]),)
    count = rng.choice((1, 1, 1, 2, 3))
    return tuple(_random_part(rng, index) for _ in range(count))


# Hours near the transitions of the zones above (00-04), so DST rules are exercised often.
_DST_HOURS = ("0", "1", "2", "3", "2,3", "1-3", "0-2", "2-4/2", "22-23")


def random_expr(rng: random.Random) -> Expr:
    if rng.random() < 0.03:
        alias = rng.choice(sorted(ALIASES))
        return Expr(parse_simple(ALIASES[alias]), alias)
    hour = _random_field(rng, 1, 0.3)
    if rng.random() < 0.5:
        text = rng.choice(_DST_HOURS)
        hour = tuple(_parse_hour_part(p) for p in text.split(","))
    return Expr(
        (
            _random_field(rng, 0, 0.3),
            hour,
            _random_field(rng, 2, 0.6),
            _random_field(rng, 3, 0.7),
            _random_field(rng, 4, 0.6),
        )
    )


def _parse_hour_part(text: str) -> Part:
    span, _, step = text.partition("/")
    first, _, last = span.partition("-")
    if not last:
        return Part(text, "value", int(first))
    return Part(text, "range", int(first), int(last), int(step or 1), bool(step))


# --------------------------------------------------------------------------- zones


_TRANSITIONS = {name: transitions(ZoneInfo(name), 2024, 2026) for name in ZONES}


def is_gap_end(moment: datetime) -> bool:
    """True when ``moment`` is the first instant after a spring-forward gap."""
    tz = moment.tzinfo
    before = (moment.astimezone(UTC) - timedelta(seconds=1)).astimezone(tz).utcoffset()
    return before is not None and before < moment.utcoffset()  # type: ignore[operator]


def matches(expr: Expr, naive: datetime) -> bool:
    """cron's match of a wall time (existing or not), straight from the value sets."""
    if naive.minute not in expr.values(0) or naive.hour not in expr.values(1):
        return False
    if naive.month not in expr.values(3):
        return False
    dom = naive.day in expr.values(2)
    dow = (naive.weekday() + 1) % 7 in expr.values(4)
    both = expr.field_text(2).startswith("*") or expr.field_text(4).startswith("*")
    return (dom and dow) if both else (dom or dow)


def is_fixed(expr: Expr) -> bool:
    return not (expr.field_text(0).startswith("*") or expr.field_text(1).startswith("*"))


# --------------------------------------------------------------------------- peers


def ask_croniter(expr: str, start: datetime) -> datetime | str:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            result: datetime = croniter_module.croniter(expr, start).get_next(datetime)
    except Exception as exc:  # the peer's own error types; recorded as an answer
        return f"error: {type(exc).__name__}"
    return result


def ask_cronsim(expr: str, start: datetime) -> datetime | str:
    try:
        result: datetime = next(cronsim_module.CronSim(expr, start))
    except Exception as exc:
        return f"error: {type(exc).__name__}"
    return result


def utc(moment: datetime) -> datetime:
    """Compare instants in UTC: two datetimes sharing a tzinfo compare by wall time only,
    ignoring fold, so 02:30+02:00 and 02:30+01:00 in one zone would count as equal."""
    return moment.astimezone(UTC)


def same(a: datetime | str, b: datetime | str) -> bool:
    """Same instant *and* same UTC offset (a wrong fold shows as a wrong offset)."""
    if isinstance(a, str) or isinstance(b, str):
        return a == b
    return utc(a) == utc(b) and a.utcoffset() == b.utcoffset()


# --------------------------------------------------------------------------- classes


@dataclass(frozen=True)
class Case:
    expr: Expr
    zone: str
    start: datetime  # aware, in zone

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.zone)


@dataclass(frozen=True)
class Quirk:
    """A known way a peer differs from cron.

    ``rewrite`` (syntax classes) returns the expression meaning, in cron, what the peer
    computes, or ``None`` when the quirk does not apply. ``explains`` (DST classes) judges
    the peer's answer against cron's answer for the (possibly rewritten) expression.
    """

    name: str
    rewrite: Callable[[Expr], Expr | None] | None = None
    explains: Callable[[Case, Expr, datetime, datetime | str], bool] | None = None


def _low_high_croniter(index: int) -> tuple[int, int]:
    return (0, 6) if index == 4 else BOUNDS[index]


def _croniter_widen(expr: Expr) -> Expr | None:
    """croniter reads an equal range ``a-a`` (``3-3``, ``FEB-FEB``, ``7-7``) as the whole field."""
    widened = expr
    for index in range(5):
        widened = widened.map_parts(index, lambda part, i=index: _widen_equal(part, i))
    return None if widened == expr else widened


def _widen_equal(part: Part, index: int) -> Part:
    def norm(value: int) -> int:  # croniter maps weekday 7 to 0 before comparing
        return 0 if index == 4 and value == 7 else value

    if part.kind != "range" or norm(part.first) != norm(part.last):
        return part
    low, high = _low_high_croniter(index)
    suffix = f"/{part.step}" if part.stepped else ""
    return Part(f"{low}-{high}{suffix}", "range", low, high, part.step, part.stepped)


def _croniter_dow_from(expr: Expr) -> Expr | None:
    """croniter runs a weekday ``N/s`` to 6 (Saturday); cron runs it to 7 (Sunday)."""
    if not any(p.kind == "from" for p in expr.fields[4]):
        return None

    def shorten(part: Part) -> Part:
        if part.kind != "from":
            return part
        start = 0 if part.first == 7 else part.first
        return list_part(set(range(start, 7, part.step)) or {start})

    return expr.map_parts(4, shorten)


def _croniter_day_rule(expr: Expr) -> Expr | None:
    """croniter picks AND/OR from the value sets, not from a leading ``*``.

    A day field counts as ``*`` when its text is ``*``, or when its values cover the whole
    field *and* the other day field's text contains a ``*`` anywhere; otherwise croniter
    ORs. cron ANDs whenever either field's text starts with ``*`` (``*/2`` included).
    """
    dom_text, dow_text = expr.field_text(2), expr.field_text(4)
    dom, dow = expr.values(2), expr.values(4)
    dom_star = dom_text == "*" or (len(dom) == 31 and "*" in dow_text)
    dow_star = dow_text == "*" or (len(dow) == 7 and "*" in dom_text)
    star = (Part("*", "star", 1),)
    rewritten = expr.with_field(2, star if dom_star else (list_part(dom),))
    rewritten = rewritten.with_field(4, (Part("*", "star", 0),) if dow_star else (list_part(dow),))
    cron_or = not (dom_text.startswith("*") or dow_text.startswith("*"))
    return None if cron_or == (not (dom_star or dow_star)) else rewritten


def _croniter_fires_repeat(case: Case, expr: Expr, cron: datetime, peer: datetime | str) -> bool:
    """croniter fires a fixed-time job again in the second pass of a repeated hour."""
    if isinstance(peer, str) or not is_fixed(expr) or utc(peer) >= utc(cron):
        return False
    local = peer.astimezone(case.tz)
    return local.fold == 1 and matches(expr, local.replace(tzinfo=None))


def _croniter_wildcard_into_gap(
    case: Case, expr: Expr, cron: datetime, peer: datetime | str
) -> bool:
    """croniter moves a wildcard job's wall times inside a gap to the gap's end.

    cron (and beat) follow real time for wildcard jobs: those wall minutes never happen.
    """
    if isinstance(peer, str) or is_fixed(expr) or utc(peer) >= utc(cron):
        return False
    local = peer.astimezone(case.tz)
    if not is_gap_end(local):
        return False
    return _gap_has_match(expr, local)


def _gap_has_match(expr: Expr, gap_end: datetime) -> bool:
    before = (gap_end.astimezone(UTC) - timedelta(seconds=1)).astimezone(gap_end.tzinfo)
    shift = gap_end.utcoffset() - before.utcoffset()  # type: ignore[operator]
    end = gap_end.replace(tzinfo=None)
    wall = end - shift
    while wall < end:
        if matches(expr, wall):
            return True
        wall += MINUTE
    return False


def _cronsim_no_aliases(case: Case, expr: Expr, cron: datetime, peer: datetime | str) -> bool:
    """cronsim does not know the ``@daily``-style aliases and rejects them."""
    return case.expr.alias is not None and isinstance(peer, str)


def _cronsim_equal_range_step(expr: Expr) -> Expr | None:
    """cronsim reads ``a-a/s`` as ``a/s`` (``a`` to the field's end, step ``s``)."""

    def widen(part: Part) -> Part:
        if part.kind != "range" or part.first != part.last or not part.stepped:
            return part
        return Part(f"{part.first}/{part.step}", "from", part.first, 0, part.step, True)

    widened = expr
    for index in range(5):
        widened = widened.map_parts(index, widen)
    return None if widened == expr else widened


def _cronsim_loses_fold(case: Case, expr: Expr, cron: datetime, peer: datetime | str) -> bool:
    """cronsim drops the zone (and so the fold) of the start for fixed-time jobs.

    Started in the second pass of a repeated hour, it answers from the first pass: an
    instant that is not after the start at all.
    """
    return (
        not isinstance(peer, str)
        and is_fixed(expr)
        and case.start.fold == 1
        and utc(peer) <= utc(case.start)
    )


def _cronsim_half_hour_steps(case: Case, expr: Expr, cron: datetime, peer: datetime | str) -> bool:
    """cronsim rolls hours forward in real-time steps of 3600 s; across a 30-minute DST
    shift (Lord Howe) that lands on :30 and skips fires at :00-:29.
    """
    if isinstance(peer, str) or is_fixed(expr) or utc(peer) <= utc(cron):
        return False
    # The roll first truncates to the hour, which can reach back over a transition.
    since = utc(case.start) - timedelta(hours=2)
    shifts = {_shift(t, case.tz) for t in _TRANSITIONS[case.zone] if since < t <= utc(peer)}
    landed = peer.astimezone(case.tz).replace(tzinfo=None)
    return any(s.total_seconds() % 3600 for s in shifts) and matches(expr, landed)


def _shift(moment: datetime, tz: ZoneInfo) -> timedelta:
    after = moment.astimezone(tz).utcoffset()
    before = (moment - MINUTE).astimezone(tz).utcoffset()
    assert after is not None and before is not None
    return abs(after - before)


CRONITER_QUIRKS = (
    Quirk("croniter widens equal ranges", rewrite=_croniter_widen),
    Quirk("croniter stops weekday N/s at Saturday", rewrite=_croniter_dow_from),
    Quirk("croniter ORs */n day fields", rewrite=_croniter_day_rule),
    Quirk("croniter fires twice on fall-back", explains=_croniter_fires_repeat),
    Quirk("croniter shifts wildcard jobs into the gap end", explains=_croniter_wildcard_into_gap),
)
CRONSIM_QUIRKS = (
    Quirk("cronsim rejects aliases", explains=_cronsim_no_aliases),
    Quirk("cronsim widens a-a/s to a/s", rewrite=_cronsim_equal_range_step),
    Quirk("cronsim loses the start's fold", explains=_cronsim_loses_fold),
    Quirk("cronsim Lord_Howe 30-min mis-steps", explains=_cronsim_half_hour_steps),
)
PEERS: dict[str, tuple[Callable[[str, datetime], datetime | str], tuple[Quirk, ...]]] = {
    "croniter": (ask_croniter, CRONITER_QUIRKS),
    "cronsim": (ask_cronsim, CRONSIM_QUIRKS),
}


def cron_answer(expr: Expr, case: Case) -> datetime:
    return Cron(expr.text, case.tz).next_after(case.start)


def classify(case: Case, peer_answer: datetime | str, quirks: tuple[Quirk, ...]) -> str | None:
    """Name of the smallest combination of ``quirks`` that reproduces the peer's answer."""
    for size in range(1, len(quirks) + 1):
        for combo in itertools.combinations(quirks, size):
            if _reproduces(case, peer_answer, combo):
                return " + ".join(q.name for q in combo)
    return None


def _reproduces(case: Case, peer_answer: datetime | str, combo: tuple[Quirk, ...]) -> bool:
    expr = case.expr
    for quirk in combo:
        if quirk.rewrite is not None:
            rewritten = quirk.rewrite(expr)
            if rewritten is None:
                return False  # the quirk has nothing to act on here
            expr = rewritten
    try:
        cron = cron_answer(expr, case)
    except ValueError:
        return False
    checks = [q.explains for q in combo if q.explains is not None]
    if not checks:
        return same(cron, peer_answer)
    return all(check(case, expr, cron, peer_answer) for check in checks)


# --------------------------------------------------------------------------- the run


@dataclass
class Report:
    cases: int = 0
    agreements: collections.Counter[str] = field(default_factory=collections.Counter)
    classes: dict[str, collections.Counter[str]] = field(
        default_factory=lambda: collections.defaultdict(collections.Counter)
    )
    unexplained: list[tuple[str, str, str, str, str, str]] = field(default_factory=list)

    def lines(self) -> Iterator[str]:
        yield f"differential: {self.cases} cases (seed {SEED})"
        for peer in PEERS:
            agree = self.agreements[peer]
            yield f"  {peer}: agrees on {agree}/{self.cases} ({agree / self.cases:.1%})"
            for name, count in self.classes[peer].most_common():
                yield f"    {count:5d}  {name}"
            totals: collections.Counter[str] = collections.Counter()
            for name, count in self.classes[peer].items():
                for part in name.split(" + "):
                    totals[part] += count
            yield "    per class, combinations included:"
            for name, count in totals.most_common():
                yield f"    {count:5d}  {name}"
        yield f"  unexplained: {len(self.unexplained)}"


def random_case(rng: random.Random) -> Case:
    zone = rng.choice(ZONES)
    tz = ZoneInfo(zone)
    near = _TRANSITIONS[zone]
    if near and rng.random() < 0.7:
        start = rng.choice(near) + timedelta(minutes=rng.randint(-180, 180))
    else:
        start = datetime(2025, 1, 1, tzinfo=UTC) + timedelta(minutes=rng.randint(0, 525_600))
    if rng.random() < 0.2:
        start += timedelta(seconds=rng.randint(1, 59))
    return Case(random_expr(rng), zone, start.astimezone(tz))


def run_differential(cases: int = CASES, seed: int = SEED) -> Report:
    """Compare beat with every peer on ``cases`` generated cases; classify disagreements."""
    rng = random.Random(seed)
    report = Report()
    while report.cases < cases:
        case = random_case(rng)
        try:
            ours = cron_answer(case.expr, case)
        except ValueError:
            continue  # impossible day/month combination: rejected by design, not compared
        report.cases += 1
        for peer, (ask, quirks) in PEERS.items():
            theirs = ask(case.expr.text, case.start)
            if same(ours, theirs):
                report.agreements[peer] += 1
                continue
            name = classify(case, theirs, quirks)
            if name is None:
                report.unexplained.append(
                    (
                        peer,
                        case.expr.text,
                        case.zone,
                        case.start.isoformat(),
                        str(ours),
                        str(theirs),
                    )
                )
            else:
                report.classes[peer][name] += 1
    return report


def test_every_disagreement_is_a_known_class() -> None:
    report = run_differential()
    print("\n" + "\n".join(report.lines()))
    assert report.cases == CASES
    assert report.unexplained == [], "\n".join(map(str, report.unexplained[:20]))


# --------------------------------------------------------------------------- pinned classes
# One case per class: cron's answer (what beat returns) and the peer's, both spelled out.


def _start(text: str, zone: str, fold: int = 0) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=ZoneInfo(zone), fold=fold)


def _check(peer: str, expr: str, zone: str, start: datetime, cron: str, theirs: str) -> None:
    ours = Cron(expr, zone).next_after(start)
    assert ours.isoformat() == cron
    answer = PEERS[peer][0](expr, start)
    shown = answer if isinstance(answer, str) else answer.isoformat()
    assert shown == theirs, f"{peer} changed its answer for {expr!r}; update this class"


def test_croniter_widens_equal_ranges() -> None:
    # cron: 3-3 is minute 3. croniter: every minute.
    start = _start("2025-01-01T10:04:30", "UTC")
    _check(
        "croniter",
        "3-3 * * * *",
        "UTC",
        start,
        "2025-01-01T11:03:00+00:00",
        "2025-01-01T10:05:00+00:00",
    )


def test_croniter_stops_weekday_step_at_saturday() -> None:
    # cron: 5/1 in day-of-week runs 5, 6, 7 -- Friday to Sunday. croniter stops at 6.
    start = _start("2025-01-04T12:00:00", "UTC")  # a Saturday
    _check(
        "croniter",
        "0 0 * * 5/1",
        "UTC",
        start,
        "2025-01-05T00:00:00+00:00",
        "2025-01-10T00:00:00+00:00",
    )


def test_croniter_ors_star_step_day_fields() -> None:
    # cron: day-of-month starts with '*', so odd days AND Mondays (Mar 17 2025).
    # croniter: odd days OR Mondays (Mar 5).
    start = _start("2025-03-03T12:00:00", "UTC")
    _check(
        "croniter",
        "0 0 */2 * 1",
        "UTC",
        start,
        "2025-03-17T00:00:00+00:00",
        "2025-03-05T00:00:00+00:00",
    )


def test_croniter_fires_fixed_job_twice_on_fall_back() -> None:
    # Berlin 2025-10-26: 03:00 CEST -> 02:00 CET. cron: 02:30 fires once, in CEST.
    start = _start("2025-10-26T02:30:00", "Europe/Berlin")
    _check(
        "croniter",
        "30 2 * * *",
        "Europe/Berlin",
        start,
        "2025-10-27T02:30:00+01:00",
        "2025-10-26T02:30:00+01:00",
    )


def test_croniter_shifts_wildcard_job_into_gap_end() -> None:
    # Berlin 2025-03-30: 02:00 CET -> 03:00 CEST. cron: "* 2" is a wildcard job; its
    # minutes at 02:xx do not happen that day. croniter fires at 03:00.
    start = _start("2025-03-30T01:59:00", "Europe/Berlin")
    _check(
        "croniter",
        "* 2 * * *",
        "Europe/Berlin",
        start,
        "2025-03-31T02:00:00+02:00",
        "2025-03-30T03:00:00+02:00",
    )


def test_cronsim_rejects_aliases() -> None:
    start = _start("2025-01-01T10:00:00", "UTC")
    _check("cronsim", "@daily", "UTC", start, "2025-01-02T00:00:00+00:00", "error: CronSimError")


def test_cronsim_widens_equal_range_with_step() -> None:
    # cron: 5-5/15 is minute 5. cronsim: 5/15 -> 5, 20, 35, 50.
    start = _start("2025-01-01T10:05:00", "UTC")
    _check(
        "cronsim",
        "5-5/15 * * * *",
        "UTC",
        start,
        "2025-01-01T11:05:00+00:00",
        "2025-01-01T10:20:00+00:00",
    )


def test_cronsim_loses_fold_of_start() -> None:
    # New York 2025-11-02: 02:00 EDT -> 01:00 EST. Start in the second pass (01:30 EST);
    # cron: next day. cronsim answers 01:45 EDT, which is before the start.
    start = _start("2025-11-02T01:30:00", "America/New_York", fold=1)
    _check(
        "cronsim",
        "45 1 * * *",
        "America/New_York",
        start,
        "2025-11-03T01:45:00-05:00",
        "2025-11-02T01:45:00-04:00",
    )


def test_cronsim_lord_howe_half_hour_mis_step() -> None:
    # Lord Howe 2025-04-06: 02:00 +11 -> 01:30 +10:30. cron: "* 3" fires from 03:00;
    # cronsim's hour roll steps 3600 s of real time and lands on 03:30.
    start = _start("2025-04-06T01:35:00", "Australia/Lord_Howe")
    _check(
        "cronsim",
        "* 3 * * *",
        "Australia/Lord_Howe",
        start,
        "2025-04-06T03:00:00+10:30",
        "2025-04-06T03:30:00+10:30",
    )


if __name__ == "__main__":
    result = run_differential()
    print("\n".join(result.lines()))
    for row in result.unexplained[:60]:
        print(row)
