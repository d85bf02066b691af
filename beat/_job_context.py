"""What a task function gets as ``ctx``: :class:`JobContext`, one per execution.

The worker (``_worker.py``) makes one for each claimed job and sets its stop reason when it
wants the run to end; everything else here is what a task may do through it.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import timedelta
from typing import TYPE_CHECKING, Any, Literal, ParamSpec, TypeAlias, overload
from uuid import UUID

from ._exceptions import InvalidJobError, StoreUnavailableError
from .stores._base import encode_json, to_uuid

if TYPE_CHECKING:
    from ._tasks import JobHandle, Task, TaskCall
    from ._worker import Worker
    from .stores import JobRecord

P = ParamSpec("P")

__all__ = ["OUTAGE", "JobContext", "StopReason"]

log = logging.getLogger("beat.worker")

#: Errors of a store call that mean "cannot reach the store now" (retry later).
OUTAGE = (StoreUnavailableError, OSError)

#: Why the worker stops a run: a cancel request, a lost lease, or its own shutdown.
StopReason: TypeAlias = Literal["cancel", "lost", "shutdown"]


class JobContext:
    """What a task function gets as ``ctx``: which execution this is, and what it may do.

    ``(id, attempt)`` names this execution; pass ``attempt`` on as a fencing token when the
    task writes elsewhere. ``cancelled`` turns true once the worker wants this run to stop
    (cancel request, lease lost, shutdown): coroutine functions are cancelled anyway, plain
    functions in threads cannot be and may poll it.

    ``await ctx.progress(value)`` stores a JSON progress value readable with
    ``client.get(id).progress`` while the job runs; ``await ctx.enqueue(task, ...)`` stores a
    child job (its ``meta["parent"]`` is this job's id) and ``await ctx.wait(child, timeout)``
    waits for one. **Waiting holds this run's worker slot**: see ``docs/worker.md``.
    """

    __slots__ = (
        "_clock",
        "_loop",
        "_owner",
        "_stop",
        "args",
        "attempt",
        "id",
        "kwargs",
        "queue",
        "task",
        "worker",
    )

    def __init__(self, record: JobRecord, owner: Worker) -> None:
        self.id: UUID = record.id
        self.task: str = record.task
        self.attempt: int = record.attempt
        self.args: list[Any] = record.args
        self.kwargs: dict[str, Any] = record.kwargs
        self.queue: str = record.queue
        self.worker: str = owner._name
        self._owner = owner
        self._clock = owner._clock
        self._loop = asyncio.get_running_loop()
        self._stop: StopReason | None = None

    @property
    def cancelled(self) -> bool:
        """True once the worker asked this run to stop."""
        return self._stop is not None

    async def sleep(self, seconds: float) -> None:
        """Sleep on the worker's clock (a test's fake clock drives it). Coroutine tasks only."""
        await self._clock.sleep(seconds)

    async def progress(self, value: Any) -> bool:
        """Store ``value`` (JSON) as the job's progress, replacing the previous one; it is
        kept after the job ends. Fenced like the outcome: ``False`` if this execution no
        longer owns the job, or if the store could not be reached (logged; the run goes on).
        :class:`~beat.SerializationError` if ``value`` is not JSON (nothing stored)."""
        encode_json(value, f"progress of job {self.id}")
        try:
            return await self._owner._store.set_progress(self.id, self.attempt, self.worker, value)
        except OUTAGE as exc:
            log.warning("job %s (%s): progress not stored (%s)", self.id, self.task, exc)
            return False

    def report_progress(self, value: Any, timeout: float = 30.0) -> bool:
        """:meth:`progress` for a plain (sync) task function, from its worker thread."""
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            pass  # a worker thread, as it should be
        else:
            raise InvalidJobError(
                "report_progress() is for plain functions in worker threads; "
                "coroutine tasks use `await ctx.progress(value)`"
            )
        future = asyncio.run_coroutine_threadsafe(self.progress(value), self._loop)
        return future.result(timeout)

    @overload
    async def enqueue(
        self, task: Task[P] | TaskCall[P], /, *args: P.args, **kwargs: P.kwargs
    ) -> JobHandle: ...

    @overload
    async def enqueue(self, task: str, /, *args: Any, **kwargs: Any) -> JobHandle: ...

    async def enqueue(
        self, task: Task[Any] | TaskCall[Any] | str, /, *args: Any, **kwargs: Any
    ) -> JobHandle:
        """Store a child job of ``task`` (a task, ``task.options(...)`` or a task name), as
        :meth:`beat.Client.enqueue` does, with ``meta={"parent": "<this job's id>"}``."""
        return await self._owner._client.submit(task, args, kwargs, meta={"parent": str(self.id)})

    async def wait(self, job: JobHandle | UUID | str, timeout: float | timedelta | None) -> Any:
        """Wait until ``job`` (a handle or an id) is finished and return its result, as
        :meth:`beat.Client.result` (:class:`~beat.JobFailedError`,
        :class:`~beat.JobCancelledError`, :class:`TimeoutError` after ``timeout`` seconds).

        The waiting run keeps its worker slot: with every slot of every worker that can run
        the child taken by waiting parents, the child never runs and the waits time out. Keep
        waits short and bounded, or end this job and continue in a follow-up job.
        """
        id = job if isinstance(job, (UUID, str)) else job.id
        return await self._owner._client.result(to_uuid(id), timeout)

    def __repr__(self) -> str:
        return f"<JobContext {self.task} id={self.id} attempt={self.attempt}>"
