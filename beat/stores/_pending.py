"""Temporary: the new Store methods for the backends whose implementation lands next."""

from __future__ import annotations

from typing import Any, NoReturn

from ._base import Store


def _not_yet(self: Any, *args: Any, **kwargs: Any) -> NoReturn:
    raise NotImplementedError(f"{type(self).__name__}: not implemented yet")


class Pending(Store):
    set_progress = add_logs = get_logs = count_jobs = prune = _not_yet
    record_instance = list_instances = remove_instance = _not_yet
    put_schedule = get_schedule = list_schedules = set_schedule_paused = _not_yet
    delete_schedule = advance_schedule = schedules_version = _not_yet
    wait_schedules_changed = _not_yet
