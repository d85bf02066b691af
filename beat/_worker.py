"""The worker: claims durable jobs from a :class:`~beat.stores.Store` and runs them.

See ``docs/worker.md``. In short:

* **Claim loop.** While slots are free: ``store.claim(name, queues=, tasks=<registered names>,
  limit=<free slots>, lease=)``; each claimed job runs as its own asyncio task. When a claim
  comes back short, nothing more is claimable: wait in ``store.wait_for_jobs(poll)`` (NOTIFY
  on PostgreSQL) — never a busy poll. At most ``concurrency`` jobs run at once.
* **A run.** ``fn(ctx, *args, **kwargs)`` with a :class:`JobContext`; coroutine functions on
  the loop, plain functions in the worker's thread pool. The task's ``timeout`` cancels the
  attempt. Success → ``complete_many`` (batched, below); an exception → ``fail`` (with
  ``retry_at`` while the task may retry); a result that is not JSON → ``fail`` with
  ``beat.SerializationError``, no retry.
* **Batched completions.** Successes are buffered and written together with one
  ``store.complete_many`` (one statement, one commit): when ``concurrency`` are waiting, when
  no other job is still executing (or the worker stops), or after ``COMPLETION_DELAY`` on the
  worker's clock. A job's slot frees when its function ends, so the next claim overlaps the
  write; its heartbeat lasts until its outcome is recorded. At most ``concurrency`` outcomes
  wait to be written besides the jobs executing.
* **Heartbeat.** Every ``heartbeat`` seconds the leases of all running jobs are renewed;
  jobs whose cancellation was requested are stopped and ``mark_cancelled``; jobs reported
  lost are stopped and nothing is reported for them.
* **Fencing.** Every outcome is written with ``(id, attempt, worker)``; a ``False`` means the
  job was taken over — logged as "late completion refused", never an error.
* **Outages.** Store calls that fail put the worker in an outage (logged once) with capped,
  jittered backoff; an outcome that cannot be recorded is retried a few times, then left to
  lease expiry (at least once).
* **Stop.** ``stop(timeout)`` stops claiming at once, waits up to ``timeout`` for running
  jobs, then cancels the rest and releases them to other workers.

A plain function running in a thread cannot be killed: a cancel request, a lost lease or a
shutdown only sets ``ctx.cancelled`` for it (see ``docs/worker.md``).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import logging
import os
import random
import secrets
import socket
import traceback
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from types import TracebackType
from typing import TYPE_CHECKING, Any, Self, TypeAlias
from uuid import UUID

from . import _in_thread, _logcapture, tracing
from ._client import Client
from ._clock import Clock, SystemClock
from ._completions import CompletionBatcher
from ._exceptions import (
    InvalidJobError,
    InvalidJobStateError,
    JobNotFoundError,
    SerializationError,
    StoreConfigError,
    message_of,
)
from ._job_context import OUTAGE, JobContext, StopReason
from ._retention import PRUNE_TASK, Pruner
from ._units import positive_seconds

if TYPE_CHECKING:
    from ._observers import JobOutcome, WorkerObserver
    from ._tasks import Task, TaskRegistry
    from .stores import JobRecord, Store
    from .stores._base import PruneRule

__all__ = ["JobContext", "Worker", "WorkerStats"]

log = logging.getLogger("beat.worker")

#: Errors of a fenced call that a retry cannot change. Any other error is retried: every
#: transition is fenced, so writing it twice is harmless.
_FINAL = (JobNotFoundError, InvalidJobStateError, StoreConfigError)
#: ``error_type`` recorded when a result is not JSON.
SERIALIZATION_ERROR = "beat.SerializationError"
#: Backoff after store failures: ``BACKOFF_INITIAL · 2**(n-1)`` up to ``BACKOFF_CAP``, +0–50 %.
BACKOFF_INITIAL = 0.5
BACKOFF_CAP = 10.0
#: Shortest time between claims that keep finding nothing (doubling up to the cap).
EMPTY_FLOOR = 0.01
MAX_EMPTY_FLOOR = 1.0
#: Seconds ``stop`` gives cancelled executions to end. One that swallows its cancellation
#: is left running (and to its lease) rather than holding the shutdown forever.
STOP_GRACE = 5.0
#: Tries to record one outcome (complete/fail/release/mark_cancelled) before giving up on it.
RECORD_TRIES = 5
RECORD_TRIES_STOPPING = 2
#: Longest wait (worker's clock) for more successes to join a batch of completions.
COMPLETION_DELAY = 0.002


@dataclass(frozen=True, slots=True)
class WorkerStats:
    """Counters since the worker was built. ``failed`` counts failed attempts (``retried`` +
    ``dead`` + those whose failure could not be recorded); ``lost`` counts runs taken over by
    someone else (heartbeat said lost, or a fenced call was refused). ``running`` and
    ``lingering`` are now: claimed executions not recorded yet, and threads of plain
    functions still running after their attempt timed out (each holds a slot)."""

    claimed: int = 0
    succeeded: int = 0
    failed: int = 0
    retried: int = 0
    dead: int = 0
    cancelled: int = 0
    lost: int = 0
    released: int = 0
    running: int = 0
    lingering: int = 0


# -------------------------------------------------------------------------------------------
# Outcomes of one execution
# -------------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class _Succeeded:
    value: Any


@dataclass(frozen=True, slots=True)
class _Failed:
    error_type: str
    message: str
    traceback: str
    exc: BaseException | None

    @classmethod
    def of(cls, exc: BaseException) -> _Failed:
        kind = type(exc)
        text = "".join(traceback.format_exception(exc))
        message = message_of(exc) or kind.__name__
        return cls(f"{kind.__module__}.{kind.__qualname__}", message, text, exc)


@dataclass(frozen=True, slots=True)
class _Stopped:
    reason: StopReason


_Outcome: TypeAlias = _Succeeded | _Failed | _Stopped
#: What recording one outcome came to: applied (``True``), refused (``False``: taken over),
#: not recordable (``None``: given up, left to lease expiry), or the result is not JSON (the
#: store's error, for the caller to turn into a failure).
_Recorded: TypeAlias = bool | SerializationError | None


class _Run:
    """One claimed execution: its record, its context, its tasks, its captured logs."""

    __slots__ = (
        "ctx",
        "ended",
        "exec_task",
        "logs",
        "main",
        "record",
        "recording",
        "started",
        "task",
        "thread",
    )

    def __init__(
        self,
        record: JobRecord,
        task: Task[Any],
        ctx: JobContext,
        logs: _logcapture.AttemptLogs | None,
    ) -> None:
        self.record = record
        self.task = task
        self.ctx = ctx
        self.logs = logs  # None when the worker does not capture logs
        self.started = ctx._clock.monotonic()  # claimed; observers get claim -> end
        self.ended = self.started
        self.exec_task: asyncio.Task[_Outcome] | None = None
        self.main: asyncio.Task[None] | None = None
        self.recording = False  # the execution ended; its outcome is being written
        # A plain function's thread (None for an async one); may outlive the execution.
        self.thread: concurrent.futures.Future[Any] | None = None

    @property
    def key(self) -> tuple[UUID, int]:
        return (self.record.id, self.record.attempt)

    @property
    def stop_reason(self) -> StopReason | None:
        return self.ctx._stop

    def describe(self) -> str:
        r = self.record
        return f"job {r.id} ({r.task}) attempt {r.attempt}"

    def __str__(self) -> str:
        # Log arguments pass the run itself: formatted only if the record is emitted.
        return self.describe()


def _lost_or_abandoned(recorded: bool | None) -> JobOutcome:
    """The observed outcome of a write that did not apply: refused, or given up."""
    return "lost" if recorded is False else "abandoned"


def _default_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(3)}"


class Worker:
    """Runs the durable jobs of ``store`` whose task is registered in ``tasks``.

    ``name`` identifies the worker to the store (default ``host:pid:random``); ``queues``:
    the queues it claims from; ``concurrency``: jobs running at once; ``lease``: seconds a
    claim holds a job without a heartbeat; ``heartbeat``: seconds between lease renewals
    (default ``lease / 3``); ``poll``: longest wait for jobs when no notification comes;
    ``clock``: waits, timeouts and backoff (``beat.testing.FakeClock`` in tests).

    ``capture_logs``: keep the log records each attempt emits (any logger, see
    :mod:`beat._logcapture`), at most ``max_log_records`` records and ``max_log_bytes``
    bytes per attempt, written with ``store.add_logs`` when the attempt ends
    (``client.logs(id)``). ``retention`` (a list of :class:`beat.stores.PruneRule`) and
    ``prune_every`` (seconds): prune finished jobs that often, once per period for the
    whole cluster (see :mod:`beat._retention`).

    ``await start()`` begins claiming; ``await stop(timeout)`` stops claiming, waits up to
    ``timeout`` seconds for running jobs, cancels and releases the rest and returns how
    many it cancelled. ``async with Worker(...)`` does both (stopping with a 30 s timeout).
    """

    def __init__(
        self,
        store: Store,
        tasks: TaskRegistry,
        *,
        name: str | None = None,
        queues: Sequence[str] = ("default",),
        concurrency: int = 10,
        lease: float = 30.0,
        heartbeat: float | None = None,
        poll: float = 5.0,
        clock: Clock | None = None,
        capture_logs: bool = True,
        max_log_records: int = _logcapture.DEFAULT_MAX_RECORDS,
        max_log_bytes: int = _logcapture.DEFAULT_MAX_BYTES,
        retention: Sequence[PruneRule] | None = None,
        prune_every: float | timedelta = 3600.0,
    ) -> None:
        if name is not None and (not isinstance(name, str) or not name or "\x00" in name):
            raise InvalidJobError(f"worker name must be a non-empty string, got {name!r}")
        if isinstance(queues, str) or not queues:
            raise InvalidJobError(f"queues must be a non-empty list of names, got {queues!r}")
        for queue in queues:
            if not isinstance(queue, str) or not queue:
                raise InvalidJobError(f"queue names must be non-empty strings, got {queue!r}")
        if isinstance(concurrency, bool) or not isinstance(concurrency, int) or concurrency < 1:
            raise InvalidJobError(f"concurrency must be a positive integer, got {concurrency!r}")
        self._lease = positive_seconds(lease, "lease")
        self._heartbeat = (
            self._lease / 3 if heartbeat is None else positive_seconds(heartbeat, "heartbeat")
        )
        if self._heartbeat >= self._lease:
            raise InvalidJobError(
                f"heartbeat ({self._heartbeat:g} s) must be shorter than the lease "
                f"({self._lease:g} s)"
            )
        self._poll = positive_seconds(poll, "poll")
        for what, limit in (("max_log_records", max_log_records), ("max_log_bytes", max_log_bytes)):
            if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
                raise InvalidJobError(f"{what} must be a positive integer, got {limit!r}")
        self._capture_logs = bool(capture_logs)
        self._log_limits = (max_log_records, max_log_bytes)
        self._release_capture: Callable[[], None] | None = None
        self._store = store
        self._client = Client(store)  # ctx.enqueue / ctx.wait: the store is open while we run
        self._pruner = Pruner(retention, prune_every) if retention else None
        if self._pruner is not None:
            tasks.add(PRUNE_TASK)
        self._prune_task: asyncio.Task[None] | None = None
        self._observers: list[WorkerObserver] = []  # called on the loop; empty = no cost
        self._tasks = tasks
        self._name = name or _default_name()
        self._queues = list(dict.fromkeys(queues))
        self._concurrency = concurrency
        self._clock: Clock = clock or SystemClock()
        self._rng = random.Random()
        # Every claimed execution until its outcome is recorded (its lease is renewed until
        # then); ``_recording`` of them have ended and only wait for their outcome's write.
        self._running: dict[tuple[UUID, int], _Run] = {}
        self._recording = 0
        # Threads of plain functions still running after their execution ended (timed
        # out): each holds a slot until it returns (_linger).
        self._lingering = 0
        self._waits: set[asyncio.Future[Any]] = set()  # the claim loop's; stop() cancels them
        self._slot_freed = asyncio.Event()
        self._loop_task: asyncio.Task[None] | None = None
        self._heartbeat_task: asyncio.Task[None] | None = None
        self._pool: concurrent.futures.ThreadPoolExecutor | None = None
        self._outage_since: float | None = None
        self._background: set[asyncio.Task[None]] = set()
        self._stopped = False  # set once by stop(): no more claims, pending waits cancelled
        self._counts = dict.fromkeys(WorkerStats.__dataclass_fields__, 0)
        self._completions = CompletionBatcher(self, concurrency, COMPLETION_DELAY)

    # -- public ------------------------------------------------------------------------------
    @property
    def name(self) -> str:
        return self._name

    @property
    def queues(self) -> list[str]:
        return list(self._queues)

    @property
    def concurrency(self) -> int:
        return self._concurrency

    @property
    def running(self) -> int:
        """Claimed executions not recorded yet: executing, or ended with their outcome being
        written."""
        return len(self._running)

    @property
    def stats(self) -> WorkerStats:
        return WorkerStats(
            **{**self._counts, "running": len(self._running), "lingering": self._lingering}
        )

    async def start(self) -> None:
        """Start claiming and heartbeating (in tasks of the running loop)."""
        if self._loop_task is not None:
            raise RuntimeError(f"worker {self._name} was already started")
        if self._capture_logs:
            self._release_capture = _logcapture.install()
        self._loop_task = asyncio.create_task(self._claim_loop(), name=f"beat-worker:{self._name}")
        self._heartbeat_task = asyncio.create_task(
            self._heartbeat_loop(), name=f"beat-worker-heartbeat:{self._name}"
        )
        if self._pruner is not None:
            self._prune_task = asyncio.create_task(
                self._pruner.run(self._store, self._clock, self._queues[0], self._name),
                name=f"beat-worker-prune:{self._name}",
            )
        log.info(
            "worker %s started: queues %s, %d slots, lease %g s",
            self._name,
            self._queues,
            self._concurrency,
            self._lease,
        )

    async def stop(self, timeout: float | None = 30.0) -> int:
        """Stop claiming now; wait up to ``timeout`` seconds (``None``: no limit) for running
        jobs; cancel the rest and release them to other workers. Returns how many were
        cancelled. Idempotent (a second call returns 0)."""
        if self._loop_task is None or self._stopped:
            if self._loop_task is None and self._release_capture is not None:
                self._release_capture()  # started runs through start_due() only
                self._release_capture = None
            return 0
        self._stopped = True
        for wait in self._waits:
            wait.cancel()
        self._completions.nudge()
        if self._prune_task is not None:
            self._prune_task.cancel()
            await asyncio.gather(self._prune_task, return_exceptions=True)
        await asyncio.gather(self._loop_task, return_exceptions=True)
        mains = [run.main for run in self._running.values() if run.main is not None]
        if mains and (timeout is None or timeout > 0):
            with contextlib.suppress(TimeoutError):
                async with self._clock.timeout(timeout):
                    await asyncio.wait(mains)
        cancelled = 0
        stopping: list[asyncio.Task[_Outcome]] = []
        for run in list(self._running.values()):
            if run.recording or run.exec_task is None or run.exec_task.done():
                continue
            if run.stop_reason is None:
                run.ctx._stop = "shutdown"
                cancelled += 1
            run.exec_task.cancel()
            stopping.append(run.exec_task)
        if stopping:
            with contextlib.suppress(TimeoutError):
                async with self._clock.timeout(STOP_GRACE):
                    await asyncio.wait(stopping)
        mains = []
        for run in self._running.values():
            if run.exec_task is not None and not run.exec_task.done():
                log.warning(
                    "%s: still running %g s after its cancellation (it does not stop when"
                    " cancelled); not handed back: it runs again once its lease expires",
                    run,
                    STOP_GRACE,
                )
            elif run.main is not None:
                mains.append(run.main)
        if mains:
            await asyncio.gather(*mains, return_exceptions=True)
        if self._heartbeat_task is not None:
            self._heartbeat_task.cancel()
            await asyncio.gather(self._heartbeat_task, return_exceptions=True)
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
        if self._release_capture is not None:
            self._release_capture()
            self._release_capture = None
        log.info("worker %s stopped (%d running job(s) cancelled)", self._name, cancelled)
        return cancelled

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    def __repr__(self) -> str:
        return f"<Worker {self._name} running={len(self._running)}/{self._concurrency}>"

    async def start_due(self) -> list[asyncio.Task[None]]:
        """Claim the jobs due now (as many as there are free slots) and start running them,
        without the claim loop; the runs' tasks, each done once its outcome is recorded.

        For tests driving a worker step by step (:func:`beat.testing.drain`); a started
        worker claims on its own. No heartbeats run unless the worker was started."""
        if self._capture_logs and self._release_capture is None:
            self._release_capture = _logcapture.install()
        free = self._free_slots()
        names = self._tasks.names()
        if free <= 0 or not names:
            return []
        claimed = await self._store.claim(
            self._name, queues=self._queues, tasks=names, limit=free, lease=self._lease
        )
        self._ended_by_claim(claimed)
        self._counts["claimed"] += len(claimed)
        for record in claimed:
            self._start_run(record)
        return self.runs()

    def runs(self) -> list[asyncio.Task[None]]:
        """The tasks of the executions holding a slot now (see :meth:`start_due`)."""
        return [run.main for run in self._running.values() if run.main is not None]

    # -- claiming ----------------------------------------------------------------------------
    async def _claim_loop(self) -> None:
        failures = 0
        empty = 0  # claims in a row that found nothing
        while not self._stopped:
            free = self._free_slots()
            if free <= 0:
                self._slot_freed.clear()
                await self._until_stopping(self._slot_freed.wait())
                continue
            names = self._tasks.names()
            try:
                if not names:  # nothing to run yet (tasks may be registered later)
                    await self._until_stopping(self._clock.sleep(self._poll))
                    continue
                claimed = await self._store.claim(
                    self._name, queues=self._queues, tasks=names, limit=free, lease=self._lease
                )
                self._store_up()
                failures = 0
                self._ended_by_claim(claimed)
                self._counts["claimed"] += len(claimed)
                if self._stopped:
                    # Stopped while claiming: hand them straight back (observed as claimed
                    # and released, like any other run).
                    if self._observers:
                        for record in claimed:
                            self._observe_claim(record)
                    await asyncio.gather(*(self._hand_back(r) for r in claimed))
                    break
                for record in claimed:
                    self._start_run(record)
                empty = 0 if claimed else empty + 1
                if len(claimed) < free:
                    await self._wait_for_jobs(empty)
            except Exception as exc:
                failures += 1
                self._store_down(exc, "claim")
                await self._until_stopping(self._clock.sleep(self._backoff(failures)))

    def _ended_by_claim(self, claimed: list[JobRecord]) -> None:
        """Report the jobs the claim ended instead of taking (:class:`Claimed`): their
        lease expired on their last attempt, or after a cancel request. The worker that ran
        them died or stalled, so this is the only place they are ever reported."""
        for record in getattr(claimed, "ended", ()):  # a store of one's own may not say
            if record.status == "dead":
                log.warning(
                    "job %s (%s) dead: the lease of its last attempt (%d of %d) expired; its"
                    " worker %s died or stalled",
                    record.id,
                    record.task,
                    record.attempt,
                    record.max_attempts,
                    record.worker,
                )
                self._observe(record, "dead", 0.0)
            else:
                log.info(
                    "job %s (%s) cancelled: its lease expired after a cancel request",
                    record.id,
                    record.task,
                )
                self._observe(record, "cancelled", 0.0)

    def _free_slots(self) -> int:
        """Jobs to claim now: ``concurrency`` minus those executing, so the next jobs start
        while finished ones are still being recorded; but never more than ``concurrency``
        waiting for their record besides, so a slow store slows claiming down."""
        executing = len(self._running) - self._recording + self._lingering
        return min(self._concurrency - executing, 2 * self._concurrency - len(self._running))

    async def _wait_for_jobs(self, empty: int) -> None:
        """``store.wait_for_jobs(poll)``; after repeated empty claims, no sooner than a floor
        (10 ms doubling up to ``min(poll, 1 s)``) since the wait began, so a wake-up hint
        that keeps finding nothing (a due job or expired lease this worker may not claim)
        cannot turn into a busy loop. Real time, like the store's wait."""
        loop = asyncio.get_running_loop()
        began = loop.time()
        await self._until_stopping(
            self._store.wait_for_jobs(self._poll, queues=self._queues, tasks=self._tasks.names())
        )
        if empty >= 2:
            floor = min(self._poll, MAX_EMPTY_FLOOR, EMPTY_FLOOR * 2.0 ** min(empty - 2, 16))
            left = began + floor - loop.time()
            if left > 0:
                await self._until_stopping(asyncio.sleep(left))

    async def _until_stopping(self, awaitable: Awaitable[Any]) -> None:
        """Await ``awaitable`` unless the worker starts stopping first: :meth:`stop` cancels
        every wait in ``_waits``. A store error propagates to the claim loop's handler."""
        if self._stopped:
            if asyncio.iscoroutine(awaitable):
                awaitable.close()
            return
        wait = asyncio.ensure_future(awaitable)
        self._waits.add(wait)
        try:
            await wait
        except asyncio.CancelledError:
            this = asyncio.current_task()
            if this is not None and this.cancelling():
                raise  # the claim loop itself is cancelled (its wait went with it)
            # Only the wait was: stop() ended it (or it cancelled itself); carry on.
        finally:
            self._waits.discard(wait)

    def _backoff(self, failures: int) -> float:
        base = min(BACKOFF_CAP, BACKOFF_INITIAL * 2.0 ** min(failures - 1, 16))
        return min(BACKOFF_CAP, base * self._rng.uniform(1.0, 1.5))

    async def _hand_back(self, record: JobRecord, duration: float = 0.0) -> None:
        ok = await self._record(record, "release", self._release_call(record))
        if ok:
            self._counts["released"] += 1
            log.info("job %s (%s) attempt %d released", record.id, record.task, record.attempt)
        self._observe(record, "released" if ok else _lost_or_abandoned(ok), duration)

    # -- observers ---------------------------------------------------------------------------
    def add_observer(self, observer: WorkerObserver) -> None:
        """Tell ``observer`` (:class:`beat._observers.WorkerObserver`, e.g. ``beat.metrics``)
        about every claim and every execution's end, from now on."""
        if observer not in self._observers:
            self._observers.append(observer)

    def remove_observer(self, observer: WorkerObserver) -> None:
        """Stop telling ``observer``; no error if it was not added."""
        if observer in self._observers:
            self._observers.remove(observer)

    def _observe(self, record: JobRecord, outcome: JobOutcome, duration: float) -> None:
        for observer in self._observers:
            try:
                observer.job_finished(record, outcome, duration)
            except Exception:
                log.exception("worker %s: observer %r failed", self._name, observer)

    def _observe_claim(self, record: JobRecord) -> None:
        for observer in self._observers:
            try:
                observer.job_claimed(record)
            except Exception:
                log.exception("worker %s: observer %r failed", self._name, observer)

    def _release_call(self, record: JobRecord) -> Callable[[], Awaitable[bool]]:
        return lambda: self._store.release(record.id, record.attempt, self._name)

    # -- running -----------------------------------------------------------------------------
    def _start_run(self, record: JobRecord) -> None:
        if self._observers:
            self._observe_claim(record)
        if record.attempt > 1:
            # A re-run: after a failed attempt (logged where it failed), or after a lease
            # ran out (the worker died or stalled: logged nowhere else).
            log.info(
                "job %s (%s) claimed again, attempt %d of %d: the last attempt failed or"
                " its lease expired",
                record.id,
                record.task,
                record.attempt,
                record.max_attempts,
            )
        task = self._tasks.get(record.task)
        logs = _logcapture.AttemptLogs(*self._log_limits) if self._capture_logs else None
        run = _Run(record, task, JobContext(record, self), logs) if task else None
        if run is None:  # unregistered since the claim: give it back
            background = asyncio.create_task(self._hand_back(record))
            self._background.add(background)
            background.add_done_callback(self._background.discard)
            return
        self._running[run.key] = run
        # The execution first: its task runs on the loop's next turn, before the main task
        # and before whatever the claim loop starts next (a wait that goes to the store).
        run.exec_task = asyncio.create_task(self._execute(run))
        run.main = asyncio.create_task(self._run(run, run.exec_task), name=f"beat-job:{record.id}")

    async def _run(self, run: _Run, execution: asyncio.Task[_Outcome]) -> None:
        log.debug("%s started on %s", run, self._name)
        this = asyncio.current_task()
        try:
            # Only the execution is ever cancelled by the worker; recording is never
            # interrupted. This task is cancelled only when the loop is torn down.
            outcome: _Outcome
            try:
                outcome = await execution
            except asyncio.CancelledError:
                if this is None or this.cancelling():
                    raise  # this task itself: the handler below stops the execution too
                reason = run.stop_reason
                if reason is None:  # the function raised CancelledError itself
                    error = asyncio.CancelledError("the task cancelled itself")
                    outcome = _Failed.of(error)
                else:
                    outcome = _Stopped(reason)
            else:
                reason = run.stop_reason
                if reason is not None and isinstance(outcome, _Failed):
                    # It raised while being stopped (say, its cleanup failed on the
                    # cancellation): the stop is what happened. A shutdown must hand the
                    # job back, not charge it an attempt (or make it dead).
                    log.warning(
                        "%s raised %s: %s while being stopped (%s); recorded as stopped",
                        run,
                        outcome.error_type,
                        outcome.message,
                        reason,
                    )
                    outcome = _Stopped(reason)
                elif (reason == "cancel" or reason == "lost") and not run.task.is_async:
                    # A thread cannot be stopped: its end is when the stop takes effect.
                    outcome = _Stopped(reason)
                elif reason == "cancel":
                    # It caught its cancellation and returned: its result stands, but the
                    # cancel requested did not happen, which must not pass unsaid.
                    log.warning(
                        "%s returned after its cancellation was requested: recorded as it"
                        " ended, not cancelled",
                        run,
                    )
            run.recording = True
            run.ended = self._clock.monotonic()
            self._recording += 1
            if run.thread is not None and not run.thread.done():
                self._linger(run, run.thread)
            self._slot_freed.set()
            if run.logs is not None:
                await self._write_logs(run, run.logs)
            await self._settle(run, outcome)
        except asyncio.CancelledError:
            execution.cancel()
            raise
        except Exception:  # pragma: no cover - a bug here must not kill the worker
            log.exception("%s: the worker failed to handle its outcome", run.describe())
        finally:
            self._running.pop(run.key, None)
            if run.recording:
                self._recording -= 1
            self._slot_freed.set()
            self._completions.nudge()

    async def _write_logs(self, run: _Run, logs: _logcapture.AttemptLogs) -> None:
        """Store the attempt's captured records (before its outcome, so whoever the outcome
        wakes finds them). Not fenced, tried once: logs that cannot be written are reported
        here and dropped; the outcome is written regardless."""
        raw = logs.close()
        if not raw:
            return
        from .stores._base import LogEntry

        record = run.record
        entries = [
            LogEntry(record.attempt, datetime.fromtimestamp(at, UTC), level, logger, message)
            for at, level, logger, message in raw
        ]
        try:
            await self._store.add_logs(record.id, record.attempt, entries)
        except Exception as exc:
            log.warning(
                "%s: its %d captured log records could not be stored (%s: %s); dropped",
                run.describe(),
                len(entries),
                type(exc).__name__,
                exc,
            )

    async def _execute(self, run: _Run) -> _Outcome:
        # This runs in the attempt's own task (and context): records logged from here on,
        # in tasks it starts and in its worker thread, are the attempt's.
        if run.logs is not None:
            _logcapture.capture(run.logs)
        timeout = run.task.policy.timeout
        # Tracing off costs this one flag test per attempt (beat.tracing).
        call = self._call_traced if tracing.ENABLED else self._call
        try:
            if timeout is None:
                return _Succeeded(await call(run))
            clock = self._clock
            deadline = clock.monotonic() + timeout
            try:
                async with clock.timeout(timeout):
                    return _Succeeded(await call(run))
            except TimeoutError as exc:
                if clock.monotonic() < deadline:
                    raise  # the function's own TimeoutError
                return _Failed(
                    "builtins.TimeoutError",
                    f"timed out after {timeout:g} s (the task's timeout)",
                    "",
                    exc,
                )
        except (asyncio.CancelledError, KeyboardInterrupt):
            raise  # a stop (see _run), or the process interrupted: not the job failing
        except BaseException as exc:  # SystemExit too: a job's sys.exit() fails its attempt
            return _Failed.of(exc)

    async def _call_traced(self, run: _Run) -> Any:
        """:meth:`_call` inside the attempt's span, parented to the trace carried in meta."""
        with tracing.job_span(run.record):
            return await self._call(run)

    def _call(self, run: _Run) -> Awaitable[Any]:
        task, ctx, record = run.task, run.ctx, run.record
        if task.is_async:
            coro: Awaitable[Any] = task.fn(ctx, *record.args, **record.kwargs)
            return coro
        if self._pool is None:
            self._pool = concurrent.futures.ThreadPoolExecutor(
                max_workers=self._concurrency, thread_name_prefix="beat-worker-job"
            )
        run.thread = _in_thread.submit(self._pool, task.fn, ctx, *record.args, **record.kwargs)
        return _in_thread.outcome(run.thread)

    def _linger(self, run: _Run, thread: concurrent.futures.Future[Any]) -> None:
        """``run`` ended (timed out) while its plain function runs on in its thread, which
        cannot be stopped: the thread keeps a slot until it returns. So no more functions
        run at once than ``concurrency``, and no later job waits in the thread pool behind
        it (timing out before it ever started)."""
        self._lingering += 1
        log.warning(
            "%s: its function runs on in its thread (a thread cannot be stopped); it holds a"
            " slot until it returns",
            run,
        )
        loop = asyncio.get_running_loop()

        def returned(_: object) -> None:  # in the thread, or here if it has just returned
            with contextlib.suppress(RuntimeError):  # the loop is closed: nothing to free
                loop.call_soon_threadsafe(self._thread_returned, run)

        thread.add_done_callback(returned)

    def _thread_returned(self, run: _Run) -> None:
        self._lingering -= 1
        log.info("%s: its thread returned; its slot is free", run)
        self._slot_freed.set()

    # -- outcomes ----------------------------------------------------------------------------
    async def _settle(self, run: _Run, outcome: _Outcome) -> None:
        record, what = run.record, run  # formatted lazily, by the log record
        duration = run.ended - run.started
        if isinstance(outcome, _Stopped):
            if outcome.reason == "lost":
                self._counts["lost"] += 1
                log.warning(
                    "%s lost (taken over or finished elsewhere): stopped, not reported", what
                )
                self._observe(record, "lost", duration)
            elif outcome.reason == "cancel":
                ok = await self._record(record, "cancelled", self._cancel_call(record))
                if ok:
                    self._counts["cancelled"] += 1
                    log.info("%s cancelled on request", what)
                self._observe(record, "cancelled" if ok else _lost_or_abandoned(ok), duration)
            elif run.task.is_async:
                await self._hand_back(record, duration)
            else:
                log.warning(
                    "%s still runs in its thread at shutdown: abandoned, not released; "
                    "its lease expires in %g s and another worker runs it again",
                    what,
                    self._lease,
                )
                self._observe(record, "abandoned", duration)
            return
        if isinstance(outcome, _Succeeded):
            try:
                done = await self._completions.complete(run, outcome.value)
            except SerializationError as exc:
                failure = _Failed(SERIALIZATION_ERROR, f"the result is not JSON: {exc}", "", exc)
            else:
                if done:
                    self._counts["succeeded"] += 1
                    log.debug("%s succeeded", what)
                if self._observers:
                    self._observe(
                        record, "succeeded" if done else _lost_or_abandoned(done), duration
                    )
                return
        else:
            failure = outcome
        await self._fail(run, failure)

    def _cancel_call(self, record: JobRecord) -> Callable[[], Awaitable[bool]]:
        return lambda: self._store.mark_cancelled(record.id, record.attempt, self._name)

    async def _fail(self, run: _Run, outcome: _Failed) -> None:
        record, store, me = run.record, self._store, self._name
        id, attempt = record.id, record.attempt
        what = run.describe()
        self._counts["failed"] += 1
        retry = (
            outcome.error_type != SERIALIZATION_ERROR
            and run.task.policy.retries > 0
            and attempt < record.max_attempts
        )
        delay = run.task.policy.backoff.delay(attempt, self._rng) if retry else 0.0

        async def fail() -> bool:
            retry_at = (await store.now()) + timedelta(seconds=delay) if retry else None
            return await store.fail(
                id,
                attempt,
                me,
                error_type=outcome.error_type,
                message=outcome.message,
                traceback=outcome.traceback,
                retry_at=retry_at,
            )

        ok = await self._record(record, "failure", fail)
        exc_info = outcome.exc if outcome.traceback else None
        if self._observers:
            result: JobOutcome = ("retried" if retry else "dead") if ok else _lost_or_abandoned(ok)
            # Observers of a failure get the error it recorded (the claimed record has none,
            # or an earlier attempt's).
            failed = replace(record, error_type=outcome.error_type, error_message=outcome.message)
            self._observe(failed, result, run.ended - run.started)
        if ok and retry:
            self._counts["retried"] += 1
            log.error(
                "%s failed (%s: %s); retry in %.3g s",
                what,
                outcome.error_type,
                outcome.message,
                delay,
                exc_info=exc_info,
            )
        elif ok:
            self._counts["dead"] += 1
            log.error(
                "%s failed (%s: %s); dead, no attempt left",
                what,
                outcome.error_type,
                outcome.message,
                exc_info=exc_info,
            )

    async def _record(
        self, record: JobRecord, what: str, call: Callable[[], Awaitable[bool]]
    ) -> bool | None:
        """Write one fenced outcome, retrying through outages (:meth:`_record_many`).
        :class:`SerializationError` propagates."""

        async def one() -> list[_Recorded]:
            try:
                return [await call()]
            except SerializationError as exc:
                return [exc]

        (result,) = await self._record_many([record], what, one)
        if isinstance(result, SerializationError):
            raise result
        return result

    async def _record_many(
        self,
        records: Sequence[JobRecord],
        what: str,
        call: Callable[[], Awaitable[list[_Recorded]]],
    ) -> list[_Recorded]:
        """Write fenced outcomes with one store call, retrying through outages; per record,
        ``True`` if it was applied, ``False`` if refused (logged) or not recordable (logged;
        left to lease expiry), or the :class:`SerializationError` ``call`` gave for it."""
        tries = RECORD_TRIES_STOPPING if self._stopped else RECORD_TRIES
        names = [f"job {r.id} ({r.task}) attempt {r.attempt}" for r in records]
        about = names[0] if len(names) == 1 else f"{len(names)} jobs"
        for n in range(1, tries + 1):
            try:
                results = await call()
                if n > 1:  # an earlier try whose reply was lost may have applied some
                    results = [
                        await self._applied(record) if result is False else result
                        for record, result in zip(records, results, strict=True)
                    ]
            except _FINAL as exc:
                for name in names:
                    log.error("%s: recording %s failed (%s); left to lease expiry", name, what, exc)
                return [None] * len(records)
            except Exception as exc:  # outages, and anything unexpected: a retry is safe
                self._store_down(exc, f"{what} of {about}")
                if n < tries:
                    await self._clock.sleep(self._backoff(n))
                continue
            self._store_up()
            for name, result in zip(names, results, strict=True):
                if result is False:
                    self._counts["lost"] += 1
                    log.warning(
                        "%s: late completion refused (%s): the job was taken over, cancelled "
                        "or finished elsewhere",
                        name,
                        what,
                    )
            return results
        for name in names:
            log.error(
                "%s: could not record %s after %d tries (store unavailable); left to lease "
                "expiry, another worker will run it again",
                name,
                what,
                tries,
            )
        return [None] * len(records)

    async def _applied(self, record: JobRecord) -> bool:
        """After a refused retry: did the try whose reply was lost finish the job for us?"""
        found = await self._store.get(record.id)
        return (
            found is not None
            and found.status.finished
            and found.attempt == record.attempt
            and found.worker == self._name
        )

    # -- heartbeat ---------------------------------------------------------------------------
    async def _heartbeat_loop(self) -> None:
        while True:
            await self._clock.sleep(self._heartbeat)
            try:
                await self._beat()
            except Exception:  # pragma: no cover - never let the heartbeat die
                log.exception("worker %s: heartbeat failed", self._name)

    async def _beat(self) -> None:
        runs = {r.record.id: r for r in self._running.values() if r.stop_reason != "lost"}
        if not runs:
            return
        jobs = [r.key for r in runs.values()]
        try:
            found = await self._store.heartbeat(self._name, jobs, self._lease)
        except Exception as exc:
            self._store_down(exc, "heartbeat")
            return
        self._store_up()
        for id in found.lost:
            run = runs.get(id)
            if run is not None and not run.recording and self._running.get(run.key) is run:
                self._stop_run(run, "lost")
        for id in found.cancel_requested:
            run = runs.get(id)
            if run is not None and not run.recording and run.stop_reason is None:
                self._stop_run(run, "cancel")

    def _stop_run(self, run: _Run, reason: StopReason) -> None:
        run.ctx._stop = reason
        if reason == "lost":
            log.warning(
                "%s: lease lost (taken over or finished elsewhere); stopping it", run.describe()
            )
        else:
            log.info("%s: cancellation requested; stopping it", run.describe())
        if run.task.is_async and run.exec_task is not None:
            run.exec_task.cancel()

    # -- outages -----------------------------------------------------------------------------
    def _store_down(self, exc: Exception, what: str) -> None:
        if not isinstance(exc, OUTAGE):
            log.error(
                "worker %s: store call %s failed; backing off", self._name, what, exc_info=exc
            )
        if self._outage_since is None:
            self._outage_since = self._clock.monotonic()
            if isinstance(exc, OUTAGE):
                log.warning(
                    "worker %s: store unavailable (%s: %s); backing off until it is back",
                    self._name,
                    what,
                    exc,
                )

    def _store_up(self) -> None:
        if self._outage_since is not None:
            down = self._clock.monotonic() - self._outage_since
            self._outage_since = None
            log.info("worker %s: store reachable again after %.1f s", self._name, down)
