"""Benchmark: what metrics (beat.metrics) and traces (beat.tracing) cost per fire and per job.

Run: ``python benchmarks/bench_observability.py [--rounds 5] [--jobs 1000] [--seconds 20]``.

Two paths, each in five configurations:

* **fires** — ``--jobs`` scheduled jobs (trivial coroutines), each every second, driven by
  ``FakeClock.advance`` one second at a time for ``--seconds``: µs of real time per fire,
  everything included (the loop, the run task, the events and their delivery, the spans).
* **jobs** — ``--durable`` durable jobs of a trivial task in a ``MemoryStore``, run to the
  end by ``beat.testing.drain``: µs per job (claim, run, completion).

Configurations: ``off`` (nothing enabled: the default, and what an installed but unused
extra costs); ``metrics`` (``metrics.instrument`` into a private registry); ``traces`` (the
OpenTelemetry SDK recording every span, exported in batches to an exporter that drops
them — the realistic shape); ``traces-noop`` (``tracing.enable()`` with only the API, no SDK:
non-recording spans); ``both`` (metrics + SDK traces).

Each measurement runs in a fresh process; rounds interleave the configurations and rotate
their order so drifting noise hits them alike; the table shows medians and the difference to
``off`` measured in the same run. The figure is the process's CPU time (every thread, so
the span exporter's too) per fire or per job: on a shared machine it moves far less than wall
time, which is shown in brackets.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Sequence
from datetime import timedelta
from pathlib import Path
from typing import Any

CONFIGS = ("off", "metrics", "traces", "traces-noop", "both")
ROOT = Path(__file__).resolve().parent.parent


# -- one measurement, in a fresh process ------------------------------------------------------
def _enable(config: str, scheduler: Any) -> None:
    from beat import metrics, tracing

    if config in ("metrics", "both"):
        from prometheus_client import CollectorRegistry

        metrics.instrument(scheduler, CollectorRegistry())
    if config in ("traces", "both"):
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import (
            BatchSpanProcessor,
            SpanExporter,
            SpanExportResult,
        )

        class Drop(SpanExporter):
            def export(self, spans: Sequence[Any]) -> SpanExportResult:
                return SpanExportResult.SUCCESS

        provider = TracerProvider()
        provider.add_span_processor(BatchSpanProcessor(Drop()))
        tracing.enable(provider)
    if config == "traces-noop":
        tracing.enable()  # the API's default provider: non-recording spans


async def _fires(config: str, jobs: int, seconds: int) -> dict[str, float]:
    from beat import Context, Job, Scheduler
    from beat.testing import FakeClock

    async def tick(ctx: Context) -> None:
        return None

    clock = FakeClock()
    scheduler = Scheduler(clock=clock)
    for n in range(jobs):
        scheduler.add_job(Job.every(timedelta(seconds=1)).do(tick, name=f"job-{n}"))
    _enable(config, scheduler)
    async with scheduler:
        await clock.advance(1)  # warm-up second, not timed
        before = scheduler.statistics().fires
        began, cpu = time.perf_counter(), time.process_time()
        for _ in range(seconds):
            await clock.advance(1)
        elapsed, cpu = time.perf_counter() - began, time.process_time() - cpu
        fires = scheduler.statistics().fires - before
        await scheduler.shutdown(timeout=0)
    return {"fires_wall": elapsed / fires * 1e6, "fires_cpu": cpu / fires * 1e6}


async def _jobs(config: str, count: int) -> dict[str, float]:
    from beat import JobContext, Scheduler
    from beat.stores import MemoryStore, NewJob
    from beat.testing import FakeClock, drain

    clock = FakeClock()
    store = MemoryStore(clock=clock.time)
    scheduler = Scheduler(clock=clock, store=store, concurrency=50)

    @scheduler.task(name="noop")
    async def noop(ctx: JobContext) -> None:
        return None

    _enable(config, scheduler)
    await store.open()
    await store.enqueue([NewJob("noop") for _ in range(count)])
    began, cpu = time.perf_counter(), time.process_time()
    ran = await drain(scheduler)
    elapsed, cpu = time.perf_counter() - began, time.process_time() - cpu
    await store.close()
    return {"jobs_wall": elapsed / ran * 1e6, "jobs_cpu": cpu / ran * 1e6}


def _measure(path: str, config: str, jobs: int, seconds: int, durable: int) -> None:
    if path == "fires":
        result = asyncio.run(_fires(config, jobs, seconds))
    else:
        result = asyncio.run(_jobs(config, durable))
    print(json.dumps(result))


# -- the run ------------------------------------------------------------------------------------
def _one(path: str, config: str, args: argparse.Namespace) -> dict[str, float]:
    out = subprocess.run(
        [
            sys.executable,
            __file__,
            "--measure",
            path,
            config,
            str(args.jobs),
            str(args.seconds),
            str(args.durable),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    result: dict[str, float] = json.loads(out)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--jobs", type=int, default=1000, help="scheduled jobs (every 1 s)")
    parser.add_argument("--seconds", type=int, default=20, help="fake seconds to fire")
    parser.add_argument("--durable", type=int, default=5000, help="durable jobs to drain")
    parser.add_argument("--measure", nargs=5, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.measure:
        path, config, jobs, seconds, durable = args.measure
        _measure(path, config, int(jobs), int(seconds), int(durable))
        return

    samples: dict[tuple[str, str], list[float]] = {}
    for round_ in range(args.rounds):
        order = CONFIGS[round_ % len(CONFIGS) :] + CONFIGS[: round_ % len(CONFIGS)]
        for path in ("fires", "jobs"):
            for config in order:
                result = _one(path, config, args)
                for key, value in result.items():
                    samples.setdefault((key, config), []).append(value)
                print(f"round {round_ + 1} {path:5} {config:11} {result}", file=sys.stderr)

    print(
        f"Python {platform.python_version()}, {platform.machine()}, {args.rounds} rounds; "
        f"fires: {args.jobs} jobs x {args.seconds} s; jobs: {args.durable} durable jobs; "
        "CPU time of the process (all threads) per fire / per job, wall time in brackets\n"
    )
    print("| configuration | µs per fire | vs off | µs per durable job | vs off |")
    print("|---|---:|---:|---:|---:|")
    median = {key: statistics.median(values) for key, values in samples.items()}
    for config in CONFIGS:
        cells = []
        for path in ("fires", "jobs"):
            cpu, wall = median[(f"{path}_cpu", config)], median[(f"{path}_wall", config)]
            delta = cpu - median[(f"{path}_cpu", "off")]
            cells += [f"{cpu:.1f} ({wall:.1f})", "—" if config == "off" else f"{delta:+.1f}"]
        print(f"| {config} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
