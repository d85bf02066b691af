import asyncio

import beat
import beat.coordinators
import beat.testing


def test_all_is_sorted_and_complete() -> None:
    assert beat.__all__ == sorted(beat.__all__)
    public = {name for name in dir(beat) if not name.startswith("_")} - {
        # submodules, not API
        "coordinators",
        "dashboard",
        "metrics",
        "stores",
        "testing",
        "tracing",
    }
    assert public <= set(beat.__all__) | {"annotations"}
    for name in beat.__all__:
        assert hasattr(beat, name), name


def test_public_names_come_from_private_modules() -> None:
    for name in beat.__all__:
        obj = getattr(beat, name)
        module = getattr(obj, "__module__", "beat")
        # The job store records live with the stores (beat.stores._*), the rest in beat._*.
        private = module.startswith(("beat._", "beat.stores._"))
        assert module == "beat" or private, (name, module)


def test_exception_tree() -> None:
    assert issubclass(beat.InvalidScheduleError, beat.BeatError)
    assert issubclass(beat.InvalidScheduleError, ValueError)
    assert issubclass(beat.CronSyntaxError, beat.InvalidScheduleError)
    assert issubclass(beat.JobLookupError, LookupError)
    assert issubclass(beat.DuplicateJobError, beat.BeatError)
    assert issubclass(beat.SchedulerStateError, RuntimeError)
    assert issubclass(beat.CoordinatorUnavailableError, ConnectionError)
    assert issubclass(beat.CoordinatorConfigError, beat.CoordinatorError)


def test_submodule_exports() -> None:
    assert beat.coordinators.__all__ == sorted(beat.coordinators.__all__)
    assert beat.testing.__all__ == sorted(beat.testing.__all__)


def test_store_and_outcome_exceptions_live_in_the_one_tree() -> None:
    import beat._exceptions as exc
    import beat.stores
    import beat.stores._errors

    for name in beat.stores._errors.__all__:
        assert getattr(beat.stores, name) is getattr(exc, name), name
        assert issubclass(getattr(exc, name), exc.StoreError)
        assert name in exc.__all__
    assert issubclass(exc.StoreError, exc.BeatError)
    assert issubclass(exc.JobFailedError, exc.JobOutcomeError)
    assert issubclass(exc.JobCancelledError, exc.JobOutcomeError)
    assert issubclass(exc.JobOutcomeError, exc.BeatError)
    # A cancelled job is an ordinary error for the waiter, not a cancellation of its task.
    assert not issubclass(exc.JobCancelledError, asyncio.CancelledError)
    assert exc.__all__ == sorted(exc.__all__)


def test_durable_job_events_are_exported_events() -> None:
    import dataclasses
    import uuid

    import pytest

    assert issubclass(beat.DurableJobEvent, beat.Event)
    assert not issubclass(beat.DurableJobEvent, beat.JobEvent)  # scheduled jobs' events
    for kind in (beat.DurableJobClaimed, beat.DurableJobFinished):
        assert issubclass(kind, beat.DurableJobEvent)
        assert kind.__name__ in beat.__all__
    event = beat.DurableJobClaimed(job_id=uuid.uuid4(), task="t", queue="default", attempt=2)
    with pytest.raises(dataclasses.FrozenInstanceError):
        event.attempt = 3  # type: ignore[misc]
