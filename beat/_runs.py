"""Run tracking: which runs are in progress, the overlap policy, cancellation, the drain.

:class:`RunTracker` decides whether a due fire starts (the job's ``overlap`` policy acts on
*runs* in progress), starts it as a task, and owns everything about runs in flight:

* ``_runs`` — every run task in progress → its job's state (``JobState.running`` counts them
  per job and is written only here);
* ``_queued`` — the one instant waiting per job under ``overlap="queue"``;
* ``_claiming`` / ``_admitted`` / ``_waiting`` — under a gate that claims before running
  (``claims_first``), see below;
* ``_cancel_reasons`` — why a task was cancelled (``"replaced"``, ``"shutdown"``), read by
  the execution when the ``CancelledError`` arrives.

What a run *does* is not decided here: ``launch(state, when)`` (the scheduler's gate, see
``_gate.py``) turns an instant into the coroutine to run.

**Claims are not runs.** Under a coordinator the gate first claims the occurrence in the
cluster, and most claims lose (another instance runs it). So with ``claims_first`` set, a
fire starts a *claim task* that does not count as a run, and the overlap policy is applied
only when the claim has been won: the gate calls :meth:`RunTracker.admit` and, after the run,
:meth:`RunTracker.release`. A slow or losing claim therefore never makes the next fire look
like an overlap; overlap means a run of the same job in progress *on this instance*.
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
        "_admitted",
        "_cancel_reasons",
        "_claiming",
        "_clock",
        "_loop",
        "_on_done",
        "_queued",
        "_reporter",
        "_rng",
        "_runs",
        "_waiting",
        "claims_first",
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
        # Set once by the scheduler from its gate (``Gate.claims_first``).
        self.claims_first = False
        # claims_first only. Invariants: a task is in at most one of _claiming (fired, not
        # admitted) and _admitted (admitted, counted in its job's ``running``); both are
        # subsets of _runs. _waiting: per job, the one won claim waiting for the job's runs
        # here to end (overlap="queue").
        self._claiming: set[asyncio.Task[Any]] = set()
        self._admitted: dict[asyncio.Task[Any], JobState] = {}
        self._waiting: dict[JobState, asyncio.Future[None]] = {}

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
        """Run instant ``when`` (then ``more``, in order) unless the overlap policy forbids.

        With ``claims_first`` the policy is applied later, by :meth:`admit`."""
        if self.claims_first:
            if state.running and self._refuses_outright(state, when, more):
                return  # not even claimed: a free instance can win it instead
            self.fires += 1
            self.track_claim(state, self._loop_task(self._launch_all(state, when, more)))
            return
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

    def track_claim(self, state: JobState, task: asyncio.Task[Any]) -> None:
        """Keep ``task`` (a claim that may become a run through :meth:`admit`) until it ends;
        it is drained at shutdown like a run, but counts as one only once admitted."""
        self._runs[task] = state
        self._claiming.add(task)
        task.add_done_callback(self._on_done)

    def _loop_task(self, coro: Coroutine[Any, Any, Any]) -> asyncio.Task[Any]:
        assert self._loop is not None  # internal: runs start only once bound
        return self._loop.create_task(coro)

    def _launch_all(
        self, state: JobState, when: int, more: list[int] | None
    ) -> Coroutine[Any, Any, Any]:
        if more is None and not state.job.options.jitter:
            return self.launch(state, when)
        return self._run_in_turn(state, when, more)

    def _refuses_outright(self, state: JobState, when: int, more: list[int] | None) -> bool:
        """Under ``claims_first``, with a run of the job in progress here: whether the policy
        would refuse this fire even if its claim were won ("skip", or "allow" at
        ``max_instances``). Such a fire is not claimed, so it is lost only if every instance
        is busy with the job."""
        options = state.job.options
        if options.overlap == "skip":
            self._reporter.skipped(state, when, "overlap", more)
            return True
        limit = options.max_instances
        if options.overlap == "allow" and limit is not None and state.running >= limit:
            self._reporter.skipped(state, when, "max_instances", more)
            return True
        return False

    async def admit(self, state: JobState, when: int) -> bool:
        """The overlap policy for instant ``when`` of ``state``'s job, whose claim the calling
        task has just won (``claims_first`` only). ``True``: run it, then :meth:`release`.
        ``False``: it must not run (reported here as skipped)."""
        task = asyncio.current_task()
        assert task is not None and task in self._runs  # internal: a tracked claim task
        if state.running:
            policy = state.job.options.overlap
            limit = state.job.options.max_instances
            if policy == "skip":
                self._reporter.skipped(state, when, "overlap")
                return False
            if policy == "allow" and limit is not None and state.running >= limit:
                self._reporter.skipped(state, when, "max_instances")
                return False
            if policy == "replace":
                for other in [t for t, owner in self._admitted.items() if owner is state]:
                    self.cancel(other, "replaced")
            elif policy == "queue" and not await self._wait_turn(state, when):
                return False
        self._claiming.discard(task)
        self._admitted[task] = state
        state.running += 1
        return True

    async def _wait_turn(self, state: JobState, when: int) -> bool:
        """``overlap="queue"`` for a won claim: wait until no run of the job is in progress
        here; ``False`` if another won claim already waits (that one runs)."""
        if state in self._waiting:
            self._reporter.skipped(state, when, "queue_full")
            return False
        future = asyncio.get_running_loop().create_future()
        self._waiting[state] = future
        self._reporter.queued(state, when)
        try:
            while state.running:
                await future
                future = asyncio.get_running_loop().create_future()
                self._waiting[state] = future
        except asyncio.CancelledError:
            self._reporter.skipped(state, when, "shutdown")
            raise
        finally:
            if self._waiting.get(state) is future:
                del self._waiting[state]
        return True

    def release(self, state: JobState) -> None:
        """The admitted run of the calling task ended (``claims_first`` only)."""
        task = asyncio.current_task()
        if task is not None and self._admitted.pop(task, None) is not None:
            self._claiming.add(task)  # still tracked until the task itself ends
            self._ended(state)

    def _ended(self, state: JobState) -> None:
        state.running -= 1
        if not state.running:
            waiting = self._waiting.get(state)
            if waiting is not None and not waiting.done():
                waiting.set_result(None)

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
        """Several instants (misfire policy ``all``) one after another, or a jittered start.

        Before each one, the job is looked at again: instants still waiting when it is
        removed, paused or the scheduler shuts down are skipped (reported), not run. A
        backlog can take long (each instant's run, its retries), and pausing or removing the
        job is how an operator stops it."""
        jitter = state.job.options.jitter
        instants = [when, *more] if more else [when]
        for index, instant in enumerate(instants):
            if jitter:
                await self._clock.sleep(self._rng.uniform(0.0, jitter))
            reason = self._stopped_reason(state)
            if reason is not None:
                self._reporter.skipped(state, instant, reason, instants[index + 1 :])
                return
            await self.launch(state, instant)

    def _stopped_reason(self, state: JobState) -> str | None:
        """Why a run of ``state``'s job must not start now, if it must not."""
        if not self._accepting:
            return "shutdown"
        if not state.registered:
            return "removed"
        if state.paused:
            return "paused"
        return None

    def _run_done(self, task: asyncio.Task[Any]) -> None:
        state = self._runs.pop(task)
        if self._cancel_reasons:
            self._cancel_reasons.pop(task, None)
        if self.claims_first:
            if task in self._claiming:
                self._claiming.discard(task)
            else:  # admitted and ended without release(), or a run_now() run
                self._admitted.pop(task, None)
                self._ended(state)
            return
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
