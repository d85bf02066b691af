"""Trace context through durable jobs: the client puts it in ``meta`` at enqueue, the worker
makes the attempt's span its child; nothing is carried while tracing is off."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import StatusCode

from beat import JobContext, JobFailedError, Scheduler, tracing
from beat.stores import MemoryStore

pytestmark = pytest.mark.asyncio


@pytest.fixture
def traced() -> Iterator[tuple[TracerProvider, InMemorySpanExporter]]:
    provider = TracerProvider()
    exporter = InMemorySpanExporter()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracing.enable(provider)
    yield provider, exporter
    tracing.disable()


async def test_an_attempt_s_span_joins_the_trace_that_enqueued_it(
    traced: tuple[TracerProvider, InMemorySpanExporter],
) -> None:
    provider, exporter = traced
    scheduler = Scheduler(store=MemoryStore())

    @scheduler.task(name="child")
    async def child(ctx: JobContext) -> str:
        return "in child"

    @scheduler.task(name="parent")
    async def parent(ctx: JobContext) -> str:
        handle = await ctx.enqueue(child)  # enqueued inside the parent's span
        return str(await ctx.wait(handle, timeout=10))

    @scheduler.task(name="broken", retries=0)
    async def broken(ctx: JobContext) -> None:
        raise ValueError("broken")

    async with scheduler:
        with provider.get_tracer("test").start_as_current_span("request") as request:
            handle = await parent.enqueue()
            failing = await broken.enqueue()
        assert await handle.result(timeout=10) == "in child"
        with pytest.raises(JobFailedError):
            await failing.result(timeout=10)
        record = await scheduler.client.get(handle.id)
    trace_id = request.get_span_context().trace_id
    assert record.meta["traceparent"].split("-")[1] == f"{trace_id:032x}"
    spans = {s.name: s for s in exporter.get_finished_spans()}
    job_span, child_span = spans["beat.job parent"], spans["beat.job child"]
    assert (
        job_span.parent is not None
        and job_span.parent.span_id == request.get_span_context().span_id
    )
    assert child_span.parent is not None and child_span.parent.span_id == job_span.context.span_id
    assert {job_span.context.trace_id, child_span.context.trace_id} == {trace_id}
    assert job_span.attributes is not None and job_span.attributes["beat.job.attempt"] == 1
    assert spans["beat.job broken"].status.status_code is StatusCode.ERROR


async def test_nothing_is_carried_while_tracing_is_off() -> None:
    provider = TracerProvider()
    scheduler = Scheduler(store=MemoryStore())

    @scheduler.task(name="plain")
    async def plain(ctx: JobContext) -> None:
        pass

    async with scheduler:
        with provider.get_tracer("test").start_as_current_span("request"):
            handle = await plain.enqueue()
        await handle.result(timeout=10)
        assert (await scheduler.client.get(handle.id)).meta == {}
