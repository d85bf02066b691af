"""The exceptions the job stores raise, re-exported from :mod:`beat._exceptions`.

They live with the rest of beat's exceptions (see the tree drawn there); this module keeps
``from beat.stores._errors import ...`` (and ``beat.stores.StoreError`` ...) working::

    BeatError
    └── StoreError                                 a job store refused or failed an operation
        ├── StoreUnavailableError (ConnectionError) the store cannot be reached (or is closed)
        ├── StoreConfigError (ValueError)           bad DSN/path, credentials, schema version
        ├── JobNotFoundError (LookupError)          no job with that id
        ├── InvalidJobStateError (RuntimeError)     the job's status forbids the transition
        └── SerializationError (TypeError)          an argument or result is not plain JSON
            └── BatchSerializationError             some results of a complete_many batch

Bad options of a new job (empty task name, naive datetime, ``max_attempts < 1``...) raise the
existing :class:`beat.InvalidJobError` (a ``ValueError``).
"""

from __future__ import annotations

from .._exceptions import (
    BatchSerializationError,
    InvalidJobStateError,
    JobNotFoundError,
    SerializationError,
    StoreConfigError,
    StoreError,
    StoreUnavailableError,
)

__all__ = [
    "BatchSerializationError",
    "InvalidJobStateError",
    "JobNotFoundError",
    "SerializationError",
    "StoreConfigError",
    "StoreError",
    "StoreUnavailableError",
]
