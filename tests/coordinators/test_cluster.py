"""Four OS processes, one schedule: every occurrence runs exactly once across the cluster.

Each worker appends to its own record file (not the coordinator's store); the test compares
the union of the records with every ``(job, instant)`` of the window.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from ._cluster import Cluster, Tally, expected, grid_start
from .conftest import PostgresServer, RedisServer

pytestmark = pytest.mark.slow

PROCESSES = 4
JOBS = 50
SECONDS = 15  # the grid has SECONDS + 1 instants per job


def _run_cluster(backend: str, url: str, namespace: str, directory: Path) -> None:
    start = grid_start(lead=4.0)
    end = start + SECONDS
    cluster = Cluster(
        {
            "backend": backend,
            "url": url,
            "namespace": namespace,
            "start": start,
            "interval": 1,
            "end": end,
            "jobs": JOBS,
            "exit_at": end + 1.5,
        },
        directory,
    )
    try:
        cluster.spawn(PROCESSES)
        codes = cluster.wait(timeout=end - start + 30)
    finally:
        cluster.kill_all()
    assert codes == [0] * PROCESSES, cluster.logs()

    tally = Tally.of(cluster.lines())
    want = expected(JOBS, start, end)
    missing = want - set(tally.runs)
    extra = set(tally.runs) - want
    duplicates = tally.duplicates()
    per_process = sorted(
        sum(1 for line in tally.run_lines if line[3] == str(p.pid)) for p in cluster.procs
    )
    print(
        f"\n{backend} cluster: {len(want)} occurrences, {sum(tally.runs.values())} runs, "
        f"{len(duplicates)} duplicates, {len(missing)} missed, runs per process {per_process}"
    )
    assert not duplicates, duplicates[:10]
    assert not missing, sorted(missing)[:10]
    assert not extra, sorted(extra)[:10]
    assert tally.done == tally.runs


def test_redis_cluster_runs_each_occurrence_exactly_once(
    redis_server: RedisServer, namespace: str, tmp_path: Path
) -> None:
    _run_cluster("redis", redis_server.url, namespace, tmp_path)


def test_postgres_cluster_runs_each_occurrence_exactly_once(
    postgres_server: PostgresServer, namespace: str, tmp_path: Path
) -> None:
    _run_cluster("postgres", postgres_server.dsn(), namespace, tmp_path)
