"""Run tracking: which runs are in progress, the overlap policy, cancellation, the drain.

:class:`RunTracker` decides whether a due fire starts (the job's ``overlap`` policy acts on
*runs* in progress), starts it as a task, and owns everything about runs in flight:

* ``_runs`` — every run task in progress → its job's state (``JobState.running`` counts them
  per job and is written only here);
* ``_queued`` — the one instant waiting per job under ``overlap="queue"``;
* ``_cancel_reasons`` — why a task was cancelled (``"replaced"``, ``"shutdown"``), read by
  the execution when the ``CancelledError`` arrives.

What a run *does* is not decided here: ``launch(state, when)`` (the scheduler's gate, see
``_gate.py``) turns an instant into the coroutine to run.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable, Coroutine
from typing import TYPE_CHECKING, Any

from ._clock import Clock

if TYPE_CHECKING:
    from ._registry import JobState
    from ._reporting import Reporter

__all__ = ["Launch", "RunTracker"]

#: Turns (job state, instant µs) into the coroutine that runs that occurrence.
Launch = Callable[["JobState", int], Coroutine[Any, Any, Any]]


class RunTracker:
    """Starts runs under the overlap policy and keeps track of them until they end."""

    __slots__ = (
        "_accepting",
        "_cancel_reasons",
        "_clock",
        "_loop",
        "_on_done",
        "_queued",
        "_reporter",
        "_rng",
        "_runs",
        "fires",
        "launch",
    )

    def __init__(self, reporter: Reporter, clock: Clock, rng: random.Random) -> None:
        # Set once by the scheduler to its gate's ``launch`` (the gate needs this tracker,
        # so it is built after it).
        self.launch: Launch = _unset_launch
        self._reporter = reporter
        self._clock = clock
        self._rng = rng
        self._loop: asyncio.AbstractEventLoop | None = None
        self._runs: dict[asyncio.Task[Any], JobState] = {}
        self._queued: dict[JobState, int] = {}
        self._cancel_reasons: dict[asyncio.Task[Any], str] = {}
        self._accepting = False  # True between bind() and close()
        self._on_done = self._run_done  # one bound method, not one per run
        self.fires = 0  # fires started since the scheduler started

    def __len__(self) -> int:
        return len(self._runs)

    def bind(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._accepting = True

    def close(self) -> None:
        """Stop starting queued fires (shutdown has begun)."""
        self._accepting = False

    # -- starting ----------------------------------------------------------------------------
    def start(self, state: JobState, when: int, more: list[int] | None = None) -> None:
        """Run instant ``when`` (then ``more``, in order) unless the overlap policy forbids."""
        if state.running and not self._overlap_allows(state, when, more):
            return
        self.fires += 1
        if more is None and not state.job.options.jitter:
            coro = self.launch(state, when)  # the common case: the run is the task itself
        else:
            coro = self._run_in_turn(state, when, more)
        assert self._loop is not None  # internal: runs start only once bound
        self.track(state, self._loop.create_task(coro))

    def track(self, state: JobState, task: asyncio.Task[Any]) -> None:
        """Count ``task`` as a run of ``state``'s job until it ends."""
        state.running += 1
        self._runs[task] = state
        task.add_done_callback(self._on_done)

    def _overlap_allows(self, state: JobState, when: int, more: list[int] | None) -> bool:
        options = state.job.options
        policy = options.overlap
        if policy == "skip":
            self._reporter.skipped(state, when, "overlap", more)
            return False
        if policy == "allow":
            limit = options.max_instances
            if limit is not None and state.running >= limit:
                self._reporter.skipped(state, when, "max_instances", more)
                return False
            return True
        if policy == "replace":
            for task in [task for task, owner in self._runs.items() if owner is state]:
                self.cancel(task, "replaced")
            return True
        # "queue": at most one fire waits for the run in progress
        if state in self._queued:
            self._reporter.skipped(state, when, "queue_full", more)
            return False
        self._queued[state] = when
        self._reporter.queued(state, when)
        return False

    async def _run_in_turn(self, state: JobState, when: int, more: list[int] | None) -> None:
        """Several instants (misfire policy ``all``) one after another, or a jittered start."""
        jitter = state.job.options.jitter
        for instant in (when, *more) if more else (when,):
            if jitter:
                await self._clock.sleep(self._rng.uniform(0.0, jitter))
            await self.launch(state, instant)

    def _run_done(self, task: asyncio.Task[Any]) -> None:
        state = self._runs.pop(task)
        if self._cancel_reasons:
            self._cancel_reasons.pop(task, None)
        state.running -= 1
        if state.running or not self._queued:
            return
        queued = self._queued.pop(state, None)
        if queued is None:
            return
        if not self._accepting:
            self._reporter.skipped(state, queued, "shutdown")
        elif not state.registered:
            self._reporter.skipped(state, queued, "removed")
        else:
            self.start(state, queued)

    # -- stopping ----------------------------------------------------------------------------
    def cancel(self, task: asyncio.Task[Any], reason: str) -> None:
        self._cancel_reasons[task] = reason
        task.cancel()

    def cancel_reason(self, task: asyncio.Task[Any] | None) -> str:
        """Why ``task`` was cancelled by beat; ``"shutdown"`` when beat did not say."""
        return self._cancel_reasons.get(task, "shutdown") if task is not None else "shutdown"

    async def drain(self, timeout: float) -> int:
        """Wait up to ``timeout`` s for the runs in progress, then cancel the rest; how many."""
        runs = set(self._runs)
        if not runs:
            return 0
        try:
            async with self._clock.timeout(timeout):
                await asyncio.wait(runs)
        except TimeoutError:
            pass
        pending = [task for task in runs if not task.done()]
        for task in pending:
            self.cancel(task, "shutdown")
        if pending:
            await asyncio.wait(pending)
        return len(pending)


def _unset_launch(state: JobState, when: int) -> Coroutine[Any, Any, Any]:
    raise RuntimeError("RunTracker.launch was never set")  # internal wiring error
