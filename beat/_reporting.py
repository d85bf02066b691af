"""Reporting: every outcome becomes a log line, a history record and an event, here only.

:class:`Reporter` is the one place that turns what happened into what users can see:

* a line on the ``beat.run`` / ``beat.scheduler`` logger (WARNING or ERROR for anything
  skipped, missed, failed or cancelled: nothing is lost silently);
* a record in the job's bounded history (``JobState.history``, owned here) and the wake-up of
  :meth:`~beat.Scheduler.wait_next_run` callers (their futures are owned here too);
* an event on the :class:`~beat._events.EventBus` — built only when someone subscribed.

Callers never check whether events are wanted; they call the matching method.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from typing import TYPE_CHECKING, Any

from . import _events as ev
from ._clock import Clock
from ._exceptions import message_of
from ._history import Outcome, RawRun, RunRecord, materialize, summarize
from ._timers import from_us

if TYPE_CHECKING:
    from ._job import Job
    from ._misfire import MisfireDecision
    from ._registry import JobState

__all__ = ["Reporter", "iso"]

run_logger = logging.getLogger("beat.run")
logger = logging.getLogger("beat.scheduler")
coordination_logger = logging.getLogger("beat.coordination")


_SKIP_LEVELS = {"not_claimed": logging.DEBUG, "paused": logging.INFO}


def iso(us: int) -> str:
    return from_us(us).isoformat()


def _dt(us: int | None) -> Any:
    return None if us is None else from_us(us)


class Reporter:
    """Logs, records and emits each outcome. Owns histories and ``wait_next_run`` futures."""

    __slots__ = ("_clock", "_waiters", "events")

    def __init__(self, clock: Clock, events: ev.EventBus) -> None:
        self._clock = clock
        self.events = events
        self._waiters: dict[Job, list[asyncio.Future[RunRecord]]] = {}

    # -- runs ------------------------------------------------------------------------------
    def started(self, state: JobState, when: int, attempt: int) -> None:
        if self.events.active:
            self._emit_run(ev.RunStarted, state, when, attempt)

    def succeeded(
        self, state: JobState, when: int, attempt: int, started: float, result: Any
    ) -> None:
        finished = self._record(state, when, attempt, started, Outcome.SUCCEEDED, None, result)
        if run_logger.isEnabledFor(logging.DEBUG):
            run_logger.debug(
                "job %s @ %s: succeeded (attempt %d)", state.job.name, iso(when), attempt
            )
        if self.events.active:
            self._emit_run(
                ev.RunSucceeded,
                state,
                when,
                attempt,
                duration=finished - started,
                result=summarize(result),
            )

    def thread_returned(self, state: JobState, when: int, seconds: float) -> None:
        """The thread of a timed-out attempt returned, ``seconds`` after the deadline: its
        run gives up its place (the next attempt or fire may start)."""
        run_logger.warning(
            "job %s @ %s: the timed-out attempt's thread returned %.3g s after the deadline;"
            " the run's place is free",
            state.job.name,
            iso(when),
            seconds,
        )

    def failed(
        self,
        state: JobState,
        when: int,
        attempt: int,
        started: float,
        exc: BaseException,
        will_retry: bool,
    ) -> None:
        error = f"{type(exc).__name__}: {message_of(exc)}"
        finished = self._record(
            state, when, attempt, started, Outcome.FAILED, error, final=not will_retry
        )
        run_logger.error(
            "job %s @ %s: attempt %d failed%s",
            state.job.name,
            iso(when),
            attempt,
            ", will retry" if will_retry else "",
            exc_info=exc,
        )
        if self.events.active:
            self._emit_run(
                ev.RunFailed,
                state,
                when,
                attempt,
                duration=finished - started,
                error=error,
                will_retry=will_retry,
                exception=exc,
            )

    def timed_out(
        self,
        state: JobState,
        when: int,
        attempt: int,
        started: float,
        will_retry: bool,
        holds: bool = False,
    ) -> None:
        """An attempt timed out. ``holds``: a plain function whose run keeps its place
        until the thread returns (:meth:`thread_returned`); otherwise its thread, if any,
        is abandoned."""
        job = state.job
        timeout = job.options.timeout or 0.0
        abandoned = not job.is_async
        if holds:
            note = " (thread runs on)"
            detail = "; its thread cannot be killed: the run holds its place until it returns"
        elif abandoned:
            note = " (thread abandoned)"
            detail = "; its thread cannot be killed and runs on, abandoned"
        else:
            note = detail = ""
        error = f"timed out after {timeout:g} s{note}"
        self._record(state, when, attempt, started, Outcome.TIMED_OUT, error, final=not will_retry)
        run_logger.error(
            "job %s @ %s: attempt %d timed out after %g s%s%s",
            job.name,
            iso(when),
            attempt,
            timeout,
            detail,
            ", will retry" if will_retry else "",
        )
        if self.events.active:
            self._emit_run(
                ev.RunTimedOut,
                state,
                when,
                attempt,
                timeout=timeout,
                will_retry=will_retry,
                abandoned_thread=abandoned,
            )

    def cancelled(
        self, state: JobState, when: int, attempt: int, started: float, reason: str
    ) -> None:
        self._record(state, when, attempt, started, Outcome.CANCELLED, f"cancelled ({reason})")
        run_logger.warning("job %s @ %s: cancelled (%s)", state.job.name, iso(when), reason)
        if self.events.active:
            self._emit_run(
                ev.RunCancelled,
                state,
                when,
                attempt,
                reason="replaced" if reason == "replaced" else "shutdown",
            )

    def skipped(
        self, state: JobState, when: int, reason: str, more: list[int] | None = None
    ) -> None:
        """Fires that will not run here (paused, overlap, coordinator down, ...): one line
        each. ``not_claimed`` (another instance runs it: the normal case in a cluster) is
        logged at DEBUG, ``paused`` at INFO, everything else at WARNING."""
        level = _SKIP_LEVELS.get(reason, logging.WARNING)
        for instant in (when, *more) if more else (when,):
            run_logger.log(
                level, "job %s @ %s: fire skipped (%s)", state.job.name, iso(instant), reason
            )
            if self.events.active:
                self._emit_run(ev.RunSkipped, state, instant, 1, reason=reason)

    def queued(self, state: JobState, when: int) -> None:
        run_logger.info(
            "job %s @ %s: previous run still going; queued to run right after it",
            state.job.name,
            iso(when),
        )
        if self.events.active:
            self._emit_run(ev.RunQueued, state, when, 1)

    def misfired(self, state: JobState, decision: MisfireDecision) -> None:
        job = state.job
        policy = job.options.misfire
        ran = len(decision.run)
        run_logger.warning(
            "job %s: %s%d fire(s) missed between %s and %s (policy %s): %d will run, %d dropped",
            job.name,
            "at least " if decision.capped else "",
            decision.missed,
            iso(decision.first),
            iso(decision.last),
            policy,
            ran,
            decision.dropped,
        )
        if self.events.active:
            self.events.emit(
                ev.FiresMissed(
                    job_id=job.id,
                    name=job.name,
                    policy=policy,
                    missed=decision.missed,
                    ran=ran,
                    dropped=decision.dropped,
                    first=from_us(decision.first),
                    last=from_us(decision.last),
                    capped=decision.capped,
                )
            )

    def schedule_broken(self, state: JobState) -> None:
        logger.exception(
            "job %s: computing its schedule failed; it will not fire again", state.job.name
        )

    # -- jobs and the scheduler --------------------------------------------------------------
    def job_added(self, state: JobState) -> None:
        if self.events.active:
            job = state.job
            self.events.emit(
                ev.JobAdded(job_id=job.id, name=job.name, next_fire=_dt(state.next_us))
            )

    def job_removed(self, state: JobState, *, exhausted: bool = False) -> None:
        job = state.job
        if exhausted:
            logger.debug("job %s: timer exhausted, removed", job.name)
        if self.events.active:
            self.events.emit(ev.JobRemoved(job_id=job.id, name=job.name))

    def job_paused(self, state: JobState) -> None:
        logger.info("job %s paused", state.job.name)
        if self.events.active:
            self.events.emit(ev.JobPaused(job_id=state.job.id, name=state.job.name))

    def job_resumed(self, state: JobState) -> None:
        job = state.job
        logger.info("job %s resumed", job.name)
        if self.events.active:
            self.events.emit(
                ev.JobResumed(job_id=job.id, name=job.name, next_fire=_dt(state.next_us))
            )

    def job_rescheduled(self, state: JobState) -> None:
        job = state.job
        if self.events.active:
            self.events.emit(
                ev.JobRescheduled(job_id=job.id, name=job.name, next_fire=_dt(state.next_us))
            )

    def scheduler_started(self, jobs: int) -> None:
        logger.info("scheduler started with %d jobs", jobs)
        if self.events.active:
            self.events.emit(ev.SchedulerStarted())

    def scheduler_stopped(self, cancelled: int) -> None:
        logger.info("scheduler stopped (%d runs cancelled)", cancelled)
        if self.events.active:
            self.events.emit(ev.SchedulerStopped(cancelled_runs=cancelled))

    def clock_jumped(self, drift: float) -> None:
        logger.warning(
            "wall clock jumped %+.3f s; %s",
            drift,
            "fires skipped over are misfires"
            if drift > 0
            else "no instant at or before a job's last fire will repeat",
        )
        if self.events.active:
            self.events.emit(ev.ClockJumped(delta=drift))

    def coordinator_unavailable(self, exc: BaseException) -> None:
        coordination_logger.warning(
            "coordinator unavailable; occurrences will not run until it is back: %s", exc
        )
        if self.events.active:
            self.events.emit(ev.CoordinatorUnavailable(error=str(exc)))

    def coordinator_recovered(self, outage: float) -> None:
        coordination_logger.warning("coordinator reachable again after %.1f s", outage)
        if self.events.active:
            self.events.emit(ev.CoordinatorRecovered(outage=outage))

    # -- history and waiters -----------------------------------------------------------------
    def wait_next_run(self, job: Job) -> asyncio.Future[RunRecord]:
        """A future resolved with the job's next final record (after its retries)."""
        future: asyncio.Future[RunRecord] = asyncio.get_running_loop().create_future()
        self._waiters.setdefault(job, []).append(future)
        return future

    def forget_waiter(self, job: Job, future: asyncio.Future[RunRecord]) -> None:
        waiters = self._waiters.get(job)
        if waiters and future in waiters:
            waiters.remove(future)
            if not waiters:
                del self._waiters[job]

    def _record(
        self,
        state: JobState,
        when: int,
        attempt: int,
        started: float,
        outcome: Outcome,
        error: str | None,
        result: Any = None,
        *,
        final: bool = True,
    ) -> float:
        """Append to the bounded history, wake waiters on a final outcome; the finish time."""
        job = state.job
        finished = self._clock.time()
        summary = None if result is None else summarize(result)
        raw: RawRun = (when, attempt, started, finished, outcome, error, summary)
        size = job.options.history
        if size:
            history = state.history
            if history is None:
                history = state.history = deque(maxlen=size)
            history.append(raw)
        if final and self._waiters:
            waiters = self._waiters.pop(job, None)
            if waiters:
                record = materialize(job.id, job.name, raw)
                for future in waiters:
                    if not future.done():
                        future.set_result(record)
        return finished

    def _emit_run(
        self, kind: type[ev.RunEvent], state: JobState, when: int, attempt: int, **fields: Any
    ) -> None:
        job = state.job
        self.events.emit(
            kind(job_id=job.id, name=job.name, when=from_us(when), attempt=attempt, **fields)
        )
