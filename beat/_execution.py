"""Executing one occurrence: attempts, timeout, retries, threads. Contract (docs/guarantees.md §4):

* ``fn(ctx, *args, **kwargs)``: coroutine functions are awaited on the loop; plain functions
  run in the executor's worker threads, never on the loop.
* ``timeout`` cancels the attempt (a thread cannot be killed: a timed-out plain function
  runs on, and a scheduled run holds its place until it returns); ``retries`` re-run the
  **same** instant with ``attempt + 1`` after the job's backoff.
* Every attempt's outcome goes to the :class:`~beat._reporting.Reporter` (log line, history,
  event); exceptions never reach the scheduler loop. A cancellation is reported and
  propagates.

:class:`Executor` gets its collaborators passed in and owns only its thread pool.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import random
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from . import _in_thread
from . import tracing as _tracing
from ._clock import Clock
from ._context import Context
from ._exceptions import message_of
from ._timers import from_us

if TYPE_CHECKING:
    from ._registry import JobState
    from ._reporting import Reporter
    from ._scheduler import Scheduler

__all__ = ["Executor"]


class _RunTimeout(Exception):
    """Internal: the job's own timeout expired (told apart from a TimeoutError it raised).
    ``thread``: a plain function's call, still running in its thread."""

    def __init__(self, message: str, thread: concurrent.futures.Future[Any] | None) -> None:
        super().__init__(message)
        self.thread = thread


class Executor:
    """Runs attempts of an occurrence until one succeeds or the retries are spent."""

    __slots__ = (
        "_cancel_reason",
        "_clock",
        "_max_workers",
        "_pool",
        "_reporter",
        "_rng",
        "_scheduler",
    )

    def __init__(
        self,
        scheduler: Scheduler,
        clock: Clock,
        reporter: Reporter,
        cancel_reason: Callable[[asyncio.Task[Any] | None], str],
        rng: random.Random,
        max_workers: int | None,
    ) -> None:
        self._scheduler = scheduler  # only handed to each run's Context
        self._clock = clock
        self._reporter = reporter
        self._cancel_reason = cancel_reason
        self._rng = rng
        self._max_workers = max_workers
        self._pool: concurrent.futures.ThreadPoolExecutor | None = None  # created on first use

    async def execute(
        self, state: JobState, when: int, attempt: int = 1, raise_errors: bool = False
    ) -> Any:
        """Run ``state``'s job for instant ``when``, retrying per its options; its result.

        With ``raise_errors`` the last failure is re-raised (``run_now``, claims that report
        the outcome); otherwise failures end here, reported.
        """
        job = state.job
        options = job.options
        clock = self._clock
        reporter = self._reporter
        first_attempt = attempt
        while True:
            ctx = Context(job, when, attempt, self._scheduler)
            started = clock.time()
            reporter.started(state, when, attempt)
            try:
                if _tracing.ENABLED:  # one flag test per attempt when tracing is off
                    result = await self._call_traced(state, ctx, when)
                elif options.timeout is not None:
                    result = await self._call_with_timeout(state, ctx, options.timeout)
                elif job.is_async:
                    # The common call shapes avoid building an args tuple / kwargs dict per run.
                    if job.kwargs:
                        result = await job.fn(ctx, *job.args, **job.kwargs)
                    elif job.args:
                        result = await job.fn(ctx, *job.args)
                    else:
                        result = await job.fn(ctx)
                else:
                    result = await self._in_thread(state, ctx)
            except asyncio.CancelledError:
                reason = self._cancel_reason(asyncio.current_task())
                reporter.cancelled(state, when, attempt, started, reason)
                raise
            except _RunTimeout as exc:
                error: BaseException = exc
                will_retry = attempt - first_attempt < options.retries
                # A thread cannot be stopped. A scheduled run holds its place until the
                # function returns, so neither its retry nor an overlapping fire (skip,
                # queue, max_instances) starts a second call beside it; an explicit call
                # (run_now, a claim reporting its outcome) raises at the deadline instead.
                holds = exc.thread is not None and not raise_errors
                reporter.timed_out(state, when, attempt, started, will_retry, holds)
                if holds and exc.thread is not None:
                    await self._linger(state, when, exc.thread)
            except KeyboardInterrupt:
                raise  # the process is interrupted; the job did not fail
            except BaseException as exc:  # SystemExit too: a job's sys.exit() fails its run
                error = exc
                will_retry = attempt - first_attempt < options.retries
                reporter.failed(state, when, attempt, started, exc, will_retry)
            else:
                reporter.succeeded(state, when, attempt, started, result)
                return result
            if not will_retry:
                if raise_errors:
                    if isinstance(error, _RunTimeout):
                        raise TimeoutError(str(error)) from None
                    if not isinstance(error, Exception):  # SystemExit leaving a task would
                        raise RuntimeError(  # stop the event loop, not just fail the call
                            f"the job raised {type(error).__name__}: {message_of(error)}"
                        ) from error
                    raise error
                return None
            await clock.sleep(options.backoff.delay(attempt - first_attempt + 1, self._rng))
            attempt += 1

    async def _call_traced(self, state: JobState, ctx: Context, when: int) -> Any:
        """One attempt inside its own span (:mod:`beat.tracing`), a new trace per run."""
        job = state.job
        attributes = {
            "beat.job.id": str(job.id),
            "beat.job.name": job.name,
            "beat.run.when": from_us(when).isoformat(),
            "beat.run.attempt": ctx.attempt,
        }
        with _tracing.run_span(f"beat.run {job.name}", None, attributes):
            timeout = job.options.timeout
            if timeout is not None:
                return await self._call_with_timeout(state, ctx, timeout)
            if job.is_async:
                return await job.fn(ctx, *job.args, **job.kwargs)
            return await self._in_thread(state, ctx)

    async def _call_with_timeout(self, state: JobState, ctx: Context, timeout: float) -> Any:
        job = state.job
        thread = None
        if job.is_async:
            awaitable = job.fn(ctx, *job.args, **job.kwargs)
        else:
            thread = self._submit(state, ctx)
            awaitable = _in_thread.outcome(thread)
        clock = self._clock
        deadline = clock.monotonic() + timeout
        try:
            async with clock.timeout(timeout):
                return await awaitable
        except TimeoutError:
            if clock.monotonic() >= deadline:
                raise _RunTimeout(f"timed out after {timeout:g} s", thread) from None
            raise

    async def _linger(
        self, state: JobState, when: int, thread: concurrent.futures.Future[Any]
    ) -> None:
        """Until the timed-out function's thread returns (its result or error is dropped:
        the attempt is already recorded as timed out). A cancelled run stops waiting."""
        began = time.monotonic()
        with contextlib.suppress(Exception):  # the attempt was recorded at the deadline
            await _in_thread.outcome(thread)
        self._reporter.thread_returned(state, when, time.monotonic() - began)

    def _submit(self, state: JobState, ctx: Context) -> concurrent.futures.Future[Any]:
        if self._pool is None:
            self._pool = concurrent.futures.ThreadPoolExecutor(
                max_workers=self._max_workers, thread_name_prefix="beat-job"
            )
        job = state.job
        return _in_thread.submit(self._pool, job.fn, ctx, *job.args, **job.kwargs)

    def _in_thread(self, state: JobState, ctx: Context) -> Awaitable[Any]:
        return _in_thread.outcome(self._submit(state, ctx))

    def close(self) -> None:
        """Stop the worker threads (abandoned ones run on: a thread cannot be killed)."""
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
