"""Prometheus metrics for a scheduler, its durable jobs and its store's queues.

Needs the ``[metrics]`` extra (``prometheus-client``). Importing this module imports nothing
of it; :func:`instrument` does. A scheduler that is not instrumented pays nothing: its hot
paths build no event when nobody subscribed (``EventBus.active``), and its worker calls no
observer when it has none.

::

    from prometheus_client import start_http_server
    from beat import metrics

    scheduler = Scheduler(store=...)
    metrics.instrument(scheduler)            # before or after start()
    start_http_server(9100)

How the numbers are gathered (the contract):

* **Scheduled runs** — from the scheduler's events (:meth:`beat.Scheduler.subscribe`), so
  they are counted on the loop shortly after they happen, never inside the scheduler's own
  step. Lateness is measured when the ``RunStarted`` event is delivered: it includes the
  delivery delay (normally microseconds; it grows only if the loop is saturated).
* **Durable jobs** — from the worker, through the :class:`~beat._observers.WorkerObserver`
  hooks (claims, and each execution's outcome and duration).
* **Queue depth** — ``store.count_jobs()`` is asynchronous and a Prometheus collector is
  called synchronously by the exporter's thread, so a task on the scheduler's loop refreshes
  a cache every ``queue_interval`` seconds (on the scheduler's clock) and a scrape reads the
  cache. The first refresh waits for the scheduler's startup (its store open), then runs at
  once: instrumenting before ``start()`` neither logs a failure nor leaves the gauge empty
  for a whole interval. ``beat_queue_depth_updated_timestamp_seconds`` says how fresh it is;
  a refresh that fails keeps the previous values (and logs once per outage). Every status
  of every known queue is exported, 0 where it has no job (so ``== 0`` alerts match and a
  drained queue is not "no data"): a queue is known while it has jobs in the store, is one
  this scheduler's worker serves, or had jobs within :data:`EMPTY_QUEUE_KEPT` seconds.
* **Scheduler state** — ``jobs``, ``running`` and ``fires`` are read from
  :meth:`beat.Scheduler.statistics` at each scrape (plain attribute reads).

The metric names and labels are listed in ``docs/operating.md``. Every scheduled job adds
its ``job`` label value and every task its ``task`` value: keep job names stable (not one
per occurrence).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING, Any

from . import _events as ev
from ._exceptions import InvalidJobError, SchedulerStateError

if TYPE_CHECKING:
    from prometheus_client import CollectorRegistry
    from prometheus_client.metrics_core import Metric

    from ._observers import JobOutcome
    from ._scheduler import Scheduler
    from .stores import JobRecord

__all__ = [
    "DURATION_BUCKETS",
    "EMPTY_QUEUE_KEPT",
    "LATENESS_BUCKETS",
    "Instrumentation",
    "instrument",
]

log = logging.getLogger("beat.metrics")

#: Seconds; fires are usually late by micro- to milliseconds, a misfire by seconds or more.
LATENESS_BUCKETS = (0.0005, 0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 30.0, 60.0)
#: Seconds; from sub-millisecond jobs up to an hour.
DURATION_BUCKETS = (0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 15.0, 60.0, 300.0, 3600.0)

#: Seconds (scheduler clock) a queue left with no job at all (its last jobs pruned) keeps
#: reporting 0 for every status before its series are dropped. Without a bound, every queue
#: name ever seen would be exported forever (a queue per tenant, per test run, ...); a week
#: outlasts weekly jobs and the usual retention of finished ones, and a queue this
#: scheduler's worker serves is never dropped.
EMPTY_QUEUE_KEPT = 7 * 24 * 3600.0

_RUN_OUTCOMES: dict[type[ev.Event], str] = {
    ev.RunSucceeded: "succeeded",
    ev.RunFailed: "failed",
    ev.RunTimedOut: "timed_out",
    ev.RunCancelled: "cancelled",
}


def instrument(
    scheduler: Scheduler,
    registry: CollectorRegistry | None = None,
    *,
    namespace: str = "beat",
    queue_interval: float = 15.0,
) -> Instrumentation:
    """Export ``scheduler``'s metrics to ``registry`` (default: the process-wide one).

    Returns the :class:`Instrumentation`; ``close()`` it to stop (unsubscribe and unregister).
    One registry holds one instrumented scheduler: a second ``instrument`` on the same
    registry raises :class:`InvalidJobError` (pass ``registry=CollectorRegistry()`` per
    scheduler). :class:`ImportError` naming the extra when ``prometheus-client`` is missing;
    :class:`SchedulerStateError` for a running scheduler instrumented off its loop's thread.
    """
    try:
        import prometheus_client
    except ImportError as exc:  # pragma: no cover - the test environment has the extra
        raise ImportError(
            "beat.metrics needs prometheus-client: pip install 'beat-scheduler[metrics]'"
        ) from exc
    from ._scheduler import Scheduler
    from ._units import positive_seconds

    if not isinstance(scheduler, Scheduler):
        raise InvalidJobError(f"instrument() takes a beat.Scheduler, got {scheduler!r}")
    interval = positive_seconds(queue_interval, "queue_interval")
    if scheduler.running:
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            raise SchedulerStateError(
                "instrument() a running scheduler from its event loop (or before start())"
            ) from None
    return Instrumentation(
        scheduler,
        prometheus_client.REGISTRY if registry is None else registry,
        namespace,
        interval,
    )


class Instrumentation:
    """The metrics of one scheduler; see :func:`instrument`. Also a worker observer, so a
    standalone :class:`~beat.Worker` can report into it: ``worker.add_observer(it)``."""

    def __init__(
        self, scheduler: Scheduler, registry: CollectorRegistry, namespace: str, interval: float
    ) -> None:
        from prometheus_client import Counter, Gauge, Histogram

        self._scheduler = scheduler
        self._registry = registry
        self._interval = interval
        self._closed = False
        self._depth: dict[tuple[str, str], int] = {}  # (queue, status) -> count, last refresh
        self._queue_seen: dict[str, float] = {}  # queue -> clock time it last had a job
        self._depth_at: float | None = None  # wall time of the last good refresh
        self._depth_failing = False  # one log line per outage of the refresh
        self._refresher: asyncio.Task[None] | None = None

        made: list[Any] = []

        def add(kind: Callable[..., Any], name: str, doc: str, *labels: str, **kw: Any) -> Any:
            metric = kind(name, doc, labels, namespace=namespace, registry=None, **kw)
            made.append(metric)
            return _Children(metric) if labels else metric

        # -- scheduled runs (events) ------------------------------------------------------
        self.fires = add(Counter, "fires", "Occurrences that started running here.", "job")
        self.lateness = add(
            Histogram,
            "fire_lateness_seconds",
            "Start of an occurrence's first attempt minus its scheduled instant.",
            "job",
            buckets=LATENESS_BUCKETS,
        )
        self.runs = add(Counter, "runs", "Finished run attempts by outcome.", "job", "outcome")
        self.run_duration = add(
            Histogram,
            "run_duration_seconds",
            "Duration of run attempts that succeeded or failed.",
            "job",
            "outcome",
            buckets=DURATION_BUCKETS,
        )
        self.misfires = add(
            Counter, "misfires", "Due instants found late (misfired).", "job", "policy"
        )
        self.dropped = add(
            Counter, "misfires_dropped", "Misfired instants not run (per policy).", "job"
        )
        self.skips = add(
            Counter, "skips", "Fires that did not run here, by reason.", "job", "reason"
        )
        self.claims = add(
            Counter,
            "coordinator_claims",
            "Occurrence claims under a coordinator: won (ran here) or lost (ran elsewhere).",
            "job",
            "result",
        )
        self.coordinator_up = add(
            Gauge, "coordinator_up", "1 while the coordinator is reachable (or none is used)."
        )
        self.coordinator_up.set(1)
        self.clock_jumps = add(Counter, "clock_jumps", "Wall-clock jumps detected.")
        # -- durable jobs (worker observer) ----------------------------------------------
        self.job_claims = add(
            Counter, "job_claims", "Durable job executions claimed by this worker.", "task", "queue"
        )
        self.job_reclaims = add(
            Counter,
            "job_reclaims",
            "Claims of a job's attempt > 1: retries and re-claims after a lease expired.",
            "task",
            "queue",
        )
        self.jobs = add(
            Counter, "job_executions", "Durable job executions by outcome.", "task", "outcome"
        )
        self.job_duration = add(
            Histogram,
            "job_duration_seconds",
            "Duration of durable job executions, claim to end.",
            "task",
            "outcome",
            buckets=DURATION_BUCKETS,
        )

        self._handlers: dict[type[ev.Event], Callable[[Any], None]] = {
            ev.RunStarted: self._started,
            ev.RunSucceeded: self._finished,
            ev.RunFailed: self._finished,
            ev.RunTimedOut: self._finished,
            ev.RunCancelled: self._finished,
            ev.RunSkipped: self._skipped,
            ev.FiresMissed: self._missed,
            ev.CoordinatorUnavailable: lambda e: self.coordinator_up.set(0),
            ev.CoordinatorRecovered: lambda e: self.coordinator_up.set(1),
            ev.ClockJumped: lambda e: self.clock_jumps.inc(),
            ev.SchedulerStarted: lambda e: self._start_refresher(),
            ev.SchedulerStopped: lambda e: self._stop_refresher(),
        }
        self._collectors: list[Any] = [*made, _StateCollector(self, namespace)]
        try:
            for collector in self._collectors:
                registry.register(collector)
        except ValueError as exc:
            for collector in self._collectors:
                with contextlib.suppress(KeyError):
                    registry.unregister(collector)
            raise InvalidJobError(
                f"these metrics are already registered in {registry!r} ({exc}); give each "
                "instrumented scheduler its own registry=CollectorRegistry()"
            ) from None
        self._token = scheduler.subscribe(self._on_event, *self._handlers)
        self._worker = getattr(scheduler, "_worker", None)
        if self._worker is not None:
            add_observer = getattr(self._worker, "add_observer", None)
            if add_observer is not None:
                add_observer(self)
            else:  # pragma: no cover - a worker without the observer hooks
                log.warning("this worker reports no job outcomes: durable-job metrics stay 0")
        if scheduler.running:
            self._start_refresher()

    # -- lifecycle ---------------------------------------------------------------------------
    def close(self) -> None:
        """Stop collecting: unsubscribe, stop the queue-depth refresh, unregister. Idempotent."""
        if self._closed:
            return
        self._closed = True
        self._scheduler.unsubscribe(self._token)
        remove = getattr(self._worker, "remove_observer", None)
        if remove is not None:
            remove(self)
        self._stop_refresher()
        for collector in self._collectors:
            with contextlib.suppress(KeyError):
                self._registry.unregister(collector)

    def __enter__(self) -> Instrumentation:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # -- scheduler events --------------------------------------------------------------------
    def _on_event(self, event: ev.Event) -> None:
        self._handlers[type(event)](event)

    def _started(self, event: ev.RunStarted) -> None:
        if event.attempt != 1:
            return
        self.fires.of(event.name).inc()
        late = self._scheduler.clock.time() - event.when.timestamp()
        self.lateness.of(event.name).observe(max(0.0, late))
        if self._scheduler.coordinator is not None:
            self.claims.of(event.name, "won").inc()

    def _finished(self, event: ev.RunEvent) -> None:
        outcome = _RUN_OUTCOMES[type(event)]
        self.runs.of(event.name, outcome).inc()
        duration = getattr(event, "duration", None)
        if duration is not None:
            self.run_duration.of(event.name, outcome).observe(duration)

    def _skipped(self, event: ev.RunSkipped) -> None:
        self.skips.of(event.name, event.reason).inc()
        if event.reason == "not_claimed":
            self.claims.of(event.name, "lost").inc()

    def _missed(self, event: ev.FiresMissed) -> None:
        self.misfires.of(event.name, event.policy).inc(event.missed)
        if event.dropped:
            self.dropped.of(event.name).inc(event.dropped)

    # -- the worker observer -----------------------------------------------------------------
    def job_claimed(self, record: JobRecord) -> None:
        self.job_claims.of(record.task, record.queue).inc()
        if record.attempt > 1:
            self.job_reclaims.of(record.task, record.queue).inc()

    def job_finished(self, record: JobRecord, outcome: JobOutcome, duration: float) -> None:
        self.jobs.of(record.task, outcome).inc()
        self.job_duration.of(record.task, outcome).observe(duration)

    # -- queue depth ---------------------------------------------------------------------------
    def _start_refresher(self) -> None:
        if self._closed or self._scheduler.store is None or self._refresher is not None:
            return
        self._refresher = asyncio.get_running_loop().create_task(
            self._refresh_loop(), name="beat-metrics-queue-depth"
        )

    def _stop_refresher(self) -> None:
        if self._refresher is not None:
            self._refresher.cancel()
            self._refresher = None

    async def _refresh_loop(self) -> None:
        clock = self._scheduler.clock
        if not await self._started_up():
            return
        while self._scheduler.running:  # not after shutdown began: the store may be closed
            await self.refresh_queue_depth()
            await clock.sleep(self._interval)

    async def _started_up(self) -> bool:
        """Wait for the scheduler's startup; whether it succeeded (and it still runs).

        ``SchedulerStarted`` is emitted by ``start()``, before the scheduler's loop opens the
        store: a count made then fails with "the store is not open", which is no outage, and
        the gauge would stay empty until the next refresh a whole interval later."""
        ready: asyncio.Future[None] | None = getattr(self._scheduler, "_ready", None)
        if ready is not None:
            if not ready.done():
                await asyncio.wait([ready])  # not `await ready`: a cancel here must not reach it
            if ready.cancelled() or ready.exception() is not None:
                return False  # the startup failed: start() / `async with` raises it
        return self._scheduler.running

    async def refresh_queue_depth(self) -> None:
        """Read ``store.count_jobs()`` into the cache now (the periodic task calls this).

        Every status of every known queue gets a value, 0 where the store has no such job
        (``count_jobs`` omits those); see :data:`EMPTY_QUEUE_KEPT` for when a queue stops
        being known. A failure keeps the previous values and logs once per outage."""
        store = self._scheduler.store
        if store is None:
            return
        try:
            counts = await store.count_jobs()
        except Exception as exc:
            if not self._depth_failing:
                log.warning("queue depth not refreshed (keeping the last values): %s", exc)
            self._depth_failing = True
            return
        from .stores import JobStatus

        self._depth_failing = False
        now = self._scheduler.clock.time()
        seen = self._queue_seen
        for queue, by in counts.items():
            if any(by.values()):
                seen[queue] = now
        for queue in [q for q, at in seen.items() if now - at > EMPTY_QUEUE_KEPT]:
            del seen[queue]
        served: list[str] = getattr(self._worker, "queues", None) or []
        self._depth = {
            (queue, str(status)): counts.get(queue, {}).get(status, 0)
            for queue in {*seen, *served}
            for status in JobStatus
        }
        self._depth_at = now

    def _collect_state(self, namespace: str) -> Iterator[Metric]:
        from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

        stats = self._scheduler.statistics()
        yield GaugeMetricFamily(f"{namespace}_scheduler_jobs", "Jobs registered.", stats.jobs)
        yield GaugeMetricFamily(
            f"{namespace}_scheduler_running", "Scheduled runs in progress.", stats.running
        )
        yield CounterMetricFamily(
            f"{namespace}_scheduler_fires",
            "Fires handed to the run machinery since start.",
            stats.fires,
        )
        depth = GaugeMetricFamily(
            f"{namespace}_queue_jobs",
            "Durable jobs by queue and status (cached, see docs/operating.md).",
            labels=("queue", "status"),
        )
        for (queue, status), n in sorted(self._depth.items()):
            depth.add_metric((queue, status), n)
        yield depth
        if self._depth_at is not None:
            yield GaugeMetricFamily(
                f"{namespace}_queue_depth_updated_timestamp_seconds",
                "Wall time of the last successful queue-depth refresh.",
                self._depth_at,
            )


class _Children:
    """A labelled metric with its children cached by label values: ``labels()`` takes a
    lock and validates its arguments on every call, which dominated the cost per fire."""

    __slots__ = ("_cache", "metric")

    def __init__(self, metric: Any) -> None:
        self.metric = metric
        self._cache: dict[tuple[str, ...], Any] = {}  # as many as label-value combinations

    def of(self, *values: str) -> Any:
        child = self._cache.get(values)
        if child is None:
            child = self._cache[values] = self.metric.labels(*values)
        return child


class _StateCollector:
    """Reads the scheduler's statistics and the queue-depth cache at each scrape."""

    def __init__(self, owner: Instrumentation, namespace: str) -> None:
        self._owner = owner
        self._namespace = namespace

    def collect(self) -> Iterator[Metric]:
        return self._owner._collect_state(self._namespace)

    def describe(self) -> Sequence[Metric]:
        return ()  # dynamic families: nothing to check for duplicates up front
