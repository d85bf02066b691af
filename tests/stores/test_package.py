"""beat.stores exports: sorted ``__all__``, PostgresStore lazily, exception tree."""

from __future__ import annotations

import beat
import beat.stores


def test_all_is_sorted_and_complete() -> None:
    assert beat.stores.__all__ == sorted(beat.stores.__all__)
    for name in beat.stores.__all__:
        assert hasattr(beat.stores, name), name
    assert "PostgresStore" not in beat.stores.__all__  # needs the [postgres] extra
    assert beat.stores.PostgresStore.__name__ == "PostgresStore"


def test_exception_tree() -> None:
    s = beat.stores
    for name in (
        "StoreUnavailableError",
        "StoreConfigError",
        "JobNotFoundError",
        "InvalidJobStateError",
        "SerializationError",
    ):
        assert issubclass(getattr(s, name), s.StoreError)
    assert issubclass(s.StoreError, beat.BeatError)
    assert issubclass(s.StoreUnavailableError, ConnectionError)
    assert issubclass(s.StoreConfigError, ValueError)
    assert issubclass(s.JobNotFoundError, LookupError)
    assert issubclass(s.InvalidJobStateError, RuntimeError)
    assert issubclass(s.SerializationError, TypeError)
