"""beat.tracing: one span per run attempt, parented to the context carried from enqueue."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from collections.abc import Iterator
from datetime import timedelta

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

from beat import Backoff, Context, Job, Scheduler, tracing
from beat.testing import FakeClock

S = timedelta(seconds=1)


@pytest.fixture
def spans() -> Iterator[InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracing.enable(provider)
    yield exporter
    tracing.disable()
    provider.shutdown()


@pytest.fixture
def app_tracer(spans: InMemorySpanExporter) -> trace.Tracer:
    """A tracer of the same provider, standing for the application's own code."""
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(spans))
    return provider.get_tracer("app")


def test_off_by_default_costs_one_flag_and_imports_nothing() -> None:
    code = (
        "import sys, beat, beat.tracing as t\n"
        "assert t.inject() == {}\n"
        "with t.run_span('x', {'traceparent': 'junk'}) as span: assert span is None\n"
        "print(sorted(m for m in sys.modules if m.startswith('opentelemetry')))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert out.strip() == "[]"


def test_inject_carries_the_current_span_as_w3c_traceparent(
    spans: InMemorySpanExporter, app_tracer: trace.Tracer
) -> None:
    assert tracing.inject() == {}  # no span current: nothing to carry
    with app_tracer.start_as_current_span("request") as request:
        carried = tracing.inject()
    ctx = request.get_span_context()
    assert carried == {
        "traceparent": f"00-{ctx.trace_id:032x}-{ctx.span_id:016x}-{ctx.trace_flags:02x}"
    }
    assert ctx.trace_flags.sampled


def test_run_span_is_a_child_of_the_enqueuing_request(
    spans: InMemorySpanExporter, app_tracer: trace.Tracer
) -> None:
    with app_tracer.start_as_current_span("request") as request:
        meta = {"traceparent": tracing.inject()["traceparent"], "parent": "ignored"}
    with (
        app_tracer.start_as_current_span("unrelated"),  # current where the run starts
        tracing.run_span("beat.job send", meta, {"beat.job.attempt": 1}) as span,
    ):
        assert span is not None
        assert trace.get_current_span() is span  # the job's own spans nest under it
    (run,) = [s for s in spans.get_finished_spans() if s.name == "beat.job send"]
    assert run.kind is SpanKind.CONSUMER
    assert run.parent is not None
    assert run.parent.trace_id == request.get_span_context().trace_id
    assert run.parent.span_id == request.get_span_context().span_id
    assert run.attributes == {"beat.job.attempt": 1}


def test_run_span_without_carried_context_starts_a_new_trace(
    spans: InMemorySpanExporter, app_tracer: trace.Tracer
) -> None:
    with (
        app_tracer.start_as_current_span("around") as around,
        tracing.run_span("beat.run r", {"traceparent": "00-garbage"}),
    ):
        pass
    (run,) = [s for s in spans.get_finished_spans() if s.name == "beat.run r"]
    assert run.parent is None
    assert run.context.trace_id != around.get_span_context().trace_id


def test_an_exception_is_recorded_as_an_error_and_re_raised(
    spans: InMemorySpanExporter,
) -> None:
    with pytest.raises(KeyError), tracing.run_span("beat.run boom"):
        raise KeyError("missing")
    (run,) = spans.get_finished_spans()
    assert run.status.status_code is StatusCode.ERROR
    assert [e.name for e in run.events] == ["exception"]


def test_disable_stops_making_spans(spans: InMemorySpanExporter) -> None:
    tracing.disable()
    with tracing.run_span("beat.run quiet") as span:
        assert span is None
    assert spans.get_finished_spans() == ()
    assert not tracing.enabled()


@pytest.mark.asyncio
async def test_scheduler_makes_one_span_per_attempt(spans: InMemorySpanExporter) -> None:
    clock = FakeClock()
    attempts: list[int] = []

    async def flaky(ctx: Context) -> str:
        attempts.append(ctx.attempt)
        assert trace.get_current_span().is_recording()  # the attempt's span is current
        if ctx.attempt == 1:
            raise RuntimeError("first try fails")
        return "ok"

    job = Job.oneshot(clock.now + 5 * S).do(
        flaky, name="flaky", retries=1, backoff=Backoff(initial=1.0, jitter=0.0)
    )
    async with Scheduler(clock=clock) as scheduler:
        scheduler.add_job(job)
        await clock.advance(10 * S)
        await scheduler.shutdown(timeout=0)
    assert attempts == [1, 2]
    runs = [s for s in spans.get_finished_spans() if s.name == "beat.run flaky"]
    assert [s.attributes["beat.run.attempt"] for s in runs if s.attributes] == [1, 2]
    assert [s.status.status_code for s in runs] == [StatusCode.ERROR, StatusCode.UNSET]
    assert all(s.parent is None for s in runs)
    assert runs[0].attributes is not None
    assert runs[0].attributes["beat.run.when"] == (clock.now - 5 * S).isoformat()


@pytest.mark.asyncio
async def test_a_plain_function_in_a_thread_runs_inside_its_span(
    spans: InMemorySpanExporter, app_tracer: trace.Tracer
) -> None:
    clock = FakeClock()

    def in_thread(ctx: Context) -> None:
        with app_tracer.start_as_current_span("inside"):
            pass

    async with Scheduler(clock=clock) as scheduler:
        job_id = scheduler.add_job(Job.oneshot(clock.now + S).do(in_thread, name="sync"))
        waiting = asyncio.ensure_future(scheduler.wait_next_run(job_id))
        await clock.advance(S)
        async with asyncio.timeout(5):
            await waiting
        await scheduler.shutdown(timeout=0)
    by_name = {s.name: s for s in spans.get_finished_spans()}
    inside, run = by_name["inside"], by_name["beat.run sync"]
    assert inside.parent is not None
    assert inside.parent.span_id == run.context.span_id
