"""The client: enqueue durable jobs and follow them from a process that runs no worker.

A web server (or a script, a test) holds a :class:`Client` over a :class:`~beat.stores.Store`
and stores jobs that workers elsewhere run::

    async with beat.Client(SQLiteStore("jobs.db")) as client:
        send_email.bind(client)
        handle = await send_email.enqueue("a@b.c")           # typed by the task's signature
        handle = await client.enqueue(send_email, "a@b.c")   # the same
        await client.enqueue_by_name("emails.send", ["a@b.c"], delay=60)
        result = await handle.result(timeout=30)

Everything is validated before the store is touched, so a bad call stores nothing and says
why: non-JSON arguments raise :class:`~beat.SerializationError`, bad options, naive datetimes
and ids that are not UUIDs raise :class:`~beat.InvalidJobError`. A store that cannot be
reached raises :class:`~beat.StoreUnavailableError`.

**Who closes the store.** ``async with Client(store)`` (or ``await client.open()``) opens the
store if it is not open yet, and then the client owns it: leaving the block (``close()``)
closes it. A store that was already open when the client opened — one the application opened
itself and shares — is left open by ``close()``. A client needs no opening at all to be used
over a store opened elsewhere.
"""

from __future__ import annotations

import asyncio
import builtins
import reprlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from types import TracebackType
from typing import TYPE_CHECKING, Any, Final, ParamSpec, Self, TypedDict, Unpack, overload
from uuid import UUID

from . import tracing
from ._exceptions import (
    InvalidJobError,
    JobCancelledError,
    JobFailedError,
    JobNotFoundError,
    SerializationError,
    StoreUnavailableError,
)
from ._tasks import JobHandle, Task, TaskCall, TaskOptions
from ._units import MAX_DURATION, positive_seconds
from .stores import JobRecord, JobStatus, MemoryStore, SQLiteStore, Store
from .stores._base import JobShape, PreparedJob, check_shape, encode_json, prepare_job, to_uuid

if TYPE_CHECKING:
    from ._schedules_client import Schedules
    from .stores._base import LogEntry, Unique

__all__ = ["Client", "EnqueueOptions", "JobRequest", "Transaction"]

P = ParamSpec("P")

_WAIT_CHUNK: Final = 3600.0
"""``result(timeout=None)`` waits in steps this long (the store's waits need a bound)."""

_DEFAULT_OPTIONS: Final = TaskOptions()


class EnqueueOptions(TypedDict, total=False):
    """Options of a job enqueued by task name (:meth:`Client.enqueue_by_name`).

    ``retries``: attempts after the first (``max_attempts = retries + 1``); ``delay``
    (seconds or a timedelta) or ``at`` (an aware datetime): when the job becomes due. A
    task's ``backoff`` and ``timeout`` are not stored with the job: the worker applies those
    of the task it has registered under that name.
    """

    queue: str
    priority: int
    retries: int
    delay: float | timedelta
    at: datetime
    unique: Unique


_ENQUEUE_OPTIONS: Final = frozenset(EnqueueOptions.__annotations__)


@dataclass(frozen=True, slots=True)
class JobRequest:
    """One job to store with :meth:`Client.enqueue_many`: a task name, JSON arguments and the
    options it is stored with. Build it with :meth:`of` (typed by the task's signature) or
    :meth:`by_name`."""

    task: str
    args: Sequence[Any] = ()
    kwargs: Mapping[str, Any] = field(default_factory=dict)
    options: TaskOptions = _DEFAULT_OPTIONS

    @overload
    @classmethod
    def of(cls, task: Task[P] | TaskCall[P], /, *args: P.args, **kwargs: P.kwargs) -> Self: ...

    @overload
    @classmethod
    def of(cls, task: str, /, *args: Any, **kwargs: Any) -> Self: ...

    @classmethod
    def of(cls, task: Task[Any] | TaskCall[Any] | str, /, *args: Any, **kwargs: Any) -> Self:
        """A job of ``task`` (a :class:`~beat.Task`, ``task.options(...)``, or a task name
        with the default options) called with these arguments."""
        name, options = _task_and_options(task)
        return cls(name, args, kwargs, options)

    @classmethod
    def by_name(
        cls,
        name: str,
        args: Sequence[Any] = (),
        kwargs: Mapping[str, Any] | None = None,
        **options: Unpack[EnqueueOptions],
    ) -> Self:
        """A job of the task registered as ``name`` (in the workers), with ``options``."""
        return cls(name, args, {} if kwargs is None else kwargs, _options(options))


class Client:
    """Enqueue jobs into ``store`` and follow them; see the module docstring.

    It is the :class:`~beat._tasks.Enqueuer` of tasks bound to it (``task.bind(client)``).
    """

    __slots__ = ("_lock", "_opened", "_owns_store", "store")

    def __init__(self, store: Store) -> None:
        if not isinstance(store, Store):
            raise InvalidJobError(f"Client needs a beat.stores.Store, got {store!r}")
        self.store = store
        self._opened = False
        self._owns_store = False
        self._lock = asyncio.Lock()

    def __repr__(self) -> str:
        return f"<Client store={type(self.store).__name__}>"

    @property
    def schedules(self) -> Schedules:
        """The store's schedules: ``add``/``update``/``pause``/``resume``/``remove``/``get``/
        ``list`` (docs/schedules.md); every scheduler on the store picks changes up."""
        from ._schedules_client import Schedules

        return Schedules(self.store)

    # -- lifecycle ---------------------------------------------------------------------------
    async def open(self) -> None:
        """Open the store unless it is open already (then the client does not own it).
        Idempotent. :class:`StoreUnavailableError` / :class:`StoreConfigError` from the store."""
        async with self._lock:
            if self._opened:
                return
            was_open = await _store_is_open(self.store)
            if not was_open:
                await self.store.open()
            self._owns_store = not was_open
            self._opened = True

    async def close(self) -> None:
        """Close the store if this client opened it; otherwise leave it open. Idempotent."""
        async with self._lock:
            if not self._opened:
                return
            self._opened = False
            owned, self._owns_store = self._owns_store, False
            if owned:
                await self.store.close()

    async def __aenter__(self) -> Self:
        await self.open()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    # -- enqueue -----------------------------------------------------------------------------
    @overload
    async def enqueue(
        self, task: Task[P] | TaskCall[P], /, *args: P.args, **kwargs: P.kwargs
    ) -> JobHandle: ...

    @overload
    async def enqueue(self, task: str, /, *args: Any, **kwargs: Any) -> JobHandle: ...

    async def enqueue(
        self, task: Task[Any] | TaskCall[Any] | str, /, *args: Any, **kwargs: Any
    ) -> JobHandle:
        """Store one job of ``task`` — a :class:`~beat.Task`, ``task.options(delay=...)``, or
        a task name (default options; see :meth:`enqueue_by_name` for options) — called with
        these arguments. Returns once the job is durably stored."""
        return await self.submit(task, args, kwargs)

    async def enqueue_by_name(
        self,
        name: str,
        args: Sequence[Any] = (),
        kwargs: Mapping[str, Any] | None = None,
        **options: Unpack[EnqueueOptions],
    ) -> JobHandle:
        """Store one job of the task registered (in the workers) as ``name``.

        ``options``: ``queue``, ``priority``, ``retries``, ``delay``, ``at``, ``unique`` (see
        :class:`EnqueueOptions`); any other name raises :class:`InvalidJobError`.
        """
        request = JobRequest.by_name(name, args, kwargs, **options)
        [handle] = await self.enqueue_many([request])
        return handle

    async def enqueue_many(self, requests: Iterable[JobRequest]) -> builtins.list[JobHandle]:
        """Store several jobs in one transaction: all of them or, if one is invalid or the
        store fails, none. Handles come back in the order given.

        >>> await client.enqueue_many(                           # doctest: +SKIP
        ...     [JobRequest.of(send_email, "a@b.c"),
        ...      JobRequest.of(send_email.options(delay=60), "d@e.f"),
        ...      JobRequest.by_name("reports.build", [2024], queue="reports")]
        ... )
        """
        return await self._enqueue_requests(requests, None)

    async def enqueue_call(
        self, task: str, args: tuple[Any, ...], kwargs: dict[str, Any], options: TaskOptions
    ) -> JobHandle:
        """The :class:`~beat._tasks.Enqueuer` hook behind ``await task.enqueue(...)``."""
        [handle] = await self._store([self._prepare_one(task, args, kwargs, options)])
        return handle

    def in_transaction(self, connection: Any) -> Transaction:
        """A view of this client that enqueues on ``connection`` — an ``asyncpg`` connection
        inside the caller's open transaction — so the jobs exist exactly if that transaction
        commits (workers are woken at commit: NOTIFY is transactional)::

            async with pool.acquire() as conn, conn.transaction():
                await conn.execute("INSERT INTO orders ...")
                await client.in_transaction(conn).enqueue(ship_order, order_id)

        PostgreSQL only: :class:`InvalidJobError` for a client over another store, for
        something that is not an asyncpg connection, or for a connection with no
        transaction open.
        """
        check_transaction(self.store, connection)
        return Transaction(self, connection)

    async def submit(
        self,
        task: Task[Any] | TaskCall[Any] | str,
        args: Sequence[Any],
        kwargs: Mapping[str, Any],
        *,
        meta: Mapping[str, Any] | None = None,
        connection: Any = None,
    ) -> JobHandle:
        """:meth:`enqueue` with its arguments as values, plus the job's ``meta`` (JSON) and
        a transaction's ``connection`` (see :meth:`in_transaction`). Untyped: prefer
        :meth:`enqueue`."""
        name, options = _task_and_options(task)
        job = self._prepare_one(name, args, kwargs, options, meta)
        [handle] = await self._store([job], connection)
        return handle

    async def _enqueue_requests(
        self, requests: Iterable[JobRequest], connection: Any
    ) -> builtins.list[JobHandle]:
        if isinstance(requests, (JobRequest, str)):
            raise InvalidJobError("enqueue_many takes a list of JobRequest, not a single one")
        if not isinstance(requests, Iterable):
            raise InvalidJobError(
                f"enqueue_many takes a list (an iterable) of JobRequest, got {requests!r}"
            )
        meta = _trace_meta()  # one call, one trace context
        # The requests of one task and one options object (the usual batch) share a shape,
        # checked once. Keyed by the options' id, so each entry holds its options object too:
        # alive, its id cannot pass to another (`requests` may be a generator).
        shapes: dict[tuple[str, int], tuple[JobShape, TaskOptions, TaskOptions]] = {}
        jobs = []
        for index, request in enumerate(requests):
            if not isinstance(request, JobRequest):
                raise InvalidJobError(
                    f"requests[{index}] is a {type(request).__name__}, not a beat.JobRequest "
                    "(build one with JobRequest.of(task, *args) or JobRequest.by_name(...))"
                )
            where = f"[{index}] "
            key = (request.task, id(request.options))
            known = shapes.get(key)
            if known is None:
                shape, options = self._shape(request.task, request.options, where, meta)
                known = shapes[key] = (shape, options, request.options)
            shape, options, _ = known
            jobs.append(_prepare(shape, options, request.args, request.kwargs, where))
        return await self._store(jobs, connection) if jobs else []

    def _shape(
        self, task: str, options: TaskOptions, where: str, meta: dict[str, Any]
    ) -> tuple[JobShape, TaskOptions]:
        """The checked shape of ``task``'s jobs stored with ``options`` (validated, and
        returned too) and ``meta``."""
        if not isinstance(task, str) or not task or "\x00" in task:
            raise InvalidJobError(f"{where}task name must be a non-empty string, got {task!r}")
        if not isinstance(options, TaskOptions):
            raise InvalidJobError(f"{where}options must be a beat TaskOptions, got {options!r}")
        label = f"{where}{task!r}"
        try:
            options = options.validated()
        except InvalidJobError as exc:
            raise InvalidJobError(f"{label}: {exc}") from None
        shape = check_shape(
            f"{label} ",
            task=task,
            queue=options.queue,
            priority=options.priority,
            max_attempts=options.retries + 1,
            scheduled_at=options.at,
            delay=options.delay or 0.0,
            meta=meta,
        )
        return shape, options

    def _prepare_one(
        self,
        task: str,
        args: Sequence[Any],
        kwargs: Mapping[str, Any],
        options: TaskOptions,
        meta: Mapping[str, Any] | None = None,
    ) -> PreparedJob:
        carried = _trace_meta()
        if meta is not None:
            if not isinstance(meta, Mapping):
                raise SerializationError(
                    f"{task!r}: meta must be a dict (a mapping), got {type(meta).__name__}"
                )
            carried.update(meta)  # a key that is not a string: refused by check_shape
        shape, options = self._shape(task, options, "", carried)
        return _prepare(shape, options, args, kwargs, "")

    async def _store(
        self, jobs: builtins.list[PreparedJob], connection: Any = None
    ) -> builtins.list[JobHandle]:
        if connection is None:
            stored = await self.store.enqueue_prepared(jobs)
        else:
            check_transaction(self.store, connection)
            stored = await self.store.enqueue_prepared(jobs, connection=connection)  # type: ignore[call-arg]
        handles = []
        for enqueued, job in zip(stored, jobs, strict=True):
            task = job.shape.task
            if enqueued.conflict:  # the existing job, maybe another task's (global keys)
                task = enqueued.task or await self._task_of(enqueued.id, task)
            handles.append(JobHandle(enqueued.id, task, self, enqueued.conflict))
        return handles

    async def _task_of(self, id: UUID, default: str) -> str:
        """The task of stored job ``id``, for a store whose ``enqueue_prepared`` did not
        say (the job may since have been pruned: then ``default``)."""
        record = await self.store.get(id)
        return default if record is None else record.task

    async def logs(self, id: UUID | str, attempt: int | None = None) -> builtins.list[LogEntry]:
        """The log records the job's attempts captured (all attempts, or one), oldest first,
        each a :class:`beat.stores.LogEntry` (``attempt``, ``at``, ``level``, ``logger``,
        ``message``). :class:`JobNotFoundError` if there is no such job."""
        if attempt is not None and (
            isinstance(attempt, bool) or not isinstance(attempt, int) or attempt < 1
        ):
            raise InvalidJobError(f"attempt must be a positive integer or None, got {attempt!r}")
        return await self.store.get_logs(to_uuid(id), attempt=attempt)

    # -- follow ------------------------------------------------------------------------------
    async def get(self, id: UUID | str) -> JobRecord:
        """The job as stored now; :class:`JobNotFoundError` if there is none."""
        key = to_uuid(id)
        record = await self.store.get(key)
        if record is None:
            raise JobNotFoundError(f"no job with id {key}")
        return record

    async def get_record(self, id: UUID) -> JobRecord | None:
        """The job, or ``None`` (the :class:`~beat._tasks.Enqueuer` hook of handles)."""
        return await self.store.get(to_uuid(id))

    async def result(self, id: UUID | str, timeout: float | timedelta | None = None) -> Any:
        """Wait until the job is finished — run by any process — and return its JSON result.

        :class:`JobFailedError` (with the recorded error type, message, traceback and
        attempts) if it went ``dead``, :class:`JobCancelledError` if it was cancelled,
        :class:`TimeoutError` if it is still unfinished after ``timeout`` seconds (``None``:
        no limit, ``0``: look once; the job goes on either way), :class:`JobNotFoundError`.
        Waits on the store's wake-ups (PostgreSQL LISTEN/NOTIFY), not by polling.
        A ``timeout`` over 100 years (:data:`~beat._units.MAX_DURATION`) is refused with
        :class:`InvalidJobError`: wait with ``None``.
        """
        key = to_uuid(id)
        if timeout is None:
            while True:
                try:
                    record = await self.store.wait_finished(key, _WAIT_CHUNK)
                    break
                except TimeoutError:
                    continue
        else:
            seconds = positive_seconds(timeout, "timeout", allow_zero=True, maximum=MAX_DURATION)
            record = await self.store.wait_finished(key, seconds)
        return outcome(record)

    # -- manage ------------------------------------------------------------------------------
    async def cancel(self, id: UUID | str) -> JobRecord:
        """Cancel the job: at once if it waits; a running job gets a cancel request its
        worker acts on (its status changes when the worker stops it). A finished job is
        returned unchanged. :class:`JobNotFoundError` if there is none."""
        return await self.store.cancel(to_uuid(id))

    async def retry(self, id: UUID | str) -> JobRecord:
        """Queue a ``dead`` or ``cancelled`` job again now, with at least one more attempt.
        :class:`InvalidJobStateError` for a job in any other status."""
        return await self.store.retry(to_uuid(id))

    async def list(
        self,
        status: JobStatus | str | None = None,
        task: Task[Any] | str | None = None,
        queue: str | None = None,
        limit: int = 50,
        after: UUID | str | None = None,
        before: UUID | str | None = None,
    ) -> builtins.list[JobRecord]:
        """Jobs in the order they were enqueued (oldest first), filtered by ``status``,
        ``task`` (a task or its name) and ``queue``.

        Paging: ``after=page[-1].id`` gives the next ``limit`` jobs; ``before=page[0].id``
        the previous ones. Pages are stable (new jobs only appear at the end).
        """
        return await self.store.list_jobs(
            status=status,
            task=task.name if isinstance(task, Task) else task,
            queue=queue,
            limit=limit,
            after=None if after is None else to_uuid(after),
            before=None if before is None else to_uuid(before),
        )


class Transaction:
    """A :class:`Client` enqueueing on one asyncpg connection, inside its transaction (see
    :meth:`Client.in_transaction`). Jobs stored through it exist only once that
    transaction commits; a rollback leaves none."""

    __slots__ = ("client", "connection")

    def __init__(self, client: Client, connection: Any) -> None:
        self.client = client
        self.connection = connection

    @overload
    async def enqueue(
        self, task: Task[P] | TaskCall[P], /, *args: P.args, **kwargs: P.kwargs
    ) -> JobHandle: ...

    @overload
    async def enqueue(self, task: str, /, *args: Any, **kwargs: Any) -> JobHandle: ...

    async def enqueue(
        self, task: Task[Any] | TaskCall[Any] | str, /, *args: Any, **kwargs: Any
    ) -> JobHandle:
        """:meth:`Client.enqueue`, in the transaction."""
        return await self.client.submit(task, args, kwargs, connection=self.connection)

    async def enqueue_by_name(
        self,
        name: str,
        args: Sequence[Any] = (),
        kwargs: Mapping[str, Any] | None = None,
        **options: Unpack[EnqueueOptions],
    ) -> JobHandle:
        """:meth:`Client.enqueue_by_name`, in the transaction."""
        request = JobRequest.by_name(name, args, kwargs, **options)
        [handle] = await self.client._enqueue_requests([request], self.connection)
        return handle

    async def enqueue_many(self, requests: Iterable[JobRequest]) -> list[JobHandle]:
        """:meth:`Client.enqueue_many`, in the transaction."""
        return await self.client._enqueue_requests(requests, self.connection)

    def __repr__(self) -> str:
        return f"<Transaction of {self.client!r}>"


def check_transaction(store: Store, connection: Any) -> None:
    """:class:`InvalidJobError` unless ``store`` is a PostgresStore and ``connection`` an
    asyncpg connection with a transaction open."""
    if type(store).__module__ != "beat.stores._postgres":
        raise InvalidJobError(
            f"transactional enqueue needs a PostgresStore; this client's store is a "
            f"{type(store).__name__}, which cannot join a caller's transaction"
        )
    in_transaction = getattr(connection, "is_in_transaction", None)
    if not callable(in_transaction):
        raise InvalidJobError(
            f"connection must be an asyncpg connection (or pool connection), got {connection!r}"
        )
    if not in_transaction():
        raise InvalidJobError(
            "the connection has no transaction open: enqueue inside "
            "`async with connection.transaction():` so the jobs commit or roll back with it"
        )


def _trace_meta() -> dict[str, Any]:
    """The trace context to carry in a new job's meta: ``{}`` unless :mod:`beat.tracing` is
    enabled (then ``traceparent``, and ``tracestate`` if any). Off, it costs a flag test."""
    return dict(tracing.inject()) if tracing.ENABLED else {}


def outcome(record: JobRecord) -> Any:
    """The result of a finished job, or the exception its end calls for."""
    if record.status is JobStatus.SUCCEEDED:
        return record.result
    if record.status is JobStatus.DEAD:
        raise JobFailedError(
            f"job {record.id} ({record.task}) failed after {record.attempt} attempt(s): "
            f"{record.error_type}: {record.error_message}",
            record=record,
        )
    if record.status is JobStatus.CANCELLED:
        raise JobCancelledError(f"job {record.id} ({record.task}) was cancelled", record=record)
    raise InvalidJobError(f"job {record.id} is {record.status}, not finished")


def _task_and_options(task: Task[Any] | TaskCall[Any] | str) -> tuple[str, TaskOptions]:
    if isinstance(task, Task):
        return task.name, task.policy
    if isinstance(task, TaskCall):
        return task.task.name, task.options
    if isinstance(task, str):
        return task, _DEFAULT_OPTIONS
    raise InvalidJobError(f"expected a beat Task, task.options(...) or a task name, got {task!r}")


def _options(options: Mapping[str, Any]) -> TaskOptions:
    unknown = set(options) - _ENQUEUE_OPTIONS
    if unknown:
        raise InvalidJobError(
            f"unknown enqueue option(s) {sorted(unknown)}; known: {sorted(_ENQUEUE_OPTIONS)}"
        )
    return TaskOptions(**options).validated()


def _prepare(
    shape: JobShape,
    options: TaskOptions,
    args: Sequence[Any],
    kwargs: Mapping[str, Any],
    where: str,
) -> PreparedJob:
    """One job of ``shape`` with these arguments; errors name the job and the argument."""
    label = f"{where}{shape.task!r}"
    if not isinstance(args, (list, tuple)):
        raise SerializationError(
            f"{label}: args must be a list or tuple, got {type(args).__name__}"
        )
    if type(kwargs) is not dict:
        if not isinstance(kwargs, Mapping):
            kind = type(kwargs).__name__
            raise SerializationError(f"{label}: kwargs must be a dict, got {kind}")
        kwargs = dict(kwargs)
    try:
        return prepare_job(f"{label} ", shape, args, kwargs, options.unique)
    except SerializationError:
        _explain(label, args, kwargs)  # names the bad argument and shows it, if it is one
        raise


def _explain(label: str, args: Sequence[Any], kwargs: Mapping[str, Any]) -> None:
    """Raise the error of the first argument that is not JSON, naming it and showing it."""
    named = [(f"args[{position}]", value) for position, value in enumerate(args)]
    for key, value in kwargs.items():
        if not isinstance(key, str):
            raise SerializationError(f"{label}: keyword {key!r} is not a string")
        named.append((f"kwargs[{key!r}]", value))
    for name, value in named:
        try:
            encode_json(value, f"{label} {name}")
        except SerializationError as exc:
            raise SerializationError(f"{exc} (the value: {_shown(value)})") from None


_REPR = reprlib.Repr()
_REPR.maxstring = _REPR.maxother = 80
_REPR.maxlong = 40  # characters shown of a long int


def _shown(value: Any) -> str:
    """A short repr of a bad argument for an error message, never an error itself: a
    ``__repr__`` that raises, or an int too long to print, shows as its type."""
    try:
        shown = _REPR.repr(value)
    except Exception:
        if isinstance(value, int):  # past sys.get_int_max_str_digits()
            return f"<{type(value).__name__} of {value.bit_length()} bits>"
        return f"<{type(value).__name__} object>"
    return shown if len(shown) <= 80 else shown[:77] + "..."


async def _store_is_open(store: Store) -> bool:
    """Whether ``store`` is open. The stores do not say so publicly; the built-in ones are
    read directly, any other is asked the time (a closed store refuses)."""
    if isinstance(store, MemoryStore):
        return bool(store._open)
    if isinstance(store, SQLiteStore):
        return store._executor is not None
    if type(store).__module__ == "beat.stores._postgres":
        return getattr(store, "_pool", None) is not None
    try:
        await store.now()
    except StoreUnavailableError:
        return False
    return True
