"""Durable-job events: the scheduler's worker's claims and outcomes, on the scheduler's bus.

:class:`DurableJobEvents` is a :class:`~beat._observers.WorkerObserver` the
:class:`~beat.Scheduler` composes with its :class:`~beat.Worker` and its
:class:`~beat._events.EventBus`: it turns ``job_claimed(record)`` into
:class:`~beat._events.DurableJobClaimed` and ``job_finished(record, outcome, duration)`` into
:class:`~beat._events.DurableJobFinished`. The worker knows nothing of the bus.

Zero cost unobserved: the scheduler calls :meth:`DurableJobEvents.refresh` after every
subscribe and unsubscribe, and the observer is on the worker's list only while some
subscriber would receive one of these events. With nobody listening (or only listeners of
other types, such as ``beat.metrics``'s) the worker's observer list stays as it was, so an
unobserved worker still pays one empty-list test per claim and per outcome.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from . import _events as ev

if TYPE_CHECKING:
    from ._observers import JobOutcome
    from ._worker import Worker
    from .stores import JobRecord

__all__ = ["DurableJobEvents"]


class DurableJobEvents:
    """Emits the durable-job events of ``worker`` on ``bus`` while someone wants them."""

    __slots__ = ("_attached", "_bus", "_claims", "_ends", "_worker")

    def __init__(self, bus: ev.EventBus, worker: Worker) -> None:
        self._bus = bus
        self._worker = worker
        self._claims = False  # some subscriber takes DurableJobClaimed
        self._ends = False  # some subscriber takes DurableJobFinished
        self._attached = False

    def refresh(self) -> None:
        """Attach to the worker if a subscriber wants these events, detach if none does
        (call after each subscribe and unsubscribe, on the loop)."""
        self._claims = self._bus.wants(ev.DurableJobClaimed)
        self._ends = self._bus.wants(ev.DurableJobFinished)
        wanted = self._claims or self._ends
        if wanted and not self._attached:
            self._worker.add_observer(self)
        elif not wanted and self._attached:
            self._worker.remove_observer(self)
        self._attached = wanted

    # -- the worker observer -----------------------------------------------------------------
    def job_claimed(self, record: JobRecord) -> None:
        if self._claims:
            self._bus.emit(
                ev.DurableJobClaimed(
                    job_id=record.id, task=record.task, queue=record.queue, attempt=record.attempt
                )
            )

    def job_finished(self, record: JobRecord, outcome: JobOutcome, duration: float) -> None:
        if self._ends:
            # For a failure the worker passes the record with the error it recorded; any
            # other record may still hold an earlier attempt's error, not this outcome's.
            failed = outcome == "retried" or outcome == "dead"
            self._bus.emit(
                ev.DurableJobFinished(
                    job_id=record.id,
                    task=record.task,
                    queue=record.queue,
                    attempt=record.attempt,
                    outcome=outcome,
                    duration=duration,
                    error_type=record.error_type if failed else None,
                    error_message=record.error_message if failed else None,
                )
            )

    def __repr__(self) -> str:
        return f"<DurableJobEvents attached={self._attached}>"
