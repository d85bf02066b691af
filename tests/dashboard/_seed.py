"""Jobs in every state (and hostile strings) written through the real store interface."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from uuid import UUID

from beat.stores import LogEntry, NewJob, ScheduleSpec, Store

EVIL = "<script>alert('x')</script>"
TRACEBACK = (
    "Traceback (most recent call last):\n"
    '  File "payments.py", line 12, in charge\n'
    "    raise ValueError('card declined')\n"
    "ValueError: card declined"
)


@dataclass(frozen=True)
class Seeded:
    queued: UUID
    scheduled: UUID
    running: UUID
    succeeded: UUID
    dead: UUID
    cancelled: UUID
    evil: UUID


async def _one(store: Store, job: NewJob) -> UUID:
    return (await store.enqueue([job]))[0].id


async def _claim(store: Store, task: str, queue: str = "default") -> int:
    [record] = await store.claim("worker-1", queues=[queue], tasks=[task], limit=1, lease=600)
    return record.attempt


async def seed(store: Store) -> Seeded:
    now = datetime.now(UTC)
    queued = await _one(store, NewJob("emails.send", ["a@example.com", "Welcome"], queue="mail"))
    scheduled = await _one(store, NewJob("reports.build", delay=3600))
    running = await _one(store, NewJob("video.encode", [42]))
    attempt = await _claim(store, "video.encode")
    await store.set_progress(running, attempt, "worker-1", {"done": 3, "total": 10})
    succeeded = await _one(store, NewJob("sums.add", [1, 2]))
    attempt = await _claim(store, "sums.add")
    await store.complete(succeeded, attempt, "worker-1", {"sum": 3})

    dead = await _one(
        store,
        NewJob(
            "payments.charge",
            kwargs={"amount": 10, "currency": "EUR"},
            max_attempts=1,
            meta={"parent": "0d9b6c1e-0000-4000-8000-000000000000"},
        ),
    )
    attempt = await _claim(store, "payments.charge")
    await store.add_logs(
        dead,
        attempt,
        [
            LogEntry(attempt, now, "INFO", "payments", "charging card ending 4242"),
            LogEntry(attempt, now, "ERROR", "payments", "gateway said: card declined"),
        ],
    )
    await store.fail(
        dead,
        attempt,
        "worker-1",
        error_type="ValueError",
        message="card declined",
        traceback=TRACEBACK,
    )
    cancelled = await _one(store, NewJob("cleanup.tmp"))
    await store.cancel(cancelled)

    evil = await _one(
        store, NewJob(EVIL, [EVIL], {"k": EVIL}, queue=f"q{EVIL}", max_attempts=1, meta={"m": EVIL})
    )
    attempt = await _claim(store, EVIL, f"q{EVIL}")
    await store.add_logs(evil, attempt, [LogEntry(attempt, now, EVIL, EVIL, EVIL)])
    await store.fail(evil, attempt, "worker-1", error_type=EVIL, message=EVIL, traceback=EVIL)

    await store.record_instance(
        "worker-1", host="host-a", pid=4242, started_at=now, info={"queues": ["default"]}, ttl=600
    )
    await store.record_instance(EVIL, host=EVIL, pid=1, started_at=now, info={EVIL: EVIL}, ttl=600)
    await store.put_schedule(
        ScheduleSpec(name="nightly-report", task="reports.build", cron="0 3 * * *")
    )
    await store.put_schedule(ScheduleSpec(name=EVIL, task=EVIL, every=60.0))
    return Seeded(queued, scheduled, running, succeeded, dead, cancelled, evil)
