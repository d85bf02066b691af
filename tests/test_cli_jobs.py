"""``python -m beat jobs|schedules|queues|instances``: run as a subprocess against a real
SQLite file and a real PostgreSQL; plain text for people, ``--json`` for scripts, one
``beat: ...`` line and a non-zero exit for every error."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest
import pytest_asyncio

from beat._schedules import progress_row, progress_spec
from beat.stores import JobStatus, LogEntry, NewJob, ScheduleSpec, SQLiteStore, Store
from tests.coordinators.conftest import PostgresServer
from tests.stores.conftest import store_postgres  # noqa: F401  (the session's PostgreSQL)

ROOT = Path(__file__).resolve().parent.parent
# ~50 interpreter starts (about 0.4 s of CPU each, most of it importing beat): 20-35 s.
pytestmark = pytest.mark.slow


@dataclass
class Run:
    code: int
    out: str
    err: str

    def json(self) -> object:
        return json.loads(self.out)


@dataclass
class Target:
    url: str
    store: Store

    def beat(self, *args: str, env: dict[str, str] | None = None) -> Run:
        return cli(*args, "--store", self.url, env=env)


def cli(*args: str, env: dict[str, str] | None = None) -> Run:
    environ = {k: v for k, v in os.environ.items() if k != "BEAT_STORE"}
    done = subprocess.run(
        [sys.executable, "-m", "beat", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env={**environ, **(env or {})},
        timeout=60,
    )
    return Run(done.returncode, done.stdout, done.stderr)


def one_error_line(run: Run, code: int, *words: str) -> None:
    assert run.code == code, run
    assert run.err.startswith("beat: ") and run.err.count("\n") == 1, run.err
    assert run.out == ""
    for word in words:
        assert word in run.err


@pytest_asyncio.fixture(params=["sqlite", "postgres"])
async def target(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Target]:
    if request.param == "sqlite":
        path = tmp_path / "jobs.db"
        store: Store = SQLiteStore(path)
        url = f"sqlite:///{path}"
    else:
        from beat.stores import PostgresStore

        server: PostgresServer = request.getfixturevalue("store_postgres")
        schema = f"c{uuid.uuid4().hex[:12]}"
        store = PostgresStore(server.dsn(), schema=schema)
        url = f"{server.dsn()}{'&' if '?' in server.dsn() else '?'}schema={schema}"
    await store.open()
    yield Target(url, store)
    await store.close()


async def in_thread(target: Target, *args: str) -> Run:
    """Run the CLI without blocking this test's loop (the store fixture lives on it)."""
    return await asyncio.to_thread(target.beat, *args)


@pytest.mark.asyncio
async def test_jobs_list_and_show(target: Target) -> None:
    first, later = await target.store.enqueue(
        [
            NewJob("emails.send", args=["a@example.com"], meta={"schedule": "x"}),
            NewJob("reports.build", queue="slow", delay=3600),
        ]
    )
    at = datetime(2026, 1, 1, tzinfo=UTC)
    await target.store.add_logs(first.id, 1, [LogEntry(1, at, "WARNING", "app", "slow smtp")])
    # independent read-only calls: run them side by side
    listing, scripted, show, detail, logs = await asyncio.gather(
        in_thread(target, "jobs", "list"),
        in_thread(target, "jobs", "list", "--status", "scheduled", "--json"),
        in_thread(target, "jobs", "show", str(first.id)),
        in_thread(target, "jobs", "show", str(first.id), "--json", "--logs"),
        in_thread(target, "jobs", "show", str(first.id), "--logs"),
    )
    assert listing.code == 0, listing
    header, *rows = listing.out.splitlines()
    assert header.split()[:4] == ["ID", "TASK", "QUEUE", "STATUS"]
    assert [row.split()[:4] for row in rows] == [
        [str(first.id), "emails.send", "default", "queued"],
        [str(later.id), "reports.build", "slow", "scheduled"],
    ]
    assert [(j["id"], j["status"]) for j in scripted.json()] == [  # type: ignore[attr-defined]
        (str(later.id), "scheduled")
    ]
    assert show.code == 0
    assert f"id:            {first.id}" in show.out
    assert 'args:          ["a@example.com"]' in show.out
    record = detail.json()
    assert isinstance(record, dict)
    assert record["meta"] == {"schedule": "x"}
    assert record["logs"] == [
        {
            "attempt": 1,
            "at": at.isoformat(),
            "level": "WARNING",
            "logger": "app",
            "message": "slow smtp",
        }
    ]
    assert logs.out.splitlines()[-2:] == [
        "logs (1):",
        "  [1] 2026-01-01T00:00:00+00:00 WARNING app: slow smtp",
    ]


@pytest.mark.asyncio
async def test_jobs_cancel_and_retry(target: Target) -> None:
    (job,) = await target.store.enqueue([NewJob("emails.send")])
    cancel = await in_thread(target, "jobs", "cancel", str(job.id))
    assert (cancel.code, cancel.out) == (0, f"cancelled: job {job.id}\n")
    record = await target.store.get(job.id)
    assert record is not None and record.status is JobStatus.CANCELLED
    retry = (await in_thread(target, "jobs", "retry", str(job.id), "--json")).json()
    assert isinstance(retry, dict) and retry["status"] == "queued"
    record = await target.store.get(job.id)
    assert record is not None and record.status is JobStatus.QUEUED
    # a queued job cannot be retried: one line, exit 1, nothing changes
    refused = await in_thread(target, "jobs", "retry", str(job.id))
    one_error_line(refused, 1, str(job.id))
    record = await target.store.get(job.id)
    assert record is not None and record.status is JobStatus.QUEUED


@pytest.mark.asyncio
async def test_cancelling_a_cancelled_job_is_refused(target: Target) -> None:
    """A cancelled job is finished: cancelling it again does nothing, exit 1, as for a
    succeeded or dead one (it used to print "cancelled" and exit 0)."""
    (job,) = await target.store.enqueue([NewJob("emails.send")])
    await target.store.cancel(job.id)
    again = await in_thread(target, "jobs", "cancel", str(job.id))
    one_error_line(again, 1, str(job.id), "already cancelled: nothing to cancel")


@pytest.mark.asyncio
async def test_schedules_list_pause_resume_and_run(target: Target) -> None:
    await target.store.put_schedule(
        ScheduleSpec("nightly", "reports.build", cron="0 3 * * *", args=[7], queue="slow")
    )
    listing = await in_thread(target, "schedules", "list")
    assert listing.code == 0
    assert listing.out.splitlines()[1].split()[:4] == ["nightly", "reports.build", "cron", "0"]
    assert (await in_thread(target, "schedules", "pause", "nightly")).code == 0
    spec = await target.store.get_schedule("nightly")
    assert spec is not None and spec.paused
    assert (await in_thread(target, "schedules", "resume", "nightly")).code == 0
    spec = await target.store.get_schedule("nightly")
    assert spec is not None and not spec.paused
    ran = (await in_thread(target, "schedules", "run", "nightly", "--json")).json()
    assert isinstance(ran, dict)
    job = await target.store.get(uuid.UUID(ran["id"]))
    assert job is not None
    assert (job.task, job.args, job.queue, job.status) == (
        "reports.build",
        [7],
        "slow",
        JobStatus.QUEUED,
    )
    assert job.meta == {"schedule": "nightly", "manual": True}
    one_error_line(await in_thread(target, "schedules", "pause", "nope"), 1, "nope")
    one_error_line(await in_thread(target, "schedules", "run", "nope"), 1, "'nope'")


@pytest.mark.asyncio
async def test_progress_rows_of_code_schedules_are_not_schedules(target: Target) -> None:
    """The ``~code:<name>`` rows keep the last instant of schedules defined in code: their
    timer is a placeholder and their arguments live in the code. Hidden from ``list``;
    pause, resume and run refuse them (run would enqueue the task without its arguments)."""
    await target.store.put_schedule(ScheduleSpec("nightly", "reports.build", cron="0 3 * * *"))
    row = progress_row("charge-acme", stored=False)
    await target.store.put_schedule(progress_spec("charge-acme", "billing.charge"))
    text, scripted, *refused = await asyncio.gather(
        in_thread(target, "schedules", "list"),
        in_thread(target, "schedules", "list", "--json"),
        *(in_thread(target, "schedules", action, row) for action in ("pause", "resume", "run")),
    )
    assert [line.split()[0] for line in text.out.splitlines()] == ["NAME", "nightly"]
    assert [s["name"] for s in scripted.json()] == ["nightly"]  # type: ignore[attr-defined]
    for run in refused:
        one_error_line(run, 1, repr(row), "'charge-acme'", "defined in code")
    spec = await target.store.get_schedule(row)
    assert spec is not None and spec.paused
    assert await target.store.list_jobs() == []


@pytest.mark.asyncio
async def test_queues_and_instances(target: Target) -> None:
    await target.store.enqueue([NewJob("a"), NewJob("a"), NewJob("b", queue="q", delay=60)])
    queues, none = await asyncio.gather(
        in_thread(target, "queues", "--json"), in_thread(target, "instances")
    )
    assert queues.json() == {"default": {"queued": 2}, "q": {"scheduled": 1}}
    assert none.out == "no live instances\n"
    started = datetime.now(UTC)
    await target.store.record_instance(
        "web-1", host="h1", pid=42, started_at=started, info={"queues": ["default"]}, ttl=60
    )
    (instance,) = (await in_thread(target, "instances", "--json")).json()  # type: ignore[misc]
    assert (instance["name"], instance["host"], instance["pid"]) == ("web-1", "h1", 42)
    assert instance["info"] == {"queues": ["default"]}


@pytest.mark.asyncio
async def test_unknown_and_malformed_ids(target: Target) -> None:
    missing = str(uuid.uuid4())
    runs = await asyncio.gather(
        *(in_thread(target, "jobs", action, missing) for action in ("show", "cancel", "retry")),
        in_thread(target, "jobs", "show", "42"),
    )
    for run in runs[:3]:
        one_error_line(run, 1, missing)
    one_error_line(runs[3], 2, "'42'", "UUID")


@pytest.fixture
def sqlite_file(tmp_path: Path) -> Path:
    path = tmp_path / "env.db"

    async def create() -> None:
        async with SQLiteStore(path) as store:
            await store.enqueue([NewJob("from.env")])

    asyncio.run(create())
    return path


def test_the_store_can_come_from_the_environment(sqlite_file: Path) -> None:
    run = cli("jobs", "list", "--json", env={"BEAT_STORE": f"sqlite:///{sqlite_file}"})
    assert run.code == 0
    assert [j["task"] for j in run.json()] == ["from.env"]  # type: ignore[attr-defined]


def test_bad_store_urls_are_one_line_errors(tmp_path: Path) -> None:
    missing = tmp_path / "typo.db"
    unreachable = "postgresql://beat:s3cret@127.0.0.1:1/beat"
    calls = [
        ("jobs", "list"),
        ("jobs", "list", "--store", "mysql://db/x"),
        ("jobs", "list", "--store", f"sqlite:///{missing}"),
        ("schedules", "list", "--store", unreachable),
    ]
    with ThreadPoolExecutor(len(calls)) as pool:  # independent processes, side by side
        none, mysql, typo, down = pool.map(lambda args: cli(*args), calls)
    one_error_line(none, 2, "--store", "BEAT_STORE")
    one_error_line(mysql, 2, "'mysql://db/x'")
    one_error_line(typo, 2, str(missing))
    assert not missing.exists()  # a typo never creates an empty database
    one_error_line(down, 1, "unavailable")
    assert "s3cret" not in down.err
