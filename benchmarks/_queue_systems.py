"""One adapter per durable job queue, all with the same verbs (see ``bench_queue.py``).

Every adapter: ``open()`` connects and creates its schema (never timed), ``enqueue_one(i)``
stores one job through the system's usual single-job call, ``enqueue_many(items)`` through
its batch call, ``pending()`` counts the jobs not finished yet (read from the database, so
it is what any process would see), ``start_worker(concurrency)`` / ``stop_worker()`` run the
system's own worker in this process, ``close()`` releases connections.

The job function of every system is the same no-op that calls :data:`ON_START` with its one
integer argument (the pickup scenario sets it to report when the job started).

Peers are optional: each is imported inside its adapter, and :func:`missing` names the
packages that are absent so the benchmark can skip that system and say so.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
import sqlite3
from collections.abc import Callable, Sequence
from datetime import timedelta
from pathlib import Path
from typing import Any

TASK = "noop"
QUEUE = "default"


def _ignore(i: int) -> None:
    return None


ON_START: Callable[[int], None] = _ignore
"""Called first thing by every system's job function, with the job's argument."""


def on_start(i: int) -> None:
    ON_START(i)


class System:
    name = "?"
    modules: tuple[str, ...] = ()
    note = ""

    def __init__(self, dsn: str, directory: Path) -> None:
        self.dsn = dsn
        self.directory = directory

    async def open(self) -> None:
        raise NotImplementedError

    async def close(self) -> None:
        raise NotImplementedError

    async def enqueue_one(self, i: int) -> None:
        raise NotImplementedError

    async def enqueue_many(self, items: Sequence[int]) -> None:
        raise NotImplementedError

    async def enqueue_later(self, items: Sequence[int], seconds: float) -> None:
        """``enqueue_many``, each job due ``seconds`` from now (the backlog of jobs due
        later that ``pickup_backlog`` measures with)."""
        raise NotImplementedError

    async def pending(self) -> int:
        raise NotImplementedError

    async def start_worker(self, concurrency: int) -> None:
        raise NotImplementedError

    async def stop_worker(self) -> None:
        raise NotImplementedError


async def _pg_count(dsn: str, sql: str) -> Any:
    import asyncpg  # type: ignore[import-untyped]

    conn = await asyncpg.connect(dsn)
    try:
        return await conn.fetchval(sql)
    finally:
        await conn.close()


class _PgCounter:
    """One connection that counts unfinished jobs, for the poller (not the system's own)."""

    def __init__(self, dsn: str, sql: str) -> None:
        self.dsn = dsn
        self.sql = sql
        self.conn: Any = None

    async def __call__(self) -> int:
        import asyncpg

        if self.conn is None:
            self.conn = await asyncpg.connect(self.dsn)
        count: int = await self.conn.fetchval(self.sql)
        return count

    async def close(self) -> None:
        if self.conn is not None:
            await self.conn.close()
            self.conn = None


# -------------------------------------------------------------------------------------------
# beat
# -------------------------------------------------------------------------------------------
class _Beat(System):
    """beat through its public surface: ``beat.Client`` to enqueue, ``beat.Worker`` to run.

    Without ``beat._client`` (an older tree) enqueues go through ``Store.enqueue`` and the
    report says so; without ``beat._worker`` the worker metrics are skipped for beat.
    """

    modules = ()
    _PENDING = "SELECT count(*) FROM beat_jobs WHERE status IN ('queued', 'running')"

    def make_store(self) -> Any:
        raise NotImplementedError

    def __init__(self, dsn: str, directory: Path) -> None:
        super().__init__(dsn, directory)
        self.store: Any = None
        self.client: Any = None
        self.task: Any = None
        self.worker: Any = None

    async def open(self) -> None:
        from beat._tasks import TaskRegistry, task

        self.store = self.make_store()

        async def noop(ctx: Any, i: int) -> None:
            on_start(i)

        self.task = task(noop, name=TASK, retries=0)
        self.registry = TaskRegistry()
        self.registry.add(self.task)
        try:
            from beat._client import Client
        except ImportError:
            await self.store.open()
        else:
            self.client = Client(self.store)
            await self.client.open()
            self.task.bind(self.client)

    async def close(self) -> None:
        if self.client is not None:
            await self.client.close()
        elif self.store is not None:
            await self.store.close()

    async def enqueue_one(self, i: int) -> None:
        if self.client is not None:
            await self.task.enqueue(i)
            return
        from beat.stores import NewJob

        await self.store.enqueue([NewJob(TASK, (i,), max_attempts=1)])

    async def enqueue_many(self, items: Sequence[int]) -> None:
        if self.client is not None:
            from beat._client import JobRequest

            await self.client.enqueue_many([JobRequest.of(self.task, i) for i in items])
            return
        from beat.stores import NewJob

        await self.store.enqueue([NewJob(TASK, (i,), max_attempts=1) for i in items])

    async def enqueue_later(self, items: Sequence[int], seconds: float) -> None:
        from beat.stores import NewJob

        if self.client is not None:
            from beat._client import JobRequest

            later = self.task.options(delay=seconds)
            await self.client.enqueue_many([JobRequest.of(later, i) for i in items])
            return
        jobs = [NewJob(TASK, (i,), max_attempts=1, delay=seconds) for i in items]
        await self.store.enqueue(jobs)

    async def start_worker(self, concurrency: int) -> None:
        from beat._worker import Worker  # the product's worker; no stand-in loop

        self.worker = Worker(
            self.store, self.registry, queues=[QUEUE], concurrency=concurrency, lease=60.0
        )
        await self.worker.start()

    async def stop_worker(self) -> None:
        if self.worker is not None:
            await self.worker.stop(5.0)

    @property
    def surface(self) -> str:
        return "beat.Client" if self.client is not None else "Store.enqueue"


class BeatPostgres(_Beat):
    name = "beat-pg"
    modules = ("asyncpg",)

    def make_store(self) -> Any:
        from beat.stores._postgres import PostgresStore

        return PostgresStore(self.dsn)

    def counter(self) -> Any:
        return _PgCounter(self.dsn, self._PENDING)


class BeatSQLite(_Beat):
    name = "beat-sqlite"
    note = "a file in a temp dir, WAL, synchronous=FULL"

    @property
    def path(self) -> Path:
        return self.directory / "jobs.sqlite3"

    def make_store(self) -> Any:
        from beat.stores import SQLiteStore

        return SQLiteStore(self.path)

    def counter(self) -> Any:
        path, sql = self.path, self._PENDING

        class Counter:
            conn: sqlite3.Connection | None = None

            async def __call__(self) -> int:
                if self.conn is None:
                    self.conn = sqlite3.connect(path, timeout=10.0)
                count: int = self.conn.execute(sql).fetchone()[0]
                return count

            async def close(self) -> None:
                if self.conn is not None:
                    self.conn.close()

        return Counter()


# -------------------------------------------------------------------------------------------
# procrastinate 3.x
# -------------------------------------------------------------------------------------------
class Procrastinate(System):
    """``task.defer_async`` / ``task.batch_defer_async``; ``app.run_worker_async`` with
    ``concurrency`` and LISTEN/NOTIFY (its default)."""

    name = "procrastinate"
    modules = ("procrastinate", "psycopg")

    def __init__(self, dsn: str, directory: Path) -> None:
        super().__init__(dsn, directory)
        self.app: Any = None
        self.task: Any = None
        self._run: asyncio.Task[None] | None = None

    async def open(self) -> None:
        import procrastinate

        self.app = procrastinate.App(connector=procrastinate.PsycopgConnector(conninfo=self.dsn))

        async def noop(i: int) -> None:
            on_start(i)

        self.task = self.app.task(name=TASK, queue=QUEUE)(noop)
        await self.app.open_async()
        installed = await _pg_count(
            self.dsn, "SELECT to_regclass('procrastinate_jobs') IS NOT NULL"
        )
        if not installed:
            await self.app.schema_manager.apply_schema_async()

    async def close(self) -> None:
        if self.app is not None:
            await self.app.close_async()

    async def enqueue_one(self, i: int) -> None:
        await self.task.defer_async(i=i)

    async def enqueue_many(self, items: Sequence[int]) -> None:
        await self.task.batch_defer_async(*[{"i": i} for i in items])

    async def enqueue_later(self, items: Sequence[int], seconds: float) -> None:
        later = self.task.configure(schedule_in={"seconds": seconds})
        await later.batch_defer_async(*[{"i": i} for i in items])

    def counter(self) -> Any:
        return _PgCounter(
            self.dsn, "SELECT count(*) FROM procrastinate_jobs WHERE status IN ('todo', 'doing')"
        )

    async def start_worker(self, concurrency: int) -> None:
        self._run = asyncio.create_task(
            self.app.run_worker_async(
                queues=[QUEUE],
                concurrency=concurrency,
                install_signal_handlers=False,
                listen_notify=True,
                wait=True,
            )
        )

    async def stop_worker(self) -> None:
        if self._run is not None:
            self._run.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._run


# -------------------------------------------------------------------------------------------
# PgQueuer 1.x
# -------------------------------------------------------------------------------------------
class PgQueuer(System):
    """``queries.enqueue`` with scalars / with lists (its batch form); ``PgQueuer.run`` with
    ``batch_size`` = concurrency, LISTEN/NOTIFY on its one connection (the CLI's setup)."""

    name = "pgqueuer"
    modules = ("pgqueuer", "asyncpg")

    def __init__(self, dsn: str, directory: Path) -> None:
        super().__init__(dsn, directory)
        self.conn: Any = None
        self.queries: Any = None
        self.pgq: Any = None
        self._run: asyncio.Task[None] | None = None

    async def open(self) -> None:
        import asyncpg
        from pgqueuer import AsyncpgDriver, Queries

        self.conn = await asyncpg.connect(self.dsn)
        driver = AsyncpgDriver(self.conn)
        self.queries = Queries(driver)
        installed = await self.conn.fetchval("SELECT to_regclass('pgqueuer') IS NOT NULL")
        if not installed:
            await self.queries.install()

    async def close(self) -> None:
        if self.conn is not None and not self.conn.is_closed():
            await self.conn.close()

    async def enqueue_one(self, i: int) -> None:
        await self.queries.enqueue(TASK, str(i).encode())

    async def enqueue_many(self, items: Sequence[int]) -> None:
        n = len(items)
        await self.queries.enqueue([TASK] * n, [str(i).encode() for i in items], [0] * n)

    async def enqueue_later(self, items: Sequence[int], seconds: float) -> None:
        n, later = len(items), timedelta(seconds=seconds)
        payloads = [str(i).encode() for i in items]
        await self.queries.enqueue([TASK] * n, payloads, [0] * n, [later] * n)

    def counter(self) -> Any:
        return _PgCounter(self.dsn, "SELECT count(*) FROM pgqueuer")

    async def start_worker(self, concurrency: int) -> None:
        from pgqueuer import AsyncpgDriver
        from pgqueuer import PgQueuer as PgQ

        self.pgq = PgQ(AsyncpgDriver(self.conn))

        @self.pgq.entrypoint(TASK)
        async def noop(job: Any) -> None:
            on_start(int(job.payload))

        self._run = asyncio.create_task(self.pgq.run(batch_size=concurrency))

    async def stop_worker(self) -> None:
        if self.pgq is not None:
            self.pgq.shutdown.set()
        if self._run is not None:
            with contextlib.suppress(TimeoutError, asyncio.CancelledError):
                await asyncio.wait_for(self._run, 10.0)


# -------------------------------------------------------------------------------------------
# oban (Python package, 0.7)
# -------------------------------------------------------------------------------------------
class Oban(System):
    """Oban for Python: ``Worker.enqueue`` / ``oban.enqueue_many``; a server-mode ``Oban``
    with ``queues={"default": concurrency}`` (its own producer, LISTEN/NOTIFY notifier)."""

    name = "oban"
    modules = ("oban", "psycopg")
    note = "oban needs Python >= 3.12"

    def __init__(self, dsn: str, directory: Path) -> None:
        super().__init__(dsn, directory)
        self.oban: Any = None
        self.pool: Any = None
        self.worker_cls: Any = None

    @staticmethod
    def _worker_class() -> Any:
        from oban import worker

        @worker(queue=QUEUE, max_attempts=1)
        class Noop:
            async def process(self, job: Any) -> None:
                on_start(job.args["i"])

        return Noop

    async def open(self) -> None:
        from oban import Oban as ObanApp
        from oban.schema import install

        self.worker_cls = self._worker_class()
        self.pool = await ObanApp.create_pool(dsn=self.dsn)
        installed = await _pg_count(self.dsn, "SELECT to_regclass('oban_jobs') IS NOT NULL")
        if not installed:
            await install(self.pool)
        self.oban = ObanApp(pool=self.pool)  # client mode: enqueues only
        await self.oban.start()

    async def close(self) -> None:
        if self.oban is not None:
            await self.oban.stop()
        if self.pool is not None:
            await self.pool.close()

    async def enqueue_one(self, i: int) -> None:
        await self.worker_cls.enqueue({"i": i})

    async def enqueue_many(self, items: Sequence[int]) -> None:
        await self.oban.enqueue_many([self.worker_cls.new({"i": i}) for i in items])

    async def enqueue_later(self, items: Sequence[int], seconds: float) -> None:
        jobs = [self.worker_cls.new({"i": i}, scheduled_in=seconds) for i in items]
        await self.oban.enqueue_many(jobs)

    def counter(self) -> Any:
        return _PgCounter(
            self.dsn,
            "SELECT count(*) FROM oban_jobs "
            "WHERE state IN ('available', 'scheduled', 'executing', 'retryable')",
        )

    async def start_worker(self, concurrency: int) -> None:
        from oban import Oban as ObanApp

        await self.oban.stop()
        self.oban = ObanApp(pool=self.pool, queues={QUEUE: concurrency})
        await self.oban.start()

    async def stop_worker(self) -> None:
        pass


SYSTEMS: dict[str, type[System]] = {
    cls.name: cls for cls in (BeatSQLite, BeatPostgres, Procrastinate, PgQueuer, Oban)
}
BEAT = ("beat-sqlite", "beat-pg")


def missing(name: str) -> list[str]:
    """The modules ``name`` needs that are not importable here."""
    return [m for m in SYSTEMS[name].modules if importlib.util.find_spec(m) is None]
