"""Run records: what happened to each finished run."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

from ._timers import from_us
from ._units import seconds_to_us

__all__ = ["Outcome", "RawRun", "RunRecord", "materialize", "summarize"]

_SUMMARY_LIMIT = 200  # characters of repr kept per result: history must stay small


class Outcome(enum.Enum):
    """How a run ended."""

    SUCCEEDED = "succeeded"
    FAILED = "failed"  # raised; retries (if any) exhausted
    TIMED_OUT = "timed_out"  # exceeded the job's timeout (a thread cannot be killed: it runs on)
    CANCELLED = "cancelled"  # cancelled by shutdown or by overlap="replace"


@dataclass(frozen=True, slots=True)
class RunRecord:
    """One finished attempt of one fire."""

    job_id: UUID
    name: str
    when: datetime  # the scheduled instant
    attempt: int
    started: datetime
    finished: datetime
    outcome: Outcome
    error: str | None = None  # "ExceptionType: message"
    result: str | None = None  # a bounded repr of the return value

    @property
    def duration(self) -> float:
        return (self.finished - self.started).total_seconds()


def summarize(value: object) -> str | None:
    """A short repr for history; never holds on to the value itself."""
    if value is None:
        return None
    try:
        text = repr(value)
    except Exception as exc:  # a broken __repr__ must not fail the run
        text = f"<unrepresentable {type(value).__name__}: {exc!r}>"
    return text if len(text) <= _SUMMARY_LIMIT else text[: _SUMMARY_LIMIT - 1] + "…"


# What the scheduler appends per finished attempt: (when µs, attempt, started s, finished s,
# outcome, error, result summary). Plain tuples keep the per-run cost low; RunRecord objects
# are built only when someone reads the history.
RawRun = tuple[int, int, float, float, Outcome, str | None, str | None]


def materialize(job_id: UUID, name: str, raw: RawRun) -> RunRecord:
    when, attempt, started, finished, outcome, error, result = raw
    return RunRecord(
        job_id=job_id,
        name=name,
        when=from_us(when),
        attempt=attempt,
        started=from_us(seconds_to_us(started)),
        finished=from_us(seconds_to_us(finished)),
        outcome=outcome,
        error=error,
        result=result,
    )
