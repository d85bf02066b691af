"""Worker observers (what ``beat.metrics`` hooks into): one claim and one outcome per
execution, with its duration; an observer that raises changes nothing for the jobs."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import pytest

from beat._observers import JobOutcome
from beat._worker import JobContext, Worker
from beat.stores import JobRecord, JobStatus, Store

from .conftest import Harness
from .test_worker import enqueue, eventually, make_task, registry, workers

__all__ = ["workers"]  # the fixture, imported for the tests below

pytestmark = pytest.mark.asyncio


class Recorder:
    def __init__(self) -> None:
        self.claimed: list[tuple[str, int]] = []
        self.finished: list[tuple[str, int, JobOutcome, float]] = []

    def job_claimed(self, record: JobRecord) -> None:
        self.claimed.append((record.args[0], record.attempt))

    def job_finished(self, record: JobRecord, outcome: JobOutcome, duration: float) -> None:
        self.finished.append((record.args[0], record.attempt, outcome, duration))


class Broken:
    def job_claimed(self, record: JobRecord) -> None:
        raise RuntimeError("observer bug")

    def job_finished(self, record: JobRecord, outcome: JobOutcome, duration: float) -> None:
        raise RuntimeError("observer bug")


async def test_each_execution_is_claimed_once_and_ends_once(
    store: Store, workers: list[Worker]
) -> None:
    started = asyncio.Event()

    async def work(ctx: JobContext, kind: str) -> Any:
        if kind == "fail":
            raise ValueError("no")
        if kind == "hang":
            started.set()
            await asyncio.sleep(3600)
        return kind

    recorder = Recorder()
    tasks = registry(make_task(work, "work", retries=0))
    ok = await enqueue(store, "work", "ok")
    bad = await enqueue(store, "work", "fail", max_attempts=1)
    hang = await enqueue(store, "work", "hang")
    worker = Worker(store, tasks, poll=0.05, lease=0.6)
    worker.add_observer(recorder)
    worker.add_observer(Broken())  # logged and ignored
    await worker.start()
    workers.append(worker)
    await store.wait_finished(ok.id, 10)
    await store.wait_finished(bad.id, 10)
    await asyncio.wait_for(started.wait(), 10)
    await store.cancel(hang.id)
    assert (await store.wait_finished(hang.id, 10)).status is JobStatus.CANCELLED

    async def three() -> bool:
        return len(recorder.finished) == 3

    await eventually(three)
    assert sorted(recorder.claimed) == [("fail", 1), ("hang", 1), ("ok", 1)]
    outcomes = sorted((name, outcome) for name, _, outcome, _ in recorder.finished)
    assert outcomes == [("fail", "dead"), ("hang", "cancelled"), ("ok", "succeeded")]
    assert all(duration >= 0 for *_, duration in recorder.finished)
    worker.remove_observer(recorder)
    worker.remove_observer(recorder)  # no error


async def test_a_shutdown_release_is_observed(store: Store) -> None:
    started = asyncio.Event()

    async def hang(ctx: JobContext, name: str) -> None:
        started.set()
        await asyncio.sleep(3600)

    recorder = Recorder()
    await enqueue(store, "hang", "h")
    worker = Worker(store, registry(make_task(hang, "hang")), poll=0.05)
    worker.add_observer(recorder)
    await worker.start()
    await asyncio.wait_for(started.wait(), 10)
    assert await worker.stop(0) == 1
    assert [(n, a, o) for n, a, o, _ in recorder.finished] == [("h", 1, "released")]


async def test_a_job_claimed_as_the_worker_stops_is_observed_claimed_then_released() -> None:
    """The claim in flight when ``stop`` begins is handed straight back: observers (and so
    the scheduler's events) see its claim and its release, not a release out of nowhere."""
    from beat.stores import MemoryStore

    claiming, go = asyncio.Event(), asyncio.Event()

    class SlowClaims(MemoryStore):
        async def claim(self, *args: Any, **kwargs: Any) -> list[JobRecord]:
            claimed = await super().claim(*args, **kwargs)
            if claimed:
                claiming.set()
                await go.wait()
            return claimed

    async def work(ctx: JobContext, kind: str) -> str:
        return kind

    async with SlowClaims() as store:
        job = await enqueue(store, "work", "late")
        recorder = Recorder()
        worker = Worker(store, registry(make_task(work, "work")), poll=0.05)
        worker.add_observer(recorder)
        await worker.start()
        await asyncio.wait_for(claiming.wait(), 10)
        stopping = asyncio.create_task(worker.stop(0))
        await asyncio.sleep(0)  # stop() has begun: the worker is stopped
        go.set()
        assert await asyncio.wait_for(stopping, 10) == 0
        assert recorder.claimed == [("late", 1)]
        assert recorder.finished == [("late", 1, "released", 0.0)]
        record = await store.get(job.id)
        assert record is not None and record.status is JobStatus.QUEUED


async def test_a_job_dead_by_lease_expiry_is_logged_and_observed_by_the_claimer(
    harness: Harness, caplog: pytest.LogCaptureFixture
) -> None:
    """Its own worker died on the last attempt, so nobody ran it to a failure: the worker
    whose claim made it ``dead`` logs it and reports it (the scheduler's events too)."""
    store = harness.store
    job = await enqueue(store, "work", "orphan", max_attempts=1)
    await store.claim("gone", queues=["default"], tasks=["work"], limit=1, lease=5)
    await harness.advance(6)

    async def work(ctx: JobContext, kind: str) -> str:
        return kind

    recorder = Recorder()
    worker = Worker(store, registry(make_task(work, "work")), poll=0.05)
    worker.add_observer(recorder)
    with caplog.at_level(logging.WARNING, logger="beat.worker"):
        assert await worker.start_due() == []
    await worker.stop(0)
    assert recorder.claimed == [] and recorder.finished == [("orphan", 1, "dead", 0.0)]
    assert any(
        f"job {job.id} (work) dead: the lease of its last attempt (1 of 1) expired; its worker"
        " gone died or stalled" in r.getMessage()
        for r in caplog.records
    )
