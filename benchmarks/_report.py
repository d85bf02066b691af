"""Turn per-repetition results into markdown tables of medians, ratios and target checks.

``results`` maps a group key (``"add_remove/interval/100000"``) to ``{system: [run, ...]}``
where each run is the JSON a worker printed. Every number shown is the median over that
group's repetitions, taken metric by metric. Several versions of beat can share a run
(``beat@before``, ``beat@after``): each gets its rows, its column in the targets table, and
a before -> after table of the target metrics.
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

# The targets (issue 6, tightened since). Idle CPU of raw asyncio is ~0, so both sides of
# that ratio are floored at IDLE_FLOOR_PCT: anything under it counts as "no idle cost".
ADD_MAX = 2.0
REMOVE_MAX = 1.5
BUILD_ADD_MAX = 4.0  # Job.every(...).do(fn) + add_job, against one raw call_at
CPU_PER_FIRE_MAX = 1.5  # against raw+task: beat runs every async def callback as a task
P99_MAX = 1.5
IDLE_MAX = 1.5
IDLE_FLOOR_PCT = 0.5
MEMORY_INTERVAL_MAX = 1.5  # and below APScheduler 3
MEMORY_CRON_MAX_BYTES = 1536
GROWTH_MAX = 1.5
STALL_MAX_MS = 5.0  # longest loop iteration while 1M jobs are removed

FLOORS = ("raw", "raw+task")


def is_beat(system: str) -> bool:
    return system == "beat" or system.startswith("beat@")


def label(system: str) -> str:
    return f"**{system}**" if system.startswith("beat@") else LABELS[system]


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


def _mark(ok: bool | None) -> str:
    return "—" if ok is None else ("✓" if ok else "✗")


class Report:
    def __init__(self, results: Results, beats: list[str] | None = None) -> None:
        self.results = results
        found = {s for runs in results.values() for s in runs if is_beat(s)}
        self.beats = [b for b in beats or sorted(found) if b in found] or ["beat"]
        # what -> (limit, {beat system: (value, ok)}), in the order the sections add them
        self.targets: dict[str, tuple[str, dict[str, tuple[str, bool | None]]]] = {}
        # what -> (unit, {beat system: value}): the before -> after table
        self.changes: dict[str, tuple[str, dict[str, float]]] = {}

    def _target(self, system: str, what: str, value: str, limit: str, ok: bool | None) -> None:
        self.targets.setdefault(what, (limit, {}))[1][system] = (value, ok)

    def _change(self, system: str, what: str, value: float | None, unit: str = "×") -> None:
        if value is not None:
            self.changes.setdefault(what, (unit, {}))[1][system] = value

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
            "build+add ×raw",
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
                build_add = add + build if add is not None and build is not None else None
                beat, interval = is_beat(system), kind == "interval"
                add_ratio, remove_ratio = _ratio(add, raw_add), _ratio(remove, raw_remove)
                build_ratio = _ratio(build_add, raw_add)  # against one raw call_at
                growth = _ratio(last, first)
                rows.append(
                    [
                        kind,
                        f"{int(n):,}",
                        label(system),
                        _num(add),
                        _num(first),
                        _num(last),
                        _ratio_cell(growth, GROWTH_MAX if beat and int(n) >= 1_000_000 else None),
                        _num(build_add),
                        _num(remove),
                        _num(median(runs, "remove", "first")),
                        _num(median(runs, "remove", "last")),
                        _vs(system, ("raw",), add_ratio, ADD_MAX if beat else None),
                        _vs(system, ("raw",), remove_ratio, REMOVE_MAX if beat else None),
                        _vs(
                            system,
                            ("raw",),
                            build_ratio,
                            BUILD_ADD_MAX if beat and interval else None,
                        ),
                    ]
                )
                if not beat:
                    continue
                what = "interval" if interval else "cron (vs a raw timer)"
                jobs = f"{int(n):,} jobs"
                if add_ratio is not None:
                    self._target(
                        system,
                        f"add ×raw, {what}, {jobs}",
                        f"{add_ratio:.2f}×",
                        f"≤ {ADD_MAX}×",
                        add_ratio <= ADD_MAX,
                    )
                if remove_ratio is not None:
                    self._target(
                        system,
                        f"remove ×raw, {what}, {jobs}",
                        f"{remove_ratio:.2f}×",
                        f"≤ {REMOVE_MAX}×",
                        remove_ratio <= REMOVE_MAX,
                    )
                if interval and build_ratio is not None:
                    self._target(
                        system,
                        f"build+add ×raw `call_at`, interval, {jobs}",
                        f"{build_ratio:.2f}×",
                        f"≤ {BUILD_ADD_MAX}×",
                        build_ratio <= BUILD_ADD_MAX,
                    )
                if int(n) >= 1_000_000 and growth is not None:
                    self._target(
                        system,
                        f"add last 10% / first 10%, {jobs}",
                        f"{growth:.2f}×",
                        f"≤ {GROWTH_MAX}×",
                        growth <= GROWTH_MAX,
                    )
                if interval:
                    self._change(system, f"add ×raw, {jobs}", add_ratio)
                    self._change(system, f"remove ×raw, {jobs}", remove_ratio)
                    self._change(system, f"build+add ×raw `call_at`, {jobs}", build_ratio)
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
                beat = is_beat(system)
                vs_raw, vs_task = _ratio(cpu, raw_cpu), _ratio(cpu, task_cpu)
                rows.append(
                    [
                        f"{int(n):,}",
                        label(system),
                        "plain def" if system == "raw" else "async def",
                        _num(median(runs, "fires_per_s")),
                        _num(cpu),
                        _num(median(runs, "burst_s"), 3),
                        _num(median(runs, "gc_collections"), 0),
                        _vs(system, ("raw",), vs_raw, None),
                        _vs(system, FLOORS, vs_task, CPU_PER_FIRE_MAX if beat else None),
                    ]
                )
                if beat and vs_task is not None:
                    self._target(
                        system,
                        f"CPU per fire ×raw+task (like for like), {int(n):,} due",
                        f"{vs_task:.2f}×",
                        f"≤ {CPU_PER_FIRE_MAX}×",
                        vs_task <= CPU_PER_FIRE_MAX,
                    )
                if beat:
                    self._change(system, f"CPU per fire ×raw+task, {int(n):,} due", vs_task)
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
                beat = is_beat(system)
                vs_raw, vs_task = _ratio(p99, raw_p99), _ratio(p99, task_p99)
                seen, expected = median(runs, "fires"), median(runs, "expected")
                rows.append(
                    [
                        f"{int(n):,}",
                        label(system),
                        _num(median(runs, "p50_ms"), 3),
                        _num(p99, 3),
                        _num(median(runs, "max_ms"), 3),
                        f"{_num(seen, 0)} / {_num(expected, 0)}",
                        _num(median(runs, "early"), 0),
                        _vs(system, ("raw",), vs_raw, P99_MAX if beat else None),
                        _vs(system, FLOORS, vs_task, None),
                    ]
                )
                if beat and vs_raw is not None:
                    self._target(
                        system,
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
                beat = is_beat(system)
                rows.append(
                    [
                        kind,
                        f"{int(n):,}",
                        label(system),
                        _num(pct, 3),
                        _num(median(runs, "cpu_ms"), 2),
                        _vs(system, ("raw",), ratio, IDLE_MAX if beat else None),
                    ]
                )
                if beat and ratio is not None:
                    self._target(
                        system,
                        f"idle CPU ×raw, {int(n):,} jobs",
                        f"{ratio:.2f}× ({pct:.3f}% core)",
                        f"≤ {IDLE_MAX}×",
                        ratio <= IDLE_MAX,
                    )
        return _table(header, rows)

    # -- 5 ------------------------------------------------------------------------------
    def memory(self) -> str:
        header = ["kind", "system", "jobs registered", "bytes per job", "×raw", "×APScheduler 3"]
        rows = []
        raw_bytes = None
        for (_, kind, _n), systems in _groups(self.results, "memory"):
            interval = kind == "interval"
            if interval:
                raw_bytes = median(systems.get("raw", []), "bytes_per_job")
            aps_bytes = median(systems.get("apscheduler", []), "bytes_per_job")
            for system, runs in systems.items():
                value = median(runs, "bytes_per_job")
                ratio, vs_aps = _ratio(value, raw_bytes), _ratio(value, aps_bytes)
                beat = is_beat(system)
                rows.append(
                    [
                        kind,
                        label(system),
                        _num(median(runs, "n"), 0),
                        _num(value, 0),
                        _vs(
                            system,
                            ("raw",),
                            ratio,
                            MEMORY_INTERVAL_MAX if beat and interval else None,
                        ),
                        "—" if system == "apscheduler" or vs_aps is None else f"{vs_aps:.2f}×",
                    ]
                )
                if beat and interval and ratio is not None:
                    self._target(
                        system,
                        "memory per interval job ×raw",
                        f"{ratio:.2f}×",
                        f"≤ {MEMORY_INTERVAL_MAX}×",
                        ratio <= MEMORY_INTERVAL_MAX,
                    )
                    self._change(system, "memory per interval job ×raw", ratio)
                if beat and interval and vs_aps is not None:
                    self._target(
                        system,
                        "memory per interval job ×APScheduler 3",
                        f"{vs_aps:.2f}×",
                        "< 1×",
                        vs_aps < 1,
                    )
                if beat and kind == "cron" and value is not None:
                    self._target(
                        system,
                        "memory per cron job",
                        f"{value:,.0f} B",
                        f"≤ {MEMORY_CRON_MAX_BYTES:,} B",
                        value <= MEMORY_CRON_MAX_BYTES,
                    )
        return _table(header, rows)

    # -- 6 ------------------------------------------------------------------------------
    def stall(self) -> str:
        header = [
            "jobs removed",
            "system",
            "longest stall ms",
            "p99.9 ms",
            "gaps > 5 ms",
            "longest, CPU ms",
            "loop iterations",
            "removal s",
            "longest ×raw",
        ]
        rows = []
        for (_, n), systems in _groups(self.results, "stall"):
            raw_max = median(systems.get("raw", []), "max_ms")
            for system, runs in systems.items():
                longest = median(runs, "max_ms")
                beat = is_beat(system)
                ok = longest <= STALL_MAX_MS if beat and longest is not None else None
                rows.append(
                    [
                        f"{int(n):,}",
                        label(system),
                        _num(longest) + (f" {_mark(ok)}" if ok is not None else ""),
                        _num(median(runs, "p999_ms")),
                        _num(median(runs, "over_5ms"), 0),
                        _num(median(runs, "cpu_max_ms")),
                        _num(median(runs, "iterations"), 0),
                        _num(median(runs, "seconds"), 3),
                        _vs(system, ("raw",), _ratio(longest, raw_max), None),
                    ]
                )
                if beat and longest is not None:
                    self._target(
                        system,
                        f"longest loop stall, removing {int(n):,} jobs",
                        f"{longest:.2f} ms",
                        f"≤ {STALL_MAX_MS:g} ms (at 1,000,000)",
                        ok,
                    )
                    self._change(system, f"longest loop stall ms, {int(n):,} jobs", longest, "ms")
        return _table(header, rows)

    # -- summary tables -----------------------------------------------------------------
    def targets_table(self) -> str:
        if len(self.beats) == 1:
            rows = []
            for what, (limit, values) in self.targets.items():
                value, ok = values.get(self.beats[0], ("—", None))
                rows.append([what, value, limit, _mark(ok)])
            return _table(["target (beat)", "measured", "limit", ""], rows)
        rows = []
        for what, (limit, values) in self.targets.items():
            cells = []
            for beat in self.beats:
                value, ok = values.get(beat, ("—", None))
                cells.append(value if ok is None else f"{value} {_mark(ok)}")
            rows.append([what, limit, *cells])
        return _table(["target", "limit", *self.beats], rows)

    def changes_table(self) -> str:
        """Each target metric for every beat version, and last / first (lower is better)."""
        first, last = self.beats[0], self.beats[-1]
        rows = []
        for what, (unit, values) in self.changes.items():
            cells = [
                "—" if b not in values else f"{values[b]:.2f}{unit if unit == '×' else ' ' + unit}"
                for b in self.beats
            ]
            change = _ratio(values.get(last), values.get(first))
            rows.append([what, *cells, "—" if change is None else f"{(change - 1) * 100:+.0f} %"])
        return _table(["metric", *self.beats, f"{last} vs {first}"], rows)

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
            (
                "6. Loop stall — the longest event-loop iteration during mass removal",
                self.stall,
                "n interval jobs are removed in random order, 1,000 per loop iteration, while a "
                "`call_soon` callback records the time between loop iterations, until every job "
                "is gone and the system has settled (beat: its heap compaction is done). A batch "
                "of 1,000 removals alone holds the loop ~1 ms (more if `remove` is slower). raw "
                "asyncio rebuilds its timer heap inside `_run_once` once half its handles are "
                "cancelled. *longest, CPU*: the longest gap in thread CPU time, which preemption "
                "by other processes does not inflate.",
            ),
        ]
        body = []
        for title, render, note in sections:
            table = render()
            if table.count("\n") > 1:
                body.append(f"## {title}\n\n{note}\n\n{table}\n")
        parts = [header, f"## Targets\n\n{self.targets_table()}\n"]
        if len(self.beats) > 1 and self.changes:
            parts.append(
                f"## {self.beats[0]} → {self.beats[-1]}\n\nbeat's target metrics in each version "
                f"(ratios against raw asyncio measured in the same run; lower is better).\n\n"
                f"{self.changes_table()}\n"
            )
        return "\n".join(parts + body)
