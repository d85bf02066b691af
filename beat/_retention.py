"""Retention: prune finished jobs on a period, once per period for the whole cluster.

Every worker given ``retention=[PruneRule(...), ...]`` runs :meth:`Pruner.run`: at each
period boundary of the **store's** clock (``floor(now / every) * every``, so every instance
computes the same instants) it enqueues one durable job of the task ``beat.prune`` with

    unique=Unique(key="beat.prune@<period start, ISO>", statuses=<every status>)

The store enforces the key (one transaction: advisory lock on PostgreSQL, the write lock on
SQLite), so however many instances enqueue for a period, one job is stored and one worker
runs it: ``store.prune(rules)``. No coordinator and no leader election; a crashed run is
retried or re-claimed after its lease like any job. The job carries the rules of the instance
that stored it, so the run does what that instance was configured to do. ``beat.prune`` is a
reserved task name (registered in the worker's registry when retention is on).

Instants are read on the store's clock and waited for on the worker's clock; a difference
between the two only moves when in the period the job is stored, never how many are.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from ._exceptions import InvalidJobError
from ._tasks import Task, TaskOptions
from ._units import positive_seconds
from .stores._base import JobStatus, NewJob, PruneRule, Unique, prepare_rules

if TYPE_CHECKING:
    from ._clock import Clock
    from .stores import Store

__all__ = ["PRUNE_TASK", "Pruner", "decode_rules", "encode_rules"]

log = logging.getLogger("beat.worker")

PRUNE_TASK_NAME = "beat.prune"
#: After a failed enqueue (store unreachable), try again this soon (capped by the period).
RETRY_ENQUEUE = 60.0
#: Every status: a period's job conflicts even once it has finished, so an instance starting
#: late in the period does not prune a second time.
_ALL_STATUSES = frozenset(JobStatus)


def encode_rules(rules: Sequence[PruneRule]) -> list[dict[str, Any]]:
    """The rules as the JSON arguments of a prune job."""
    return [
        {"status": str(r.status), "task": r.task, "max_age": r.max_age, "max_count": r.max_count}
        for r in rules
    ]


def decode_rules(data: Any) -> list[PruneRule]:
    """:func:`encode_rules` read back; :class:`InvalidJobError` for anything else."""
    if not isinstance(data, list):
        raise InvalidJobError(f"prune rules must be a list, got {data!r}")
    rules = []
    for item in data:
        if not isinstance(item, dict) or set(item) != {"status", "task", "max_age", "max_count"}:
            raise InvalidJobError(f"not an encoded PruneRule: {item!r}")
        try:
            status = JobStatus(item["status"])
        except ValueError:
            raise InvalidJobError(f"unknown job status in a prune rule: {item!r}") from None
        rules.append(PruneRule(status, item["task"], item["max_age"], item["max_count"]))
    prepare_rules(rules)
    return rules


async def _prune(ctx: Any, rules: list[dict[str, Any]]) -> dict[str, int]:
    deleted = await ctx._owner._store.prune(decode_rules(rules))
    log.info("pruned %d finished job(s) (job %s)", deleted, ctx.id)
    return {"deleted": deleted}


#: The task every pruning worker registers. Two retries: a failed prune (an outage) is
#: tried again within the period, and pruning twice deletes nothing more than once.
PRUNE_TASK: Task[Any] = Task(_prune, name=PRUNE_TASK_NAME, options=TaskOptions(retries=2))


class Pruner:
    """Enqueues the period's prune job, once per period of ``every`` seconds (see module)."""

    __slots__ = ("every", "rules")

    def __init__(self, rules: Sequence[PruneRule], every: float | timedelta) -> None:
        if not rules:
            raise InvalidJobError("retention needs at least one PruneRule")
        prepare_rules(rules)  # InvalidJobError naming the bad rule, now rather than later
        self.rules = list(rules)
        self.every = positive_seconds(every, "prune_every")

    def period_of(self, now: datetime) -> tuple[datetime, float]:
        """The start of the period holding ``now``, and the seconds left in it."""
        epoch = now.timestamp()
        start = math.floor(epoch / self.every) * self.every
        return datetime.fromtimestamp(start, UTC), start + self.every - epoch

    def job(self, start: datetime, queue: str) -> NewJob:
        key = f"{PRUNE_TASK_NAME}@{start.isoformat()}"
        return NewJob(
            PRUNE_TASK_NAME,
            args=[encode_rules(self.rules)],
            queue=queue,
            max_attempts=PRUNE_TASK.policy.retries + 1,
            meta={"prune_period": start.isoformat()},
            unique=Unique(key=key, statuses=_ALL_STATUSES),
        )

    async def run(self, store: Store, clock: Clock, queue: str, worker: str) -> None:
        """Forever: store this period's prune job (a conflict means another instance did),
        then sleep until the next period starts."""
        while True:
            try:
                start, left = self.period_of(await store.now())
                [record] = await store.enqueue([self.job(start, queue)])
                if not record.conflict:
                    log.debug("worker %s: prune job %s stored for %s", worker, record.id, start)
            except Exception as exc:
                log.warning(
                    "worker %s: could not store the prune job (%s: %s); trying again",
                    worker,
                    type(exc).__name__,
                    exc,
                )
                left = min(self.every, RETRY_ENQUEUE)
            await clock.sleep(max(left, 0.001))
