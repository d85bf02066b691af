"""Coordination backends: many instances, one run per occurrence (SEMANTICS §6).

``beat.coordinators.Coordinator`` is the interface; the Redis and PostgreSQL backends live in
``beat.coordinators.redis`` and ``beat.coordinators.postgres`` and need the ``redis`` /
``postgres`` extras.
"""

from ._base import Claim, Coordinator, JobSpec, Occurrence

__all__ = ["Claim", "Coordinator", "JobSpec", "Occurrence"]
