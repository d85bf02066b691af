"""The thread hand-off: synchronous control methods callable from any thread.

A scheduler's state belongs to its event loop's thread. :class:`LoopBinding` remembers that
thread once the scheduler starts. Each control method opens with::

    if self._binding.foreign():
        return self._binding.call(self.add_job, job)

so a call from another thread is handed to the loop (``call_soon_threadsafe``) and waits for
the answer, while a call on the loop's thread (the common case, including calls from inside a
run) goes straight through. Before the binding is set (the scheduler not started yet) every
call goes straight through: the scheduler is then used from one thread (documented on
``Scheduler``). A helper rather than a decorator: a wrapping frame that re-packs ``*args``
costs more than the whole ``remove_job`` it guards (benchmarks/README.md).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
from collections.abc import Callable
from threading import get_ident
from typing import Any, TypeVar

__all__ = ["LoopBinding"]

R = TypeVar("R")


class LoopBinding:
    """The loop (and its thread) that owns a scheduler's state; unbound until start."""

    __slots__ = ("loop", "thread")

    def __init__(self) -> None:
        self.loop: asyncio.AbstractEventLoop | None = None
        self.thread: int | None = None  # ident of the loop's thread; None = not bound

    def bind(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.thread = get_ident()

    def unbind(self) -> None:
        self.thread = None

    def foreign(self) -> bool:
        """True when called from a thread other than the bound loop's (hand the call over)."""
        thread = self.thread
        return thread is not None and get_ident() != thread

    def call(self, fn: Callable[..., R], *args: Any) -> R:
        """Run ``fn(*args)`` on the loop's thread and wait for its result or exception."""
        loop = self.loop
        assert loop is not None  # internal: only called once bound
        future: concurrent.futures.Future[R] = concurrent.futures.Future()

        def call() -> None:
            if future.set_running_or_notify_cancel():
                try:
                    future.set_result(fn(*args))
                except BaseException as exc:
                    future.set_exception(exc)

        loop.call_soon_threadsafe(call)
        return future.result()
