"""What coordination costs: claim overhead per occurrence, and fires/s of a 4-instance cluster.

    python benchmarks/bench_coordinators.py                 # throwaway servers, all scenarios
    python benchmarks/bench_coordinators.py --redis-url redis://... --postgres-dsn postgresql://...

Throwaway servers are started with the test fixtures (``tests/coordinators/conftest.py``), so
this needs ``redis-server`` and the PostgreSQL binaries, like the tests.

1. **Claim overhead** — one coordinator claims ``--claims`` distinct occurrences one after
   another on loopback (the latency a fire waits before its run starts): µs per won claim, per
   lost claim (someone else has it) and per ``finish``. Round trips per claim are counted, not
   assumed: Redis by the server's ``INFO commandstats``, PostgreSQL by the statements the
   coordinator sends (asyncpg sends a prepared statement's bind + execute in one round trip).
2. **Fires/s with 4 instances** — four ``tests/coordinators/cluster_worker.py`` processes run
   ``J`` jobs on one 1-second grid for ``--seconds`` seconds, each fire contested by all four:
   the cluster handles ``J`` fires/s. Reported per ``J``: occurrences, duplicates, misses, and
   how late runs started (ms after their instant, p50 / p99), and claim round trips per
   fire (each instance counts its ``claim``/``claim_many`` calls). ``none`` is the baseline
   without a coordinator: each instance runs every fire itself.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from beat import Outcome  # noqa: E402
from beat.coordinators import Claim, Coordinator, JobSpec  # noqa: E402
from beat.coordinators.postgres import PostgresCoordinator  # noqa: E402
from beat.coordinators.redis import RedisCoordinator  # noqa: E402
from tests.coordinators._cluster import Cluster, Tally, expected, grid_start  # noqa: E402

SPEC = JobSpec(name="bench", interval=1.0, misfire_grace=None)


async def _redis_commands(url: str) -> int:
    from redis.asyncio import Redis

    client = Redis.from_url(url)
    try:
        stats = await client.info("commandstats")
        return sum(int(v["calls"]) for k, v in stats.items() if k != "cmdstat_info")
    finally:
        await client.aclose()


def _us(samples: list[int]) -> str:
    samples = sorted(samples)
    p50 = samples[len(samples) // 2] / 1000
    p99 = samples[int(len(samples) * 0.99)] / 1000
    return f"mean {statistics.fmean(samples) / 1000:6.1f} µs  p50 {p50:6.1f}  p99 {p99:6.1f}"


async def claim_overhead(name: str, make: Any, claims: int, url: str) -> None:
    winner: Coordinator = make()
    loser: Coordinator = make()
    await winner.open([SPEC])
    await loser.open([SPEC])
    statements = 0
    if isinstance(winner, PostgresCoordinator):
        call = winner._call

        async def counting(*args: Any) -> Any:
            nonlocal statements
            statements += 1
            return await call(*args)

        winner._call = counting  # type: ignore[method-assign]
    base = datetime.now(UTC).replace(microsecond=0) - timedelta(days=1)
    try:
        for k in range(200):  # warm up: connections, prepared statements
            await winner.claim(winner.occurrence("warm", base + timedelta(seconds=k)))
        occurrences = [
            winner.occurrence("bench", base + timedelta(seconds=k)) for k in range(claims)
        ]
        won, lost, finished = [], [], []
        before = await _redis_commands(url) if name == "redis" else statements
        for occ in occurrences:
            t0 = time.perf_counter_ns()
            claim = await winner.claim(occ)
            won.append(time.perf_counter_ns() - t0)
            assert claim is not None
        after = await _redis_commands(url) if name == "redis" else statements
        for occ in occurrences:
            t0 = time.perf_counter_ns()
            assert await loser.claim(occ) is None
            lost.append(time.perf_counter_ns() - t0)
        for occ in occurrences:
            t0 = time.perf_counter_ns()
            await winner.finish(Claim(occ), Outcome.SUCCEEDED, None)
            finished.append(time.perf_counter_ns() - t0)
    finally:
        await winner.close()
        await loser.close()
    trips = (after - before) / claims
    how = "server commands" if name == "redis" else "statements sent"
    print(f"{name:8} claim (won)  {_us(won)}   round trips/claim {trips:.2f} ({how})")
    print(f"{name:8} claim (lost) {_us(lost)}")
    print(f"{name:8} finish       {_us(finished)}")


def fires_per_second(name: str, url: str, jobs: int, seconds: int, directory: Path) -> None:
    start = grid_start(lead=3.0 + jobs / 1000)
    end = start + seconds - 1
    cluster = Cluster(
        {
            "backend": name,
            "url": url,
            "namespace": f"bench{jobs}x{time.time_ns()}",
            "start": start,
            "interval": 1,
            "end": end,
            "jobs": jobs,
            "exit_at": end + 2,
        },
        directory,
    )
    try:
        cluster.spawn(4, tag=f"{name}{jobs}-")
        cluster.wait(timeout=seconds + 30)
    finally:
        cluster.kill_all()
    lines = cluster.lines()
    tally = Tally.of(lines)
    want = expected(jobs, start, end)
    lags = sorted(float(line[5]) for line in tally.run_lines)
    p50 = lags[len(lags) // 2] if lags else float("nan")
    p99 = lags[int(len(lags) * 0.99)] if lags else float("nan")
    calls = sum(int(line[2]) for line in lines if line[0] == "calls")
    fires_seen = 4 * len(want)  # every instance fires (and claims) every occurrence
    if name == "none":  # each instance runs every occurrence: no duplicates to count
        outcome = f"{sum(tally.runs.values())} runs of {fires_seen} fires"
    else:
        outcome = (
            f"{len(tally.duplicates())} duplicates, {len(want - set(tally.runs))} missed, "
            f"{calls / fires_seen:.4f} claim round trips per fire"
        )
    print(
        f"{name:8} 4 instances, {jobs:5} fires/s for {seconds} s: {len(want)} occurrences, "
        f"{outcome}, start lag p50 {p50:.1f} ms p99 {p99:.1f} ms"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--redis-url")
    parser.add_argument("--postgres-dsn")
    parser.add_argument("--claims", type=int, default=2000)
    parser.add_argument("--jobs", default="250,500,1000", help="fires/s to try, comma-separated")
    parser.add_argument("--seconds", type=int, default=6)
    parser.add_argument("--only", choices=["redis", "postgres"])
    args = parser.parse_args()

    from tests.coordinators.conftest import PostgresServer, RedisServer

    servers: list[Any] = []
    directory = Path(tempfile.mkdtemp(prefix="bench-coord-"))
    urls: dict[str, str] = {}
    try:
        if args.only != "postgres":
            if args.redis_url is None:
                servers.append(RedisServer.create(directory).start())
                args.redis_url = servers[-1].url
            urls["redis"] = args.redis_url
        if args.only != "redis":
            if args.postgres_dsn is None:
                servers.append(PostgresServer.create(directory).start())
                args.postgres_dsn = servers[-1].dsn()
            urls["postgres"] = args.postgres_dsn
        namespace = f"bench{time.time_ns()}"
        makers = {
            "redis": lambda: RedisCoordinator(urls["redis"], namespace=namespace),
            "postgres": lambda: PostgresCoordinator(urls["postgres"], namespace=namespace),
        }
        print(f"claim overhead, {args.claims} occurrences, sequential, loopback")
        for name, url in urls.items():
            asyncio.run(claim_overhead(name, makers[name], args.claims, url))
        print("fires/s with 4 instances (each fire contested by all four)")
        for name, url in {"none": "", **urls}.items():
            for jobs in (int(j) for j in args.jobs.split(",")):
                fires_per_second(name, url, jobs, args.seconds, directory)
    finally:
        for server in servers:
            if isinstance(server, PostgresServer):
                server.cleanup()
            else:
                server.stop()


if __name__ == "__main__":
    main()
