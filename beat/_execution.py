"""Executing runs: attempts, timeouts, retries, jitter, records, and their reports.

:class:`RunExecution` is the half of :class:`~beat.Scheduler` that runs one fire once the
loop and the overlap policy have decided it should start. Contract (SEMANTICS §4):

* ``fn(ctx, *args, **kwargs)``: coroutine functions are awaited on the loop; plain functions
  run in the scheduler's worker threads, never on the loop.
* ``timeout`` cancels the run (a thread cannot be killed: a timed-out sync job is abandoned
  and reported); ``retries`` re-run the **same** instant with ``attempt + 1`` after the
  job's backoff; ``jitter`` delays the start, never the schedule.
* Every outcome is recorded in the job's bounded history, logged on ``beat.run`` with the job
  name and instant, and emitted as an event; exceptions never reach the scheduler loop. A
  cancellation (shutdown, ``overlap="replace"``) is recorded and propagates.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextvars
import functools
import logging
import random
from collections import deque
from typing import TYPE_CHECKING, Any, cast

from . import _events as ev
from ._clock import Clock
from ._context import Context
from ._history import Outcome, RawRun, materialize, summarize
from ._job import Job
from ._timers import from_us

if TYPE_CHECKING:
    from ._coordination import Coordination
    from ._scheduler import Scheduler

__all__ = ["RunExecution"]

run_logger = logging.getLogger("beat.run")


class _RunTimeout(Exception):
    """Internal: the job's own timeout expired (told apart from a TimeoutError it raised)."""


class RunExecution:
    """Mixin holding the run path; :class:`~beat.Scheduler` provides the state below."""

    clock: Clock
    _events: ev.EventBus
    _coordination: Coordination | None
    _rng: random.Random
    _cancel_reasons: dict[asyncio.Task[Any], str]
    _executor: concurrent.futures.ThreadPoolExecutor | None
    _max_workers: int | None
    _loop: asyncio.AbstractEventLoop | None

    def _emit_run(
        self, kind: type[ev.RunEvent], job: Job, when: int, attempt: int, **fields: Any
    ) -> None:
        """Emit a run event; callers check ``self._events.active`` first (hot path)."""
        self._events.emit(
            kind(job_id=job.id, name=job.name, when=from_us(when), attempt=attempt, **fields)
        )

    async def _run_fire(self, job: Job, when: int, more: list[int] | None) -> None:
        for instant in (when, *more) if more else (when,):
            if job.options.jitter:
                await self.clock.sleep(self._rng.uniform(0.0, job.options.jitter))
            if self._coordination is None:
                await self._execute(job, instant, 1, raise_errors=False)
            else:
                await self._coordination.run(job, instant)

    async def _execute(self, job: Job, when: int, attempt: int, *, raise_errors: bool) -> Any:
        """Run ``job`` for instant ``when``, retrying per its options; return the result.

        Failures are logged, recorded and emitted; with ``raise_errors`` the last one is
        re-raised (``run_now``). Cancellation is recorded and propagates.
        """
        options = job.options
        first_attempt = attempt
        while True:
            ctx = Context(job, when, attempt, cast("Scheduler", self))
            started = self.clock.time()
            if self._events.active:
                self._emit_run(ev.RunStarted, job, when, attempt)
            try:
                if options.timeout is not None:
                    result = await self._call_with_timeout(job, ctx, options.timeout)
                elif job.is_async:
                    # The common call shapes avoid building an args tuple / kwargs dict per run.
                    if job.kwargs:
                        result = await job.fn(ctx, *job.args, **job.kwargs)
                    elif job.args:
                        result = await job.fn(ctx, *job.args)
                    else:
                        result = await job.fn(ctx)
                else:
                    result = await self._in_thread(job, ctx)
            except asyncio.CancelledError:
                reason = self._cancel_reasons.get(asyncio.current_task(), "shutdown")  # type: ignore[arg-type]
                self._finish(
                    job, when, attempt, started, Outcome.CANCELLED, f"cancelled ({reason})"
                )
                run_logger.warning("job %s @ %s: cancelled (%s)", job.name, _iso(when), reason)
                if self._events.active:
                    self._emit_run(
                        ev.RunCancelled,
                        job,
                        when,
                        attempt,
                        reason="replaced" if reason == "replaced" else "shutdown",
                    )
                raise
            except _RunTimeout as exc:
                error: BaseException = exc
                will_retry = attempt - first_attempt < options.retries
                self._report_timeout(job, when, attempt, started, will_retry)
            except Exception as exc:
                error = exc
                will_retry = attempt - first_attempt < options.retries
                self._report_failure(job, when, attempt, started, exc, will_retry)
            else:
                self._report_success(job, when, attempt, started, result)
                return result
            if not will_retry:
                if raise_errors:
                    if isinstance(error, _RunTimeout):
                        raise TimeoutError(str(error)) from None
                    raise error
                return None
            await self.clock.sleep(options.backoff.delay(attempt - first_attempt + 1, self._rng))
            attempt += 1

    async def _call_with_timeout(self, job: Job, ctx: Context, timeout: float) -> Any:
        if job.is_async:
            awaitable = job.fn(ctx, *job.args, **job.kwargs)
        else:
            awaitable = self._in_thread(job, ctx)
        deadline = self.clock.monotonic() + timeout
        try:
            async with self.clock.timeout(timeout):
                return await awaitable
        except TimeoutError:
            if self.clock.monotonic() >= deadline:
                raise _RunTimeout(f"timed out after {timeout:g} s") from None
            raise

    def _in_thread(self, job: Job, ctx: Context) -> asyncio.Future[Any]:
        if self._executor is None:
            self._executor = concurrent.futures.ThreadPoolExecutor(
                max_workers=self._max_workers, thread_name_prefix="beat-job"
            )
        assert self._loop is not None
        call = functools.partial(job.fn, ctx, *job.args, **job.kwargs)
        return self._loop.run_in_executor(self._executor, contextvars.copy_context().run, call)

    # -- reporting -------------------------------------------------------------------------
    def _finish(
        self,
        job: Job,
        when: int,
        attempt: int,
        started: float,
        outcome: Outcome,
        error: str | None = None,
        result: Any = None,
        *,
        final: bool = True,
    ) -> None:
        """Append to the job's bounded history and wake ``wait_next_run`` callers."""
        size = job.options.history
        finished = self.clock.time()
        summary = None if result is None else summarize(result)
        raw: RawRun = (when, attempt, started, finished, outcome, error, summary)
        if size:
            if job._history is None:
                job._history = deque(maxlen=size)
            job._history.append(raw)
        if final and job._waiters:
            record = materialize(job.id, job.name, raw)
            waiters, job._waiters = job._waiters, None
            for future in waiters:
                if not future.done():
                    future.set_result(record)

    def _report_success(
        self, job: Job, when: int, attempt: int, started: float, result: Any
    ) -> None:
        self._finish(job, when, attempt, started, Outcome.SUCCEEDED, None, result)
        if run_logger.isEnabledFor(logging.DEBUG):
            run_logger.debug("job %s @ %s: succeeded (attempt %d)", job.name, _iso(when), attempt)
        if self._events.active:
            self._emit_run(
                ev.RunSucceeded,
                job,
                when,
                attempt,
                duration=self.clock.time() - started,
                result=summarize(result),
            )

    def _report_failure(
        self, job: Job, when: int, attempt: int, started: float, exc: Exception, will_retry: bool
    ) -> None:
        error = f"{type(exc).__name__}: {exc}"
        self._finish(job, when, attempt, started, Outcome.FAILED, error, final=not will_retry)
        run_logger.error(
            "job %s @ %s: attempt %d failed%s",
            job.name,
            _iso(when),
            attempt,
            ", will retry" if will_retry else "",
            exc_info=exc,
        )
        if self._events.active:
            self._emit_run(
                ev.RunFailed,
                job,
                when,
                attempt,
                duration=self.clock.time() - started,
                error=error,
                will_retry=will_retry,
                exception=exc,
            )

    def _report_timeout(
        self, job: Job, when: int, attempt: int, started: float, will_retry: bool
    ) -> None:
        timeout = job.options.timeout or 0.0
        abandoned = not job.is_async
        self._finish(
            job,
            when,
            attempt,
            started,
            Outcome.TIMED_OUT,
            f"timed out after {timeout:g} s" + (" (thread abandoned)" if abandoned else ""),
            final=not will_retry,
        )
        run_logger.error(
            "job %s @ %s: attempt %d timed out after %g s%s%s",
            job.name,
            _iso(when),
            attempt,
            timeout,
            "; its thread cannot be killed and runs on, abandoned" if abandoned else "",
            ", will retry" if will_retry else "",
        )
        if self._events.active:
            self._emit_run(
                ev.RunTimedOut,
                job,
                when,
                attempt,
                timeout=timeout,
                will_retry=will_retry,
                abandoned_thread=abandoned,
            )

    def _report_skip(self, job: Job, when: int, reason: str, more: list[int] | None = None) -> None:
        for instant in (when, *more) if more else (when,):
            level = logging.INFO if reason == "paused" else logging.WARNING
            run_logger.log(level, "job %s @ %s: fire skipped (%s)", job.name, _iso(instant), reason)
            if self._events.active:
                self._emit_run(
                    ev.RunSkipped,
                    job,
                    instant,
                    1,
                    reason=reason,
                )

    def _report_misfire(
        self, job: Job, run: list[int], missed: int, first: int, last: int, capped: bool
    ) -> None:
        policy = job.options.misfire
        dropped = missed - len(run)
        run_logger.warning(
            "job %s: %s%d fire(s) missed between %s and %s (policy %s): %d will run, %d dropped",
            job.name,
            "at least " if capped else "",
            missed,
            _iso(first),
            _iso(last),
            policy,
            len(run),
            dropped,
        )
        if self._events.active:
            self._events.emit(
                ev.FiresMissed(
                    job_id=job.id,
                    name=job.name,
                    policy=policy,
                    missed=missed,
                    ran=len(run),
                    dropped=dropped,
                    first=from_us(first),
                    last=from_us(last),
                    capped=capped,
                )
            )


def _iso(us: int) -> str:
    return from_us(us).isoformat()
