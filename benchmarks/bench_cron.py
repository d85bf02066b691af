"""Benchmark: µs per next-fire computation, beat vs croniter vs cronsim.

Run: ``python benchmarks/bench_cron.py [--rounds N] [--fires K]``.

Each engine is measured warm: its object is built outside the timed region, then the timer
covers K successive "next fire" calls from the same start (beat: ``next_after`` chained on
its own results; croniter: ``get_next``; cronsim: ``next``). Rounds interleave the engines
and rotate their order so machine noise hits all of them alike; the first round is a
discarded warm-up and the table shows the median per call over the rest.

The second table covers the cron extensions (beat with ``extended=True``): a leading seconds
field, ``L``, ``LW``, ``nW``, ``d#n`` and ``dL``. A peer is timed only on what it parses:
croniter takes seconds first with ``second_at_beginning=True`` and writes ``5L`` as ``L5``, and
has no ``LW``; cronsim has no ``nW``, and gives up on ``15 30 2 * 3 0L`` in Berlin (every
last Sunday of March at 02:30:15 falls into the gap, and it applies no DST rule to six
fields). Those cells show "n/a".
"""

from __future__ import annotations

import argparse
import platform
import statistics
import time
from collections.abc import Callable
from datetime import datetime
from importlib.metadata import version
from zoneinfo import ZoneInfo

from croniter import croniter
from cronsim import CronSim

from beat._cron import Cron

EXPRESSIONS = ("*/5 * * * *", "0 9 * * 1-5", "0 0 29 2 *", "30 2 * * *")
EXTENDED = (
    "*/15 * * * * *",
    "30 0 9 * * 1-5",
    "0 0 L * *",
    "0 0 LW * *",
    "0 0 15W * *",
    "0 0 * * 5#3",
    "0 0 * * 5L",
    "15 30 2 * 3 0L",
)
ZONES = ("Europe/Berlin", "America/New_York")
START = (2025, 5, 14, 10, 3)  # an ordinary Wednesday morning, no transition nearby

# A prepared run: build (untimed) returns the timed callable doing K calls, or None when
# the engine does not accept the expression.
Prepare = Callable[[str, datetime, int], Callable[[], object] | None]


def prepare_beat(expr: str, start: datetime, fires: int) -> Callable[[], object]:
    cron = Cron(expr, str(start.tzinfo), extended=expr in EXTENDED)

    def run() -> object:
        moment = start
        for _ in range(fires):
            moment = cron.next_after(moment)
        return moment

    return run


def croniter_text(expr: str) -> str:
    """croniter writes the last weekday d of the month as ``Ld`` (cron, Quartz: ``dL``)."""
    *head, dow = expr.split()
    items = [f"L{i[:-1]}" if i.upper().endswith("L") else i for i in dow.split(",")]
    return " ".join([*head, ",".join(items)])


def prepare_croniter(expr: str, start: datetime, fires: int) -> Callable[[], object] | None:
    try:
        trial = croniter(croniter_text(expr), start, second_at_beginning=len(expr.split()) == 6)
        for _ in range(fires):  # some errors only show when asked
            trial.get_next(datetime)
    except Exception:
        return None
    it = croniter(croniter_text(expr), start, second_at_beginning=len(expr.split()) == 6)

    def run() -> object:
        result = None
        for _ in range(fires):
            result = it.get_next(datetime)
        return result

    return run


def prepare_cronsim(expr: str, start: datetime, fires: int) -> Callable[[], object] | None:
    try:
        trial = CronSim(expr, start)
        for _ in range(fires):  # six-field jobs get no DST rule: some stop (StopIteration)
            next(trial)
    except (Exception, StopIteration):
        return None
    it = CronSim(expr, start)

    def run() -> object:
        result = None
        for _ in range(fires):
            result = next(it)
        return result

    return run


ENGINES: dict[str, Prepare] = {
    "beat": prepare_beat,
    "croniter": prepare_croniter,
    "cronsim": prepare_cronsim,
}


def measure(rounds: int, fires: int) -> dict[tuple[str, str, str], float]:
    """Median µs per call for each (expression, zone, engine)."""
    samples: dict[tuple[str, str, str], list[float]] = {}
    names = list(ENGINES)
    for round_no in range(rounds + 1):
        order = names[round_no % len(names) :] + names[: round_no % len(names)]
        for expr in EXPRESSIONS + EXTENDED:
            for zone in ZONES:
                start = datetime(*START, tzinfo=ZoneInfo(zone))
                for engine in order:
                    run = ENGINES[engine](expr, start, fires)
                    if run is None:
                        continue
                    began = time.perf_counter_ns()
                    run()
                    elapsed = time.perf_counter_ns() - began
                    if round_no:  # round 0 warms caches and imports
                        key = (expr, zone, engine)
                        samples.setdefault(key, []).append(elapsed / fires / 1000)
    return {key: statistics.median(values) for key, values in samples.items()}


def table(results: dict[tuple[str, str, str], float], expressions: tuple[str, ...]) -> str:
    rows = [
        "| expression | zone | beat µs | croniter µs | cronsim µs | croniter / beat "
        "| cronsim / beat |",
        "|---|---|--:|--:|--:|--:|--:|",
    ]
    for expr in expressions:
        for zone in ZONES:
            ours = results[(expr, zone, "beat")]
            cells = [f"{ours:.2f}"]
            ratios = []
            for peer in ("croniter", "cronsim"):
                theirs = results.get((expr, zone, peer))
                cells.append("n/a" if theirs is None else f"{theirs:.1f}")
                ratios.append("n/a" if theirs is None else f"{theirs / ours:.1f}×")
            rows.append(f"| `{expr}` | {zone} | {' | '.join(cells)} | {' | '.join(ratios)} |")
    return "\n".join(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=21, help="measured rounds (default 21)")
    parser.add_argument("--fires", type=int, default=40, help="calls per timing (default 40)")
    args = parser.parse_args()
    results = measure(args.rounds, args.fires)
    print(
        f"Python {platform.python_version()} on {platform.machine()} "
        f"({platform.system()}); croniter {version('croniter')}, cronsim {version('cronsim')}; "
        f"median of {args.rounds} interleaved rounds × {args.fires} calls\n"
    )
    print(table(results, EXPRESSIONS))
    print("\nExtensions (beat with extended=True):\n")
    print(table(results, EXTENDED))


if __name__ == "__main__":
    main()
