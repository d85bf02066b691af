"""Run every benchmark scenario for every system, interleaved, and print a markdown report.

    python benchmarks/run.py                 # full run (~12 min on 2 cores), saves results.md
    python benchmarks/run.py --quick         # smoke run, < 60 s
    python benchmarks/run.py --loop uvloop   # same, on uvloop
    python benchmarks/run.py --only fires,lateness
    python benchmarks/run.py --profile add_remove   # cProfile beat's timed sections
    python benchmarks/run.py --beat-ref before=HEAD~5 --beat-ref after=WORKTREE  # side by side

Every measurement runs in a fresh subprocess (``_worker.py``). Within a group (one scenario at
one size) the systems take turns -- A, B, C, then B, C, A, ... -- so drifting machine noise
lands on all of them alike; the report shows medians over the repetitions.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import pstats
import re
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from _report import Report, Results

HERE = Path(__file__).resolve().parent
WORKER = HERE / "_worker.py"
RUN_TIMEOUT = 600.0  # seconds for one worker; a hung system must not hang the whole run
REPO = HERE.parent
WORKTREE = "WORKTREE"  # the --beat-ref spelling of "the working tree, as it is now"

ADD_REMOVE = ("raw", "beat", "apscheduler")
CRON = ("beat", "apscheduler", "aiocron")
FIRING = ("raw", "raw+task", "beat", "apscheduler")
STALL = ("raw", "beat")


@dataclass
class BeatVersion:
    """One version of beat under test, and the ``PYTHONPATH`` its workers get."""

    system: str  # "beat", or "beat@<name>" when several versions share a run
    ref: str | None  # a git ref, WORKTREE, or None: import whatever is installed (live tree)
    path: str | None = None  # directory holding the extracted ``beat/``, first on the path
    source: str = ""  # for the report's header

    def env(self) -> dict[str, str]:
        env = dict(os.environ)
        if self.path:
            env["PYTHONPATH"] = os.pathsep.join(
                p for p in (self.path, os.environ.get("PYTHONPATH")) if p
            )
        return env


BEATS: list[BeatVersion] = [BeatVersion("beat", None)]  # set by main()


@dataclass
class Group:
    """One scenario at one size: the unit within which systems are interleaved."""

    scenario: str
    params: dict[str, Any]
    systems: tuple[str, ...]
    reps: int
    n_for: dict[str, int] = field(default_factory=dict)  # per-system size overrides
    lead_for: dict[str, float] = field(default_factory=dict)  # per-system first lead

    @property
    def key(self) -> str:
        return "/".join(
            [self.scenario] + [str(self.params[p]) for p in ("kind", "n") if p in self.params]
        )


def full_plan() -> list[Group]:
    # APScheduler's MemoryJobStore inserts into a sorted list (O(n) per add): 1M adds would
    # take hours, so it stops at 100k. tracemalloc makes APScheduler/aiocron/beat-cron set-up
    # slow; bytes per job do not depend on n (checked: 2k, 20k and 100k agree within 2 %),
    # so those memory rows use 10k jobs.
    return [
        Group("add_remove", {"kind": "interval", "n": 10_000}, ADD_REMOVE, 5),
        Group("add_remove", {"kind": "interval", "n": 100_000}, ADD_REMOVE, 3),
        Group("add_remove", {"kind": "interval", "n": 1_000_000}, ("raw", "beat"), 3),
        Group("add_remove", {"kind": "cron", "n": 10_000}, CRON, 3),
        Group("fires", {"n": 10_000, "lead": 0.5}, FIRING, 5, lead_for={"apscheduler": 1.5}),
        Group("fires", {"n": 50_000, "lead": 0.5}, FIRING, 3, lead_for={"apscheduler": 10.0}),
        Group("lateness", {"n": 2_000, "period": 1.0, "duration": 10.0, "lead": 0.5}, FIRING, 3),
        Group("idle", {"kind": "interval", "n": 100_000, "window": 5.0}, ADD_REMOVE, 3),
        Group(
            "memory",
            {"kind": "interval", "n": 100_000},
            ADD_REMOVE,
            3,
            n_for={"apscheduler": 10_000},
        ),
        Group("memory", {"kind": "cron", "n": 10_000}, CRON, 3),
        Group("stall", {"n": 1_000_000}, STALL, 3),
    ]


def quick_plan() -> list[Group]:
    return [
        Group("add_remove", {"kind": "interval", "n": 10_000}, ADD_REMOVE, 1),
        Group("add_remove", {"kind": "interval", "n": 100_000}, ("raw", "beat"), 1),
        Group("add_remove", {"kind": "cron", "n": 2_000}, CRON, 1),
        Group("fires", {"n": 10_000, "lead": 0.5}, FIRING, 1, lead_for={"apscheduler": 2.0}),
        Group("lateness", {"n": 2_000, "period": 1.0, "duration": 2.0, "lead": 0.5}, FIRING, 1),
        Group("idle", {"kind": "interval", "n": 10_000, "window": 2.0}, ADD_REMOVE, 1),
        Group(
            "memory", {"kind": "interval", "n": 20_000}, ADD_REMOVE, 1, n_for={"apscheduler": 2_000}
        ),
        Group("memory", {"kind": "cron", "n": 2_000}, CRON, 1),
        Group("stall", {"n": 100_000}, STALL, 1),
    ]


def with_versions(group: Group, beats: list[BeatVersion]) -> Group:
    """Replace ``beat`` in a group by every version under test, so they take turns too."""
    names = [b.system for b in beats]

    def expand(systems: Any) -> list[str]:
        return [v for s in systems for v in (names if s == "beat" else [s])]

    def per_system(values: dict[str, Any]) -> dict[str, Any]:
        return {v: value for s, value in values.items() for v in expand([s])}

    return Group(
        group.scenario,
        group.params,
        tuple(expand(group.systems)),
        group.reps,
        per_system(group.n_for),
        per_system(group.lead_for),
    )


def run_worker(config: dict[str, Any]) -> dict[str, Any]:
    version = next((b for b in BEATS if b.system == config["system"]), None)
    proc = subprocess.run(
        [sys.executable, str(WORKER), json.dumps(config)],
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT,
        cwd=HERE,
        env=version.env() if version else dict(os.environ),
    )
    lines = proc.stdout.strip().splitlines()
    if proc.returncode != 0 or not lines:
        tail = (proc.stderr.strip().splitlines() or ["no output"])[-1]
        return {"error": f"exit {proc.returncode}: {tail}"}
    result: dict[str, Any] = json.loads(lines[-1])
    imported = result.get("beat_from")
    if version and version.path and imported and not imported.startswith(version.path):
        return {"error": f"{version.system} imported beat from {imported}, not {version.path}"}
    return result


def run_with_lead(config: dict[str, Any]) -> dict[str, Any]:
    """Run a worker; if its set-up overran the jobs' shared due instant, retry with more lead.

    Updates ``config["lead"]``. The lead only decides when the measured burst happens.
    """
    result = run_worker(config)
    while result.get("retry") and config["lead"] < 120:
        config["lead"] = max(2 * config["lead"], 1.5 * result["setup_s"] + 0.5)
        result = run_worker(config)
    return result


def _git(*args: str) -> str:
    return subprocess.run(
        ["git", *args], cwd=REPO, capture_output=True, text=True, check=True
    ).stdout.strip()


def parse_versions(refs: list[str], compare: str | None) -> list[BeatVersion]:
    """``--beat-ref [NAME=]REF`` (repeatable) and ``--compare REF`` -> the versions to run."""
    if compare:
        refs = [f"before={compare}", f"after={WORKTREE}", *refs]
    if not refs:
        return [BeatVersion("beat", None)]
    pairs = []
    for value in refs:
        name, sep, ref = value.partition("=")
        if not sep or not re.fullmatch(r"[\w.-]+", name):
            name, ref = "", value
        pairs.append((name, ref))
    if len(pairs) == 1 and not pairs[0][0]:
        return [BeatVersion("beat", pairs[0][1])]
    versions = [BeatVersion(f"beat@{name or ref}", ref) for name, ref in pairs]
    if len({v.system for v in versions}) < len(versions):
        raise SystemExit("--beat-ref: two versions with the same name; use NAME=REF")
    return versions


def use_beat(version: BeatVersion, into: str) -> None:
    """Extract ``version`` of ``beat/`` into ``into`` for its workers; describe it.

    A snapshot keeps a long run measuring one version even while ``beat/`` is being edited,
    and lets two versions be compared: ``--beat-ref before=HEAD~1 --beat-ref after=WORKTREE``.
    ``WORKTREE`` snapshots the working tree as it is when the run starts.
    """
    try:
        head = _git("rev-parse", "--short", "HEAD")
    except (OSError, subprocess.CalledProcessError):
        version.source = "working tree (not a git checkout)"
        return
    dirty = " + uncommitted changes" if _git("status", "--porcelain", "--", "beat") else ""
    if version.ref is None:
        version.source = f"working tree at {head}{dirty}"
        return
    os.makedirs(into)
    if version.ref == WORKTREE:
        shutil.copytree(
            REPO / "beat", Path(into) / "beat", ignore=shutil.ignore_patterns("__pycache__")
        )
        version.source = f"working tree at {head}{dirty} (copied at start)"
    else:
        archive = subprocess.run(
            ["git", "archive", "--format=tar", version.ref, "beat"],
            cwd=REPO,
            capture_output=True,
            check=True,
        ).stdout
        subprocess.run(["tar", "-x", "-C", into], input=archive, check=True)
        version.source = (
            f"`git archive {version.ref}` = {_git('rev-parse', '--short', version.ref)}"
        )
    version.path = into


def run_group(
    group: Group, loop: str, progress: list[int], gc: bool = True
) -> dict[str, list[dict[str, Any]]]:
    runs: dict[str, list[dict[str, Any]]] = {system: [] for system in group.systems}
    lead: dict[str, float | None] = {
        s: group.lead_for.get(s, group.params.get("lead")) for s in group.systems
    }
    for rep in range(group.reps):
        k = rep % len(group.systems)
        for system in group.systems[k:] + group.systems[:k]:
            config: dict[str, Any] = {
                "scenario": group.scenario,
                "system": system,
                "loop": loop,
                "gc": gc,
                **group.params,
                "lead": lead[system],
            }
            config["n"] = group.n_for.get(system, config["n"])
            started = time.perf_counter()
            result = run_with_lead(config)
            lead[system] = config["lead"]  # kept for the system's later repetitions
            progress[0] += 1
            elapsed = time.perf_counter() - started
            status = result.get("error", "ok")
            print(
                f"[{progress[0]:3d}/{progress[1]}] {group.key:<28} {system:<12} "
                f"rep {rep + 1}/{group.reps}  {elapsed:6.1f} s  {status}",
                file=sys.stderr,
                flush=True,
            )
            if "error" not in result and not result.get("retry"):
                runs[system].append(result)
    return runs


def header(args: argparse.Namespace, plan: list[Group], seconds: float) -> str:
    from importlib.metadata import version

    cpu = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    command = (
        "python benchmarks/run.py"
        + (" --quick" if args.quick else "")
        + (f" --loop {args.loop}" if args.loop != "asyncio" else "")
        + ("" if args.gc else " --no-gc")
        + "".join(f" --beat-ref {ref}" for ref in args.beat_ref)
        + (f" --compare {args.compare}" if args.compare else "")
    )
    reps = ", ".join(f"{g.key} ×{g.reps}" for g in plan)
    beats = "; ".join(f"{b.system}: {b.source}" for b in BEATS)
    return (
        f"# beat benchmarks\n\n"
        f"`{command}` — {datetime.now(UTC):%Y-%m-%d %H:%M} UTC, "
        f"total {seconds / 60:.1f} min\n\n"
        f"- Python {platform.python_version()} on {platform.system()} {platform.machine()}, "
        f"{os.cpu_count()} CPUs ({cpu}); event loop: **{args.loop}**\n"
        f"- {beats}; APScheduler {version('apscheduler')}, "
        f"aiocron {version('aiocron')}, uvloop {version('uvloop')}\n"
        f"- repetitions (interleaved, each in a fresh process): {reps}\n"
        f"- every cell is the median over repetitions; see benchmarks/README.md for method\n"
    )


def profile(scenario: str, loop: str, gc: bool) -> None:
    """Run beat once under cProfile (timed sections only) and print the top functions."""
    configs: dict[str, dict[str, Any]] = {
        "add_remove": {"kind": "interval", "n": 100_000},
        "fires": {"n": 50_000, "lead": 1.0},
        "lateness": {"n": 2_000, "period": 1.0, "duration": 5.0, "lead": 1.0},
        "stall": {"n": 100_000},
    }
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "beat.prof")
        config: dict[str, Any] = {
            "scenario": scenario,
            "system": BEATS[0].system,
            "loop": loop,
            "profile": path,
            "gc": gc,
            **configs[scenario],
        }
        print(json.dumps(run_with_lead(config)))
        stats = pstats.Stats(path)
        stats.sort_stats("tottime").print_stats(25)
        stats.sort_stats("cumulative").print_stats(25)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small smoke run, < 60 s")
    parser.add_argument("--loop", choices=("asyncio", "uvloop"), default="asyncio")
    parser.add_argument(
        "--only",
        help="comma-separated scenarios: add_remove, fires, lateness, idle, memory, stall",
    )
    parser.add_argument("--json", type=Path, help="also write every repetition's raw result")
    parser.add_argument(
        "--no-gc",
        dest="gc",
        action="store_false",
        help="diagnostic: disable the cyclic GC in workers (not saved)",
    )
    parser.add_argument(
        "--beat-ref",
        metavar="[NAME=]REF",
        action="append",
        default=[],
        help="measure beat at this git ref (WORKTREE: the working tree, copied at start); "
        "repeat with names to measure several versions side by side: "
        "--beat-ref before=HEAD~1 --beat-ref after=WORKTREE (default: the installed tree)",
    )
    parser.add_argument(
        "--compare",
        metavar="REF",
        help="shorthand for --beat-ref before=REF --beat-ref after=WORKTREE",
    )
    parser.add_argument(
        "--profile",
        choices=("add_remove", "fires", "lateness", "stall"),
        help="profile beat in one scenario instead of benchmarking",
    )
    args = parser.parse_args()
    BEATS[:] = parse_versions(args.beat_ref, args.compare)
    if args.profile and len(BEATS) > 1:
        parser.error("--profile measures one version of beat; give at most one --beat-ref")
    with tempfile.TemporaryDirectory(prefix="beat-snapshot-") as snapshot:
        for i, version in enumerate(BEATS):
            use_beat(version, os.path.join(snapshot, str(i)))
        if args.profile:
            profile(args.profile, args.loop, args.gc)
        else:
            benchmark(args)


def benchmark(args: argparse.Namespace) -> None:
    plan = quick_plan() if args.quick else full_plan()
    if args.only:
        wanted = set(args.only.split(","))
        plan = [g for g in plan if g.scenario in wanted]
    plan = [with_versions(g, BEATS) for g in plan]
    progress = [0, sum(g.reps * len(g.systems) for g in plan)]
    started = time.perf_counter()
    results: Results = {group.key: run_group(group, args.loop, progress, args.gc) for group in plan}
    seconds = time.perf_counter() - started

    report = Report(results, [b.system for b in BEATS]).render(header(args, plan, seconds))
    print(report)
    print(f"total: {seconds:.0f} s", file=sys.stderr)
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))
    # Only complete, default-GC runs of one version are the project's record.
    if not args.quick and not args.only and args.gc and len(BEATS) == 1:
        name = "results.md" if args.loop == "asyncio" else f"results-{args.loop}.md"
        (HERE / name).write_text(report)
        print(f"saved {HERE / name}", file=sys.stderr)


if __name__ == "__main__":
    main()
