"""The log-record factory chain of ``beat._logcapture``: capture wraps whatever factory is
installed, never breaks a factory installed on top of it, and restores the previous one."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from beat import _logcapture

log = logging.getLogger("tests.logcapture")


@pytest.fixture(autouse=True)
def clean_factory() -> Iterator[None]:
    """A process with no capturing worker (workers of earlier tests may never have been
    stopped); the factory and the count put back afterwards."""
    original = logging.getLogRecordFactory()
    saved = (_logcapture._users, _logcapture._installed)
    _logcapture._users, _logcapture._installed = 0, None
    logging.setLogRecordFactory(logging.LogRecord)
    log.setLevel(logging.INFO)
    yield
    logging.setLogRecordFactory(original)
    _logcapture._users, _logcapture._installed = saved
    log.setLevel(logging.NOTSET)


def tagging(previous: Callable[..., logging.LogRecord]) -> Callable[..., logging.LogRecord]:
    def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = previous(*args, **kwargs)
        record.tagged = True
        return record

    return factory


def captured(message: str) -> tuple[list[str], logging.LogRecord]:
    """Log ``message`` inside a fresh attempt's context; what it kept, and the record."""
    logs = _logcapture.AttemptLogs()
    seen: list[logging.LogRecord] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            seen.append(record)

    handler = Keep()
    log.addHandler(handler)
    token = _logcapture._current.set(logs)
    try:
        log.info(message)
    finally:
        _logcapture._current.reset(token)
        log.removeHandler(handler)
    return [entry[3] for entry in logs.close()], seen[0]


def test_a_factory_installed_before_keeps_working_and_is_restored() -> None:
    users = tagging(logging.getLogRecordFactory())
    logging.setLogRecordFactory(users)
    release = _logcapture.install()
    kept, record = captured("hello")
    assert kept == ["hello"] and getattr(record, "tagged", False)
    release()
    release()  # idempotent
    assert logging.getLogRecordFactory() is users


def test_a_factory_installed_on_top_is_never_broken_and_records_are_kept_once() -> None:
    release = _logcapture.install()
    on_top = tagging(logging.getLogRecordFactory())
    logging.setLogRecordFactory(on_top)
    release()  # ours stays inside their chain, doing nothing outside an attempt
    assert logging.getLogRecordFactory() is on_top
    again = _logcapture.install()  # wraps theirs: ours, theirs, ours - a chain, not a loop
    kept, record = captured("still caught")
    assert kept == ["still caught"] and getattr(record, "tagged", False)  # once, not twice
    again()
    assert logging.getLogRecordFactory() is on_top


def test_a_factory_reset_while_capturing_is_wrapped_again_by_the_next_worker() -> None:
    first = _logcapture.install()
    logging.setLogRecordFactory(logging.LogRecord)  # a logging reconfiguration
    assert captured("lost")[0] == []
    second = _logcapture.install()
    assert captured("caught again")[0] == ["caught again"]
    first()
    second()
    assert logging.getLogRecordFactory() is logging.LogRecord


def test_outside_an_attempt_nothing_is_kept() -> None:
    release = _logcapture.install()
    logs = _logcapture.AttemptLogs()
    log.info("not in an attempt")
    release()
    assert logs.close() == []
