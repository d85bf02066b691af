"""Traces through the OpenTelemetry API: one span per run attempt, linked to its enqueuer.

Needs the ``[tracing]`` extra (``opentelemetry-api``; an SDK and an exporter to see
anything). Nothing of OpenTelemetry is imported until :func:`enable` is called, and until
then every function here returns at once after testing one module-level flag: tracing costs
nothing when it is not enabled.

::

    from beat import tracing

    tracing.enable()                       # the global tracer provider, or pass one

    # where a job is enqueued (the client does this for you once enabled):
    meta = {**tracing.inject()}            # {"traceparent": "00-<trace>-<span>-01"}

    # where an attempt runs (the worker and the scheduler do this for you):
    with tracing.run_span("beat.job emails.send", meta, {"beat.job.attempt": 2}):
        ...

Contract:

* :func:`inject` returns the W3C trace context (``traceparent``, and ``tracestate`` when
  there is one) of the span current at the call, as a ``dict[str, str]`` to store with the
  job (``JobRecord.meta``); ``{}`` when tracing is off or no span is recording a trace.
* :func:`run_span` makes one span (kind ``CONSUMER``) around one run attempt. Its parent is
  the context carried in ``meta`` (so it joins the trace of the request that enqueued the
  job), or none at all — a new trace — when ``meta`` carries none: never whatever span
  happened to be current where the scheduler was started. The span is current inside the
  block, so spans the job makes are its children. An exception leaving the block is
  recorded on the span, its status set to ERROR, and re-raised; a cancellation is marked
  ``beat.cancelled = true``.
* The W3C format is used regardless of the globally configured propagators, so what one
  process injects another always reads.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Mapping
from types import TracebackType
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from opentelemetry.trace import Span, Tracer, TracerProvider

    from .stores import JobRecord

__all__ = ["disable", "enable", "enabled", "inject", "job_span", "run_span"]

#: The one flag tested first by every hot-path call: True between enable() and disable().
ENABLED = False
_tracer: Tracer | None = None  # set exactly when ENABLED is True
_propagator: Any = None  # the W3C TraceContext propagator, once enabled
_otel: _Otel | None = None  # OpenTelemetry's names, bound while ENABLED
# Stays bound after disable(): spans still open must be able to end.
_otel_bound: _Otel | None = None
_NOOP: contextlib.nullcontext[None] = contextlib.nullcontext()  # reusable, re-entrant

TRACER_NAME = "beat"


def enable(tracer_provider: TracerProvider | None = None) -> None:
    """Start tracing runs with ``tracer_provider`` (default: OpenTelemetry's global one).

    Calling it again switches to the new provider. Raises :class:`ImportError` naming the
    extra when ``opentelemetry-api`` is not installed; nothing changes then.
    """
    global ENABLED, _tracer, _propagator, _otel, _otel_bound
    try:
        from opentelemetry import trace
        from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator
    except ImportError as exc:  # pragma: no cover - the test environment has the extra
        raise ImportError(
            "beat.tracing needs OpenTelemetry: pip install 'beat-scheduler[tracing]'"
        ) from exc
    from . import __version__

    provider = tracer_provider if tracer_provider is not None else trace.get_tracer_provider()
    _tracer = provider.get_tracer(TRACER_NAME, __version__)
    _propagator = TraceContextTextMapPropagator()
    _otel = _otel_bound = _otel_bound or _Otel()
    ENABLED = True


def disable() -> None:
    """Stop tracing (spans already open end normally)."""
    global ENABLED, _tracer, _otel
    ENABLED = False
    _tracer = None
    _otel = None


def enabled() -> bool:
    return ENABLED


def inject() -> dict[str, str]:
    """The W3C trace context of the current span, for a job's ``meta``; ``{}`` when off."""
    if not ENABLED:
        return {}
    carrier: dict[str, str] = {}
    _propagator.inject(carrier)
    return carrier


def run_span(
    name: str,
    meta: Mapping[str, Any] | None = None,
    attributes: Mapping[str, Any] | None = None,
) -> contextlib.AbstractContextManager[Span | None]:
    """A context manager making one span for one run attempt; yields the span (``None``
    when tracing is off). See the module docstring for parenting and errors."""
    if not ENABLED:
        return _NOOP
    return _Span(name, meta, attributes)


def job_span(record: JobRecord) -> contextlib.AbstractContextManager[Span | None]:
    """:func:`run_span` for one attempt of a durable job: name ``beat.job <task>``, parent
    from ``record.meta``, attributes ``beat.job.id``, ``beat.task``, ``beat.queue``,
    ``beat.job.attempt``."""
    if not ENABLED:
        return _NOOP
    return _Span(
        f"beat.job {record.task}",
        getattr(record, "meta", None),
        {
            "beat.job.id": str(record.id),
            "beat.task": record.task,
            "beat.queue": record.queue,
            "beat.job.attempt": record.attempt,
        },
    )


class _Span:
    """One attempt's span: started and made current on enter, ended on exit.

    A class rather than a generator-based context manager: two method calls per attempt
    instead of a generator and OpenTelemetry's own ``use_span`` wrapper (see the benchmark
    in benchmarks/bench_observability.py).
    """

    __slots__ = ("_attributes", "_meta", "_name", "_span", "_token")

    def __init__(
        self, name: str, meta: Mapping[str, Any] | None, attributes: Mapping[str, Any] | None
    ) -> None:
        self._name = name
        self._meta = meta
        self._attributes = attributes
        self._span: Span | None = None
        self._token: Any = None

    def __enter__(self) -> Span | None:
        tracer, otel = _tracer, _otel
        if tracer is None or otel is None:  # disabled between the flag test and here
            return None
        carrier = _carrier(self._meta)
        # An empty Context, not the current one: a run without a carried context starts a
        # new trace instead of joining whatever was current where the scheduler started.
        parent = _propagator.extract(carrier, context=otel.Context()) if carrier else None
        span = tracer.start_span(
            self._name,
            context=parent if parent is not None else otel.EMPTY,
            kind=otel.CONSUMER,
            attributes=self._attributes,
        )
        self._span = span
        self._token = otel.attach(otel.set_span_in_context(span))
        return span

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        span = self._span
        if span is None:
            return
        assert _otel_bound is not None  # internal: bound for as long as any span exists
        _otel_bound.detach(self._token)
        if exc is not None:
            if isinstance(exc, asyncio.CancelledError):
                span.set_attribute("beat.cancelled", True)  # not an error of the job
            elif isinstance(exc, Exception):
                span.record_exception(exc)
                span.set_status(_otel_bound.error_status(exc))
        span.end()


class _Otel:
    """The OpenTelemetry names a span needs, imported once by :func:`enable`."""

    def __init__(self) -> None:
        from opentelemetry import context, trace
        from opentelemetry.trace import SpanKind, Status, StatusCode

        self.Context = context.Context
        self.EMPTY = context.Context()
        self.attach = context.attach
        self.detach = context.detach
        self.set_span_in_context = trace.set_span_in_context
        self.CONSUMER = SpanKind.CONSUMER
        self._status = Status
        self._error = StatusCode.ERROR

    def error_status(self, exc: BaseException) -> Any:
        return self._status(self._error, f"{type(exc).__name__}: {exc}")


def _carrier(meta: Mapping[str, Any] | None) -> dict[str, str]:
    """The string-valued trace headers of ``meta`` (anything else in it is ignored)."""
    if not meta:
        return {}
    return {
        key: value
        for key in ("traceparent", "tracestate")
        if isinstance(value := meta.get(key), str)
    }
