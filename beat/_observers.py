"""What a :class:`~beat.Worker` tells observers (metrics) about the durable jobs it runs.

The worker keeps a list of observers and calls them synchronously, on its loop, at two
points of each execution. Observers must be quick and must not raise (the worker logs and
ignores an observer that does). ``beat.metrics`` is one; nothing is called when the list
is empty, so an unobserved worker pays one empty-list test per claim and per outcome.

Outcomes (``JobOutcome``), one per claimed execution, when its end is recorded:

* ``succeeded`` — completed; ``retried`` — failed, queued again; ``dead`` — failed, no
  attempt left; ``cancelled`` — stopped on a cancel request;
* ``lost`` — taken over or finished elsewhere (heartbeat said lost, or a fenced write was
  refused); ``released`` — handed back (shutdown, or the task is no longer registered);
* ``abandoned`` — a plain function still running in its thread at shutdown, or an outcome
  that could not be recorded (left to lease expiry).

``duration`` is the seconds the execution ran (claim to end of the function), on the
worker's clock; ``0.0`` for executions that never started.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal, Protocol, TypeAlias

if TYPE_CHECKING:
    from .stores import JobRecord

__all__ = ["JobOutcome", "WorkerObserver"]

JobOutcome: TypeAlias = Literal[
    "succeeded", "retried", "dead", "cancelled", "lost", "released", "abandoned"
]


class WorkerObserver(Protocol):
    def job_claimed(self, record: JobRecord) -> None:
        """``record`` was claimed by this worker (``record.attempt > 1``: a retry, or a
        re-claim after a lease expired)."""

    def job_finished(self, record: JobRecord, outcome: JobOutcome, duration: float) -> None:
        """The execution claimed as ``record`` ended with ``outcome`` (see the module). For
        ``retried`` and ``dead``, ``record`` carries the error recorded (``error_type``,
        ``error_message``)."""
