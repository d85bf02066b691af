"""Per-attempt log capture: the log records a durable job's attempt emits, kept with the job.

How a record finds its attempt: the worker sets :data:`_current` (a context variable) to the
attempt's :class:`AttemptLogs` inside the asyncio task that runs the attempt. Every task the
attempt starts, and the thread-pool call of a plain function (the worker runs it through
``contextvars.copy_context().run``), inherits that context, so concurrent attempts on one
worker never mix their records, and records of any logger — the task's own, a library's —
are caught.

Where records are taken: a wrapper around the process's log-record factory
(:func:`logging.setLogRecordFactory`), chained to whatever factory was there. The factory
runs for every record a logger creates, after the logger's level check and before any
handler or filter, so

* it sees records of loggers that do not propagate and of loggers with no handler at all;
* it changes nothing about normal output: the record it returns is the one the previous
  factory made, untouched, and handlers, levels and filters are not modified;
* it only sees records the logging configuration lets be created: ``log.info`` under a
  logger whose effective level is WARNING creates no record, so nothing is captured (set the
  level you want captured on your loggers).

Bounds: each attempt keeps at most ``max_records`` records and ``max_bytes`` bytes of text
(UTF-8 of logger + message); the records after that are counted, and one final entry says
how many were dropped. The buffer is closed when the attempt ends: records emitted later (a
thread abandoned after a timeout, a task the attempt left running) are ignored.

Cost (``benchmarks/bench_logcapture.py``): with no attempt in the context a record pays one
extra call and one ``ContextVar.get``; inside an attempt, formatting its message once and
keeping a tuple (about half a plain logging call); a job that logs nothing, a few µs.
"""

from __future__ import annotations

import contextvars
import logging
import threading
import traceback
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, TypeAlias

__all__ = [
    "DEFAULT_MAX_BYTES",
    "DEFAULT_MAX_RECORDS",
    "AttemptLogs",
    "RawEntry",
    "capture",
    "install",
]

DEFAULT_MAX_RECORDS = 200
DEFAULT_MAX_BYTES = 64 * 1024
#: Logger named on the "N records dropped" entry.
DROPPED_LOGGER = "beat.worker"

#: ``(created epoch seconds, level name, logger name, message)``: cheap to keep; the worker
#: turns them into :class:`beat.stores.LogEntry` once, when the attempt ends.
RawEntry: TypeAlias = tuple[float, str, str, str]

#: The attempt whose records are being captured in this context (``None``: none).
_current: contextvars.ContextVar[AttemptLogs | None] = contextvars.ContextVar(
    "beat_attempt_logs", default=None
)


class AttemptLogs:
    """The bounded record buffer of one attempt.

    Appended to from the loop's thread and from a plain function's worker thread, so the
    bookkeeping is under a lock. Invariant: ``len(entries) <= max_records`` and
    ``size <= max_bytes``; ``dropped`` counts records refused by either bound.
    """

    __slots__ = (
        "_last",
        "_lock",
        "closed",
        "dropped",
        "entries",
        "max_bytes",
        "max_records",
        "size",
    )

    def __init__(
        self, max_records: int = DEFAULT_MAX_RECORDS, max_bytes: int = DEFAULT_MAX_BYTES
    ) -> None:
        self.max_records = max_records
        self.max_bytes = max_bytes
        self.entries: list[RawEntry] = []
        self.size = 0
        self.dropped = 0
        self.closed = False
        self._lock = threading.Lock()
        self._last: logging.LogRecord | None = None  # a record seen by two wrappers: once

    def add(self, record: logging.LogRecord) -> None:
        """Keep ``record`` (formatted now: its arguments may change later) if it fits."""
        if self.closed or record is self._last:
            return
        self._last = record
        entries = self.entries
        if len(entries) >= self.max_records:  # full: count it without formatting it
            with self._lock:
                self.dropped += 1
            return
        # The common case inline (this runs once per record of every attempt).
        if record.exc_info or record.stack_info or record.args:
            message = _message(record)
        else:
            message = str(record.msg)
        name = record.name
        size = len(message) + len(name)
        if not (message.isascii() and name.isascii()):
            size = _utf8_len(message) + _utf8_len(name)
        with self._lock:
            if self.closed:
                return
            if len(entries) >= self.max_records or self.size + size > self.max_bytes:
                self.dropped += 1
                return
            self.size += size
            entries.append((record.created, record.levelname, name, message))

    def close(self) -> list[RawEntry]:
        """Stop capturing; the entries kept, plus a final one if some were dropped."""
        with self._lock:
            self.closed = True
            self._last = None
            entries = self.entries
            if self.dropped:
                entries.append(
                    (
                        datetime.now(UTC).timestamp(),
                        "WARNING",
                        DROPPED_LOGGER,
                        f"{self.dropped} log records dropped (this attempt kept "
                        f"{len(self.entries)} records, {self.size} bytes; limits "
                        f"{self.max_records} records / {self.max_bytes} bytes)",
                    )
                )
        return entries

    def __repr__(self) -> str:
        return f"<AttemptLogs {len(self.entries)} kept, {self.dropped} dropped>"


def _message(record: logging.LogRecord) -> str:
    try:
        text = record.getMessage()
    except Exception as exc:  # a bad %-format must not break the task's logging call
        text = f"{record.msg!r} (unformattable with {record.args!r}: {exc})"
    if record.exc_info and record.exc_info[0] is not None:
        text = f"{text}\n{''.join(traceback.format_exception(*record.exc_info)).rstrip()}"
    if record.stack_info:
        text = f"{text}\n{record.stack_info}"
    return text


def _utf8_len(text: str) -> int:
    return len(text) if text.isascii() else len(text.encode("utf-8", "replace"))


# -------------------------------------------------------------------------------------------
# The factory wrapper (shared by every capturing worker of the process)
# -------------------------------------------------------------------------------------------
_install_lock = threading.Lock()
_users = 0  # capturing workers started and not stopped
_installed: Callable[..., logging.LogRecord] | None = None  # our wrapper we put on top


def _wrap(previous: Callable[..., logging.LogRecord]) -> Callable[..., logging.LogRecord]:
    """A factory calling ``previous`` and handing the record to the context's attempt.

    Each wrapper holds its own ``previous``, so wrappers stacked around someone else's
    factory (ours, theirs, ours again) form a chain, never a loop; a record reaching two of
    them is kept once (:meth:`AttemptLogs.add` skips the record it kept last).
    """

    def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = previous(*args, **kwargs)
        logs = _current.get()
        if logs is not None:
            logs.add(record)
        return record

    factory.__beat_previous__ = previous  # type: ignore[attr-defined]
    return factory


def install() -> Callable[[], None]:
    """Make sure records are captured (counted, cheap to repeat); returns the release.

    Wraps the installed factory unless the one on top is ours already (so a factory set
    since — a logging reconfiguration — is wrapped in turn). The last release takes our
    wrapper off if it is still on top; if another factory was put on top of it since, ours
    stays in that chain (doing nothing outside an attempt) rather than breaking it.
    """
    global _users, _installed
    with _install_lock:
        _users += 1
        current = logging.getLogRecordFactory()
        if current is not _installed:
            _installed = _wrap(current)
            logging.setLogRecordFactory(_installed)
    released = False

    def release() -> None:
        global _users, _installed
        nonlocal released
        with _install_lock:
            if released:
                return
            released = True
            _users -= 1
            if _users == 0 and _installed is not None:
                if logging.getLogRecordFactory() is _installed:
                    logging.setLogRecordFactory(_installed.__beat_previous__)  # type: ignore[attr-defined]
                _installed = None

    return release


def capture(logs: AttemptLogs | None) -> None:
    """Capture this context's records into ``logs`` (call inside the attempt's own task)."""
    _current.set(logs)
