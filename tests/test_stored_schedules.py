"""Durable schedules across OS processes, on a real SQLite file and a real PostgreSQL server.

Each replica is ``schedule_node.py``: a scheduler on its own FakeClock, driven over stdin, so
occurrences come without real waiting while the store, the unique keys and the sync loop are
real. The test counts what the store holds — the independent witness — and what each
replica's enqueues reported (``enqueued`` when it stored the job, ``exists`` when another
replica had).

Propagation (a change in this process -> the job added, replaced or removed in a replica) is
measured with both processes' ``time.time()`` on one host and printed (``pytest -s``).

At the end, in one process on a FakeClock shared with the store (memory, SQLite): a replica
that starts after a resume or an update catches nothing up from before that change.
"""

from __future__ import annotations

import asyncio
import json
import os
import queue
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio

from beat import Client, Scheduler
from beat.stores import JobRecord, MemoryStore, ScheduleSpec, SQLiteStore, Store
from beat.stores._doorbell import wake_directory
from beat.testing import FakeClock
from tests.coordinators.conftest import PostgresServer

pytestmark = [pytest.mark.asyncio, pytest.mark.slow]

NODE = Path(__file__).with_name("schedule_node.py")
ROOT = Path(__file__).resolve().parent.parent
START = datetime(2026, 3, 1, 0, 0, 30, tzinfo=UTC)
MINUTE = timedelta(minutes=1)


def at_minute(k: int) -> datetime:
    return START.replace(second=0) + k * MINUTE


@dataclass
class Target:
    """Where the replicas' store lives; ``open()`` gives this process its own handle."""

    kind: str
    target: str
    schema: str = ""

    def config(self, **extra: Any) -> dict[str, Any]:
        return {"kind": self.kind, "target": self.target, "schema": self.schema, **extra}

    def open(self) -> Store:
        if self.kind == "sqlite":
            return SQLiteStore(self.target, busy_timeout=30, poll_interval=0.05)
        from beat.stores import PostgresStore

        return PostgresStore(self.target, schema=self.schema)


@pytest.fixture(scope="module")
def postgres() -> Iterator[PostgresServer]:
    server = PostgresServer.create(Path(tempfile.gettempdir())).start()
    yield server
    server.cleanup()


@pytest.fixture(params=["sqlite", "postgres"])
def target(request: pytest.FixtureRequest, tmp_path: Path) -> Target:
    if request.param == "sqlite":
        return Target("sqlite", str(tmp_path / "jobs.db"))
    server: PostgresServer = request.getfixturevalue("postgres")
    return Target("postgres", server.dsn(), f"s{uuid.uuid4().hex[:12]}")


@pytest_asyncio.fixture
async def store(target: Target) -> AsyncIterator[Store]:
    store = target.open()
    await store.open()  # creates the schema before the replicas race to
    yield store
    await store.close()


class Node:
    """One replica process; its stdout lines are read by a thread into a queue."""

    def __init__(self, config: dict[str, Any], log: Path) -> None:
        with open(log, "w") as stderr:
            self.proc = subprocess.Popen(
                [sys.executable, str(NODE), json.dumps(config)],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=stderr,
                text=True,
                env={**os.environ, "PYTHONPATH": str(ROOT)},
                cwd=ROOT,
            )
        self.log = log
        self.lines: queue.Queue[dict[str, Any]] = queue.Queue()
        self.events: list[dict[str, Any]] = []
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.put(json.loads(line))

    def expect(
        self, wanted: Callable[[dict[str, Any]], bool], timeout: float = 60
    ) -> dict[str, Any]:
        """The next line ``wanted`` accepts; events met on the way are kept in ``events``."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                line = self.lines.get(timeout=max(0.01, deadline - time.monotonic()))
            except queue.Empty:
                log = self.log.read_text()
                raise AssertionError(f"replica said nothing expected: {log}") from None
            if "event" in line:
                self.events.append(line)
            if wanted(line):
                return line

    def event(self, kind: str, name: str, timeout: float = 30) -> dict[str, Any]:
        """The first ``kind`` event of job ``name`` not consumed yet (waits for it)."""
        for index, line in enumerate(self.events):
            if line["event"] == kind and line["name"] == name:
                return self.events.pop(index)
        line = self.expect(lambda e: e.get("event") == kind and e.get("name") == name, timeout)
        self.events.remove(line)
        return line

    def send(self, command: str) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(command + "\n")
        self.proc.stdin.flush()

    def stop(self) -> None:
        self.send("stop")
        assert self.proc.wait(30) == 0, self.log.read_text()
        self.close()

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self.close()

    def close(self) -> None:
        """Release the pipes once the process is gone (its reader then sees the end)."""
        self.reader.join(5)
        for pipe in (self.proc.stdin, self.proc.stdout):
            if pipe is not None and not pipe.closed:
                pipe.close()


class Cluster:
    def __init__(self, target: Target, directory: Path) -> None:
        self.target = target
        self.directory = directory
        self.nodes: list[Node] = []

    def start(self, count: int, start: datetime, schedules: list[dict[str, str]]) -> list[Node]:
        config = self.target.config(start=start.isoformat(), schedules=schedules)
        nodes = [
            Node(config, self.directory / f"node{len(self.nodes) + i}.log") for i in range(count)
        ]
        self.nodes.extend(nodes)
        for node in nodes:
            node.expect(lambda line: "ready" in line)
        return nodes

    @staticmethod
    def advance(nodes: list[Node], seconds: float) -> list[list[str]]:
        """Advance every replica together (their fires race); each one's enqueue results."""
        for node in nodes:
            node.send(f"advance {seconds}")
        return [node.expect(lambda line: "advanced" in line)["results"] for node in nodes]

    def kill_all(self) -> None:
        for node in self.nodes:
            node.kill()


@pytest.fixture
def cluster(target: Target, tmp_path: Path) -> Iterator[Cluster]:
    cluster = Cluster(target, tmp_path)
    yield cluster
    cluster.kill_all()
    if target.kind == "sqlite":  # a killed replica leaves its doorbell socket behind
        shutil.rmtree(wake_directory(Path(target.target)), ignore_errors=True)


async def work_jobs(store: Store) -> list[JobRecord]:
    return await store.list_jobs(task="work", limit=1000)


def keys(records: list[JobRecord]) -> list[str | None]:
    return sorted(r.unique_key for r in records)


def expected_keys(name: str, instants: list[datetime]) -> list[str]:
    return sorted(f"schedule:{name}@{t.isoformat()}" for t in instants)


def created(results: list[list[str]]) -> tuple[int, int]:
    """(enqueues that stored a job, enqueues that found it stored) over all replicas."""
    flat = [r for node in results for r in node]
    return sum(r.startswith("enqueued") for r in flat), sum(r.startswith("exists") for r in flat)


async def test_three_replicas_enqueue_every_occurrence_exactly_once(
    cluster: Cluster, store: Store
) -> None:
    schedule = {"name": "minutely", "cron": "* * * * *", "misfire": "coalesce"}
    nodes = cluster.start(3, START, [schedule])
    results: list[list[str]] = []
    for _ in range(5):
        results = await asyncio.to_thread(cluster.advance, nodes, 60)
    for node in nodes:
        node.stop()
    records = await work_jobs(store)
    assert keys(records) == expected_keys("minutely", [at_minute(k) for k in range(1, 6)])
    assert created(results) == (5, 10)  # each occurrence stored by one replica, found by two


async def test_after_downtime_three_replicas_apply_the_misfire_policy_once(
    cluster: Cluster, store: Store
) -> None:
    schedules = [
        {"name": "coalesced", "cron": "* * * * *", "misfire": "coalesce"},
        {"name": "all", "cron": "* * * * *", "misfire": "all"},
    ]
    [first] = cluster.start(1, START, schedules)
    await asyncio.to_thread(cluster.advance, [first], 120)  # 00:01 and 00:02
    first.stop()
    # The cluster was down from 00:02:30 to 00:10:30: three replicas come back together.
    nodes = cluster.start(3, START + 10 * MINUTE, schedules)
    results = await asyncio.to_thread(cluster.advance, nodes, 1)
    for node in nodes:
        node.stop()
    records = await work_jobs(store)
    by_schedule = {
        name: [r for r in records if r.meta["schedule"] == name] for name in ("coalesced", "all")
    }
    # coalesce: one job, for the latest missed instant; all: one per missed instant
    coalesced = [at_minute(k) for k in (1, 2, 10)]
    assert keys(by_schedule["coalesced"]) == expected_keys("coalesced", coalesced)
    every = [at_minute(k) for k in range(1, 11)]
    assert keys(by_schedule["all"]) == expected_keys("all", every)
    assert created(results)[0] == 1 + 8  # each caught-up job stored by one replica only
    for name in ("coalesced", "all"):
        progress = await store.get_schedule(f"~code:{name}")
        assert progress is not None and progress.last_instant == at_minute(10)


async def test_stored_schedules_propagate_to_running_replicas_and_survive_restarts(
    cluster: Cluster, store: Store, target: Target
) -> None:
    nodes = cluster.start(2, START, [])
    schedules = Client(store).schedules

    async def propagated(action: Any, kind: str, name: str = "dyn") -> list[float]:
        """Run the change; seconds until each replica reported ``kind`` for the job."""
        for node in nodes:
            node.events.clear()  # earlier changes' events (a replace's JobRemoved) are done
        t0 = time.time()
        await action
        events = [await asyncio.to_thread(node.event, kind, name) for node in nodes]
        return [event["t"] - t0 for event in events]

    delays = await propagated(
        schedules.add(ScheduleSpec(name="dyn", task="work", every=60, args=["v0"])), "JobAdded"
    )
    await asyncio.to_thread(cluster.advance, nodes, 60)
    assert keys(await work_jobs(store)) == expected_keys("dyn", [at_minute(1)])

    delays += await propagated(schedules.pause("dyn"), "JobPaused")
    await asyncio.to_thread(cluster.advance, nodes, 60)
    assert len(await work_jobs(store)) == 1  # paused everywhere
    delays += await propagated(schedules.resume("dyn"), "JobResumed")
    await asyncio.to_thread(cluster.advance, nodes, 60)
    assert keys(await work_jobs(store)) == expected_keys("dyn", [at_minute(1), at_minute(3)])

    for version in range(1, 11):  # replaced in place: a new job with the new arguments
        delays += await propagated(schedules.update("dyn", args=[f"v{version}"]), "JobAdded")
    await asyncio.to_thread(cluster.advance, nodes, 60)
    newest = max(await work_jobs(store), key=lambda r: r.scheduled_at)
    assert (newest.scheduled_at, newest.args) == (at_minute(4), ["v10"])

    await schedules.add(ScheduleSpec(name="keep", task="work", cron="*/2 * * * *"))
    delays += await propagated(schedules.remove("dyn"), "JobRemoved")
    await asyncio.to_thread(cluster.advance, nodes, 60)  # 00:05: nothing of dyn
    assert len([r for r in await work_jobs(store) if r.meta["schedule"] == "dyn"]) == 3
    for node in nodes:
        node.stop()

    # A replica started later finds the stored schedule and runs it.
    [late] = cluster.start(1, START + 5 * MINUTE, [])
    await asyncio.to_thread(late.event, "JobAdded", "keep")
    await asyncio.to_thread(cluster.advance, [late], 60)
    late.stop()
    keep = [r.scheduled_at for r in await work_jobs(store) if r.meta["schedule"] == "keep"]
    assert at_minute(6) in keep

    print(
        f"\n{target.kind}: change -> replica, {len(delays)} samples: "
        f"median {statistics.median(delays) * 1000:.1f} ms, "
        f"max {max(delays) * 1000:.1f} ms"
    )
    assert max(delays) < 5.0  # promptly: the sync loop waits on the store's wake-up


# -------------------------------------------------------------------------------------------
# In one process, on a FakeClock shared by the schedulers and the store (memory, SQLite): a
# scheduler that starts after a resume or an update catches nothing up from before it.
# -------------------------------------------------------------------------------------------
@pytest.fixture(params=["memory", "sqlite"])
def clocked(
    request: pytest.FixtureRequest, tmp_path: Path
) -> tuple[FakeClock, Callable[[], Store]]:
    """A FakeClock at START and a factory of handles on one store on that clock."""
    clock = FakeClock(START)
    if request.param == "memory":
        shared = MemoryStore(clock=clock.time)
        return clock, lambda: shared
    return clock, lambda: SQLiteStore(tmp_path / "jobs.db", clock=clock.time, poll_interval=0.02)


async def settle(*schedulers: Scheduler) -> None:
    """Until no occurrence's enqueue is in flight (store I/O is real, not on the fake clock)."""
    async with asyncio.timeout(10):
        while any(s.statistics().running for s in schedulers):  # noqa: ASYNC110
            await asyncio.sleep(0.005)


async def tick(clock: FakeClock, delta: timedelta, *schedulers: Scheduler) -> None:
    """Move the fake clock by ``delta`` one fire at a time, each fire's enqueue finished
    before time moves on."""
    target = clock.now + delta
    await settle(*schedulers)
    while True:
        due = [i.next_fire for s in schedulers for i in s.jobs() if i.next_fire is not None]
        await clock.advance(max(min([target, *due]) - clock.now, timedelta(0)))
        await settle(*schedulers)
        if clock.now >= target:
            return


async def synced(scheduler: Scheduler, after: int = 0) -> None:
    """Until the scheduler's sync loop has reconciled more than ``after`` times."""
    sync = scheduler._schedules
    async with asyncio.timeout(10):
        while sync.syncs <= after:
            sync.synced.clear()
            await sync.synced.wait()


async def change(action: Awaitable[Any], *schedulers: Scheduler) -> Any:
    """Run ``action`` (a store change); wait until each running scheduler has synced it."""
    before = [s._schedules.syncs for s in schedulers]
    result = await action
    for scheduler, syncs in zip(schedulers, before, strict=True):
        await synced(scheduler, syncs)
    return result


async def stored_instants(store: Store) -> list[datetime]:
    return sorted(r.scheduled_at for r in await work_jobs(store))


async def schedule_every(seconds: float, make: Callable[[], Store]) -> tuple[Store, Any]:
    """An open store (to read from) and its schedules, holding schedule "s" of task "work"
    every ``seconds``, misfire "all"."""
    reader = make()
    await reader.open()
    schedules = Client(reader).schedules
    await schedules.add(ScheduleSpec(name="s", task="work", every=seconds, misfire="all"))
    return reader, schedules


async def test_a_scheduler_started_after_a_resume_stores_nothing_for_the_paused_instants(
    clocked: tuple[FakeClock, Callable[[], Store]],
) -> None:
    clock, make = clocked
    reader, schedules = await schedule_every(60.0, make)
    first = Scheduler(store=make(), clock=clock)
    async with first:
        await synced(first)
        await tick(clock, 2 * MINUTE, first)  # 00:01, 00:02
    await schedules.pause("s")
    clock.jump(10 * MINUTE)  # paused, nothing runs: 00:03 .. 00:12 are not the schedule's
    resumed = await schedules.resume("s")
    clock.jump(2 * MINUTE)  # resumed, nothing runs: 00:13, 00:14 are missed
    second = Scheduler(store=make(), clock=clock)
    async with second:
        await synced(second)
        await tick(clock, timedelta(seconds=1), second)
        # the misfire policy ("all") applies to what was missed after the resume only
        assert await stored_instants(reader) == [at_minute(k) for k in (1, 2, 13, 14)]
        await tick(clock, MINUTE, second)
    assert await stored_instants(reader) == [at_minute(k) for k in (1, 2, 13, 14, 15)]
    assert resumed.last_instant == resumed.updated_at == START + 12 * MINUTE  # the resume
    await reader.close()


async def test_a_replica_joining_right_after_a_resume_stores_nothing_for_the_paused_instants(
    clocked: tuple[FakeClock, Callable[[], Store]],
) -> None:
    """The running replica skips the paused instants; one that joins (a rolling deploy)
    before the next fire must not enqueue them either."""
    clock, make = clocked
    reader, schedules = await schedule_every(60.0, make)
    running = Scheduler(store=make(), clock=clock)
    async with running:
        await synced(running)
        await tick(clock, MINUTE, running)  # 00:01
        await change(schedules.pause("s"), running)
        await tick(clock, 5 * MINUTE, running)  # 00:02 .. 00:06 skipped: paused
        await change(schedules.resume("s"), running)
        joining = Scheduler(store=make(), clock=clock)
        async with joining:
            await synced(joining)
            await tick(clock, 2 * MINUTE, running, joining)
        [record] = await schedules.list()
    assert await stored_instants(reader) == [at_minute(k) for k in (1, 7, 8)]
    assert record.last_instant == at_minute(8)
    await reader.close()


async def test_a_scheduler_started_after_an_update_runs_the_new_definition_from_then(
    clocked: tuple[FakeClock, Callable[[], Store]],
) -> None:
    clock, make = clocked
    reader, schedules = await schedule_every(600.0, make)
    running = Scheduler(store=make(), clock=clock)
    async with running:
        await synced(running)
        await tick(clock, 10 * MINUTE, running)  # 00:10
        await tick(clock, 7 * MINUTE, running)  # 00:17:30
        updated = await change(schedules.update("s", every=120.0), running)
        joining = Scheduler(store=make(), clock=clock)
        async with joining:
            await synced(joining)
            await tick(clock, 3 * MINUTE, running, joining)  # 00:20:30
    # 00:12, 00:14, 00:16 (instants of the new definition before the update) stay unstored
    assert await stored_instants(reader) == [at_minute(k) for k in (10, 18, 20)]
    assert updated.last_instant == updated.updated_at == START + 17 * MINUTE  # the update
    await reader.close()
