"""Benchmark: µs per next-fire computation, beat vs croniter vs cronsim.

Run: ``python benchmarks/bench_cron.py [--rounds N] [--fires K]``.

Each engine is measured warm: its object is built outside the timed region, then the timer
covers K successive "next fire" calls from the same start (beat: ``next_after`` chained on
its own results; croniter: ``get_next``; cronsim: ``next``). Rounds interleave the engines
and rotate their order so machine noise hits all of them alike; the first round is a
discarded warm-up and the table shows the median per call over the rest.
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
ZONES = ("Europe/Berlin", "America/New_York")
START = (2025, 5, 14, 10, 3)  # an ordinary Wednesday morning, no transition nearby

# A prepared run: build (untimed) returns the timed callable doing K calls.
Prepare = Callable[[str, datetime, int], Callable[[], object]]


def prepare_beat(expr: str, start: datetime, fires: int) -> Callable[[], object]:
    cron = Cron(expr, str(start.tzinfo))

    def run() -> object:
        moment = start
        for _ in range(fires):
            moment = cron.next_after(moment)
        return moment

    return run


def prepare_croniter(expr: str, start: datetime, fires: int) -> Callable[[], object]:
    it = croniter(expr, start)

    def run() -> object:
        result = None
        for _ in range(fires):
            result = it.get_next(datetime)
        return result

    return run


def prepare_cronsim(expr: str, start: datetime, fires: int) -> Callable[[], object]:
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
        for expr in EXPRESSIONS:
            for zone in ZONES:
                start = datetime(*START, tzinfo=ZoneInfo(zone))
                for engine in order:
                    run = ENGINES[engine](expr, start, fires)
                    began = time.perf_counter_ns()
                    run()
                    elapsed = time.perf_counter_ns() - began
                    if round_no:  # round 0 warms caches and imports
                        key = (expr, zone, engine)
                        samples.setdefault(key, []).append(elapsed / fires / 1000)
    return {key: statistics.median(values) for key, values in samples.items()}


def table(results: dict[tuple[str, str, str], float]) -> str:
    rows = [
        "| expression | zone | beat µs | croniter µs | cronsim µs | croniter / beat "
        "| cronsim / beat |",
        "|---|---|--:|--:|--:|--:|--:|",
    ]
    for expr in EXPRESSIONS:
        for zone in ZONES:
            ours, them, sim = (results[(expr, zone, e)] for e in ("beat", "croniter", "cronsim"))
            rows.append(
                f"| `{expr}` | {zone} | {ours:.2f} | {them:.1f} | {sim:.1f} "
                f"| {them / ours:.0f}× | {sim / ours:.1f}× |"
            )
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
    print(table(results))


if __name__ == "__main__":
    main()
