"""Four worker processes, 2,000 jobs, a SIGKILL mid-run (and a PostgreSQL restart).

Each execution appends ``S``/``E`` lines (id, attempt, pid) to its process's record file
(``fault_worker.py``), so the test can tell which executions happened, not only what the
store says. Checked: every job ends ``succeeded`` exactly once with the result of the
execution the store accepted; none is left ``running``; no ``(id, attempt)`` ever ran twice;
every re-run (attempt > 1) and every job whose body completed twice is one that was in
flight on the killed worker (PostgreSQL: or running when the server went down, whose lease
may expire during the outage) — at least once, nothing more.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
import uuid
from collections import defaultdict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from beat.stores import JobStatus, NewJob, Store
from tests.coordinators.conftest import PostgresServer

pytestmark = [pytest.mark.asyncio, pytest.mark.slow]

WORKER = Path(__file__).with_name("fault_worker.py")
ROOT = Path(__file__).resolve().parents[2]
JOBS = 2000
PROCESSES = 4


@dataclass
class Figures:
    jobs: int = JOBS
    kills: int = 0
    restarts: int = 0
    in_flight_at_kill: set[str] = field(default_factory=set)
    running_at_restart: set[str] = field(default_factory=set)
    reruns: int = 0
    duplicates: int = 0
    lost: int = 0
    killed_at: float = 0.0

    def report(self, kind: str) -> str:
        return (
            f"{kind}: {self.jobs} jobs, {self.kills} kill(s), {self.restarts} restart(s), "
            f"{len(self.in_flight_at_kill)} in flight on the killed worker, "
            f"{len(self.running_at_restart)} running at the restart, re-runs {self.reruns}, "
            f"bodies completed twice {self.duplicates}, lost {self.lost}"
        )


class Processes:
    def __init__(self, kind: str, target: str, schema: str, records: Path) -> None:
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        self.procs = [
            subprocess.Popen(
                [sys.executable, str(WORKER), kind, target, schema, f"w{n}", str(records)],
                stdout=subprocess.PIPE,
                text=True,
                env=env,
            )
            for n in range(PROCESSES)
        ]

    def wait_ready(self) -> None:
        for proc in self.procs:
            assert proc.stdout is not None
            assert proc.stdout.readline().strip() == "ready"

    def finish(self) -> list[dict[str, Any]]:
        stats = []
        for proc in self.procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in self.procs:
            out, _ = proc.communicate(timeout=30)
            if proc.returncode == -signal.SIGKILL:
                continue
            assert proc.returncode == 0, out
            stats.append(json.loads(out.strip().splitlines()[-1]))
        return stats

    def kill_all(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()


async def running_of(store: Store, worker: str | None = None) -> set[str]:
    records = await store.list_jobs(status=JobStatus.RUNNING, limit=1000)
    return {str(r.id) for r in records if worker is None or r.worker == worker}


async def wait_for(count: Callable[[], Awaitable[int]], target: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            if await count() >= target:
                return
        except Exception:  # the server may be restarting
            pass
        assert time.monotonic() < deadline, f"fewer than {target} jobs done in {timeout} s"
        await asyncio.sleep(0.05)


def read_records(
    records: Path,
) -> tuple[
    dict[tuple[str, int], list[int]],
    dict[str, list[tuple[int, int]]],
    dict[str, list[tuple[int, int, float]]],
]:
    """Pids per started ``(id, attempt)``; ``(attempt, pid)`` per id of bodies that ended;
    ``(attempt, pid, time)`` per id of starts."""
    starts: dict[tuple[str, int], list[int]] = defaultdict(list)
    ends: dict[str, list[tuple[int, int]]] = defaultdict(list)
    started: dict[str, list[tuple[int, int, float]]] = defaultdict(list)
    for path in records.iterdir():
        for line in path.read_text().splitlines():
            mark, id, attempt, pid, at = line.split()
            if mark == "S":
                starts[(id, int(attempt))].append(int(pid))
                started[id].append((int(attempt), int(pid), float(at)))
            else:
                ends[id].append((int(attempt), int(pid)))
    return starts, ends, started


async def run_faults(
    store: Store,
    kind: str,
    target: str,
    schema: str,
    records: Path,
    succeeded: Callable[[], Awaitable[int]],
    server: PostgresServer | None = None,
) -> Figures:
    figures = Figures()
    jobs = await store.enqueue([NewJob("fault.record", args=[n]) for n in range(JOBS)])
    procs = Processes(kind, target, schema, records)
    try:
        await asyncio.to_thread(procs.wait_ready)
        await wait_for(succeeded, JOBS * 3 // 10, 30)
        # Kill it with jobs in flight: freeze it, look, and thaw it again if it had none (it
        # records its completions in batches, so it is briefly idle between them).
        victim = procs.procs[0]
        for _ in range(5000):
            victim.send_signal(signal.SIGSTOP)
            if await running_of(store, "w0"):
                break
            victim.send_signal(signal.SIGCONT)
            await asyncio.sleep(0.002)
        victim.kill()
        victim.wait()
        figures.killed_at = time.time()
        figures.kills = 1
        figures.in_flight_at_kill = await running_of(store, "w0")
        assert figures.in_flight_at_kill
        if server is not None:
            await wait_for(succeeded, JOBS * 6 // 10, 30)
            before = await running_of(store)
            await asyncio.to_thread(server.stop)
            await asyncio.sleep(0.5)
            await asyncio.to_thread(server.start)
            after = await running_of(store)
            figures.restarts = 1
            figures.running_at_restart = before | after
        await wait_for(succeeded, JOBS, 40)
        stats = await asyncio.to_thread(procs.finish)
    finally:
        procs.kill_all()
    assert len(stats) == PROCESSES - 1

    # The store: every job succeeded once, nothing left running.
    final = {str(j.id): await store.get(j.id) for j in jobs}
    statuses = defaultdict(int)
    for record in final.values():
        assert record is not None
        statuses[record.status] += 1
    figures.lost = JOBS - statuses[JobStatus.SUCCEEDED]
    assert dict(statuses) == {JobStatus.SUCCEEDED: JOBS}

    # The records: what really ran.
    starts, ends, started = read_records(records)
    assert all(len(pids) == 1 for pids in starts.values()), "an attempt ran twice"
    killed = victim.pid
    allowed = figures.in_flight_at_kill | figures.running_at_restart
    for id, record in final.items():
        assert record is not None
        pid, attempt = record.result
        assert attempt == record.attempt
        assert (attempt, pid) in ends[id], "the accepted result matches no execution"
        if record.attempt > 1:
            figures.reruns += 1
            assert id in allowed, (
                f"job {id} re-ran without a cause: {sorted(started[id])}, killed {killed} at "
                f"{figures.killed_at}"
            )
        if len(ends[id]) > 1:
            figures.duplicates += 1
            assert id in allowed, f"job {id} completed twice without a cause"
            others = [e for e in ends[id] if e != (attempt, pid)]
            assert all(a < attempt for a, _ in others)
            if server is None:
                assert all(p == killed for _, p in others)
    print("\n" + figures.report(kind))
    return figures


async def test_sqlite_workers_survive_a_sigkill(tmp_path: Path) -> None:
    from beat.stores import SQLiteStore

    path = tmp_path / "jobs.db"
    records = tmp_path / "records"
    records.mkdir()

    async def succeeded() -> int:
        def count() -> int:
            with sqlite3.connect(path, timeout=30) as conn:
                (n,) = conn.execute(
                    "SELECT count(*) FROM beat_jobs WHERE status = 'succeeded'"
                ).fetchone()
                return int(n)

        return await asyncio.to_thread(count)

    async with SQLiteStore(path, busy_timeout=30) as store:
        figures = await run_faults(store, "sqlite", str(path), "", records, succeeded)
    assert figures.lost == 0 and figures.kills == 1


async def test_postgres_workers_survive_a_sigkill_and_a_restart(tmp_path: Path) -> None:
    from beat.stores import PostgresStore

    server = PostgresServer.create(Path(tempfile.gettempdir())).start()
    schema = f"f{uuid.uuid4().hex[:12]}"
    records = tmp_path / "records"
    records.mkdir()

    async def succeeded() -> int:
        rows = await server.aquery(
            f"SELECT count(*) FROM {schema}.beat_jobs WHERE status = 'succeeded'"
        )
        return int(rows[0][0])

    try:
        async with PostgresStore(server.dsn(), schema=schema, timeout=2) as store:
            figures = await run_faults(
                store, "postgres", server.dsn(), schema, records, succeeded, server
            )
        assert figures.lost == 0 and figures.kills == 1 and figures.restarts == 1
    finally:
        server.cleanup()
