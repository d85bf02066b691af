"""Successful outcomes written in batches: one ``store.complete_many`` per batch.

The worker (``_worker.py``) hands each success to :meth:`CompletionBatcher.complete` and
awaits whether it was recorded; see "Batched completions" in its module docstring.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ._exceptions import SerializationError
from .stores._errors import BatchSerializationError

if TYPE_CHECKING:
    from ._worker import Worker, _Recorded, _Run

__all__ = ["CompletionBatcher"]


@dataclass(frozen=True, slots=True)
class _Completion:
    run: _Run
    value: Any
    recorded: asyncio.Future[bool | None]


class CompletionBatcher:
    """Writes successful outcomes in batches, one ``store.complete_many`` per batch.

    The only owner of its buffer. One writer task at a time drains it: it waits until
    ``limit`` completions are buffered, the worker has nothing else executing (or is
    stopping), or ``delay`` seconds passed on the worker's clock; then writes up to ``limit``
    of them (fenced and retried through outages like every outcome, see
    :meth:`Worker._record_many`) and answers each waiter. Completions arriving meanwhile form
    the next batch.
    """

    def __init__(self, worker: Worker, limit: int, delay: float) -> None:
        self._worker = worker
        self._limit = limit
        self._delay = delay
        self._buffer: list[_Completion] = []
        self._ready = asyncio.Event()
        self._writer: asyncio.Task[None] | None = None

    async def complete(self, run: _Run, value: Any) -> bool | None:
        """Record ``run``'s success; as :meth:`Worker._record`: ``True`` once applied,
        ``False`` if refused or not recordable; :class:`SerializationError` if not JSON."""
        recorded: asyncio.Future[bool | None] = asyncio.get_running_loop().create_future()
        self._buffer.append(_Completion(run, value, recorded))
        self.nudge()
        if self._writer is None:
            self._writer = asyncio.create_task(self._drain(), name="beat-worker-completions")
        return await recorded

    def nudge(self) -> None:
        """Write now if the buffer should not wait any longer (the worker's state changed)."""
        if self._buffer and self._due():
            self._ready.set()

    def _due(self) -> bool:
        worker = self._worker
        return (
            len(self._buffer) >= self._limit
            or worker._stopped
            or all(run.recording for run in worker._running.values())
        )

    async def _drain(self) -> None:
        try:
            while self._buffer:
                if not self._due():
                    self._ready.clear()
                    with contextlib.suppress(TimeoutError):
                        async with self._worker._clock.timeout(self._delay):
                            await self._ready.wait()
                batch, self._buffer = self._buffer[: self._limit], self._buffer[self._limit :]
                await self._write(batch)
        finally:
            self._writer = None

    async def _write(self, batch: list[_Completion]) -> None:
        worker = self._worker
        items = [(c.run.record.id, c.run.record.attempt, worker.name, c.value) for c in batch]

        async def call() -> list[_Recorded]:
            try:
                return list(await worker._store.complete_many(items))
            except BatchSerializationError as exc:
                return [exc.errors.get(i, ok) for i, ok in enumerate(exc.recorded)]

        try:
            results = await worker._record_many([c.run.record for c in batch], "success", call)
        except BaseException as exc:  # pragma: no cover - a bug, or the loop shutting down
            for c in batch:
                if c.recorded.done():
                    continue
                if isinstance(exc, asyncio.CancelledError):
                    c.recorded.cancel()
                else:
                    c.recorded.set_exception(exc)
            raise
        for c, result in zip(batch, results, strict=True):
            if c.recorded.done():  # its run was cancelled meanwhile
                continue
            if isinstance(result, SerializationError):
                c.recorded.set_exception(result)
            else:
                c.recorded.set_result(result)
