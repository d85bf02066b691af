"""Property: whatever the sequence of adds, removes and clock advances, the scheduler fires
exactly the instants a brute-force model says, in time order, and the heap stays bounded."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import datetime, timedelta

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from beat import Context, Job, Scheduler
from beat._queue import _COMPACT_FACTOR, _COMPACT_FLOOR
from beat.testing import FakeClock

from .conftest import START

S = timedelta(seconds=1)


@dataclass
class Modelled:
    name: str
    kind: str  # "cycle" | "oneshot"
    first: int  # seconds after START: cycle start / oneshot instant
    interval: int
    added: int  # seconds after START when added
    removed: int | None = None

    def fires(self, end: int) -> list[int]:
        stop = end if self.removed is None else self.removed
        if self.kind == "oneshot":
            # A past oneshot fires at once on add (late), with its own instant.
            return [self.first] if self.first <= stop else []
        out, t = [], self.first
        while t <= stop:
            if t > self.added:
                out.append(t)
            t += self.interval
        return out


ops = st.lists(
    st.one_of(
        st.tuples(st.just("cycle"), st.integers(0, 60), st.integers(1, 20)),
        st.tuples(st.just("oneshot"), st.integers(-10, 120), st.just(0)),
        st.tuples(st.just("remove"), st.integers(0, 1000), st.just(0)),
        st.tuples(st.just("advance"), st.integers(0, 40), st.just(0)),
    ),
    max_size=40,
)


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(ops)
def test_fires_match_the_model(steps: list[tuple[str, int, int]]) -> None:
    asyncio.run(_check(steps))


async def _check(steps: list[tuple[str, int, int]]) -> None:
    clock = FakeClock(START)
    scheduler = Scheduler(clock=clock)
    seen: list[tuple[str, datetime]] = []

    async def record(ctx: Context) -> None:
        seen.append((ctx.name, ctx.when))

    models: list[Modelled] = []
    ids = []
    now = 0
    scheduler.start()
    for i, (op, a, b) in enumerate(steps):
        if op == "cycle":
            job = Job.cycle(START + a * S, b * S).do(record, name=f"c{i}")
            models.append(Modelled(job.name, "cycle", a, b, now))
        elif op == "oneshot":
            job = Job.oneshot(START + a * S).do(record, name=f"o{i}")
            models.append(Modelled(job.name, "oneshot", a, 0, now))
        elif op == "remove":
            live = [
                k for k, m in enumerate(models) if m.removed is None and ids[k] in _ids(scheduler)
            ]
            if live:
                k = live[a % len(live)]
                scheduler.remove_job(ids[k])
                models[k].removed = now
            continue
        else:
            await clock.advance(a * S)
            now += a
            continue
        ids.append(scheduler.add_job(job))
        await clock.settle()
        stats = scheduler.statistics()
        assert stats.heap_entries <= _COMPACT_FACTOR * stats.jobs + _COMPACT_FLOOR
    await scheduler.shutdown(timeout=0)

    expected = sorted((m.name, START + t * S) for m in models for t in m.fires(now))
    assert sorted(seen) == expected
    whens = [w for _, w in seen]
    # Time order, except that past oneshots fire (late) when they are added.
    on_time = [w for (n, w) in seen if not _late_oneshot(n, w, models)]
    assert on_time == sorted(on_time)
    assert len(whens) == len(set(seen))  # nothing fired twice


def _ids(scheduler: Scheduler) -> set[object]:
    return {info.id for info in scheduler.jobs()}


def _late_oneshot(name: str, when: datetime, models: list[Modelled]) -> bool:
    model = next(m for m in models if m.name == name)
    return model.kind == "oneshot" and START + model.added * S >= when
