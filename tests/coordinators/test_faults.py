"""Faults in a four-process cluster: a killed instance, a restarted Redis, a stopped PostgreSQL,
a full outage of every instance. Each test states what the backend's guarantee allows.
"""

from __future__ import annotations

import os
import signal
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from beat._coordination import _RETRY_CAP

from ._cluster import Cluster, Tally, expected, grid_start, iso, wait_until
from .conftest import PostgresServer, RedisServer

pytestmark = pytest.mark.slow

PROCESSES = 4


def _config(backend: str, url: str, namespace: str, **extra: Any) -> dict[str, Any]:
    return {"backend": backend, "url": url, "namespace": namespace, "interval": 1, **extra}


def _wait_for_line(cluster: Cluster, prefix: str, timeout: float) -> list[str]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for line in cluster.lines():
            if ",".join(line).startswith(prefix):
                return line
        time.sleep(0.02)
    raise AssertionError(f"no {prefix!r} line within {timeout} s\n{cluster.logs()}")


def _instant(text: str) -> float:
    return datetime.fromisoformat(text).timestamp()


# -------------------------------------------------------------------------------------------
# SIGKILL of the instance running a long job
# -------------------------------------------------------------------------------------------
def _kill_the_long_runner(
    backend: str, url: str, namespace: str, directory: Path, **extra: Any
) -> tuple[Cluster, int, Tally, int, int]:
    start = grid_start()
    end = start + 8
    cluster = Cluster(
        _config(
            backend,
            url,
            namespace,
            start=start,
            end=end,
            jobs=20,
            long={"at": start + 1, "duration": 3.0},
            exit_at=end + 3.5,
            **extra,
        ),
        directory,
    )
    try:
        cluster.spawn(PROCESSES)
        victim = int(_wait_for_line(cluster, "run,long,", timeout=start - time.time() + 5)[3])
        time.sleep(0.5)  # mid-run
        os.kill(victim, signal.SIGKILL)
        codes = cluster.wait(timeout=end - time.time() + 15)
    finally:
        cluster.kill_all()
    killed = [p.pid for p in cluster.procs].index(victim)
    assert codes[killed] == -signal.SIGKILL
    assert [c for i, c in enumerate(codes) if i != killed] == [0] * (PROCESSES - 1), cluster.logs()
    return cluster, victim, Tally.of(cluster.lines()), start, end


def test_redis_does_not_rerun_the_run_of_a_killed_instance(
    redis_server: RedisServer, namespace: str, tmp_path: Path
) -> None:
    _, victim, tally, start, end = _kill_the_long_runner(
        "redis", redis_server.url, namespace, tmp_path
    )
    long_runs = [line for line in tally.run_lines if line[1] == "long"]
    assert [(line[3], line[4]) for line in long_runs] == [(str(victim), "1")]
    assert not [key for key in tally.done if key[0] == "long"]  # lost, as the docs say
    # Everything else ran exactly once: the survivors took over the victim's share.
    want = expected(20, start, end)
    regular = {key: n for key, n in tally.runs.items() if key[0] != "long"}
    print(f"\nredis SIGKILL: {len(want)} occurrences, long job runs: {len(long_runs)}")
    assert set(regular) == want
    assert set(regular.values()) == {1}


def test_postgres_lease_reruns_the_run_of_a_killed_instance_with_attempt_2(
    postgres_server: PostgresServer, namespace: str, tmp_path: Path
) -> None:
    _, victim, tally, start, end = _kill_the_long_runner(
        "postgres", postgres_server.dsn(), namespace, tmp_path, lease=1.5, reclaim_interval=0.5
    )
    long_runs = [(line[3], line[4]) for line in tally.run_lines if line[1] == "long"]
    assert len(long_runs) == 2, long_runs
    assert long_runs[0] == (str(victim), "1") or long_runs[1] == (str(victim), "1")
    (rerun,) = [run for run in long_runs if run[0] != str(victim)]
    assert rerun[1] == "2"
    assert tally.done[("long", iso(start + 1))] == 1
    # Regular jobs: each occurrence completed exactly once; a second run is allowed only for
    # an occurrence the victim had started (at-least-once), and it is attempt 2.
    want = expected(20, start, end)
    regular_done = {key: n for key, n in tally.done.items() if key[0] != "long"}
    victims_runs = {(line[1], line[2]) for line in tally.run_lines if line[3] == str(victim)}
    reruns = [line for line in tally.run_lines if line[4] != "1" and line[1] != "long"]
    print(
        f"\npostgres SIGKILL: {len(want)} occurrences, long job runs {long_runs}, "
        f"other re-runs {len(reruns)}"
    )
    assert set(regular_done) == want
    for key, count in regular_done.items():
        assert count == 1 or key in victims_runs, key
    assert all(line[4] == "2" and (line[1], line[2]) in victims_runs for line in reruns)


# -------------------------------------------------------------------------------------------
# The coordinator goes away and comes back
# -------------------------------------------------------------------------------------------
def _outage(
    backend: str, url: str, namespace: str, directory: Path, stop: Any, start_again: Any
) -> tuple[Cluster, Tally, int, int, float, float]:
    start = grid_start()
    end = start + 13
    cluster = Cluster(
        _config(backend, url, namespace, start=start, end=end, jobs=20, exit_at=end + 1.5),
        directory,
    )
    try:
        cluster.spawn(PROCESSES)
        wait_until(start + 3.5)  # between two fires
        down_at = time.time()
        stop()
        start_again()
        up_at = time.time()
        codes = cluster.wait(timeout=end - time.time() + 15)
    finally:
        cluster.kill_all()
    assert codes == [0] * PROCESSES, cluster.logs()  # nobody crashed
    return cluster, Tally.of(cluster.lines()), start, end, down_at, up_at


def test_redis_restart_without_persistence(
    private_redis: RedisServer, namespace: str, tmp_path: Path
) -> None:
    """Keys are lost: a duplicate is allowed only for an occurrence claimed before the
    restart and claimed again after it; fires while down are skipped, none after."""

    def stop_for_a_while() -> None:
        private_redis.stop()
        time.sleep(1.5)  # across a fire instant: every instance sees the outage

    cluster, tally, start, end, down_at, up_at = _outage(
        "redis", private_redis.url, namespace, tmp_path, stop_for_a_while, private_redis.start
    )
    want = expected(20, start, end)
    missing = want - set(tally.runs)
    duplicates = tally.duplicates()
    print(
        f"\nredis restart ({up_at - down_at:.2f} s down): {len(want)} occurrences, "
        f"{len(duplicates)} duplicates, {len(missing)} missed, skips {dict(tally.skips)}"
    )
    # A key written before the stop and a claim after the restart: instants up to `up_at`
    # whose claims straddle it. Healthy instances claim within a second of the instant.
    assert all(down_at - 2 <= _instant(when) <= up_at for _, when in duplicates), duplicates
    assert all(down_at - 1 <= _instant(when) <= up_at + _RETRY_CAP + 1 for _, when in missing)
    assert set(tally.skips) <= {"coordinator_down", "not_claimed"}  # not_claimed: lost claims
    downs = sum(1 for line in cluster.lines() if line[0] == "down")
    ups = sum(1 for line in cluster.lines() if line[0] == "up")
    assert downs == ups == PROCESSES  # one outage and one recovery per instance, no crash
    late = {key for key in want if _instant(key[1]) > up_at + _RETRY_CAP + 1}
    assert all(tally.runs[key] == 1 for key in late)


def test_postgres_stopped_for_seconds_skips_safely_and_never_doubles(
    private_postgres: PostgresServer, namespace: str, tmp_path: Path
) -> None:
    def stop_for_a_while() -> None:
        private_postgres.stop()
        time.sleep(3)

    cluster, tally, start, end, down_at, up_at = _outage(
        "postgres",
        private_postgres.dsn(),
        namespace,
        tmp_path,
        stop_for_a_while,
        private_postgres.start,
    )
    want = expected(20, start, end)
    missing = want - set(tally.runs)
    duplicates = tally.duplicates()
    downs = sum(1 for line in cluster.lines() if line[0] == "down")
    ups = sum(1 for line in cluster.lines() if line[0] == "up")
    print(
        f"\npostgres stopped {up_at - down_at:.2f} s: {len(want)} occurrences, "
        f"{len(duplicates)} duplicates, {len(missing)} missed, "
        f"skips {dict(tally.skips)}, outages seen {downs}, recoveries {ups}"
    )
    assert not duplicates
    assert set(tally.runs) <= want
    assert missing, "occurrences during the outage must be skipped, not run"
    assert all(down_at - 1 <= _instant(when) <= up_at + _RETRY_CAP + 1 for _, when in missing)
    assert tally.skips["coordinator_down"] >= len(missing)
    assert downs == ups == PROCESSES  # one outage and one recovery per instance


# -------------------------------------------------------------------------------------------
# Every instance down across fire instants
# -------------------------------------------------------------------------------------------
def test_postgres_full_outage_catch_up_runs_once_across_restarted_cluster(
    postgres_server: PostgresServer, namespace: str, tmp_path: Path
) -> None:
    """Grid start..start+10; the cluster runs until start+5.5, is down until after start+10,
    then four new processes start: the five missed fires coalesce into one run per job with
    ``ctx.when`` = the latest missed instant, across the whole cluster."""
    jobs = 30
    start = grid_start()
    end = start + 10
    config = _config("postgres", postgres_server.dsn(), namespace, start=start, end=end, jobs=jobs)
    first = Cluster({**config, "exit_at": start + 5.5}, tmp_path)
    try:
        first.spawn(PROCESSES, tag="before")
        assert first.wait(timeout=20) == [0] * PROCESSES, first.logs()
    finally:
        first.kill_all()
    wait_until(end + 1)
    second = Cluster({**config, "exit_at": time.time() + 4}, tmp_path)
    try:
        second.spawn(PROCESSES, tag="after")
        assert second.wait(timeout=20) == [0] * PROCESSES, second.logs()
    finally:
        second.kill_all()

    before, after = Tally.of(first.lines()), Tally.of(second.lines())
    assert set(before.runs) == expected(jobs, start, start + 5)
    assert set(before.runs.values()) == {1}
    assert set(after.runs) == {(f"job{i:03d}", iso(end)) for i in range(jobs)}
    assert set(after.runs.values()) == {1}
    # Each instance that came back before the catch-up run was claimed reported the misfire.
    misses = [line for line in second.lines() if line[0] == "missed"]
    print(
        f"\npostgres catch-up: {jobs} jobs, runs after restart {sum(after.runs.values())}, "
        f"missed-fire reports {len(misses)} from {len({m[4] for m in misses})} instances"
    )
    assert {m[1] for m in misses} == {f"job{i:03d}" for i in range(jobs)}
    assert {(m[2], m[3], m[5], m[6]) for m in misses} == {(iso(start + 6), iso(end), "5", "1")}
