"""The gate: the one port between the scheduler and whoever decides that an occurrence runs.

Every due fire that the overlap policy lets through is handed to the scheduler's gate, which
returns the coroutine that runs it. The gate is chosen once, when the scheduler is built:

* :class:`LocalGate` (no coordinator): the occurrence runs here — the coroutine *is* the
  execution, so a plain fire costs one task and one coroutine frame;
* ``_coordination.ClaimGate`` (a coordinator): the occurrence is claimed in the cluster
  first and runs only on the instance that won the claim.

A durable job store plugs in the same way: a gate whose ``launch`` enqueues the occurrence
as a durable job keyed by (job name, instant) instead of running it in process.

The scheduler calls ``open`` before the first fire (with the jobs registered then),
``job_added`` for each job added after that, and ``close`` after the last run ended.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine, Sequence
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from ._registry import JobState

__all__ = ["Execute", "Gate", "LocalGate"]

#: ``execute(state, when µs, attempt, raise_errors)``: run one occurrence (``Executor.execute``).
Execute = Callable[["JobState", int, int, bool], Coroutine[Any, Any, Any]]


class Gate(Protocol):
    """How due occurrences become runs; see the module docstring."""

    #: Whether many instances share the schedule: then names identify jobs (and must be
    #: unique) and every instance must compute the same instants.
    shared_schedule: bool
    #: Whether :meth:`job_added` wants to hear of jobs added after :meth:`open`.
    wants_added_jobs: bool
    #: Whether a launched occurrence is first *claimed* and may not run here at all: then
    #: the overlap policy is applied when the claim is won (the gate calls
    #: ``RunTracker.admit`` / ``release`` around the run), not at the fire.
    claims_first: bool

    async def open(self, states: Sequence[JobState]) -> None:
        """Prepare before the first fire; raising makes the scheduler refuse to start."""
        ...

    def job_added(self, state: JobState) -> None:
        """A job was added after :meth:`open`: treat it like the jobs present at open."""
        ...

    def launch(self, state: JobState, when: int) -> Coroutine[Any, Any, Any]:
        """The coroutine that runs (or hands off) the occurrence ``(state.job, when)``."""
        ...

    async def close(self) -> None:
        """Release what :meth:`open` acquired. Called once, after the last run ended."""
        ...


class LocalGate:
    """Every occurrence runs here."""

    shared_schedule = False
    wants_added_jobs = False
    claims_first = False

    def __init__(self, execute: Execute) -> None:
        self._execute = execute

    async def open(self, states: Sequence[JobState]) -> None:
        return None

    def job_added(self, state: JobState) -> None:
        return None

    def launch(self, state: JobState, when: int) -> Coroutine[Any, Any, Any]:
        return self._execute(state, when, 1, False)

    async def close(self) -> None:
        return None


def spawn(helpers: set[asyncio.Task[Any]], coro: Coroutine[Any, Any, Any]) -> None:
    """Run ``coro`` as a background task kept in ``helpers`` until it ends."""
    task = asyncio.get_running_loop().create_task(coro)
    helpers.add(task)
    task.add_done_callback(helpers.discard)
