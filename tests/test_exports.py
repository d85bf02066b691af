import beat
import beat.coordinators
import beat.testing


def test_all_is_sorted_and_complete() -> None:
    assert beat.__all__ == sorted(beat.__all__)
    public = {name for name in dir(beat) if not name.startswith("_")} - {
        # submodules, not API
        "coordinators",
        "stores",
        "testing",
    }
    assert public <= set(beat.__all__) | {"annotations"}
    for name in beat.__all__:
        assert hasattr(beat, name), name


def test_public_names_come_from_private_modules() -> None:
    for name in beat.__all__:
        obj = getattr(beat, name)
        module = getattr(obj, "__module__", "beat")
        assert module == "beat" or module.startswith("beat._"), (name, module)


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
