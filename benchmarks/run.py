"""Run every benchmark scenario for every system, interleaved, and print a markdown report.

    python benchmarks/run.py                 # full run (~10 min on 2 cores), saves results.md
    python benchmarks/run.py --quick         # smoke run, < 60 s
    python benchmarks/run.py --loop uvloop   # same, on uvloop
    python benchmarks/run.py --only fires,lateness
    python benchmarks/run.py --profile add_remove   # cProfile beat's timed sections

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
WORKER_ENV = dict(os.environ)  # run.py --beat-ref puts a snapshot of beat first on the path

ADD_REMOVE = ("raw", "beat", "apscheduler")
CRON = ("beat", "apscheduler", "aiocron")
FIRING = ("raw", "raw+task", "beat", "apscheduler")


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
    ]


def run_worker(config: dict[str, Any]) -> dict[str, Any]:
    proc = subprocess.run(
        [sys.executable, str(WORKER), json.dumps(config)],
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT,
        cwd=HERE,
        env=WORKER_ENV,
    )
    lines = proc.stdout.strip().splitlines()
    if proc.returncode != 0 or not lines:
        tail = (proc.stderr.strip().splitlines() or ["no output"])[-1]
        return {"error": f"exit {proc.returncode}: {tail}"}
    result: dict[str, Any] = json.loads(lines[-1])
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


def use_beat(ref: str | None, into: str) -> str:
    """Point the workers at beat as of ``ref`` (or the working tree); describe the choice.

    A snapshot keeps a long run measuring one version even while ``beat/`` is being edited,
    and lets two commits be compared: ``--beat-ref HEAD~1``.
    """
    try:
        head = _git("rev-parse", "--short", "HEAD")
    except (OSError, subprocess.CalledProcessError):
        return "working tree (not a git checkout)"
    if ref is None:
        dirty = _git("status", "--porcelain", "--", "beat")
        return f"working tree at {head}" + (" + uncommitted changes" if dirty else "")
    archive = subprocess.run(
        ["git", "archive", "--format=tar", ref, "beat"], cwd=REPO, capture_output=True, check=True
    ).stdout
    subprocess.run(["tar", "-x", "-C", into], input=archive, check=True)
    WORKER_ENV["PYTHONPATH"] = os.pathsep.join(p for p in (into, os.environ.get("PYTHONPATH")) if p)
    return f"`git archive {ref}` = {_git('rev-parse', '--short', ref)}"


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


def header(args: argparse.Namespace, plan: list[Group], seconds: float, beat_src: str) -> str:
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
        + (f" --beat-ref {args.beat_ref}" if args.beat_ref else "")
    )
    reps = ", ".join(f"{g.key} ×{g.reps}" for g in plan)
    return (
        f"# beat benchmarks\n\n"
        f"`{command}` — {datetime.now(UTC):%Y-%m-%d %H:%M} UTC, "
        f"total {seconds / 60:.1f} min\n\n"
        f"- Python {platform.python_version()} on {platform.system()} {platform.machine()}, "
        f"{os.cpu_count()} CPUs ({cpu}); event loop: **{args.loop}**\n"
        f"- beat: {beat_src}; APScheduler {version('apscheduler')}, "
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
    }
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "beat.prof")
        config: dict[str, Any] = {
            "scenario": scenario,
            "system": "beat",
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
        "--only", help="comma-separated scenarios: add_remove, fires, lateness, idle, memory"
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
        metavar="REF",
        help="measure beat as committed at this git ref (default: the working tree)",
    )
    parser.add_argument(
        "--profile",
        choices=("add_remove", "fires", "lateness"),
        help="profile beat in one scenario instead of benchmarking",
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="beat-snapshot-") as snapshot:
        beat_src = use_beat(args.beat_ref, snapshot)
        if args.profile:
            profile(args.profile, args.loop, args.gc)
        else:
            benchmark(args, beat_src)


def benchmark(args: argparse.Namespace, beat_src: str) -> None:
    plan = quick_plan() if args.quick else full_plan()
    if args.only:
        wanted = set(args.only.split(","))
        plan = [g for g in plan if g.scenario in wanted]
    progress = [0, sum(g.reps * len(g.systems) for g in plan)]
    started = time.perf_counter()
    results: Results = {group.key: run_group(group, args.loop, progress, args.gc) for group in plan}
    seconds = time.perf_counter() - started

    report = Report(results).render(header(args, plan, seconds, beat_src))
    print(report)
    print(f"total: {seconds:.0f} s", file=sys.stderr)
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))
    if not args.quick and not args.only and args.gc:  # only complete, default-GC runs
        name = "results.md" if args.loop == "asyncio" else f"results-{args.loop}.md"
        (HERE / name).write_text(report)
        print(f"saved {HERE / name}", file=sys.stderr)


if __name__ == "__main__":
    main()
