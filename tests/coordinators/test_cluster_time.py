"""Three OS processes that disagree about time still run every occurrence once.

Each process is started at a different moment, runs ``every``, ``cron`` (with seconds) and
``cycle`` jobs, has its wall clock shifted (up to half a second either way), and reaches the
server through a proxy adding network latency. The union of the processes' records must
hold every occurrence of the window exactly once.
"""

from __future__ import annotations

import asyncio
import threading
import time
from datetime import datetime
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest

from ._cluster import Cluster, Tally, grid_start, iso
from ._proxy import LatencyProxy
from .conftest import PostgresServer, RedisServer

pytestmark = pytest.mark.slow

KINDS = ("every", "cron", "cycle")
JOBS = 10  # per kind
PERIOD = 2
SKEWS = (-0.5, 0.0, 0.45)  # seconds each process's clock is off
STARTS_APART = 0.7  # seconds between process starts
DELAY = 0.03  # added each way: a 60 ms round trip


class ProxyThread:
    """A :class:`LatencyProxy` served by its own event loop, beside the blocking test."""

    def __init__(self, port: int, delay: float) -> None:
        self.loop = asyncio.new_event_loop()
        self.proxy = LatencyProxy(port, delay=delay)
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)

    def __enter__(self) -> LatencyProxy:
        self.thread.start()
        asyncio.run_coroutine_threadsafe(self.proxy.start(), self.loop).result(10)
        return self.proxy

    def __exit__(self, *exc: object) -> None:
        asyncio.run_coroutine_threadsafe(self.proxy.close(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        self.loop.close()


def _through(url: str, port: int) -> str:
    parts = urlsplit(url)
    netloc = parts.netloc.rpartition("@")
    host = f"127.0.0.1:{port}"
    return urlunsplit(parts._replace(netloc=f"{netloc[0]}@{host}" if netloc[1] else host))


def _expected(start: int, end: int) -> set[tuple[str, str]]:
    instants = [t for t in range(start, end + 1) if t % PERIOD == 0]
    return {(f"{kind}{i:03d}", iso(t)) for kind in KINDS for i in range(JOBS) for t in instants}


def _run(backend: str, url: str, port: int, namespace: str, directory: Path) -> None:
    with ProxyThread(port, DELAY) as proxy:
        # The window opens once the last process is up, on an even second (the cycle's start
        # and the every/cron grids then coincide).
        start = grid_start(lead=3.0 + STARTS_APART * len(SKEWS))
        start += start % PERIOD
        end = start + 12
        cluster = Cluster(
            {
                "backend": backend,
                "url": _through(url, proxy.port),
                "namespace": namespace,
                "start": start,
                "interval": PERIOD,
                "end": end,
                "jobs": JOBS,
                "kinds": list(KINDS),
                "period": PERIOD,
                "exit_at": end + 2.5,
            },
            directory,
        )
        try:
            for n, skew in enumerate(SKEWS):
                cluster.config["skew"] = skew
                cluster.spawn(1, tag=f"skew{n}-")
                time.sleep(STARTS_APART)
            codes = cluster.wait(timeout=end - time.time() + 40)
        finally:
            cluster.kill_all()
    assert codes == [0] * len(SKEWS), cluster.logs()
    tally = Tally.of(cluster.lines())
    want = _expected(start, end)
    seen = {key for key in tally.runs if start <= _epoch(key[1]) <= end}
    duplicates = [key for key in tally.duplicates() if key in want]
    print(
        f"\n{backend} via {DELAY * 2000:.0f} ms RTT, skews {SKEWS}: {len(want)} occurrences, "
        f"{len(duplicates)} duplicates, {len(want - seen)} missed, skips {dict(tally.skips)}"
    )
    assert not duplicates, duplicates[:10]
    assert want - seen == set(), sorted(want - seen)[:10]
    assert seen - want == set(), sorted(seen - want)[:10]  # nothing off the grid
    assert set(tally.skips) <= {"not_claimed"}


def _epoch(instant: str) -> float:
    return datetime.fromisoformat(instant).timestamp()


def test_redis_cluster_with_skewed_clocks_and_latency(
    redis_server: RedisServer, namespace: str, tmp_path: Path
) -> None:
    _run("redis", redis_server.url, redis_server.port, namespace, tmp_path)


def test_postgres_cluster_with_skewed_clocks_and_latency(
    postgres_server: PostgresServer, namespace: str, tmp_path: Path
) -> None:
    _run("postgres", postgres_server.dsn(), postgres_server.port, namespace, tmp_path)
