"""What per-attempt log capture costs a durable job: capture on vs off, 0 and 10 records.

    python benchmarks/bench_logcapture.py            # memory + SQLite, 7 repetitions
    python benchmarks/bench_logcapture.py --quick    # smaller, 3 repetitions

Two measurements:

* **micro** — one attempt's capture alone, no store: open the buffer, log N records, close
  it and build the ``LogEntry`` list, against logging the same N records with no capture.
  The records go to a ``NullHandler`` (``propagate=False``) in both, so the difference is
  the capture's own cost.
* **end to end** — N jobs enqueued on a store, then one ``Worker`` (concurrency 10) runs them
  all; µs per job from start to the last outcome, ``capture_logs=True`` vs ``False``, for a
  job that logs nothing and one that logs 10 records (with capture on, those are written with
  one ``store.add_logs`` per attempt: that write is part of the cost).

Times are **CPU time of this process** (``time.process_time``, all its threads: the loop and
SQLite's), not wall time: on a shared machine other processes' load stretches wall time by
factors, but barely the CPU a job costs. The four end-to-end variants of one store take
turns within each repetition (so drift lands on all alike); every number is the median over
the repetitions (micro: the best of 5 runs).
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import logging
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from beat import _logcapture
from beat._tasks import Task, TaskRegistry
from beat._worker import Worker
from beat.stores import MemoryStore, NewJob, SQLiteStore, Store
from beat.stores._base import LogEntry

LOGGER = logging.getLogger("bench.job")


def quiet_logger() -> None:
    LOGGER.setLevel(logging.INFO)
    LOGGER.propagate = False
    LOGGER.handlers[:] = [logging.NullHandler()]


# -- micro ------------------------------------------------------------------------------------
def micro(records: int, loops: int) -> tuple[float, float]:
    """µs per attempt: (without capture, with capture)."""

    def plain() -> None:
        for i in range(records):
            LOGGER.info("record %d of the job", i)

    def captured() -> None:
        logs = _logcapture.AttemptLogs()
        token = _logcapture._current.set(logs)
        try:
            plain()
        finally:
            _logcapture._current.reset(token)
        [
            LogEntry(1, datetime.fromtimestamp(at, UTC), level, name, message)
            for at, level, name, message in logs.close()
        ]

    release = _logcapture.install()
    try:
        results = []
        for fn in (plain, captured):
            best = []
            for _ in range(5):
                began = time.process_time()
                for _ in range(loops):
                    fn()
                best.append((time.process_time() - began) / loops * 1e6)
            results.append(min(best))
    finally:
        release()
    return results[0], results[1]


# -- end to end -------------------------------------------------------------------------------
async def job(ctx: Any, records: int) -> None:
    for i in range(records):
        LOGGER.info("record %d of job %s", i, ctx.id)


async def end_to_end(kind: str, jobs: int, records: int, capture: bool, workdir: Path) -> float:
    """µs per job: enqueue ``jobs``, then time one worker running them all."""
    store: Store
    if kind == "memory":
        store = MemoryStore()
    else:
        store = SQLiteStore(workdir / f"jobs-{time.monotonic_ns()}.db")
    await store.open()
    try:
        tasks = TaskRegistry()
        tasks.add(Task(job, name="job"))
        ids = []
        for start in range(0, jobs, 1000):
            batch = [NewJob("job", args=[records]) for _ in range(min(1000, jobs - start))]
            ids += [r.id for r in await store.enqueue(batch)]
        gc.collect()
        worker = Worker(store, tasks, concurrency=10, poll=1.0, capture_logs=capture)
        began = time.process_time()
        await worker.start()
        for id in ids:
            await store.wait_finished(id, 120)
        elapsed = time.process_time() - began
        await worker.stop()
        assert worker.stats.succeeded == jobs, worker.stats
        if capture and records:
            assert len(await store.get_logs(ids[-1])) == records
        return elapsed / jobs * 1e6
    finally:
        await store.close()


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--stores", default="memory,sqlite")
    args = parser.parse_args()
    reps = 3 if args.quick else 7
    sizes = {"memory": 1000 if args.quick else 4000, "sqlite": 300 if args.quick else 1500}
    quiet_logger()
    print(f"python {sys.version.split()[0]}, {reps} repetitions, medians\n")
    print("## micro: one attempt's capture, no store (CPU µs per attempt)\n")
    print("| records | no capture | capture | capture cost |")
    print("|---:|---:|---:|---:|")
    for records in (0, 1, 10, 200):
        off, on = micro(records, 5000 if records <= 10 else 200)
        print(f"| {records} | {off:.2f} | {on:.2f} | {on - off:+.2f} |")
    print()
    with tempfile.TemporaryDirectory() as tmp:
        for kind in args.stores.split(","):
            n = sizes[kind]
            variants = [(r, c) for r in (0, 10) for c in (False, True)]
            times: dict[tuple[int, bool], list[float]] = {v: [] for v in variants}
            for rep in range(reps):
                shift = rep % len(variants)
                for records, capture in variants[shift:] + variants[:shift]:
                    times[(records, capture)].append(
                        await end_to_end(kind, n, records, capture, Path(tmp))
                    )
            print(f"## end to end: {kind} store, {n} jobs, concurrency 10 (CPU µs per job)\n")
            print("| records per job | capture off | capture on | cost per job |")
            print("|---:|---:|---:|---:|")
            for records in (0, 10):
                off = statistics.median(times[(records, False)])
                on = statistics.median(times[(records, True)])
                print(
                    f"| {records} | {off:.1f} | {on:.1f} | "
                    f"{on - off:+.1f} µs ({(on - off) / off * 100:+.1f} %) |"
                )
            print()


if __name__ == "__main__":
    asyncio.run(main())
