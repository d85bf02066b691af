"""The durable job queue: beat against its peers on the same PostgreSQL, in the same run.

    python benchmarks/bench_queue.py                    # full run (see README, "Durable jobs")
    python benchmarks/bench_queue.py --quick            # smoke run, < 2 min
    python benchmarks/bench_queue.py --only pickup --systems beat-pg,pgqueuer
    python benchmarks/bench_queue.py --json out.json    # also every repetition's numbers

Systems (``_queue_systems.py``): beat on SQLite, beat on PostgreSQL, procrastinate, PgQueuer,
oban. A peer whose package is missing is skipped, and the report says so. All PostgreSQL
systems share one throwaway PostgreSQL server started here (loopback, ``fsync`` and
``synchronous_commit`` on: the defaults); every measurement gets a fresh database (and beat on
SQLite a fresh directory) and runs in a fresh process; the systems take turns within each
repetition (A B C, then B C A...) and every cell is the median over the repetitions.

Metrics:

1. ``enqueue_one``  — jobs/s, N sequential awaits of the system's single-job enqueue.
2. ``enqueue_batch`` — jobs/s, N jobs in batches of 1,000 through its batch call.
3. ``e2e_1`` / ``e2e_4`` — jobs/s: N no-op jobs are enqueued first, then 1 or 4 worker
   processes (each started, connected and idle before the clock starts) are told to go; the
   clock stops when the database shows no unfinished job (polled every 10 ms).
4. ``pickup`` — ms from just before ``enqueue`` to the first line of the job function, in a
   worker process that is idle and waiting; one job at a time (the next is enqueued 20 ms
   after the previous one started), p50 / p99.

Internals: the parent runs ``--child METRIC SYSTEM`` processes, which in turn run
``--worker SYSTEM`` processes for the worker metrics; workers talk over stdin/stdout
(``ready`` / ``go`` / ``stop``; ``S i t`` when job ``i`` starts, ``t`` = CLOCK_MONOTONIC).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import json
import os
import platform
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(HERE))
BEAT_SNAPSHOT = os.environ.get("BENCH_QUEUE_BEAT")
"""A directory holding ``beat/`` as of the run's start (``--beat-ref``), first on the path of
every child and worker, so edits made to the tree during a run never mix versions."""
if BEAT_SNAPSHOT:
    sys.path.insert(0, BEAT_SNAPSHOT)

import _queue_systems as qs  # noqa: E402

CONCURRENCY = 10
"""Jobs one worker process runs at once, for every system (its own setting)."""
PICKUP_GAP = 0.02
"""Seconds between a job's start and the next enqueue: the worker is back to waiting."""
POLL = 0.01
SCRIPT = str(Path(__file__).resolve())


@dataclass(frozen=True)
class Plan:
    reps: int
    enqueue_one: int
    enqueue_batch: int
    batch: int
    e2e: int
    pickup: int
    warmup: int
    backlog: int


FULL = Plan(reps=3, enqueue_one=2000, enqueue_batch=20000, batch=1000, e2e=5000, pickup=300,
            warmup=50, backlog=50000)  # fmt: skip
QUICK = Plan(reps=1, enqueue_one=300, enqueue_batch=5000, batch=1000, e2e=1000, pickup=40,
             warmup=20, backlog=5000)  # fmt: skip
BACKLOG_DUE_IN = 3600.0
"""Seconds until the backlog jobs of ``pickup_backlog`` come due: they only wait."""

METRICS = ("enqueue_one", "enqueue_batch", "e2e_1", "e2e_4", "pickup", "pickup_backlog")
WORKER_METRICS = ("e2e_1", "e2e_4", "pickup", "pickup_backlog")
LATENCY_METRICS = ("pickup", "pickup_backlog")


def _has_beat_worker() -> bool:
    return (
        Path(BEAT_SNAPSHOT or os.environ.get("BENCH_QUEUE_BEAT") or ROOT) / "beat" / "_worker.py"
    ).exists()


def _git(*args: str) -> str:
    done = subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True, check=True)
    return done.stdout.strip()


def snapshot_beat(ref: str) -> tuple[str, str]:
    """Copy ``beat/`` at ``ref`` (``WORKTREE``: as it is now) into a temporary directory and
    export it to the children; returns (the directory, a description for the report)."""
    directory = tempfile.mkdtemp(prefix="beat-bq-src-")
    if ref == "WORKTREE":
        shutil.copytree(ROOT / "beat", Path(directory) / "beat")
        dirty = _git("status", "--porcelain", "--", "beat")
        head = _git("rev-parse", "--short", "HEAD")
        label = f"{head} + uncommitted changes in beat/" if dirty else head
    else:
        archive = subprocess.run(
            ["git", "archive", ref, "beat"], cwd=ROOT, capture_output=True, check=True
        )
        subprocess.run(["tar", "-x", "-C", directory], input=archive.stdout, check=True)
        label = _git("rev-parse", "--short", ref)
    os.environ["BENCH_QUEUE_BEAT"] = directory
    return directory, label


def now() -> float:
    return time.clock_gettime(time.CLOCK_MONOTONIC)


# -------------------------------------------------------------------------------------------
# The throwaway PostgreSQL server (fsync on)
# -------------------------------------------------------------------------------------------
class Server:
    """A PostgreSQL cluster started like the tests' (``tests/coordinators/conftest.py``), but
    with the durability settings at their defaults: ``fsync``, ``synchronous_commit`` and
    ``full_page_writes`` on."""

    def __init__(self) -> None:
        from tests.coordinators.conftest import PostgresServer, _pg_bindir

        if _pg_bindir() is None:
            raise SystemExit("PostgreSQL binaries (initdb, postgres) are not installed")
        self.pg = PostgresServer(_pg_bindir() or "", Path(tempfile.mkdtemp(prefix="beat-bq-")))
        self.pg.init()
        self.proc: subprocess.Popen[bytes] | None = None
        self.version = "?"

    def start(self) -> Server:
        from tests.coordinators.conftest import _wait_for_port

        pg = self.pg
        log = open(pg.directory / "postgres.log", "ab")  # noqa: SIM115 - owned by the process
        pg.proc = self.proc = subprocess.Popen(
            [
                f"{pg.bindir}/postgres",
                "-D", str(pg.data),
                "-p", str(pg.port),
                "-c", "listen_addresses=127.0.0.1",
                "-c", f"unix_socket_directories={pg.directory}",
                "-c", "fsync=on",
                "-c", "synchronous_commit=on",
                "-c", "full_page_writes=on",
                "-c", "max_connections=200",
            ],
            stdout=log,
            stderr=log,
            cwd=pg.directory,
            **pg._as_user(),
        )  # fmt: skip
        log.close()
        _wait_for_port(pg.port, self.proc, "postgres")
        pg._wait_ready()
        self.version = pg.query("SHOW server_version")[0][0]
        for setting in ("fsync", "synchronous_commit", "full_page_writes"):
            assert pg.query(f"SHOW {setting}")[0][0] == "on", f"{setting} must be on"
        return self

    def dsn(self, database: str) -> str:
        return self.pg.dsn(database=database)

    def create(self, database: str) -> None:
        self.pg.query(f"CREATE DATABASE {database}")

    def drop(self, database: str) -> None:
        self.pg.query(f"DROP DATABASE IF EXISTS {database} WITH (FORCE)")

    def stop(self) -> None:
        self.pg.cleanup()


# -------------------------------------------------------------------------------------------
# Worker process: the system's own worker, driven over stdin/stdout
# -------------------------------------------------------------------------------------------
async def _lines(stream: Any) -> Any:
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), stream)
    return reader


async def worker_main(system: str, dsn: str, directory: Path, report: bool) -> None:
    _check_beat_source()
    out = sys.stdout
    if report:

        def started(i: int) -> None:
            t = now()
            out.write(f"S {i} {t:.9f}\n")
            out.flush()

        qs.ON_START = started
    adapter = qs.SYSTEMS[system](dsn, directory)
    await adapter.open()
    stdin = await _lines(sys.stdin)
    out.write("ready\n")
    out.flush()
    assert (await stdin.readline()).strip() == b"go"
    await adapter.start_worker(CONCURRENCY)
    await stdin.readline()  # "stop" or EOF
    await adapter.stop_worker()
    await adapter.close()


class WorkerProc:
    def __init__(self, proc: asyncio.subprocess.Process) -> None:
        self.proc = proc

    @classmethod
    async def spawn(
        cls, system: str, dsn: str, directory: Path, report: bool = False
    ) -> WorkerProc:
        args = [sys.executable, SCRIPT, "--worker", system]
        args += ["--dsn", dsn, "--dir", str(directory)]
        if report:
            args.append("--report")
        proc = await asyncio.create_subprocess_exec(
            *args, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE
        )
        return cls(proc)

    async def line(self) -> str:
        assert self.proc.stdout is not None
        raw = await self.proc.stdout.readline()
        if not raw:
            raise RuntimeError(f"worker exited ({await self.proc.wait()})")
        return raw.decode().strip()

    async def ready(self) -> None:
        while (line := await self.line()) != "ready":
            pass
        del line

    def send(self, word: str) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(word.encode() + b"\n")

    async def stop(self) -> None:
        with contextlib.suppress(ConnectionError):
            self.send("stop")
        try:
            await asyncio.wait_for(self.proc.wait(), 20.0)
        except TimeoutError:
            self.proc.kill()
            await self.proc.wait()


# -------------------------------------------------------------------------------------------
# One measurement (in a fresh --child process)
# -------------------------------------------------------------------------------------------
def _check_beat_source() -> None:
    if BEAT_SNAPSHOT:
        import beat

        if not str(beat.__file__).startswith(BEAT_SNAPSHOT):
            raise RuntimeError(f"beat imported from {beat.__file__}, not {BEAT_SNAPSHOT}")


async def measure(metric: str, system: str, dsn: str, directory: Path, plan: Plan) -> dict:
    _check_beat_source()
    adapter = qs.SYSTEMS[system](dsn, directory)
    await adapter.open()
    try:
        result: dict[str, Any] = {}
        if isinstance(adapter, qs._Beat):
            result["surface"] = adapter.surface
        if metric == "enqueue_one":
            for i in range(plan.warmup):
                await adapter.enqueue_one(-i)
            gc.collect()
            t0 = time.perf_counter()
            for i in range(plan.enqueue_one):
                await adapter.enqueue_one(i)
            elapsed = time.perf_counter() - t0
            result |= {"rate": plan.enqueue_one / elapsed, "seconds": elapsed}
        elif metric == "enqueue_batch":
            await adapter.enqueue_many(range(-plan.warmup, 0))
            batches = [
                range(k, min(k + plan.batch, plan.enqueue_batch))
                for k in range(0, plan.enqueue_batch, plan.batch)
            ]
            gc.collect()
            t0 = time.perf_counter()
            for items in batches:
                await adapter.enqueue_many(items)
            elapsed = time.perf_counter() - t0
            result |= {"rate": plan.enqueue_batch / elapsed, "seconds": elapsed}
        elif metric.startswith("e2e_"):
            result |= await _end_to_end(adapter, int(metric[4:]), plan, dsn, directory)
        elif metric == "pickup":
            result |= await _pickup(adapter, plan, dsn, directory)
        elif metric == "pickup_backlog":
            # "Send this email in three hours", at scale: many jobs stored that are not
            # due yet, while new ones must start at once.
            for k in range(0, plan.backlog, plan.batch):
                # Negative numbers: the pickup's own jobs count up from 0.
                items = range(-1_000_000 - k, -1_000_000 - min(k + plan.batch, plan.backlog), -1)
                await adapter.enqueue_later(items, BACKLOG_DUE_IN)
            result |= await _pickup(adapter, plan, dsn, directory)
        else:
            raise ValueError(metric)
        return result
    finally:
        await adapter.close()


async def _end_to_end(
    adapter: Any, processes: int, plan: Plan, dsn: str, directory: Path
) -> dict[str, Any]:
    n = plan.e2e
    for k in range(0, n, plan.batch):
        await adapter.enqueue_many(range(k, min(k + plan.batch, n)))
    pending = adapter.counter()
    assert await pending() == n, "the jobs were not all stored"
    workers = [await WorkerProc.spawn(adapter.name, dsn, directory) for _ in range(processes)]
    try:
        for w in workers:
            await w.ready()
        t0 = now()
        for w in workers:
            w.send("go")
        deadline = t0 + 300
        while (left := await pending()) > 0:
            if now() > deadline:
                raise RuntimeError(f"{left} jobs still pending after 300 s")
            await asyncio.sleep(POLL)
        elapsed = now() - t0
    finally:
        await pending.close()
        for w in workers:
            await w.stop()
    return {"rate": n / elapsed, "seconds": elapsed}


async def _pickup(adapter: Any, plan: Plan, dsn: str, directory: Path) -> dict[str, Any]:
    worker = await WorkerProc.spawn(adapter.name, dsn, directory, report=True)
    try:
        await worker.ready()
        worker.send("go")
        await asyncio.sleep(0.5)  # the worker starts and settles into waiting

        async def one(i: int) -> tuple[float, float]:
            t0 = now()
            await adapter.enqueue_one(i)
            t1 = now()
            while True:
                line = await asyncio.wait_for(worker.line(), 30.0)
                parts = line.split()
                if parts[:1] == ["S"] and int(parts[1]) == i:
                    return float(parts[2]) - t0, float(parts[2]) - t1

        for i in range(5):  # warm up: connections, prepared statements
            await one(-1 - i)
            await asyncio.sleep(PICKUP_GAP)
        total, after = [], []
        for i in range(plan.pickup):
            a, b = await one(i)
            total.append(a * 1000)
            after.append(b * 1000)
            await asyncio.sleep(PICKUP_GAP)
    finally:
        await worker.stop()
    return {
        "p50": _pct(total, 50),
        "p99": _pct(total, 99),
        "after_p50": _pct(after, 50),
        "n": plan.pickup,
        "samples": total,
    }


def _pct(values: Sequence[float], p: float) -> float:
    ordered = sorted(values)
    k = min(len(ordered) - 1, max(0, round(p / 100 * (len(ordered) - 1))))
    return ordered[k]


# -------------------------------------------------------------------------------------------
# The run: groups, interleaving, report
# -------------------------------------------------------------------------------------------
@dataclass
class Run:
    plan: Plan
    systems: list[str]
    skipped: dict[str, str]
    server: Server
    beat: str = "?"
    results: dict[str, dict[str, list[dict]]] = field(default_factory=dict)
    counter: int = 0

    def one(self, metric: str, system: str) -> dict:
        self.counter += 1
        database = f"bq{os.getpid()}_{self.counter}"
        directory = Path(tempfile.mkdtemp(prefix="beat-bq-job-"))
        os.chmod(directory, 0o777)
        self.server.create(database)
        try:
            args = [sys.executable, SCRIPT, "--child", metric, system]
            args += ["--dsn", self.server.dsn(database), "--dir", str(directory)]
            args += ["--plan", json.dumps(self.plan.__dict__)]
            done = subprocess.run(args, capture_output=True, text=True, timeout=900)
            if done.returncode != 0:
                sys.stderr.write(done.stderr[-4000:])
                raise RuntimeError(f"{metric} {system}: child exited {done.returncode}")
            result: dict = json.loads(done.stdout.strip().splitlines()[-1])
            return result
        finally:
            self.server.drop(database)
            shutil.rmtree(directory, ignore_errors=True)

    def go(self, metrics: Sequence[str]) -> None:
        for metric in metrics:
            cells = self.results.setdefault(metric, {s: [] for s in self.systems})
            for rep in range(self.plan.reps):
                k = rep % len(self.systems)
                order = self.systems[k:] + self.systems[:k]
                for system in order:
                    if metric in WORKER_METRICS and system in qs.BEAT and not _has_beat_worker():
                        self.skipped.setdefault(system, "no beat/_worker.py: worker metrics")
                        continue
                    t = time.perf_counter()
                    result = self.one(metric, system)
                    cells[system].append(result)
                    shown = (
                        f"p50 {result['p50']:.2f} ms p99 {result['p99']:.2f} ms"
                        if metric in LATENCY_METRICS
                        else f"{result['rate']:,.0f} jobs/s"
                    )
                    print(
                        f"[{metric} rep {rep + 1}/{self.plan.reps}] {system:14} {shown}"
                        f"  ({time.perf_counter() - t:.1f} s)",
                        file=sys.stderr,
                        flush=True,
                    )


def _median(values: list[float]) -> float:
    return statistics.median(values)


TITLES = {
    "enqueue_one": "Enqueue, one job per await",
    "enqueue_batch": "Enqueue in batches of {batch:,}",
    "e2e_1": "End to end, 1 worker process",
    "e2e_4": "End to end, 4 worker processes",
    "pickup": "Pickup latency (enqueue → job function starts), idle worker",
    "pickup_backlog": "Pickup latency with {backlog:,} jobs due in an hour stored, idle worker",
}


def report(run: Run, quick: bool) -> str:
    plan = run.plan
    lines = [
        "# Durable job queue: beat vs its peers",
        "",
        f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC · Python {platform.python_version()} · "
        f"PostgreSQL {run.server.version} (loopback, fsync on, a fresh database per "
        f"measurement) · {os.cpu_count()} cores · "
        f"{'QUICK (1 repetition, small N)' if quick else f'median of {plan.reps} repetitions'}"
        f" · worker concurrency {CONCURRENCY} per process",
        "",
        "Systems: " + ", ".join(f"`{s}` {_version(s)}" for s in run.systems) + ".",
    ]
    for name, why in run.skipped.items():
        lines.append(f"Skipped `{name}`: {why}.")
    surfaces = {
        r.get("surface")
        for s in qs.BEAT
        for cells in run.results.values()
        for r in cells.get(s, [])
    } - {None}
    if surfaces:
        lines.append(
            f"beat (`{run.beat}`) enqueues through {', '.join(sorted(surfaces))}; "
            "its workers are `beat.Worker`."
        )
    lines.append("")
    lines.append(
        "Ratios are against the best peer (not beat) in the same run: for jobs/s > 1 is "
        "faster than the best peer, for latency < 1 is faster."
    )
    summary: list[tuple[str, str, float, float | None, str]] = []
    for metric in METRICS:
        cells = run.results.get(metric)
        if not cells:
            continue
        title = TITLES[metric].format(batch=plan.batch, backlog=plan.backlog)
        n = {
            "enqueue_one": plan.enqueue_one,
            "enqueue_batch": plan.enqueue_batch,
            "e2e_1": plan.e2e,
            "e2e_4": plan.e2e,
            "pickup": plan.pickup,
            "pickup_backlog": plan.pickup,
        }[metric]
        lines += ["", f"## {title} (N = {n:,})", ""]
        peers = [s for s in run.systems if s not in qs.BEAT and cells.get(s)]
        if metric in LATENCY_METRICS:
            what = "pickup p50 ms" + (", backlog" if metric == "pickup_backlog" else "")
            med = {s: {k: _median([r[k] for r in rs]) for k in ("p50", "p99", "after_p50")}
                   for s, rs in cells.items() if rs}  # fmt: skip
            best = min(peers, key=lambda s: med[s]["p50"]) if peers else None
            lines += [
                "| system | p50 ms | p99 ms | p50 after enqueue returned, ms | samples | "
                "p50 × best peer |",
                "|---|---:|---:|---:|---:|---:|",
            ]
            for s in run.systems:
                if s not in med:
                    continue
                m = med[s]
                ratio = f"{m['p50'] / med[best]['p50']:.2f}×" if best else "—"
                samples = cells[s][0].get("n", plan.pickup)
                lines.append(
                    f"| {s} | {m['p50']:.2f} | {m['p99']:.2f} | {m['after_p50']:.2f} | "
                    f"{samples} | {ratio} |"
                )
            for s in qs.BEAT:
                if s in med:
                    summary.append((s, what, med[s]["p50"], best and med[best]["p50"], "low"))
        else:
            med1 = {s: _median([r["rate"] for r in rs]) for s, rs in cells.items() if rs}
            best = max(peers, key=lambda s: med1[s]) if peers else None
            lines += ["| system | jobs/s | runs | × best peer |", "|---|---:|---|---:|"]
            for s in run.systems:
                if s not in med1:
                    continue
                runs = " / ".join(f"{r['rate']:,.0f}" for r in cells[s])
                ratio = f"{med1[s] / med1[best]:.2f}×" if best else "—"
                lines.append(f"| {s} | {med1[s]:,.0f} | {runs} | {ratio} |")
            for s in qs.BEAT:
                if s in med1:
                    summary.append((s, title, med1[s], best and med1[best], "high"))
        if best:
            lines.append("")
            lines.append(f"Best peer: `{best}`.")
    if summary:
        lines += ["", "## beat against the best peer", "", "| beat | metric | beat | best peer | |",
                  "|---|---|---:|---:|---|"]  # fmt: skip
        for s, what, value, peer, better in summary:
            if peer is None:
                mark = "—"
            else:
                wins = value > peer if better == "high" else value < peer
                mark = "ahead" if wins else "behind"
            fmt = ",.0f" if better == "high" else ".2f"
            peer_text = "—" if peer is None else format(peer, fmt)
            lines.append(f"| {s} | {what} | {value:{fmt}} | {peer_text} | {mark} |")
    return "\n".join(lines) + "\n"


def _version(system: str) -> str:
    from importlib.metadata import PackageNotFoundError, version

    package = {"procrastinate": "procrastinate", "pgqueuer": "pgqueuer", "oban": "oban"}.get(system)
    if package is None:
        return "(this tree)"
    try:
        found = version(package)
    except PackageNotFoundError:
        return "?"
    if system == "oban" and sys.version_info < (3, 12):
        found += " (on Python 3.11: a copy with its one 3.12-only line rewritten, see README)"
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="smoke run, < 2 min")
    parser.add_argument("--json", type=Path, help="also write every repetition here")
    parser.add_argument("--only", help=f"comma-separated subset of {','.join(METRICS)}")
    parser.add_argument("--systems", help=f"comma-separated subset of {','.join(qs.SYSTEMS)}")
    parser.add_argument("--reps", type=int, help="repetitions per group")
    parser.add_argument("--out", type=Path, help="write the markdown report here too")
    parser.add_argument(
        "--beat-ref",
        default="HEAD",
        help="measure beat/ as of this git ref, or WORKTREE (default: HEAD, the committed tree)",
    )
    parser.add_argument("--child", nargs=2, metavar=("METRIC", "SYSTEM"), help=argparse.SUPPRESS)
    parser.add_argument("--worker", metavar="SYSTEM", help=argparse.SUPPRESS)
    parser.add_argument("--report", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--dsn", help=argparse.SUPPRESS)
    parser.add_argument("--dir", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--plan", help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.worker:
        asyncio.run(worker_main(args.worker, args.dsn, args.dir, args.report))
        return
    if args.child:
        plan = Plan(**json.loads(args.plan))
        metric, system = args.child
        result = asyncio.run(measure(metric, system, args.dsn, args.dir, plan))
        print(json.dumps(result))
        return

    plan = QUICK if args.quick else FULL
    if args.reps:
        plan = Plan(**{**plan.__dict__, "reps": args.reps})
    metrics = METRICS if not args.only else tuple(args.only.split(","))
    unknown = set(metrics) - set(METRICS)
    if unknown:
        parser.error(f"unknown metric(s) {sorted(unknown)}")
    wanted = list(qs.SYSTEMS) if not args.systems else args.systems.split(",")
    systems, skipped = [], {}
    for name in wanted:
        if name not in qs.SYSTEMS:
            parser.error(f"unknown system {name!r}")
        absent = qs.missing(name)
        if absent:
            note = f" ({qs.SYSTEMS[name].note})" if qs.SYSTEMS[name].note else ""
            skipped[name] = f"not installed: {', '.join(absent)}{note}"
            print(f"skipping {name}: {skipped[name]}", file=sys.stderr)
        else:
            systems.append(name)
    source, label = snapshot_beat(args.beat_ref)
    print(f"beat from {label} (copied to {source})", file=sys.stderr)
    server = Server().start()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))
    run = Run(plan, systems, skipped, server, beat=label)
    try:
        run.go(metrics)
    finally:
        server.stop()
        shutil.rmtree(source, ignore_errors=True)
    text = report(run, args.quick)
    print(text)
    if args.out:
        args.out.write_text(text)
    if args.json:
        args.json.write_text(
            json.dumps(
                {
                    "plan": plan.__dict__,
                    "systems": systems,
                    "skipped": skipped,
                    "results": run.results,
                },
                indent=1,
            )
        )


if __name__ == "__main__":
    main()
