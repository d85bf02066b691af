"""Running a job's plain (synchronous) function in a worker thread.

Both the scheduler's runs and the durable worker call a plain function with
:func:`submit` and await it with :func:`outcome`. What the function raises comes back in
the awaiting task as the function's own exception, whatever it is, rather than through
the bare ``loop.run_in_executor`` path, which

- cannot carry ``StopIteration`` (an asyncio future refuses it: the run never ended and held
  its slot and its lease forever; ``next(iter(rows))`` on no rows is enough), and
- hands ``SystemExit``, ``KeyboardInterrupt`` or ``GeneratorExit`` raised by the function
  to the awaiting task like any exception, where they look like the process stopping
  (``KeyboardInterrupt`` comes out as a ``RuntimeError`` caused by it: from a thread it can
  only be the function's own).

Here every exception the function raises is carried across in :class:`_Carried` and raised
again by :func:`outcome`, so the caller's ``except BaseException`` treats it as the job's
failure. ``StopIteration`` becomes ``RuntimeError("coroutine raised StopIteration")`` on
the way out, as it does for an ``async def`` job (PEP 479).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextvars
from collections.abc import Callable
from typing import Any

__all__ = ["outcome", "submit"]


class _Carried(Exception):
    """What the function raised, on its way from the thread to the awaiting task."""

    def __init__(self, exc: BaseException) -> None:
        super().__init__()
        self.exc = exc


def _call(fn: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    try:
        return fn(*args, **kwargs)
    except BaseException as exc:
        raise _Carried(exc) from None


def submit(
    pool: concurrent.futures.ThreadPoolExecutor,
    fn: Callable[..., Any],
    /,
    *args: Any,
    **kwargs: Any,
) -> concurrent.futures.Future[Any]:
    """Start ``fn(*args, **kwargs)`` on ``pool``, in a copy of the caller's context (so
    context variables, e.g. the job's log capture, follow it). The thread's own future:
    done when the function returns, even if whoever awaited it gave up (a timeout)."""
    context = contextvars.copy_context()
    return pool.submit(context.run, _call, fn, args, kwargs)


async def outcome(thread: concurrent.futures.Future[Any]) -> Any:
    """The function's return value, or what it raised, raised here. Cancelling the caller
    stops the wait, not the thread (a thread cannot be stopped)."""
    try:
        return await asyncio.wrap_future(thread)
    except _Carried as carried:
        exc = carried.exc
    if isinstance(exc, KeyboardInterrupt):
        # Signals reach the main thread only: the function raised this itself, and it must
        # not pass for the process being interrupted (callers let KeyboardInterrupt through).
        raise RuntimeError("the function raised KeyboardInterrupt") from exc
    raise exc  # outside the handler: no "during handling of _Carried" in its traceback
