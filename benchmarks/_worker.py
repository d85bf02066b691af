"""Run one measurement -- one scenario, one system, one size -- in this fresh process.

Invoked by ``run.py`` as ``python benchmarks/_worker.py '<json config>'``; prints a single
JSON object on stdout and exits without tearing anything down (tearing down a million jobs
costs seconds and measures nothing).

Each scenario builds its jobs, waits until the loop is idle, and then measures. Timed
sections end with a short drain of the event loop and then the system's ``settle`` hook, if
it has one, so work a system defers to the loop (a wake-up callback, asyncio's heap rebuild
inside ``_run_once``, beat's incremental heap compaction) is charged to the operation that
caused it.
"""

from __future__ import annotations

import asyncio
import contextlib
import cProfile
import dataclasses
import gc
import json
import os
import random
import statistics
import sys
import time
import tracemalloc
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from _systems import SYSTEMS

TENTHS = 10
FAR_PERIOD = 3600.0  # interval jobs: first fire 1-2 h away, so nothing fires while we measure
BURST_TIMEOUT = 60.0  # the slowest system drains 50k fires in ~5 s; longer means it is stuck


async def _drain(iterations: int = 5) -> None:
    """Let the loop run a few iterations so callbacks the last operations queued run now."""
    for _ in range(iterations):
        await asyncio.sleep(0)


async def _settle(system: Any) -> None:
    """Wait out work the system spreads over later loop iterations (its ``settle`` hook)."""
    settle = getattr(system, "settle", None)
    if settle is not None:
        await settle()


async def _finish(system: Any) -> None:
    """End a timed section: run what the operations queued, then what the system deferred."""
    await _drain()
    await _settle(system)


def _interval_specs(n: int, rng: random.Random) -> list[float]:
    # Random periods spread the due times, as real schedules do; equal times would make
    # every heap insert an append and flatter every system.
    return [FAR_PERIOD + rng.random() * FAR_PERIOD for _ in range(n)]


def _cron_specs(n: int, rng: random.Random) -> list[str]:
    # Fixed minute/hour/day in a month 5-7 months from now: parses like a real daily job,
    # never fires during a run. 60*24*28*3 distinct expressions, so no cache hides parsing.
    this_month = datetime.now(UTC).month
    specs = []
    for _ in range(n):
        month = (this_month - 1 + 5 + rng.randrange(3)) % 12 + 1
        specs.append(f"{rng.randrange(60)} {rng.randrange(24)} {1 + rng.randrange(28)} {month} *")
    return specs


def _specs(kind: str, n: int, rng: random.Random) -> list[Any]:
    return _interval_specs(n, rng) if kind == "interval" else _cron_specs(n, rng)


def _builder(system: Any, kind: str) -> Callable[[Any], Any]:
    build: Callable[[Any], Any] = system.build_interval if kind == "interval" else system.build_cron
    return build


class _Profiler:
    """cProfile switched on only around the timed sections, when asked for."""

    def __init__(self, path: str | None) -> None:
        self.path = path
        self.profile = cProfile.Profile() if path else None

    def enable(self) -> None:
        if self.profile:
            self.profile.enable()

    def disable(self) -> None:
        if self.profile:
            self.profile.disable()

    def dump(self) -> None:
        if self.profile and self.path:
            self.profile.dump_stats(self.path)


def _per_op_us(seconds: list[float], size: int) -> dict[str, float]:
    return {
        "all": sum(seconds) / (size * len(seconds)) * 1e6,
        "first": seconds[0] / size * 1e6,
        "last": seconds[-1] / size * 1e6,
    }


async def add_remove(cfg: dict[str, Any], system: Any, prof: _Profiler) -> dict[str, Any]:
    """Time build, add and remove per tenth of ``n`` jobs; removal in random order."""
    n, kind = cfg["n"], cfg["kind"]
    rng = random.Random(cfg.get("seed", 1))
    specs = _specs(kind, n, rng)
    build = _builder(system, kind)
    add, remove = system.add, system.remove
    size = n // TENTHS
    chunks = [specs[i * size : (i + 1) * size] for i in range(TENTHS)]
    await system.start()
    await _drain()

    build_s, built = [], []
    for chunk in chunks:
        t0 = time.perf_counter()
        objs = [build(spec) for spec in chunk]
        build_s.append(time.perf_counter() - t0)
        built.append(objs)
    del chunks, specs

    add_s, keys = [], []
    for objs in built:
        prof.enable()
        t0 = time.perf_counter()
        keys.extend([add(obj) for obj in objs])
        await _finish(system)
        add_s.append(time.perf_counter() - t0)
        prof.disable()
    del built
    await asyncio.sleep(0.05)

    rng.shuffle(keys)
    remove_s = []
    for i in range(TENTHS):
        chunk = keys[i * size : (i + 1) * size]
        prof.enable()
        t0 = time.perf_counter()
        for key in chunk:
            remove(key)
        await _finish(system)
        remove_s.append(time.perf_counter() - t0)
        prof.disable()

    return {
        "build": _per_op_us(build_s, size),
        "add": _per_op_us(add_s, size),
        "remove": _per_op_us(remove_s, size),
        "stats": _beat_stats(system),
    }


def _beat_stats(system: Any) -> Any:
    stats = getattr(getattr(system, "scheduler", None), "statistics", None)
    if stats is None:
        return None
    try:
        return dataclasses.asdict(stats())
    except Exception as exc:  # informational only; never fail a run over it
        return repr(exc)


def _gc_collections() -> float:
    return float(sum(generation["collections"] for generation in gc.get_stats()))


async def fires(cfg: dict[str, Any], system: Any, prof: _Profiler) -> dict[str, Any]:
    """``n`` interval jobs (1 h period) all first due at the same instant; time the burst."""
    n, lead = cfg["n"], cfg["lead"]
    loop = asyncio.get_running_loop()
    await system.start()
    await _drain()
    done = loop.create_future()
    count = 0
    mark: dict[str, float] = {}

    def probe() -> None:
        nonlocal count
        count += 1
        if count == n:
            mark["t_done"], mark["cpu_done"] = time.monotonic(), time.process_time()
            prof.disable()
            mark["gc_done"] = _gc_collections()
            done.set_result(None)

    due_wall, due_mono = time.time() + lead, time.monotonic() + lead
    for _ in range(n):
        system.schedule_cycle(due_wall, FAR_PERIOD, probe)
    await _drain()
    await asyncio.sleep(0.02)
    setup = time.monotonic() - (due_mono - lead)
    if setup > lead - 0.1:  # set-up overran the due instant: run.py retries with more lead
        return {"retry": True, "setup_s": setup}

    def start_clock() -> None:
        mark["cpu_start"] = time.process_time()
        mark["gc_start"] = _gc_collections()
        prof.enable()

    loop.call_later(due_mono - 0.02 - time.monotonic(), start_clock)
    try:
        await asyncio.wait_for(done, timeout=BURST_TIMEOUT)
    except TimeoutError:
        return {"error": f"only {count} of {n} fires within {BURST_TIMEOUT:.0f} s"}
    burst = mark["t_done"] - due_mono
    return {
        "fires_per_s": n / burst,
        "burst_s": burst,
        "cpu_us_per_fire": (mark["cpu_done"] - mark["cpu_start"]) / n * 1e6,
        "gc_collections": mark["gc_done"] - mark["gc_start"],
    }


async def lateness(cfg: dict[str, Any], system: Any, prof: _Profiler) -> dict[str, Any]:
    """``n`` jobs every ``period`` s, first fires spread evenly over one period.

    Lateness is the wall time at which the callback body runs minus the instant the fire
    was scheduled for. The first period is warm-up and not recorded.
    """
    n, period, duration, lead = cfg["n"], cfg["period"], cfg["duration"], cfg["lead"]
    await system.start()
    await _drain()
    set_up_from = time.time()
    start = set_up_from + lead
    record_from, record_until = start + period, start + period + duration
    expected = n * round(duration / period)
    samples: list[float] = []
    all_seen = asyncio.Event()

    def make_probe(first: float) -> Callable[[], None]:
        fired = 0

        def probe() -> None:
            nonlocal fired
            now = time.time()
            scheduled = first + fired * period
            fired += 1
            if record_from <= scheduled < record_until:
                samples.append(now - scheduled)
                if len(samples) == expected:
                    all_seen.set()

        return probe

    for i in range(n):
        first = start + i * period / n
        system.schedule_cycle(first, period, make_probe(first))
    await _drain()
    if time.time() > start - 0.1:
        return {"retry": True, "setup_s": time.time() - set_up_from}

    with contextlib.suppress(TimeoutError):  # a late straggler is reported, not waited for
        await asyncio.wait_for(all_seen.wait(), timeout=record_until - time.time() + 5.0)
    ms = sorted(s * 1e3 for s in samples)
    return {
        "p50_ms": statistics.median(ms),
        "p99_ms": ms[min(len(ms) - 1, int(len(ms) * 0.99))],
        "max_ms": ms[-1],
        "early": sum(1 for s in ms if s < 0),
        "fires": len(ms),
        "expected": expected,
    }


async def _register(system: Any, kind: str, n: int, seed: int) -> None:
    build = _builder(system, kind)
    for spec in _specs(kind, n, random.Random(seed)):
        system.add(build(spec))
    await _drain()


async def idle(cfg: dict[str, Any], system: Any, prof: _Profiler) -> dict[str, Any]:
    """CPU used by the whole process while ``n`` jobs wait (none due for an hour)."""
    await system.start()
    await _register(system, cfg["kind"], cfg["n"], cfg.get("seed", 1))
    gc.collect()
    await asyncio.sleep(0.5)  # let any start-up or post-add work settle
    cpu0, t0 = time.process_time(), time.perf_counter()
    await asyncio.sleep(cfg["window"])
    cpu1, t1 = time.process_time(), time.perf_counter()
    return {"cpu_pct": (cpu1 - cpu0) / (t1 - t0) * 100.0, "cpu_ms": (cpu1 - cpu0) * 1e3}


async def memory(cfg: dict[str, Any], system: Any, prof: _Profiler) -> dict[str, Any]:
    """``tracemalloc`` growth per registered job, the built job object included."""
    kind, n = cfg["kind"], cfg["n"]
    await system.start()
    await _register(system, kind, 100, seed=99)  # warm up lazily created structures
    gc.collect()
    before = tracemalloc.get_traced_memory()[0]
    await _register(system, kind, n, cfg.get("seed", 1))
    gc.collect()
    after = tracemalloc.get_traced_memory()[0]
    return {"bytes_per_job": (after - before) / n, "n": n}


class _LoopMonitor:
    """Records the time between consecutive event-loop iterations.

    A callback that re-arms itself with ``call_soon`` runs once per iteration; the gap
    between two runs is everything the loop did in between: the other callbacks of that
    iteration and ``_run_once``'s own work (asyncio's heap rebuild happens there). The same
    gaps are also taken in this thread's CPU time, which the OS preempting the process (for
    another process on a busy machine) does not inflate.
    """

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.gaps: list[float] = []
        self.cpu_gaps: list[float] = []
        self.running = False
        self.last = self.last_cpu = 0.0

    def start(self) -> None:
        self.running = True
        self.last, self.last_cpu = time.perf_counter(), time.thread_time()
        self.loop.call_soon(self._tick)

    def stop(self) -> None:
        self.running = False

    def _tick(self) -> None:
        now, cpu = time.perf_counter(), time.thread_time()
        self.gaps.append(now - self.last)
        self.cpu_gaps.append(cpu - self.last_cpu)
        self.last, self.last_cpu = now, cpu
        if self.running:
            self.loop.call_soon(self._tick)


STALL_BATCH = 1_000  # removals per loop iteration
STALL_LIMIT = 0.005  # a gap above this counts as a stall


async def stall(cfg: dict[str, Any], system: Any, prof: _Profiler) -> dict[str, Any]:
    """Longest gap between loop iterations while ``n`` jobs are removed in random order.

    ``STALL_BATCH`` removals per iteration; the monitor runs until every job is gone and
    the system has settled (beat: its incremental compaction has finished).
    """
    n = cfg["n"]
    rng = random.Random(cfg.get("seed", 1))
    build, add, remove = system.build_interval, system.add, system.remove
    await system.start()
    keys = [add(build(spec)) for spec in _interval_specs(n, rng)]
    await _finish(system)
    rng.shuffle(keys)
    gc.collect()  # start from a collected heap, as the idle scenario does
    await asyncio.sleep(0.05)

    monitor = _LoopMonitor(asyncio.get_running_loop())
    gc0 = _gc_collections()
    monitor.start()
    await asyncio.sleep(0)  # the first gap is the start-up, not a removal
    prof.enable()
    t0 = time.perf_counter()
    for i in range(0, n, STALL_BATCH):
        for key in keys[i : i + STALL_BATCH]:
            remove(key)
        await asyncio.sleep(0)
    await _finish(system)
    elapsed = time.perf_counter() - t0
    prof.disable()
    monitor.stop()
    await asyncio.sleep(0)  # let the monitor's last tick run
    gaps = sorted(monitor.gaps[1:])
    return {
        "max_ms": gaps[-1] * 1e3,
        "cpu_max_ms": max(monitor.cpu_gaps[1:]) * 1e3,
        "p999_ms": gaps[min(len(gaps) - 1, int(len(gaps) * 0.999))] * 1e3,
        "over_5ms": sum(1 for g in gaps if g > STALL_LIMIT),
        "iterations": len(gaps),
        "batches": -(-n // STALL_BATCH),
        "seconds": elapsed,
        "gc_collections": _gc_collections() - gc0,
        "stats": _beat_stats(system),
    }


SCENARIOS = {
    "add_remove": add_remove,
    "fires": fires,
    "lateness": lateness,
    "idle": idle,
    "memory": memory,
    "stall": stall,
}


def _loop_factory(name: str) -> Callable[[], asyncio.AbstractEventLoop]:
    if name == "uvloop":
        import uvloop

        return uvloop.new_event_loop
    return asyncio.new_event_loop


async def _measure(cfg: dict[str, Any]) -> dict[str, Any]:
    # "beat@before" is beat's adapter; which beat it imports is up to run.py's PYTHONPATH.
    system = SYSTEMS[cfg["system"].partition("@")[0]](asyncio.get_running_loop())
    prof = _Profiler(cfg.get("profile"))
    result = await SCENARIOS[cfg["scenario"]](cfg, system, prof)
    prof.dump()
    module = getattr(system, "_beat", None)
    if module is not None:
        result["beat_from"] = os.path.dirname(os.path.dirname(module.__file__))
    return result


def main() -> None:
    cfg = json.loads(sys.argv[1])
    if cfg.get("gc") is False:
        gc.disable()  # diagnostic only (run.py --no-gc): separates collector cost from the rest
    if cfg["scenario"] == "memory":
        tracemalloc.start()
    with asyncio.Runner(loop_factory=_loop_factory(cfg["loop"])) as runner:
        result = runner.run(_measure(cfg))
        sys.stdout.write(json.dumps(result) + "\n")
        sys.stdout.flush()
        os._exit(0)


if __name__ == "__main__":
    main()
