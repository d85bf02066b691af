"""Turn per-repetition results into markdown tables of medians, ratios and target checks.

``results`` maps a group key (``"add_remove/interval/100000"``) to ``{system: [run, ...]}``
where each run is the JSON a worker printed. Every number shown is the median over that
group's repetitions, taken metric by metric.
"""

from __future__ import annotations

import statistics
from collections.abc import Callable
from typing import Any

Results = dict[str, dict[str, list[dict[str, Any]]]]

LABELS = {
    "raw": "raw asyncio",
    "raw+task": "raw asyncio + task",
    "beat": "**beat**",
    "apscheduler": "APScheduler 3.11",
    "aiocron": "aiocron",
}

# The targets from issue 6. Idle CPU of raw asyncio is ~0, so both sides of that ratio are
# floored at IDLE_FLOOR_PCT: anything under it counts as "no measurable idle cost".
ADD_MAX = 2.0
REMOVE_MAX = 2.0
CPU_PER_FIRE_MAX = 1.5
P99_MAX = 1.5
IDLE_MAX = 1.5
IDLE_FLOOR_PCT = 0.5
MEMORY_INTERVAL_MAX = 2.0
MEMORY_CRON_MAX_BYTES = 1536
GROWTH_MAX = 1.5

FLOORS = ("raw", "raw+task")


def median(runs: list[dict[str, Any]], *path: str) -> float | None:
    values = []
    for run in runs:
        value: Any = run
        for part in path:
            value = value.get(part) if isinstance(value, dict) else None
        if isinstance(value, int | float):
            values.append(float(value))
    return statistics.median(values) if values else None


def _num(value: float | None, digits: int = 2) -> str:
    if value is None:
        return "—"
    if abs(value) >= 1000:
        return f"{value:,.0f}"
    if abs(value) >= 100:
        return f"{value:.0f}"
    return f"{value:.{digits}f}"


def _ratio(a: float | None, b: float | None) -> float | None:
    return a / b if a is not None and b else None


def _ratio_cell(ratio: float | None, limit: float | None = None) -> str:
    if ratio is None:
        return "—"
    if limit is None:
        return f"{ratio:.2f}×"
    return f"{ratio:.2f}× {'✓' if ratio <= limit else '✗'}"


def _vs(system: str, floors: tuple[str, ...], ratio: float | None, limit: float | None) -> str:
    """A ratio cell, or a dash in the row of the floor it is measured against."""
    return "—" if system in floors else _ratio_cell(ratio, limit)


def _table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def _groups(results: Results, scenario: str) -> list[tuple[list[str], dict[str, Any]]]:
    """(key parts, systems) for the groups of one scenario, in run order."""
    return [(key.split("/"), runs) for key, runs in results.items() if key.startswith(scenario)]


class Report:
    def __init__(self, results: Results) -> None:
        self.results = results
        self.targets: list[list[str]] = []

    def _target(self, what: str, value: str, limit: str, ok: bool | None) -> None:
        mark = "—" if ok is None else ("✓" if ok else "✗")
        self.targets.append([what, value, limit, mark])

    # -- 1 ------------------------------------------------------------------------------
    def add_remove(self) -> str:
        header = [
            "kind",
            "jobs",
            "system",
            "add",
            "add 1st 10%",
            "add last 10%",
            "last/first",
            "build+add",
            "remove",
            "remove 1st 10%",
            "remove last 10%",
            "add ×raw",
            "remove ×raw",
        ]
        rows = []
        raw_by_n = {
            parts[2]: runs.get("raw")
            for parts, runs in _groups(self.results, "add_remove")
            if parts[1] == "interval"
        }
        for (_, kind, n), systems in _groups(self.results, "add_remove"):
            raw = raw_by_n.get(n)
            raw_add = median(raw, "add", "all") if raw else None
            raw_remove = median(raw, "remove", "all") if raw else None
            for system, runs in systems.items():
                add = median(runs, "add", "all")
                first, last = median(runs, "add", "first"), median(runs, "add", "last")
                build = median(runs, "build", "all")
                remove = median(runs, "remove", "all")
                is_beat = system == "beat"
                add_ratio, remove_ratio = _ratio(add, raw_add), _ratio(remove, raw_remove)
                growth = _ratio(last, first)
                rows.append(
                    [
                        kind,
                        f"{int(n):,}",
                        LABELS[system],
                        _num(add),
                        _num(first),
                        _num(last),
                        _ratio_cell(
                            growth, GROWTH_MAX if is_beat and int(n) >= 1_000_000 else None
                        ),
                        _num(add + build if add is not None and build is not None else None),
                        _num(remove),
                        _num(median(runs, "remove", "first")),
                        _num(median(runs, "remove", "last")),
                        _vs(system, ("raw",), add_ratio, ADD_MAX if is_beat else None),
                        _vs(system, ("raw",), remove_ratio, REMOVE_MAX if is_beat else None),
                    ]
                )
                what = "interval" if kind == "interval" else "cron (vs a raw timer)"
                if is_beat and add_ratio is not None:
                    self._target(
                        f"add ×raw, {what}, {int(n):,} jobs",
                        f"{add_ratio:.2f}×",
                        f"≤ {ADD_MAX}×",
                        add_ratio <= ADD_MAX,
                    )
                if is_beat and remove_ratio is not None:
                    self._target(
                        f"remove ×raw, {what}, {int(n):,} jobs",
                        f"{remove_ratio:.2f}×",
                        f"≤ {REMOVE_MAX}×",
                        remove_ratio <= REMOVE_MAX,
                    )
                if is_beat and int(n) >= 1_000_000 and growth is not None:
                    self._target(
                        f"add last 10% / first 10%, {int(n):,} jobs",
                        f"{growth:.2f}×",
                        f"≤ {GROWTH_MAX}×",
                        growth <= GROWTH_MAX,
                    )
        return _table(header, rows)

    # -- 2 ------------------------------------------------------------------------------
    def fires(self) -> str:
        header = [
            "jobs due at once",
            "system",
            "callback",
            "fires/s",
            "CPU µs/fire",
            "burst s",
            "GC runs",
            "CPU ×raw",
            "CPU ×raw+task",
        ]
        rows = []
        for (_, n), systems in _groups(self.results, "fires"):
            raw_cpu = median(systems.get("raw", []), "cpu_us_per_fire")
            task_cpu = median(systems.get("raw+task", []), "cpu_us_per_fire")
            for system, runs in systems.items():
                cpu = median(runs, "cpu_us_per_fire")
                is_beat = system == "beat"
                vs_raw, vs_task = _ratio(cpu, raw_cpu), _ratio(cpu, task_cpu)
                rows.append(
                    [
                        f"{int(n):,}",
                        LABELS[system],
                        "plain def" if system == "raw" else "async def",
                        _num(median(runs, "fires_per_s")),
                        _num(cpu),
                        _num(median(runs, "burst_s"), 3),
                        _num(median(runs, "gc_collections"), 0),
                        _vs(system, ("raw",), vs_raw, CPU_PER_FIRE_MAX if is_beat else None),
                        _vs(system, FLOORS, vs_task, CPU_PER_FIRE_MAX if is_beat else None),
                    ]
                )
                if is_beat and vs_raw is not None:
                    self._target(
                        f"CPU per fire ×raw (plain callback), {int(n):,} due",
                        f"{vs_raw:.2f}×",
                        f"≤ {CPU_PER_FIRE_MAX}×",
                        vs_raw <= CPU_PER_FIRE_MAX,
                    )
                if is_beat and vs_task is not None:
                    self._target(
                        f"CPU per fire ×raw+task (like for like), {int(n):,} due",
                        f"{vs_task:.2f}×",
                        f"≤ {CPU_PER_FIRE_MAX}×",
                        vs_task <= CPU_PER_FIRE_MAX,
                    )
        return _table(header, rows)

    # -- 3 ------------------------------------------------------------------------------
    def lateness(self) -> str:
        header = [
            "jobs",
            "system",
            "p50 ms",
            "p99 ms",
            "max ms",
            "fires seen / expected",
            "early",
            "p99 ×raw",
            "p99 ×raw+task",
        ]
        rows = []
        for (_, n), systems in _groups(self.results, "lateness"):
            raw_p99 = median(systems.get("raw", []), "p99_ms")
            task_p99 = median(systems.get("raw+task", []), "p99_ms")
            for system, runs in systems.items():
                p99 = median(runs, "p99_ms")
                is_beat = system == "beat"
                vs_raw, vs_task = _ratio(p99, raw_p99), _ratio(p99, task_p99)
                seen, expected = median(runs, "fires"), median(runs, "expected")
                rows.append(
                    [
                        f"{int(n):,}",
                        LABELS[system],
                        _num(median(runs, "p50_ms"), 3),
                        _num(p99, 3),
                        _num(median(runs, "max_ms"), 3),
                        f"{_num(seen, 0)} / {_num(expected, 0)}",
                        _num(median(runs, "early"), 0),
                        _vs(system, ("raw",), vs_raw, P99_MAX if is_beat else None),
                        _vs(system, FLOORS, vs_task, None),
                    ]
                )
                if is_beat and vs_raw is not None:
                    self._target(
                        f"lateness p99 ×raw, {int(n):,} jobs",
                        f"{vs_raw:.2f}×",
                        f"≤ {P99_MAX}×",
                        vs_raw <= P99_MAX,
                    )
        return _table(header, rows)

    # -- 4 ------------------------------------------------------------------------------
    def idle(self) -> str:
        header = [
            "kind",
            "jobs waiting",
            "system",
            "CPU % of one core",
            "CPU ms in window",
            f"×raw (both floored at {IDLE_FLOOR_PCT}%)",
        ]
        rows = []
        for (_, kind, n), systems in _groups(self.results, "idle"):
            raw = median(systems.get("raw", []), "cpu_pct")
            for system, runs in systems.items():
                pct = median(runs, "cpu_pct")
                ratio = (
                    max(pct, IDLE_FLOOR_PCT) / max(raw, IDLE_FLOOR_PCT)
                    if pct is not None and raw is not None
                    else None
                )
                is_beat = system == "beat"
                rows.append(
                    [
                        kind,
                        f"{int(n):,}",
                        LABELS[system],
                        _num(pct, 3),
                        _num(median(runs, "cpu_ms"), 2),
                        _vs(system, ("raw",), ratio, IDLE_MAX if is_beat else None),
                    ]
                )
                if is_beat and ratio is not None:
                    self._target(
                        f"idle CPU ×raw, {int(n):,} jobs ({pct:.3f}% core)",
                        f"{ratio:.2f}×",
                        f"≤ {IDLE_MAX}×",
                        ratio <= IDLE_MAX,
                    )
        return _table(header, rows)

    # -- 5 ------------------------------------------------------------------------------
    def memory(self) -> str:
        header = ["kind", "system", "jobs registered", "bytes per job", "×raw"]
        rows = []
        raw_bytes = None
        for (_, kind, _n), systems in _groups(self.results, "memory"):
            if kind == "interval":
                raw_bytes = median(systems.get("raw", []), "bytes_per_job")
            for system, runs in systems.items():
                value = median(runs, "bytes_per_job")
                ratio = _ratio(value, raw_bytes)
                is_beat = system == "beat"
                limit = MEMORY_INTERVAL_MAX if is_beat and kind == "interval" else None
                rows.append(
                    [
                        kind,
                        LABELS[system],
                        _num(median(runs, "n"), 0),
                        _num(value, 0),
                        _vs(system, ("raw",), ratio, limit),
                    ]
                )
                if is_beat and kind == "interval" and ratio is not None:
                    self._target(
                        "memory per interval job ×raw",
                        f"{ratio:.2f}×",
                        f"≤ {MEMORY_INTERVAL_MAX}×",
                        ratio <= MEMORY_INTERVAL_MAX,
                    )
                if is_beat and kind == "cron" and value is not None:
                    self._target(
                        "memory per cron job",
                        f"{value:,.0f} B",
                        f"≤ {MEMORY_CRON_MAX_BYTES:,} B",
                        value <= MEMORY_CRON_MAX_BYTES,
                    )
        return _table(header, rows)

    def render(self, header: str) -> str:
        sections: list[tuple[str, Callable[[], str], str]] = [
            (
                "1. Add / remove — µs per operation",
                self.add_remove,
                "add and remove are timed alone (beat's `Job`, APScheduler's trigger and aiocron's "
                "`Cron` are built beforehand); *build+add* adds the build time back. Removal is in "
                "random order. cron rows compare against the raw-asyncio interval row of the same "
                "size (a timer per job).",
            ),
            (
                "2. A burst of fires — jobs all due at the same instant",
                self.fires,
                "Interval jobs (period 1 h) whose first fire is the same instant; CPU is "
                "`time.process_time()` from just before the instant to the last completion. raw "
                "asyncio calls a plain function (and re-arms its timer); every other row runs an "
                "`async def` — *raw+task* is the floor for that. *GC runs*: collections (all "
                "generations) of the cyclic GC during the burst.",
            ),
            (
                "3. Lateness — 2,000 jobs every second, spread evenly",
                self.lateness,
                "Lateness = wall time when the callback body runs − the instant it was due. "
                "The first second is warm-up and not counted. *early*: fires whose callback ran "
                "before its instant.",
            ),
            (
                "4. Idle CPU — jobs waiting, none due for an hour",
                self.idle,
                "CPU used by the whole process over the idle window, as % of one core.",
            ),
            (
                "5. Memory — tracemalloc growth per registered job",
                self.memory,
                "Includes the job object, its timer and the scheduler's own entries; callbacks "
                "are shared. raw = one `TimerHandle` (with its context copy) and its heap slot.",
            ),
        ]
        body = []
        for title, render, note in sections:
            table = render()
            if table.count("\n") > 1:
                body.append(f"## {title}\n\n{note}\n\n{table}\n")
        targets = _table(["target (beat)", "measured", "limit", ""], self.targets)
        return f"{header}\n## Targets\n\n{targets}\n\n" + "\n".join(body)
