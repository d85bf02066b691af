"""A store written by the previous schema version opens migrated, its jobs intact and usable
with the new features (SQLite from a version-1 file; PostgreSQL from a version-1 schema)."""

from __future__ import annotations

import asyncio
import sqlite3
import uuid
from pathlib import Path
from typing import Any

import pytest

from beat.stores import (
    JobStatus,
    LogEntry,
    NewJob,
    PostgresStore,
    ScheduleSpec,
    SQLiteStore,
    Store,
    Unique,
    _postgres_sql,
    _sqlite_sql,
)

pytestmark = pytest.mark.asyncio


async def _old_job_still_works(store: Store, id: uuid.UUID) -> None:
    old = await store.get(id)
    assert old is not None and old.args == [1] and old.status is JobStatus.QUEUED
    assert old.meta == {} and old.progress is None and old.unique_key is None
    [new] = await store.enqueue([NewJob("t", meta={"m": 1}, unique=Unique(key="k"))])
    assert new.meta == {"m": 1}
    claimed = await store.claim("w", queues=["default"], tasks=["t"], limit=1, lease=60)
    assert [r.id for r in claimed] == [id]
    assert await store.set_progress(id, 1, "w", 0.5)
    await store.add_logs(id, 1, [LogEntry(1, old.created_at, "INFO", "x", "hello")])
    assert [e.message for e in await store.get_logs(id)] == ["hello"]
    assert (await store.put_schedule(ScheduleSpec("s", "t", every=60))).version == 1


def _sqlite_v1(path: Path) -> uuid.UUID:
    """A file as the version-1 store left it, with one waiting job."""
    conn = sqlite3.connect(path, isolation_level=None)
    for statement in _sqlite_sql.MIGRATIONS[1]:
        conn.execute(statement)
    conn.execute("PRAGMA user_version = 1")
    id = uuid.uuid4()
    conn.execute(
        "INSERT INTO beat_jobs (id, task, args, kwargs, queue, priority, status, attempt,"
        " max_attempts, scheduled_at, created_at) VALUES (?, 't', '[1]', '{}', 'default', 0,"
        " 'queued', 0, 5, 0, 0)",
        (str(id),),
    )
    conn.close()
    return id


async def test_sqlite_version_1_file_is_migrated(tmp_path: Path) -> None:
    path = tmp_path / "v1.db"
    id = _sqlite_v1(path)
    async with SQLiteStore(path) as store:
        await _old_job_still_works(store, id)
    conn = sqlite3.connect(path)
    assert conn.execute("PRAGMA user_version").fetchone()[0] == _sqlite_sql.SCHEMA_VERSION == 5
    conn.close()


def _new_counter(path: Path) -> int:
    conn = sqlite3.connect(path)
    try:
        counter: int = conn.execute(
            "SELECT counter FROM beat_signals WHERE name = 'new'"
        ).fetchone()[0]
        return counter
    finally:
        conn.close()


async def test_sqlite_version_3_file_loses_autoincrement_and_keeps_its_jobs(
    tmp_path: Path,
) -> None:
    """Version 4 rebuilds beat_jobs: every row and seq kept, the order of waiting jobs kept,
    the indexes and the requeue trigger back, and new rows numbered after the old."""
    path = tmp_path / "v3.db"
    conn = sqlite3.connect(path, isolation_level=None)
    for step in (1, 2, 3):
        for statement in _sqlite_sql.MIGRATIONS[step]:
            conn.execute(statement)
    conn.execute("PRAGMA user_version = 3")
    ids = [uuid.uuid4() for _ in range(3)]
    for seq, id, status in zip((5, 9, 20), ids, ("queued", "queued", "dead"), strict=True):
        conn.execute(
            "INSERT INTO beat_jobs (seq, id, task, args, kwargs, queue, priority, status,"
            " attempt, max_attempts, scheduled_at, created_at, meta, finished_at)"
            " VALUES (?, ?, 't', '[1]', '{}', 'default', 0, ?, 0, 5, 0, 0, '{\"m\": 1}', ?)",
            (seq, str(id), status, 1 if status == "dead" else None),
        )
    conn.close()

    async with SQLiteStore(path) as store:
        assert [(r.id, r.meta) for r in await store.list_jobs()] == [(id, {"m": 1}) for id in ids]
        [new] = await store.enqueue([NewJob("t")])
        claimed = await store.claim("w", queues=["default"], tasks=["t"], limit=3, lease=60)
        assert [r.id for r in claimed] == [ids[0], ids[1], new.id]  # seq order
        before = _new_counter(path)
        assert (await store.retry(ids[2])).status is JobStatus.QUEUED
        assert _new_counter(path) == before + 1  # by the requeue trigger

    conn = sqlite3.connect(path)
    assert conn.execute("PRAGMA user_version").fetchone()[0] == 5
    rows = conn.execute("SELECT seq, id FROM beat_jobs ORDER BY seq").fetchall()
    assert rows == [(5, str(ids[0])), (9, str(ids[1])), (20, str(ids[2])), (21, str(new.id))]
    [table] = conn.execute("SELECT sql FROM sqlite_master WHERE name = 'beat_jobs'").fetchone()
    assert "AUTOINCREMENT" not in table
    names = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type != 'table'")}
    assert {
        "beat_jobs_due",
        "beat_jobs_leases",
        "beat_jobs_task",
        "beat_jobs_unique",
        "beat_jobs_finished",
        "beat_jobs_requeued",
    } <= names
    assert (
        conn.execute("SELECT count(*) FROM sqlite_sequence WHERE name = 'beat_jobs'").fetchone()[0]
        == 0
    )
    # Version 5: the queue first in the due index.
    due = [r[2] for r in conn.execute("PRAGMA index_info(beat_jobs_due)")]
    assert due == ["queue", "priority", "scheduled_at", "seq"]
    conn.close()


async def test_sqlite_stores_opening_a_version_1_file_together_migrate_it_once(
    tmp_path: Path,
) -> None:
    path = tmp_path / "v1.db"
    id = _sqlite_v1(path)
    stores = [SQLiteStore(path) for _ in range(6)]
    await asyncio.gather(*(s.open() for s in stores))
    try:
        for store in stores:
            assert (await store.get(id)).meta == {}  # type: ignore[union-attr]
        await _old_job_still_works(stores[0], id)
    finally:
        await asyncio.gather(*(s.close() for s in stores))


async def _postgres_v1(server: Any) -> tuple[str, uuid.UUID]:
    schema = f"m{uuid.uuid4().hex[:12]}"
    statements = [f"CREATE SCHEMA {schema}"]
    statements.append(f"CREATE TABLE {schema}.beat_schema_version (version integer NOT NULL)")
    statements += [s.replace("{s}", schema) for s in _postgres_sql.MIGRATIONS[1]]
    statements.append(f"INSERT INTO {schema}.beat_schema_version VALUES (1)")
    id = uuid.uuid4()
    statements.append(
        f"INSERT INTO {schema}.beat_jobs (id, task, args, kwargs, queue, priority, status,"
        f" attempt, max_attempts, scheduled_at, created_at) VALUES ('{id}', 't', '[1]', '{{}}',"
        " 'default', 0, 'queued', 0, 5, now() - interval '1 hour', now() - interval '1 hour')"
    )
    await server.aquery(*statements)
    return schema, id


async def test_postgres_version_1_schema_is_migrated(request: pytest.FixtureRequest) -> None:
    server: Any = request.getfixturevalue("store_postgres")
    schema, id = await _postgres_v1(server)
    async with PostgresStore(server.dsn(), schema=schema) as store:
        await _old_job_still_works(store, id)
    rows = await server.aquery(f"SELECT version FROM {schema}.beat_schema_version ORDER BY 1")
    assert [r["version"] for r in rows] == list(range(1, _postgres_sql.SCHEMA_VERSION + 1))


async def test_postgres_stores_opening_a_version_1_schema_together_migrate_it_once(
    request: pytest.FixtureRequest,
) -> None:
    server: Any = request.getfixturevalue("store_postgres")
    schema, id = await _postgres_v1(server)
    stores = [PostgresStore(server.dsn(), schema=schema, pool_size=1) for _ in range(6)]
    await asyncio.gather(*(s.open() for s in stores))
    try:
        for store in stores:
            assert (await store.get(id)).meta == {}  # type: ignore[union-attr]
        await _old_job_still_works(stores[0], id)
    finally:
        await asyncio.gather(*(s.close() for s in stores))
    rows = await server.aquery(f"SELECT version FROM {schema}.beat_schema_version ORDER BY 1")
    assert [r["version"] for r in rows] == list(range(1, _postgres_sql.SCHEMA_VERSION + 1))
