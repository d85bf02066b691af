"""Coordination backends: many instances, one run per occurrence (docs/guarantees.md §6).

``beat.coordinators.Coordinator`` is the interface. The backends need their extras and are
imported lazily, on first use of their name, so ``import beat.coordinators`` never needs
them::

    from beat.coordinators import RedisCoordinator      # pip install 'beat-scheduler[redis]'
    from beat.coordinators import PostgresCoordinator   # pip install 'beat-scheduler[postgres]'

(also importable from ``beat.coordinators.redis`` and ``beat.coordinators.postgres``). They
are left out of ``__all__`` so that ``import *`` works without the extras.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ._base import Claim, Coordinator, JobSpec, Occurrence

if TYPE_CHECKING:
    from .postgres import PostgresCoordinator as PostgresCoordinator
    from .redis import RedisCoordinator as RedisCoordinator

__all__ = ["Claim", "Coordinator", "JobSpec", "Occurrence"]

_LAZY = {"PostgresCoordinator": "postgres", "RedisCoordinator": "redis"}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    from importlib import import_module

    return getattr(import_module(f".{module}", __name__), name)
