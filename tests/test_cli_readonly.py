"""The CLI never creates or migrates a store: pointed at another application's SQLite file,
an empty file, a mistyped PostgreSQL ``?schema=``, or a store of another schema version, every
command says so in one line and exits 1, and the target is left exactly as it was (no beat
tables, no schema, no version change, the SQLite journal mode untouched)."""

from __future__ import annotations

import asyncio
import hashlib
import sqlite3
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from beat.stores import NewJob, PostgresStore, SQLiteStore, StoreConfigError
from beat.stores._postgres_sql import SCHEMA_VERSION as PG_VERSION
from beat.stores._sqlite_sql import SCHEMA_VERSION as SQLITE_VERSION
from tests.coordinators.conftest import PostgresServer
from tests.stores.conftest import store_postgres  # noqa: F401  (the session's PostgreSQL)
from tests.test_cli_jobs import Run, cli, one_error_line

pytestmark = pytest.mark.slow  # interpreter starts

# Every store command: the inspection ones first.
COMMANDS = [
    ("jobs", "list"),
    ("jobs", "show", str(uuid.UUID(int=1))),
    ("queues",),
    ("schedules", "list"),
    ("instances",),
    ("jobs", "cancel", str(uuid.UUID(int=1))),
    ("schedules", "pause", "nightly"),
]


def run_all(url: str, commands: list[tuple[str, ...]] = COMMANDS) -> list[Run]:
    with ThreadPoolExecutor(2) as pool:  # independent processes; the machine has 2 cores
        return list(pool.map(lambda args: cli(*args, "--store", url), commands))


def sqlite_state(path: Path) -> tuple[str, list[str], int, str]:
    """What the CLI must not change: the bytes, the tables, user_version, journal mode."""
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    conn = sqlite3.connect(path.absolute().as_uri() + "?mode=ro", uri=True)
    try:
        tables = [r[0] for r in conn.execute("SELECT name FROM sqlite_master ORDER BY name")]
        version = conn.execute("PRAGMA user_version").fetchone()[0]
        mode = conn.execute("PRAGMA journal_mode").fetchone()[0]
    finally:
        conn.close()
    return digest, tables, version, mode


def test_another_applications_sqlite_file_is_refused_and_left_alone(tmp_path: Path) -> None:
    path = tmp_path / "app.db"
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT)")
    conn.execute("INSERT INTO users (name) VALUES ('ada')")
    conn.commit()
    conn.close()
    before = sqlite_state(path)
    assert before[1:] == (["users"], 0, "delete")
    for run in run_all(f"sqlite:///{path}"):
        one_error_line(run, 1, "not a beat store", str(path))
    assert sqlite_state(path) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["app.db"]


def test_an_empty_file_stays_empty(tmp_path: Path) -> None:
    path = tmp_path / "empty.db"
    path.touch()
    for run in run_all(f"sqlite:///{path}", [("jobs", "list"), ("queues",)]):
        one_error_line(run, 1, "not a beat store", str(path))
    assert path.stat().st_size == 0


def test_a_file_that_is_no_database_is_one_line(tmp_path: Path) -> None:
    path = tmp_path / "notes.db"
    path.write_text("not a database\n" * 200)
    one_error_line(cli("jobs", "list", "--store", f"sqlite:///{path}"), 1, "not a SQLite database")
    assert path.read_text() == "not a database\n" * 200


@pytest.mark.parametrize(
    ("version", "words"),
    [
        (SQLITE_VERSION - 1, ["worker or scheduler", "migrates it"]),
        (SQLITE_VERSION + 1, ["upgrade beat"]),
    ],
)
def test_a_sqlite_store_of_another_version_is_not_migrated(
    tmp_path: Path, version: int, words: list[str]
) -> None:
    path = tmp_path / "jobs.db"

    async def create() -> None:
        async with SQLiteStore(path) as store:
            await store.enqueue([NewJob("a.task")])

    asyncio.run(create())
    conn = sqlite3.connect(path)
    conn.execute(f"PRAGMA user_version = {version}")
    conn.close()
    (run,) = run_all(f"sqlite:///{path}", [("jobs", "list")])
    one_error_line(run, 1, f"version {version}", f"{SQLITE_VERSION}", *words)
    assert sqlite_state(path)[2] == version


# -------------------------------------------------------------------------------------------
# PostgreSQL
# -------------------------------------------------------------------------------------------
def url_of(server: PostgresServer, schema: str) -> str:
    """A URL with a password of its own (the server's superuser's is its name)."""
    role = f"r{uuid.uuid4().hex[:8]}"
    server.query(f"CREATE ROLE {role} SUPERUSER LOGIN PASSWORD 'S3cr3t-pw'")
    return f"postgresql://{role}:S3cr3t-pw@127.0.0.1:{server.port}/postgres?schema={schema}"


def schemas(server: PostgresServer, name: str) -> list[str]:
    rows = server.query(f"SELECT nspname FROM pg_namespace WHERE nspname = '{name}'")
    return [r[0] for r in rows]


def tables(server: PostgresServer, schema: str) -> list[str]:
    rows = server.query(f"SELECT tablename FROM pg_tables WHERE schemaname = '{schema}' ORDER BY 1")
    return [r[0] for r in rows]


def test_a_mistyped_postgres_schema_is_not_created(store_postgres: PostgresServer) -> None:  # noqa: F811
    typo = f"beat_prdo_{uuid.uuid4().hex[:6]}"
    for run in run_all(url_of(store_postgres, typo)):
        one_error_line(run, 1, "not a beat store", f"no schema {typo!r}", ":***@")
        assert "S3cr3t" not in run.err
    assert schemas(store_postgres, typo) == []


def test_a_postgres_schema_without_beat_tables_is_left_alone(
    store_postgres: PostgresServer,  # noqa: F811
) -> None:
    schema = f"app_{uuid.uuid4().hex[:6]}"
    store_postgres.query(f"CREATE SCHEMA {schema}", f"CREATE TABLE {schema}.users (id int)")
    for run in run_all(url_of(store_postgres, schema), COMMANDS[:3]):
        one_error_line(run, 1, "not a beat store", f"schema {schema!r}", "no beat tables")
    assert tables(store_postgres, schema) == ["users"]


@pytest.mark.parametrize(
    ("change", "version", "words"),
    [
        ("DELETE FROM {s}.beat_schema_version WHERE version = {v}", PG_VERSION - 1, ["migrates"]),
        ("INSERT INTO {s}.beat_schema_version VALUES ({v} + 1)", PG_VERSION + 1, ["upgrade"]),
    ],
)
def test_a_postgres_store_of_another_version_is_not_migrated(
    store_postgres: PostgresServer,  # noqa: F811
    change: str,
    version: int,
    words: list[str],
) -> None:
    schema = f"c{uuid.uuid4().hex[:12]}"

    async def create() -> None:
        async with PostgresStore(store_postgres.dsn(), schema=schema):
            pass

    asyncio.run(create())
    store_postgres.query(change.format(s=schema, v=PG_VERSION))
    (run,) = run_all(url_of(store_postgres, schema), [("jobs", "list")])
    one_error_line(run, 1, f"version {version}", *words)
    rows = store_postgres.query(f"SELECT max(version) FROM {schema}.beat_schema_version")
    assert rows[0][0] == version


def test_a_read_only_postgres_role_can_list_and_show(
    store_postgres: PostgresServer,  # noqa: F811
) -> None:
    """The CLI opens with ``migrate=False``: no DDL and no migration lock, so a role that may
    only read the schema (an on-call's credentials) can look; a store opened the usual way
    with those credentials cannot even start."""
    schema = f"ro{uuid.uuid4().hex[:10]}"

    async def create() -> str:
        async with PostgresStore(store_postgres.dsn(), schema=schema) as store:
            [job] = await store.enqueue([NewJob("reports.build", (7,))])
            return str(job.id)

    job_id = asyncio.run(create())
    role = f"ro{uuid.uuid4().hex[:8]}"
    store_postgres.query(
        f"CREATE ROLE {role} LOGIN PASSWORD 'S3cr3t-pw'",
        f"GRANT USAGE ON SCHEMA {schema} TO {role}",
        f"GRANT SELECT ON ALL TABLES IN SCHEMA {schema} TO {role}",
    )
    url = f"postgresql://{role}:S3cr3t-pw@127.0.0.1:{store_postgres.port}/postgres?schema={schema}"
    listed, shown = run_all(url, [("jobs", "list"), ("jobs", "show", job_id)])
    assert (listed.code, shown.code) == (0, 0), (listed.err, shown.err)
    assert job_id in listed.out and "reports.build" in shown.out

    async def open_migrating() -> None:
        dsn = f"postgresql://{role}:S3cr3t-pw@127.0.0.1:{store_postgres.port}/postgres"
        async with PostgresStore(dsn, schema=schema):
            pass

    with pytest.raises(StoreConfigError, match="permission denied"):
        asyncio.run(open_migrating())
